//! The durable store: customers and identities, conversations, messages, labels, decisions,
//! drafts, the outbox and the audit log (`migrations/`).
//!
//! It speaks SQL through sqlx's `Any` driver, so the same code and the same schema run on the
//! embedded default (an SQLite file, in WAL mode with full sync) and on PostgreSQL: the store is
//! chosen by its URL (`sqlite://switchboard.db`, `postgres://…`). Every step a message takes is
//! one transaction, so a crash leaves each message either before or after a step, never half way.
//!
//! It owns the schema, the migrations, the queries and their row types (including the few care
//! values it persists: [`ReplyKind`], [`ClockPlan`], [`BreachAction`], [`AuthorHistory`]). It knows
//! nothing of care rules, tenants' config files or plugins: callers decide, the store records.

mod care;
pub mod clock;
mod group;
mod incidents;
mod report;
mod server;
mod team;
mod tx;

pub use care::{
    BreachAction, ClockEvent, ClockEventItem, ClockPlan, ClockRow, Due, ReplyKind, SurveyRequest,
};
pub use group::Acceptance;
pub use incidents::{
    AttachedRow, Attachment, Closed, FollowUp, IncidentDraft, IncidentReport, IncidentRow,
    NewIncident, Opened, ReportRow,
};
pub use team::{AssignPlan, ExpertRequest, StoredDraftFacts, actor_name, verified_contacts};

pub use report::{SentReply, SurveyRow};
pub use server::{
    ActionError, DraftRef, InboxItem, Role, TokenInfo, TokenOwner, new_token, token_hash,
};

/// What the store knows about an author before this message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorHistory {
    /// Earlier messages from the same author on this channel.
    pub previous_messages: i64,
    /// Earlier messages the policy ignored, monitored or blocked.
    pub offences: i64,
    /// Earlier messages labelled `advocate` (praise).
    pub praise: i64,
    pub blocked: bool,
}

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use crate::clock::Clock;
use crate::tx::Tx;
use switchboard_contract::{Message, MessageAction, OutboundReply};

/// Why a store operation failed (the message names the operation; never a secret).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {op}: {source}")]
    Sql {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("store: migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: {0}")]
    Data(String),
    /// Writes sent together in one round trip ([`tx`]'s deferred writes on SQLite).
    #[error("store: {ops}: {source}")]
    Sent {
        ops: String,
        #[source]
        source: sqlx::Error,
    },
}

trait Op<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Op<T> for Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sql { op, source })
    }
}

/// Mark whether a message just committed was an offence or praise, and add it to its author's
/// counters. Called once per message, in the transaction that moved it to `done`, so retries,
/// replays and redeliveries cannot count it twice. The tests are the ones author history always
/// applied to decisions and labels.
pub(crate) async fn count_outcome(
    tx: &mut Tx<'_>,
    stored: &StoredMessage,
) -> Result<(), StoreError> {
    tx.defer("marking offence and praise", "UPDATE messages SET \
           offence = CASE WHEN EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = messages.id AND (d.actions LIKE '%\"ignore\"%' OR d.actions LIKE '%\"monitor\"%' OR d.actions LIKE '%\"block\"%')) THEN 1 ELSE 0 END, \
           praise = CASE WHEN EXISTS (SELECT 1 FROM labels l WHERE l.message_id = messages.id AND l.role = 'live' AND l.name = 'advocate' AND l.score >= 0.5) THEN 1 ELSE 0 END \
         WHERE id = $1")
    .bind(&stored.id);
    tx.defer("counting offence and praise", "UPDATE author_counters SET \
           offences = offences + (SELECT offence FROM messages WHERE id = $1), \
           praise = author_counters.praise + (SELECT praise FROM messages WHERE id = $1) \
         WHERE (tenant, channel, author_id) = (SELECT tenant, channel, author_id FROM messages WHERE id = $1)")
    .bind(&stored.id);
    Ok(())
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// What makes one event about a platform message unique: the message itself, each edit (by its
/// time), its deletion.
pub fn event_key(m: &Message) -> String {
    match m.action {
        MessageAction::Created => m.external_id.clone(),
        MessageAction::Edited => format!("{}#edit:{}", m.external_id, m.received_at),
        MessageAction::Deleted => format!("{}#delete", m.external_id),
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A message as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub tenant: String,
    pub connector: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub message: Message,
    pub status: String,
    pub attempts: i64,
}

/// `$first, $first+1, …` for `n` values: the parameters of an `IN (…)` list after the
/// query's own. Callers chunk long lists (see [`IN_LIST_CHUNK`]).
pub(crate) fn in_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids per `IN (…)` list: far below SQLite's and PostgreSQL's parameter limits.
pub(crate) const IN_LIST_CHUNK: usize = 200;

/// `row` (a `VALUES` row with `?` for each parameter) repeated `rows` times, its parameters
/// numbered `$1, $2, …` across the rows: one multi-row `INSERT` instead of a statement per row.
pub(crate) fn values_rows(rows: usize, row: &str) -> String {
    let mut next = 0;
    let mut out = String::with_capacity(rows * (row.len() + 16));
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        for c in row.chars() {
            if c == '?' {
                next += 1;
                out.push('$');
                out.push_str(&next.to_string());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Rows per multi-row `INSERT`: at 14 parameters a row, far below SQLite's parameter limit.
pub(crate) const ROWS_PER_INSERT: usize = 100;

/// A message due for processing, with what orders it against others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    pub id: String,
    pub conversation_id: String,
    pub customer_id: String,
}

/// What accepting a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: String,
    pub conversation_id: String,
    /// The same platform message was stored before; nothing new was written.
    pub duplicate: bool,
}

/// A label row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelRow {
    pub role: String,
    pub classifier: String,
    /// `name@version#digest-prefix` of the plugin that produced it.
    #[serde(default)]
    pub plugin: String,
    pub name: String,
    pub score: f64,
    pub evidence: serde_json::Value,
}

/// A draft row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftRow {
    pub id: String,
    pub suggester: String,
    pub purpose: String,
    pub text: String,
    pub visibility: String,
    pub confidence: f64,
    pub rationale: String,
    pub length: Option<i64>,
    pub length_limit: i64,
    pub findings: serde_json::Value,
    pub status: String,
}

/// An outbox row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    pub tenant: String,
    pub connector: String,
    pub message_id: String,
    pub draft_id: Option<String>,
    pub idempotency_key: String,
    pub reply: OutboundReply,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub receipt: Option<String>,
    /// What the reply counts as for the service-level clock.
    pub kind: ReplyKind,
}

/// A reply to queue with a message's outcome.
#[derive(Debug, Clone)]
pub struct QueuedReply {
    /// The draft it came from (in the same outcome's `drafts`).
    pub draft_id: Option<String>,
    pub reply: OutboundReply,
    pub kind: ReplyKind,
}

/// Everything processing decided for one message, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub labels: Vec<LabelRow>,
    pub actions: serde_json::Value,
    pub fired: serde_json::Value,
    pub drafts: Vec<DraftRow>,
    /// Replies to queue. An `away` reply is queued only if the conversation has had none.
    pub outbox: Vec<QueuedReply>,
    /// The response clock this message starts, if none is running for its conversation.
    pub clock: Option<ClockPlan>,
    /// A new customer message reopens a resolved conversation.
    pub reopen: bool,
    /// Round-robin assignment when the policy routed the conversation to a team.
    pub assign: Option<AssignPlan>,
    /// The customer praised the brand again: flag them as an advocate.
    pub advocate: bool,
    pub conversation_state: Option<String>,
    pub team: Option<String>,
    pub escalated: bool,
    pub incident: Option<String>,
    /// Hand the message to the incident detector, which settles it right after the commit.
    pub incident_report: Option<IncidentReport>,
    pub close_publicly: Option<String>,
    pub block_customer: bool,
    pub degraded: Vec<String>,
    /// Shadow classifiers that ran (successfully) on the message.
    pub shadows: Vec<String>,
    /// (actor, action, detail) rows for the audit log.
    pub audit: Vec<(String, String, serde_json::Value)>,
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// SQLite needs write transactions to take the write lock at BEGIN: a deferred one that
    /// reads first and writes later fails with "database is locked" under concurrency instead of
    /// waiting for the lock.
    sqlite: bool,
    /// Every timestamp the store writes comes from here, so tests can move time.
    clock: Clock,
    /// Acceptances waiting for the next shared transaction (`group.rs`).
    group: group::Shared,
    /// `SWITCHBOARD_TEST_ABORT_IN_ACCEPT_BATCH=n`: abort the process after writing n messages of
    /// a larger group, before its commit. Only the crash test sets it.
    abort_in_batch: Option<usize>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Who uses a store, which decides how many connections it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    /// A server: readers beside the writer, four connections.
    Many,
    /// One client working through its requests in turn (the CLI's commands): one connection.
    /// On SQLite each connection keeps its own page cache and drops it whenever another one
    /// has written; with four, a sequential client's reads landed on a connection that had not
    /// made the last write and re-read their pages from the file (about 100 `pread`s a message
    /// of `switchboard run`, against 5 with one connection).
    One,
}

impl Store {
    /// Open (creating if needed) the store at `url` for a server and bring its schema up to
    /// date. `sqlite://path`, `sqlite::memory:` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_for(url, Clients::Many).await
    }

    /// [`Self::open`], sized for `clients`.
    pub async fn open_for(url: &str, clients: Clients) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let memory = url.contains(":memory:");
        let mut url = url.to_string();
        if url.starts_with("sqlite:") && !memory && !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let options = AnyConnectOptions::from_str(&url).op("parsing the store URL")?;
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database exists once per connection: keep exactly one.
            .max_connections(if memory || clients == Clients::One {
                1
            } else {
                4
            })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        use sqlx::Executor;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .op("opening the store")?;
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            sqlite: url.starts_with("sqlite:"),
            clock: Clock::system(),
            group: group::Shared::default(),
            abort_in_batch: std::env::var("SWITCHBOARD_TEST_ABORT_IN_ACCEPT_BATCH")
                .ok()
                .and_then(|n| n.parse().ok()),
        })
    }

    /// The same store, reading time from `clock` (a manual clock in tests).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// The store's "now", in epoch milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Begin a write transaction.
    async fn begin(&self, op: &'static str) -> Result<Tx<'static>, StoreError> {
        let inner = if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await.op(op)?
        } else {
            self.pool.begin().await.op(op)?
        };
        Ok(Tx::new(inner, self.sqlite))
    }

    /// Open an SQLite file.
    pub async fn open_file(path: &Path) -> Result<Store, StoreError> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// A store that lives only as long as this process (tests, replays, benchmarks).
    pub async fn in_memory() -> Result<Store, StoreError> {
        Self::open("sqlite::memory:").await
    }

    /// Store a message before it is acknowledged. The same (tenant, channel, external id)
    /// delivered again is not stored twice: the earlier message's ids come back. Messages
    /// accepted concurrently share one transaction ([`Self::accept_all`]).
    pub async fn accept(&self, connector: &str, message: &Message) -> Result<Accepted, StoreError> {
        self.accept_traced(connector, message, None).await
    }

    /// [`Self::accept`], keeping the W3C `traceparent` of the span that accepted the message so
    /// that its processing and delivery join the same trace. A duplicate keeps the first one's.
    pub async fn accept_traced(
        &self,
        connector: &str,
        message: &Message,
        traceparent: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        let mut results = self
            .accept_all(vec![Acceptance {
                connector: connector.to_string(),
                message: message.clone(),
                traceparent: traceparent.map(str::to_string),
            }])
            .await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Data("an acceptance went unanswered".into())))
    }

    /// The trace context a message was accepted under (see [`Self::accept_traced`]).
    pub async fn traceparent(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT traceparent FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .op("loading a trace context")?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    /// Write one acceptance inside the caller's transaction (a savepoint of a group commit).
    async fn accept_in(&self, tx: &mut Tx<'_>, item: &Acceptance) -> Result<Accepted, StoreError> {
        let (connector, message, traceparent) =
            (&item.connector, &item.message, item.traceparent.as_deref());
        let now = self.now();
        let key = event_key(message);
        // The three lookups in one statement (each is a round trip to the store's thread): the
        // same event stored before, the author's identity, the conversation.
        let known = sqlx::query(
            "SELECT (SELECT id FROM messages WHERE tenant = $1 AND channel = $2 AND event_key = $3), \
               (SELECT conversation_id FROM messages WHERE tenant = $1 AND channel = $2 AND event_key = $3), \
               (SELECT customer_id FROM identities WHERE tenant = $1 AND channel = $2 AND author_id = $4), \
               (SELECT id FROM conversations WHERE tenant = $1 AND channel = $2 AND conversation_key = $5)",
        )
        .bind(&message.tenant)
        .bind(&message.channel)
        .bind(&key)
        .bind(&message.author.id)
        .bind(&message.conversation_key)
        .fetch_one(tx.conn().await?)
        .await
        .op("looking up a message, its author and its conversation")?;
        if let (Some(message_id), Some(conversation_id)) = (
            known.get::<Option<String>, _>(0),
            known.get::<Option<String>, _>(1),
        ) {
            return Ok(Accepted {
                message_id,
                conversation_id,
                duplicate: true,
            });
        }
        let (known_customer, known_conversation): (Option<String>, Option<String>) =
            (known.get(2), known.get(3));

        let contacts = team::verified_contacts(&message.extra);
        let customer_id: String = match known_customer {
            Some(known) => known,
            None => {
                // A contact the platform verified, already known on another channel: the same
                // customer. Never by guessing (names, handles).
                let id = match team::customer_by_contact(tx, &message.tenant, &contacts).await? {
                    Some(known) => known,
                    None => {
                        let id = new_id();
                        tx.defer(
                            "creating a customer",
                            "INSERT INTO customers (id, tenant, created_at) VALUES ($1, $2, $3)",
                        )
                        .bind(&id)
                        .bind(&message.tenant)
                        .bind(now);
                        id
                    }
                };
                tx.defer("creating an identity", "INSERT INTO identities (tenant, channel, author_id, customer_id, handle, display_name, first_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&message.tenant)
                .bind(&message.channel)
                .bind(&message.author.id)
                .bind(&id)
                .bind(message.author.handle.clone())
                .bind(message.author.display_name.clone())
                .bind(now);
                id
            }
        };
        team::remember_contacts(tx, now, &message.tenant, &customer_id, &contacts).await?;

        let conversation_id: String = match known_conversation {
            Some(known) => known,
            None => {
                let id = new_id();
                tx.defer("creating a conversation", "INSERT INTO conversations (id, tenant, channel, conversation_key, customer_id, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $6)")
                .bind(&id)
                .bind(&message.tenant)
                .bind(&message.channel)
                .bind(&message.conversation_key)
                .bind(&customer_id)
                .bind(now);
                id
            }
        };

        let id = new_id();
        tx.defer("storing a message", "INSERT INTO messages (id, tenant, channel, connector, external_id, event_key, conversation_id, customer_id, author_id, body, received_at, accepted_at, status, traceparent) VALUES ($1, $2, $3, $4, $5, $12, $6, $7, $8, $9, $10, $11, 'accepted', $13)")
        .bind(&id)
        .bind(&message.tenant)
        .bind(&message.channel)
        .bind(connector)
        .bind(&message.external_id)
        .bind(&conversation_id)
        .bind(&customer_id)
        .bind(&message.author.id)
        .bind(json(message))
        .bind(message.received_at)
        .bind(now)
        .bind(&key)
        .bind(traceparent);
        tx.defer("counting a message", "INSERT INTO author_counters (tenant, channel, author_id, messages, offences, praise) VALUES ($1, $2, $3, 1, 0, 0) \
             ON CONFLICT (tenant, channel, author_id) DO UPDATE SET messages = author_counters.messages + 1")
        .bind(&message.tenant)
        .bind(&message.channel)
        .bind(&message.author.id);
        audit(
            tx,
            self.now(),
            &message.tenant,
            &format!("connector:{connector}"),
            "message.accepted",
            &id,
            &serde_json::json!({ "external_id": message.external_id, "channel": message.channel }),
        )
        .await?;

        Ok(Accepted {
            message_id: id,
            conversation_id,
            duplicate: false,
        })
    }

    pub async fn message(&self, id: &str) -> Result<StoredMessage, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, connector, conversation_id, customer_id, body, status, attempts FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .op("loading a message")?
        .ok_or_else(|| StoreError::Data(format!("no message {id}")))?;
        stored_message(&row)
    }

    /// The tenants with work due now: messages waiting for the pipeline (as `due_messages`),
    /// and replies waiting for delivery. One pair of queries for the whole server, so idle
    /// tenants' workers need not each ask again and again.
    pub async fn tenants_with_due_work(&self, now: i64) -> Result<DueTenants, StoreError> {
        let messages = sqlx::query(
            "SELECT DISTINCT tenant FROM messages WHERE status = 'accepted' OR (status = 'held' AND next_attempt_at <= $1)",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .op("listing tenants with due messages")?;
        let replies = sqlx::query(
            "SELECT DISTINCT tenant FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .op("listing tenants with due replies")?;
        Ok(DueTenants {
            messages: messages.iter().map(|r| r.get(0)).collect(),
            replies: replies.iter().map(|r| r.get(0)).collect(),
        })
    }

    /// The tenants a service-level sweep has work for: running response clocks, or incident
    /// reports not yet settled. Idle tenants are not swept at all.
    pub async fn tenants_to_sweep(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query(TENANTS_TO_SWEEP)
            .fetch_all(&self.pool)
            .await
            .op("listing tenants to sweep")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Messages of `tenant` waiting for the pipeline: accepted and not processed, or held by a
    /// fail-closed stage and due for a retry. Oldest first.
    pub async fn due_messages(
        &self,
        tenant: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let due = self.due_messages_with_keys(tenant, now, limit).await?;
        Ok(due.into_iter().map(|m| m.id).collect())
    }

    /// [`Self::due_messages`] with each message's conversation and customer: what a processor
    /// needs to work on several at once while keeping each conversation's and customer's
    /// messages in order.
    pub async fn due_messages_with_keys(
        &self,
        tenant: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<DueMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, customer_id FROM messages WHERE tenant = $1 AND (status = 'accepted' OR (status = 'held' AND next_attempt_at <= $2)) ORDER BY accepted_at, id LIMIT $3",
        )
        .bind(tenant)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .op("listing due messages")?;
        Ok(rows
            .iter()
            .map(|r| DueMessage {
                id: r.get(0),
                conversation_id: r.get(1),
                customer_id: r.get(2),
            })
            .collect())
    }

    /// Count messages of `tenant` by status.
    pub async fn status_counts(&self, tenant: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM messages WHERE tenant = $1 GROUP BY status ORDER BY status",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("counting messages")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// What the store knows about the customer behind `message` from before it: every channel
    /// they wrote on, merges included (one customer, one history).
    ///
    /// "Before" means accepted no later than this message, as it always did; the answer is
    /// read from running counters (`author_counters`, per channel identity, summed over the
    /// customer's identities) less the customer's messages accepted after this one, so it costs
    /// the same however long the history is. (Sums are cast: PostgreSQL sums BIGINTs as NUMERIC.)
    pub async fn author_history(
        &self,
        stored: &StoredMessage,
    ) -> Result<AuthorHistory, StoreError> {
        // One statement (each is a round trip to the store's thread): the message itself, its
        // customer's counters summed over their identities, what that customer sent after it,
        // and whether the message's customer is blocked.
        let row = sqlx::query(
            "WITH me AS (SELECT customer_id, accepted_at, offence, praise FROM messages WHERE id = $1), \
             total AS (SELECT CAST(COALESCE(SUM(c.messages), 0) AS BIGINT) AS messages, CAST(COALESCE(SUM(c.offences), 0) AS BIGINT) AS offences, CAST(COALESCE(SUM(c.praise), 0) AS BIGINT) AS praise \
               FROM me JOIN identities i ON i.tenant = $2 AND i.customer_id = me.customer_id \
               JOIN author_counters c ON c.tenant = i.tenant AND c.channel = i.channel AND c.author_id = i.author_id), \
             later AS (SELECT COUNT(*) AS messages, CAST(COALESCE(SUM(l.offence), 0) AS BIGINT) AS offences, CAST(COALESCE(SUM(l.praise), 0) AS BIGINT) AS praise \
               FROM me JOIN messages l ON l.tenant = $2 AND l.customer_id = me.customer_id AND l.accepted_at > me.accepted_at) \
             SELECT me.offence, me.praise, total.messages, total.offences, total.praise, later.messages, later.offences, later.praise, \
               (SELECT blocked_at FROM customers WHERE id = $3) \
             FROM me, total, later",
        )
        .bind(&stored.id)
        .bind(&stored.tenant)
        .bind(&stored.customer_id)
        .fetch_one(&self.pool)
        .await
        .op("reading author history")?;
        let (own_offence, own_praise): (i64, i64) = (row.get(0), row.get(1));
        let total: [i64; 3] = [row.get(2), row.get(3), row.get(4)];
        let later: [i64; 3] = [row.get(5), row.get(6), row.get(7)];
        let blocked = row.get::<Option<i64>, _>(8).is_some();
        Ok(AuthorHistory {
            previous_messages: total[0] - later[0] - 1,
            offences: total[1] - later[1] - own_offence,
            praise: total[2] - later[2] - own_praise,
            blocked,
        })
    }

    /// Hold a message after a fail-closed stage failed: retry at `next_at`, or give up (status
    /// `failed`) after `max_attempts`.
    pub async fn hold(
        &self,
        id: &str,
        error: &str,
        next_at: i64,
        max_attempts: i64,
    ) -> Result<String, StoreError> {
        let mut tx = self.begin("beginning hold").await?;
        let row = sqlx::query("SELECT tenant, attempts FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn().await?)
            .await
            .op("loading a held message")?;
        let tenant: String = row.get(0);
        let attempts: i64 = row.get::<i64, _>(1) + 1;
        let status = if attempts >= max_attempts {
            "failed"
        } else {
            "held"
        };
        tx.defer("holding a message", "UPDATE messages SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $5 AND status IN ('accepted', 'held')")
        .bind(status)
        .bind(attempts)
        .bind(next_at)
        .bind(error)
        .bind(id);
        audit(
            &mut tx,
            self.now(),
            &tenant,
            "pipeline",
            if status == "failed" {
                "message.failed"
            } else {
                "message.held"
            },
            id,
            &serde_json::json!({ "error": error, "attempts": attempts }),
        )
        .await?;
        tx.commit("committing hold").await?;
        Ok(status.to_string())
    }

    /// Write everything processing decided for a message, and mark it done, in one
    /// transaction. Returns false (and writes nothing) if the message was already done: two
    /// workers, or a replay after a crash, cannot record it twice.
    pub async fn commit(
        &self,
        stored: &StoredMessage,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        self.commit_in_group(stored, outcome).await
    }

    /// [`Self::commit`]'s writes, inside a savepoint of a group commit. `false` (and the caller
    /// rolls back) when the message was already done.
    async fn commit_in(
        &self,
        tx: &mut Tx<'_>,
        stored: &StoredMessage,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let tenant = &stored.tenant;
        let claimed = sqlx::query(
            "UPDATE messages SET status = 'done', degraded = $1, last_error = NULL WHERE id = $2 AND status IN ('accepted', 'held')",
        )
        .bind(json(&outcome.degraded))
        .bind(&stored.id)
        .execute(tx.conn().await?)
        .await
        .op("marking a message done")?;
        if claimed.rows_affected() != 1 {
            return Ok(false);
        }
        tx.defer_rows(
            "storing labels",
            "INSERT INTO labels (message_id, role, classifier, name, score, evidence, plugin)",
            "(?, ?, ?, ?, ?, ?, ?)",
            &outcome.labels,
            |row, l| {
                row.bind(&stored.id)
                    .bind(&l.role)
                    .bind(&l.classifier)
                    .bind(&l.name)
                    .bind(l.score)
                    .bind(json(&l.evidence))
                    .bind(&l.plugin);
            },
        );
        tx.defer("storing a decision", "INSERT INTO decisions (message_id, tenant, actions, fired, shadows, decided_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&stored.id)
        .bind(tenant)
        .bind(json(&outcome.actions))
        .bind(json(&outcome.fired))
        .bind(json(&outcome.shadows))
        .bind(now);
        count_outcome(tx, stored).await?;
        // The out-of-hours reply goes out once per conversation: a second one is not even kept
        // as a draft.
        let wants_away = outcome.outbox.iter().any(|q| q.kind == ReplyKind::Away);
        let away_allowed = wants_away
            && sqlx::query(
                "UPDATE conversations SET away_replied_at = $1 WHERE id = $2 AND away_replied_at IS NULL",
            )
            .bind(now)
            .bind(&stored.conversation_id)
            .execute(tx.conn().await?)
            .await
            .op("recording the away reply")?
            .rows_affected()
                == 1;
        let skipped: Vec<&str> = outcome
            .outbox
            .iter()
            .filter(|q| q.kind == ReplyKind::Away && !away_allowed)
            .filter_map(|q| q.draft_id.as_deref())
            .collect();
        let drafts: Vec<&DraftRow> = outcome
            .drafts
            .iter()
            .filter(|d| !skipped.contains(&d.id.as_str()))
            .collect();
        tx.defer_rows(
            "storing drafts",
            "INSERT INTO drafts (id, tenant, message_id, suggester, purpose, text, visibility, confidence, rationale, length, length_limit, findings, status, created_at)",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &drafts,
            |row, d| {
                row.bind(&d.id)
                    .bind(tenant)
                    .bind(&stored.id)
                    .bind(&d.suggester)
                    .bind(&d.purpose)
                    .bind(&d.text)
                    .bind(&d.visibility)
                    .bind(d.confidence)
                    .bind(&d.rationale)
                    .bind(d.length)
                    .bind(d.length_limit)
                    .bind(json(&d.findings))
                    .bind(&d.status)
                    .bind(now);
            },
        );
        let queued: Vec<&QueuedReply> = outcome
            .outbox
            .iter()
            .filter(|q| q.kind != ReplyKind::Away || away_allowed)
            .collect();
        tx.defer_rows(
            "queueing replies",
            "INSERT INTO outbox (id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, created_at, updated_at, kind)",
            "(?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            &queued,
            |row, q| {
                row.bind(new_id())
                    .bind(tenant)
                    .bind(&stored.connector)
                    .bind(&stored.id)
                    .bind(q.draft_id.clone())
                    .bind(&q.reply.idempotency_key)
                    .bind(json(&q.reply))
                    .bind(now)
                    .bind(now)
                    .bind(q.kind.as_str());
            },
        );
        tx.defer("updating a conversation", "UPDATE conversations SET state = COALESCE($1, CASE WHEN state = 'resolved' AND $8 = 1 THEN 'open' ELSE state END), team = COALESCE($2, team), escalated = CASE WHEN $3 = 1 THEN 1 ELSE escalated END, incident = COALESCE($4, incident), close_publicly = COALESCE($5, close_publicly), updated_at = $6 WHERE id = $7")
        .bind(outcome.conversation_state.clone())
        .bind(outcome.team.clone())
        .bind(i64::from(outcome.escalated))
        .bind(outcome.incident.clone())
        .bind(outcome.close_publicly.clone())
        .bind(now)
        .bind(&stored.conversation_id)
        .bind(i64::from(outcome.reopen));
        if let Some(plan) = &outcome.clock {
            care::start_clock(tx, now, stored, plan).await?;
        }
        if let Some(plan) = &outcome.assign {
            team::assign_round_robin(tx, now, &stored.tenant, &stored.conversation_id, plan, None)
                .await?;
        }
        if outcome.advocate {
            let flagged = sqlx::query(
                "UPDATE customers SET advocate_since = $1 WHERE id = $2 AND advocate_since IS NULL",
            )
            .bind(now)
            .bind(&stored.customer_id)
            .execute(tx.conn().await?)
            .await
            .op("flagging an advocate")?;
            if flagged.rows_affected() == 1 {
                audit(
                    tx,
                    now,
                    tenant,
                    "policy",
                    "customer.advocate",
                    &stored.customer_id,
                    &serde_json::json!({ "message": stored.id }),
                )
                .await?;
            }
        }
        if let Some(report) = &outcome.incident_report {
            incidents::queue_report(tx, now, stored, report).await?;
        }
        if outcome.block_customer {
            tx.defer(
                "blocking a customer",
                "UPDATE customers SET blocked_at = $1 WHERE id = $2 AND blocked_at IS NULL",
            )
            .bind(now)
            .bind(&stored.customer_id);
        }
        tx.defer_rows(
            "writing the audit log",
            "INSERT INTO audit (id, tenant, at, actor, action, subject, detail)",
            "(?, ?, ?, ?, ?, ?, ?)",
            &outcome.audit,
            |row, (actor, action, detail)| {
                row.bind(new_id())
                    .bind(tenant)
                    .bind(now)
                    .bind(actor)
                    .bind(action)
                    .bind(&stored.id)
                    .bind(json(detail));
            },
        );
        Ok(true)
    }

    /// After a restart: replies of `tenants` caught mid-send go back to pending. They are sent
    /// again with the same idempotency key, so a platform that honours it posts them once. One
    /// statement per 500 tenants, for a server that starts with thousands.
    pub async fn requeue_interrupted_all(&self, tenants: &[&str]) -> Result<u64, StoreError> {
        let mut requeued = 0;
        for chunk in tenants.chunks(500) {
            let marks = in_list(2, chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE outbox SET status = 'pending', updated_at = $1 WHERE status = 'sending' AND tenant IN ({})",
                marks
            )))
            .bind(self.now());
            for t in chunk {
                query = query.bind(*t);
            }
            requeued += query
                .execute(&self.pool)
                .await
                .op("requeueing interrupted replies")?
                .rows_affected();
        }
        Ok(requeued)
    }

    /// [`Self::requeue_interrupted_all`] for one tenant (one added while the server runs).
    pub async fn requeue_interrupted(&self, tenant: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'pending', updated_at = $1 WHERE tenant = $2 AND status = 'sending'",
        )
        .bind(self.now())
        .bind(tenant)
        .execute(&self.pool)
        .await
        .op("requeueing interrupted replies")?;
        Ok(r.rows_affected())
    }

    /// Claim up to `limit` replies of `tenant` that are due: each is marked `sending` by exactly
    /// one claimant.
    pub async fn claim_due_replies(
        &self,
        tenant: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM outbox WHERE tenant = $1 AND status = 'pending' AND next_attempt_at <= $2 ORDER BY created_at, id LIMIT $3",
        )
        .bind(tenant)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .op("listing due replies")?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut claimed = Vec::new();
        for id in ids {
            let r = sqlx::query(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(&id)
            .execute(&self.pool)
            .await
            .op("claiming a reply")?;
            if r.rows_affected() == 1 {
                claimed.push(self.outbox_row(&id).await?);
            }
        }
        Ok(claimed)
    }

    async fn outbox_row(&self, id: &str) -> Result<OutboxRow, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, attempts, last_error, receipt, kind FROM outbox WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .op("loading a reply")?;
        outbox_row(&row)
    }

    /// Every reply queued for `tenant`.
    pub async fn outbox(&self, tenant: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, attempts, last_error, receipt, kind FROM outbox WHERE tenant = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("listing replies")?;
        rows.iter().map(outbox_row).collect()
    }

    /// Record a delivery attempt's result: `sent` (with the platform's receipt), `pending` (retry
    /// at `next_at`) or `dead` (permanent failure, kept with its reason for agents).
    pub async fn finish_reply(
        &self,
        row: &OutboxRow,
        status: &str,
        receipt: Option<&str>,
        error: Option<&str>,
        next_at: i64,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin("beginning delivery record").await?;
        tx.defer("recording a delivery", "UPDATE outbox SET status = $1, receipt = COALESCE($2, receipt), last_error = $3, next_attempt_at = $4, updated_at = $5, sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END WHERE id = $6")
        .bind(status)
        .bind(receipt.map(str::to_string))
        .bind(error.map(str::to_string))
        .bind(next_at)
        .bind(now)
        .bind(&row.id);
        if status == "sent"
            && let Some(d) = &row.draft_id
        {
            tx.defer(
                "marking a draft sent",
                "UPDATE drafts SET status = 'sent' WHERE id = $1",
            )
            .bind(d);
        }
        if status == "sent" && row.kind.stops_clock() {
            care::stop_clock(&mut tx, now, &row.tenant, &row.message_id, &row.id).await?;
        }
        audit(
            &mut tx,
            self.now(),
            &row.tenant,
            &format!("connector:{}", row.connector),
            &format!("reply.{status}"),
            &row.id,
            &serde_json::json!({ "idempotency_key": row.idempotency_key, "attempts": row.attempts, "receipt": receipt, "error": error }),
        )
        .await?;
        tx.commit("committing a delivery record").await?;
        Ok(())
    }

    /// Ids of `tenant`'s processed messages, oldest first (for replay and reports).
    pub async fn done_messages(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM messages WHERE tenant = $1 AND status = 'done' ORDER BY accepted_at, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("listing messages")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn labels(&self, message_id: &str) -> Result<Vec<LabelRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT role, classifier, name, score, evidence, plugin FROM labels WHERE message_id = $1 ORDER BY role, classifier, name",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await
        .op("loading labels")?;
        Ok(rows.iter().map(label_row).collect())
    }

    /// The labels of each of `message_ids` (one with none is absent), ordered as
    /// [`Store::labels`] orders them: for a batch, a statement per chunk rather than per message.
    pub async fn labels_of(
        &self,
        message_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<LabelRow>>, StoreError> {
        let mut labels: std::collections::HashMap<String, Vec<LabelRow>> = Default::default();
        for chunk in message_ids.chunks(IN_LIST_CHUNK) {
            let sql = format!(
                "SELECT role, classifier, name, score, evidence, plugin, message_id FROM labels WHERE message_id IN ({}) ORDER BY message_id, role, classifier, name",
                in_list(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(&self.pool).await.op("loading labels")?;
            for r in &rows {
                labels.entry(r.get(6)).or_default().push(label_row(r));
            }
        }
        Ok(labels)
    }

    /// The shadow classifiers that ran on a message.
    pub async fn shadows_run(&self, message_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT shadows FROM decisions WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .op("loading a decision")?;
        Ok(row
            .and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok())
            .unwrap_or_default())
    }

    /// The stored decision: (actions, fired rules) as JSON.
    pub async fn decision(
        &self,
        message_id: &str,
    ) -> Result<Option<(serde_json::Value, serde_json::Value)>, StoreError> {
        let row = sqlx::query("SELECT actions, fired FROM decisions WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .op("loading a decision")?;
        Ok(row.map(|r| {
            (
                serde_json::from_str(&r.get::<String, _>(0)).unwrap_or_default(),
                serde_json::from_str(&r.get::<String, _>(1)).unwrap_or_default(),
            )
        }))
    }

    pub async fn drafts(&self, message_id: &str) -> Result<Vec<DraftRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, suggester, purpose, text, visibility, confidence, rationale, length, length_limit, findings, status FROM drafts WHERE message_id = $1 ORDER BY created_at, id",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await
        .op("loading drafts")?;
        Ok(rows
            .iter()
            .map(|r| DraftRow {
                id: r.get(0),
                suggester: r.get(1),
                purpose: r.get(2),
                text: r.get(3),
                visibility: r.get(4),
                confidence: r.get(5),
                rationale: r.get(6),
                length: r.get(7),
                length_limit: r.get(8),
                findings: serde_json::from_str(&r.get::<String, _>(9)).unwrap_or_default(),
                status: r.get(10),
            })
            .collect())
    }

    /// A conversation of `tenant` by its id or its channel's conversation key, with its
    /// messages (oldest first). Another tenant's conversation is never found.
    pub async fn conversation(
        &self,
        tenant: &str,
        id_or_key: &str,
    ) -> Result<Option<(serde_json::Value, Vec<StoredMessage>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, channel, conversation_key, customer_id, state, team, escalated, incident, close_publicly FROM conversations WHERE tenant = $1 AND (id = $2 OR conversation_key = $2) ORDER BY created_at LIMIT 1",
        )
        .bind(tenant)
        .bind(id_or_key)
        .fetch_optional(&self.pool)
        .await
        .op("loading a conversation")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.get(0);
        let info = serde_json::json!({
            "id": id,
            "channel": row.get::<String, _>(1),
            "conversation_key": row.get::<String, _>(2),
            "customer_id": row.get::<String, _>(3),
            "state": row.get::<String, _>(4),
            "team": row.get::<Option<String>, _>(5),
            "escalated": row.get::<i64, _>(6) == 1,
            "incident": row.get::<Option<String>, _>(7),
            "close_publicly": row.get::<Option<String>, _>(8),
        });
        let rows = sqlx::query(
            "SELECT id, tenant, connector, conversation_id, customer_id, body, status, attempts FROM messages WHERE conversation_id = $1 ORDER BY received_at, id",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .op("loading a conversation's messages")?;
        let messages = rows.iter().map(stored_message).collect::<Result<_, _>>()?;
        Ok(Some((info, messages)))
    }

    /// The audit log of one subject (a message or reply id).
    pub async fn audit_of(&self, subject: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, subject, detail FROM audit WHERE subject = $1 ORDER BY at, id",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await
        .op("loading the audit log")?;
        Ok(rows.iter().map(audit_entry).collect())
    }

    /// Run one query returning a single count (tests and reports).
    pub async fn count(&self, sql: &'static str, tenant: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(sql)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await
            .op("counting")?;
        Ok(row.get(0))
    }
}

fn stored_message(row: &sqlx::any::AnyRow) -> Result<StoredMessage, StoreError> {
    let body: String = row.get(5);
    Ok(StoredMessage {
        id: row.get(0),
        tenant: row.get(1),
        connector: row.get(2),
        conversation_id: row.get(3),
        customer_id: row.get(4),
        message: serde_json::from_str(&body)
            .map_err(|e| StoreError::Data(format!("message body is not readable: {e}")))?,
        status: row.get(6),
        attempts: row.get(7),
    })
}

/// An audit row (`at, actor, action, subject, detail`) as JSON.
fn audit_entry(r: &sqlx::any::AnyRow) -> serde_json::Value {
    serde_json::json!({
        "at": r.get::<i64, _>(0),
        "actor": r.get::<String, _>(1),
        "action": r.get::<String, _>(2),
        "subject": r.get::<String, _>(3),
        "detail": serde_json::from_str::<serde_json::Value>(&r.get::<String, _>(4)).unwrap_or_default(),
    })
}

fn outbox_row(row: &sqlx::any::AnyRow) -> Result<OutboxRow, StoreError> {
    let reply: String = row.get(6);
    Ok(OutboxRow {
        id: row.get(0),
        tenant: row.get(1),
        connector: row.get(2),
        message_id: row.get(3),
        draft_id: row.get(4),
        idempotency_key: row.get(5),
        reply: serde_json::from_str(&reply)
            .map_err(|e| StoreError::Data(format!("queued reply is not readable: {e}")))?,
        status: row.get(7),
        attempts: row.get(8),
        last_error: row.get(9),
        receipt: row.get(10),
        kind: reply_kind(&row.get::<String, _>(11)),
    })
}

fn reply_kind(s: &str) -> ReplyKind {
    match s {
        "acknowledgement" => ReplyKind::Acknowledgement,
        "away" => ReplyKind::Away,
        "survey" => ReplyKind::Survey,
        "follow-up" => ReplyKind::FollowUp,
        "statement" => ReplyKind::Statement,
        _ => ReplyKind::Response,
    }
}

fn label_row(r: &sqlx::any::AnyRow) -> LabelRow {
    LabelRow {
        role: r.get(0),
        classifier: r.get(1),
        name: r.get(2),
        score: r.get(3),
        evidence: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
        plugin: r.get(5),
    }
}

async fn audit(
    tx: &mut Tx<'_>,
    at: i64,
    tenant: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    tx.defer("writing the audit log", "INSERT INTO audit (id, tenant, at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
    .bind(new_id())
    .bind(tenant)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(json(detail));
    Ok(())
}

const TENANTS_TO_SWEEP: &str = "SELECT DISTINCT tenant FROM response_clocks WHERE stopped_at IS NULL UNION SELECT DISTINCT tenant FROM incident_reports WHERE settled_at IS NULL";

/// Which tenants have work due: see [`Store::tenants_with_due_work`].
#[derive(Debug, Default)]
pub struct DueTenants {
    pub messages: Vec<String>,
    pub replies: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `sql`: one line per step.
    async fn query_plan(store: &Store, sql: &str) -> String {
        sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .bind("t")
            .bind("x")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn lookups_run_on_every_sweep_use_their_indexes() {
        // Each of these once read every row of its table, per running clock or per tenant, and
        // made a busy server's sweep slower than its interval. A lost index would not fail a
        // behaviour test, only the plan.
        let store = Store::in_memory().await.unwrap();
        for (sql, index) in [
            (care::CONVERSATION_REF.to_string(), "conversations_key"),
            (team::agent_loads_sql(1), "conversations_assignee"),
            (TENANTS_TO_SWEEP.to_string(), "response_clocks_running"),
            (TENANTS_TO_SWEEP.to_string(), "incident_reports_unsettled"),
            (care::running_clocks_sql(), "response_clocks_running"),
            (
                incidents::pending_reports_sql(),
                "incident_reports_unsettled",
            ),
        ] {
            let plan = query_plan(&store, &sql).await;
            assert!(plan.contains(index), "{sql}\nplanned as:\n{plan}");
        }
    }

    /// Author history as it was computed before the counters: a scan of every earlier message
    /// of the customer. The reference the counters must keep agreeing with.
    async fn scanned(store: &Store, stored: &StoredMessage) -> AuthorHistory {
        let row = sqlx::query(
            "SELECT COUNT(*), \
               COALESCE(SUM(CASE WHEN d.actions LIKE '%\"ignore\"%' OR d.actions LIKE '%\"monitor\"%' OR d.actions LIKE '%\"block\"%' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM labels l WHERE l.message_id = p.id AND l.role = 'live' AND l.name = 'advocate' AND l.score >= 0.5) THEN 1 ELSE 0 END), 0) \
             FROM messages p LEFT JOIN decisions d ON d.message_id = p.id \
             WHERE p.tenant = $1 AND p.customer_id = (SELECT customer_id FROM messages WHERE id = $2) AND p.id <> $2 AND p.accepted_at <= (SELECT accepted_at FROM messages WHERE id = $2)",
        )
        .bind(&stored.tenant)
        .bind(&stored.id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let blocked = sqlx::query("SELECT blocked_at FROM customers WHERE id = $1")
            .bind(&stored.customer_id)
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get::<Option<i64>, _>(0)
            .is_some();
        AuthorHistory {
            previous_messages: row.get(0),
            offences: row.get(1),
            praise: row.get(2),
            blocked,
        }
    }

    /// Every message's history, from the counters and from the scan, must agree.
    async fn assert_agrees(store: &Store, ids: &[String]) -> Vec<AuthorHistory> {
        let mut all = Vec::new();
        for id in ids {
            let stored = store.message(id).await.unwrap();
            let counted = store.author_history(&stored).await.unwrap();
            assert_eq!(counted, scanned(store, &stored).await, "message {id}");
            all.push(counted);
        }
        all
    }

    pub(crate) fn message(tenant: &str, channel: &str, author: &str, external: &str) -> Message {
        let mut m = Message::example(tenant, "hello");
        m.channel = channel.into();
        m.author.id = author.into();
        m.external_id = external.into();
        m.conversation_key = format!("{channel}:{author}");
        m
    }

    fn outcome(actions: &[&str], labels: &[(&str, &str, f64)]) -> Outcome {
        Outcome {
            actions: serde_json::json!(actions),
            fired: serde_json::json!([]),
            labels: labels
                .iter()
                .map(|(role, name, score)| LabelRow {
                    role: (*role).into(),
                    classifier: "k".into(),
                    plugin: String::new(),
                    name: (*name).into(),
                    score: *score,
                    evidence: serde_json::json!([]),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// (tenant, channel, author, actions, labels as (role, name, score)).
    type Step = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, &'static str, f64)],
    );

    /// (id, customer, channel, author, accepted_at, actions or "" if not processed,
    /// advocate labels as (role, score)).
    type OldRow = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        i64,
        &'static str,
        &'static [(&'static str, f64)],
    );

    #[test]
    fn values_rows_number_parameters_across_rows() {
        assert_eq!(values_rows(1, "(?)"), "($1)");
        assert_eq!(
            values_rows(3, "(?, 'x', ?)"),
            "($1, 'x', $2), ($3, 'x', $4), ($5, 'x', $6)"
        );
    }

    /// Labels and audit rows go in multi-row inserts of at most [`ROWS_PER_INSERT`]: more
    /// than one insert's worth is stored whole, each row with its own values.
    #[tokio::test]
    async fn an_outcome_larger_than_one_insert_is_stored_whole() {
        let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap_or("sqlite::memory:".into());
        let store = Store::open(&url).await.unwrap();
        let a = store
            .accept("webhook", &message("t", "x", "ana", "big"))
            .await
            .unwrap();
        let stored = store.message(&a.message_id).await.unwrap();
        let n = ROWS_PER_INSERT * 2 + 7;
        let names: Vec<String> = (0..n).map(|i| format!("label-{i:03}")).collect();
        let labels: Vec<(&str, &str, f64)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| ("live", name.as_str(), i as f64 / n as f64))
            .collect();
        let mut out = outcome(&["respond"], &labels);
        out.audit = (0..n)
            .map(|i| {
                (
                    "policy".to_string(),
                    format!("test.{i}"),
                    serde_json::json!({ "i": i }),
                )
            })
            .collect();
        assert!(store.commit(&stored, &out).await.unwrap());
        let stored_labels = store.labels(&a.message_id).await.unwrap();
        assert_eq!(stored_labels.len(), n);
        for (i, l) in stored_labels.iter().enumerate() {
            assert_eq!(l.name, names[i]);
            assert_eq!(l.score, i as f64 / n as f64);
        }
        let audit = store.audit_log("t", 1_000).await.unwrap();
        let mut seen: Vec<i64> = audit
            .iter()
            .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("test.")))
            .map(|e| {
                assert_eq!(e["action"], format!("test.{}", e["detail"]["i"]));
                e["detail"]["i"].as_i64().unwrap()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
    }

    /// Deferred writes (`tx.rs`) behave as if sent one by one: the next read in the
    /// transaction sees them, a rollback takes them back, and a failing one fails the commit,
    /// naming what was sent with it, and leaves nothing behind.
    #[tokio::test]
    async fn deferred_writes_are_read_back_rolled_back_and_fail_the_commit() {
        const INSERT: &str =
            "INSERT INTO tenant_state (tenant, disabled, updated_at) VALUES ($1, $2, $3)";
        let store = Store::in_memory().await.unwrap();
        let stored = |store: Store| async move {
            sqlx::query("SELECT tenant FROM tenant_state ORDER BY tenant")
                .fetch_all(&store.pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<Vec<_>>()
        };

        let mut tx = store.begin("test").await.unwrap();
        tx.defer("first", INSERT).bind("a").bind(1_i64).bind(5_i64);
        tx.defer("second", INSERT).bind("b").bind(0_i64).bind(6_i64);
        let seen = sqlx::query("SELECT disabled, updated_at FROM tenant_state WHERE tenant = $1")
            .bind("b")
            .fetch_one(tx.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!((seen.get::<i64, _>(0), seen.get::<i64, _>(1)), (0, 6));
        tx.rollback("test").await.unwrap();
        assert!(stored(store.clone()).await.is_empty());

        let mut tx = store.begin("test").await.unwrap();
        tx.defer("storing c", INSERT)
            .bind("c")
            .bind(0_i64)
            .bind(1_i64);
        tx.defer("storing c again", INSERT)
            .bind("c")
            .bind(0_i64)
            .bind(2_i64);
        let err = tx.commit("test").await.unwrap_err().to_string();
        assert!(err.contains("storing c, storing c again"), "{err}");
        assert!(err.contains("UNIQUE"), "{err}");
        assert!(stored(store.clone()).await.is_empty());

        let mut tx = store.begin("test").await.unwrap();
        tx.defer("storing d", INSERT)
            .bind("d")
            .bind(0_i64)
            .bind(1_i64);
        tx.commit("test").await.unwrap();
        assert_eq!(stored(store).await, ["d"]);
    }

    /// A settle pass reads its batch's labels in one go: the same labels, in the same order,
    /// as reading each message's, across more messages than one IN list holds.
    #[tokio::test]
    async fn labels_of_a_batch_are_each_messages_labels() {
        let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap_or("sqlite::memory:".into());
        let store = Store::open(&url).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..IN_LIST_CHUNK + 3 {
            let a = store
                .accept(
                    "webhook",
                    &message("t", "x", &format!("c{i}"), &format!("m{i}")),
                )
                .await
                .unwrap();
            let stored = store.message(&a.message_id).await.unwrap();
            // Every fourth message has no labels; the others one to three.
            let names = ["topic:b", "topic:a", "urgent"];
            let labels: Vec<(&str, &str, f64)> = names[..i % 4]
                .iter()
                .map(|n| ("live", *n, 0.5 + (i % 7) as f64 / 20.0))
                .collect();
            assert!(
                store
                    .commit(&stored, &outcome(&["respond"], &labels))
                    .await
                    .unwrap()
            );
            ids.push(a.message_id);
        }
        ids.push("no-such-message".into());
        let batch = store.labels_of(&ids).await.unwrap();
        for id in &ids {
            let one = store.labels(id).await.unwrap();
            let got = batch.get(id).cloned().unwrap_or_default();
            let key = |l: &LabelRow| {
                (
                    l.role.clone(),
                    l.classifier.clone(),
                    l.name.clone(),
                    l.score,
                )
            };
            assert_eq!(
                got.iter().map(key).collect::<Vec<_>>(),
                one.iter().map(key).collect::<Vec<_>>(),
                "{id}"
            );
        }
        assert_eq!(
            batch.values().map(Vec::len).sum::<usize>(),
            (0..IN_LIST_CHUNK + 3).map(|i| i % 4).sum::<usize>()
        );
    }

    #[tokio::test]
    async fn counted_history_equals_the_scan_over_a_mixed_history() {
        let clock = Clock::manual(1_000);
        // `SWITCHBOARD_TEST_POSTGRES=postgres://…` (an empty database) runs it on PostgreSQL.
        let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").unwrap_or("sqlite::memory:".into());
        let store = Store::open(&url).await.unwrap().with_clock(clock.clone());
        // (tenant, channel, author, actions, labels): two tenants, two channels, three
        // authors; offences of each kind, praise live and shadow and too weak to count.
        let script: &[Step] = &[
            ("t", "x", "ana", &["respond"], &[("live", "advocate", 0.9)]),
            ("t", "x", "ana", &["ignore"], &[]),
            ("t", "x", "bo", &["monitor"], &[("live", "advocate", 0.7)]),
            ("t", "sms", "ana-phone", &["block"], &[]),
            (
                "t",
                "x",
                "ana",
                &["route", "respond"],
                &[("shadow", "advocate", 0.9)],
            ),
            ("t", "x", "ana", &["respond"], &[("live", "advocate", 0.4)]),
            (
                "t",
                "sms",
                "ana-phone",
                &["respond"],
                &[("live", "advocate", 0.5), ("live", "advocate", 0.8)],
            ),
            ("u", "x", "ana", &["ignore"], &[("live", "advocate", 0.9)]),
            ("t", "x", "bo", &[], &[]),
            (
                "t",
                "x",
                "ana",
                &["monitor", "respond"],
                &[("live", "advocate", 1.0)],
            ),
        ];
        let mut ids = Vec::new();
        for (i, (tenant, channel, author, actions, labels)) in script.iter().enumerate() {
            // Pairs of messages share their acceptance instant: ties count as "before".
            if i % 2 == 0 {
                clock.advance(10);
            }
            let m = message(tenant, channel, author, &format!("m{i}"));
            let a = store.accept("webhook", &m).await.unwrap();
            // A redelivery of the same event stores (and counts) nothing.
            assert!(store.accept("webhook", &m).await.unwrap().duplicate);
            ids.push(a.message_id.clone());
            assert_agrees(&store, &ids).await;
            let stored = store.message(&a.message_id).await.unwrap();
            let out = outcome(actions, labels);
            if i % 3 == 1 {
                // A fail-closed stage failed first: held, then retried.
                store.hold(&a.message_id, "down", 0, 5).await.unwrap();
            }
            if i == 4 {
                // Processed out of order: the next message is done before this one.
                continue;
            }
            assert!(store.commit(&stored, &out).await.unwrap());
            // A second worker, or a replay after a crash, records nothing again.
            assert!(!store.commit(&stored, &out).await.unwrap());
            assert_agrees(&store, &ids).await;
        }
        let late = store.message(&ids[4]).await.unwrap();
        let (actions, labels) = (script[4].3, script[4].4);
        assert!(
            store
                .commit(&late, &outcome(actions, labels))
                .await
                .unwrap()
        );
        // An edit is one more event from the author.
        let mut edit = message("t", "x", "ana", "m0");
        edit.action = switchboard_contract::MessageAction::Edited;
        edit.received_at += 5;
        clock.advance(10);
        ids.push(store.accept("webhook", &edit).await.unwrap().message_id);
        let before_merge = assert_agrees(&store, &ids).await;

        // One person on two channels: the merge joins the histories, the undo splits them.
        let ana = store.customer_of("t", "x", "ana").await.unwrap().unwrap();
        let phone = store
            .customer_of("t", "sms", "ana-phone")
            .await
            .unwrap()
            .unwrap();
        let merge = store
            .merge_customers("t", &phone, &ana, "agent")
            .await
            .unwrap();
        let merged = assert_agrees(&store, &ids).await;
        assert_ne!(merged, before_merge, "the merge changed no history");
        store.undo_merge("t", &merge, "agent").await.unwrap();
        assert_eq!(assert_agrees(&store, &ids).await, before_merge);

        // The history is not trivially empty: the last "ana" message on x saw the others.
        let last_ana = &before_merge[9];
        assert_eq!(
            (
                last_ana.previous_messages,
                last_ana.offences,
                last_ana.praise
            ),
            (4, 1, 1),
            "{before_merge:?}"
        );
    }

    #[tokio::test]
    async fn the_migration_counts_the_history_already_stored() {
        // Before the pool connects: run alone, no other test has installed them yet.
        sqlx::any::install_default_drivers();
        let store = Store {
            pool: AnyPoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await
                .unwrap(),
            sqlite: true,
            clock: Clock::system(),
            group: group::Shared::default(),
            abort_in_batch: None,
        };
        // The schema as it was before the counters, with a history written by that version.
        MIGRATOR.run_to(6, &store.pool).await.unwrap();
        let rows: &[OldRow] = &[
            (
                "m1",
                "c1",
                "x",
                "ana",
                10,
                r#"["respond"]"#,
                &[("live", 0.9)],
            ),
            ("m2", "c1", "x", "ana", 20, r#"["ignore"]"#, &[]),
            (
                "m3",
                "c1",
                "sms",
                "ana-phone",
                20,
                r#"["block"]"#,
                &[("shadow", 0.9)],
            ),
            (
                "m4",
                "c2",
                "x",
                "bo",
                30,
                r#"["monitor","respond"]"#,
                &[("live", 0.6)],
            ),
            (
                "m5",
                "c1",
                "x",
                "ana",
                40,
                r#"["respond"]"#,
                &[("live", 0.2)],
            ),
            ("m6", "c1", "x", "ana", 50, "", &[]),
        ];
        let sql = [
            "INSERT INTO customers (id, tenant, created_at) VALUES ('c1', 't', 0), ('c2', 't', 0)",
            "INSERT INTO identities (tenant, channel, author_id, customer_id, first_seen_at) VALUES ('t', 'x', 'ana', 'c1', 0), ('t', 'sms', 'ana-phone', 'c1', 0), ('t', 'x', 'bo', 'c2', 0)",
            "INSERT INTO conversations (id, tenant, channel, conversation_key, customer_id, state, created_at, updated_at) VALUES ('k1', 't', 'x', 'k1', 'c1', 'open', 0, 0)",
        ];
        for s in sql {
            sqlx::query(s).execute(&store.pool).await.unwrap();
        }
        for (id, customer, channel, author, at, actions, labels) in rows {
            let body = json(&message("t", channel, author, id));
            sqlx::query(
                "INSERT INTO messages (id, tenant, channel, connector, external_id, event_key, conversation_id, customer_id, author_id, body, received_at, accepted_at, status) VALUES ($1, 't', $2, 'w', $1, $1, 'k1', $3, $4, $5, $6, $6, $7)",
            )
            .bind(*id)
            .bind(*channel)
            .bind(*customer)
            .bind(*author)
            .bind(body)
            .bind(*at)
            .bind(if actions.is_empty() { "accepted" } else { "done" })
            .execute(&store.pool)
            .await
            .unwrap();
            if !actions.is_empty() {
                sqlx::query("INSERT INTO decisions (message_id, tenant, actions, fired, decided_at) VALUES ($1, 't', $2, '[]', 0)")
                    .bind(*id)
                    .bind(*actions)
                    .execute(&store.pool)
                    .await
                    .unwrap();
            }
            for (role, score) in labels.iter() {
                sqlx::query("INSERT INTO labels (message_id, role, classifier, name, score, evidence) VALUES ($1, $2, 'k', 'advocate', $3, '[]')")
                    .bind(*id)
                    .bind(*role)
                    .bind(*score)
                    .execute(&store.pool)
                    .await
                    .unwrap();
            }
        }
        let ids: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
        let mut before = Vec::new();
        for id in &ids {
            before.push(scanned(&store, &store.message(id).await.unwrap()).await);
        }
        MIGRATOR.run(&store.pool).await.unwrap();
        assert_eq!(assert_agrees(&store, &ids).await, before);
        assert_eq!(
            (
                before[5].previous_messages,
                before[5].offences,
                before[5].praise
            ),
            (4, 2, 1),
            "{before:?}"
        );
        // And the upgraded store keeps counting from there.
        let m6 = store.message("m6").await.unwrap();
        assert!(store.commit(&m6, &outcome(&["ignore"], &[])).await.unwrap());
        let next = store
            .accept("w", &message("t", "x", "ana", "m7"))
            .await
            .unwrap();
        let history = assert_agrees(&store, &[next.message_id]).await;
        assert_eq!((history[0].previous_messages, history[0].offences), (5, 3));
    }
}
