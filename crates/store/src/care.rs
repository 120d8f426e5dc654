//! What the care workflow keeps: response clocks (started with a message's outcome, stopped by a
//! sent response, warned and breached by the sweep), resolution, and satisfaction surveys.
//! Every query is scoped by tenant.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::tx::Tx;

use super::{ActionError, AssignPlan, Op, Store, StoreError, StoredMessage, audit, json, new_id};
use switchboard_contract::OutboundReply;

/// A response clock as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ClockRow {
    pub id: String,
    pub conversation_id: String,
    pub channel: String,
    pub message_id: String,
    /// `first` or `next`.
    pub kind: String,
    pub started_at: i64,
    pub internal_due_at: Option<i64>,
    pub published_due_at: Option<i64>,
    pub warned_at: Option<i64>,
    pub internal_breached_at: Option<i64>,
    pub published_breached_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub stopped_by: Option<String>,
    pub assignee: Option<String>,
    pub team: Option<String>,
}

/// A step in a clock's life that the sweep records once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockEvent {
    Warned,
    InternalBreach,
    PublishedBreach,
}

impl ClockEvent {
    fn column(self) -> &'static str {
        match self {
            ClockEvent::Warned => "warned_at",
            ClockEvent::InternalBreach => "internal_breached_at",
            ClockEvent::PublishedBreach => "published_breached_at",
        }
    }

    pub fn audit_action(self) -> &'static str {
        match self {
            ClockEvent::Warned => "sla.warning",
            ClockEvent::InternalBreach => "sla.internal-breach",
            ClockEvent::PublishedBreach => "sla.breach",
        }
    }
}

/// A survey to send with a resolution.
#[derive(Debug, Clone)]
pub struct SurveyRequest {
    pub connector: String,
    /// The customer message the survey replies to.
    pub message_id: String,
    pub reply: OutboundReply,
    pub send_at: i64,
    pub expires_at: i64,
}

const CLOCK_COLUMNS: &str = "id, conversation_id, channel, message_id, kind, started_at, internal_due_at, published_due_at, warned_at, internal_breached_at, published_breached_at, stopped_at, stopped_by, assignee, team";

fn clock_row(r: &sqlx::any::AnyRow) -> ClockRow {
    ClockRow {
        id: r.get(0),
        conversation_id: r.get(1),
        channel: r.get(2),
        message_id: r.get(3),
        kind: r.get(4),
        started_at: r.get(5),
        internal_due_at: r.get(6),
        published_due_at: r.get(7),
        warned_at: r.get(8),
        internal_breached_at: r.get(9),
        published_breached_at: r.get(10),
        stopped_at: r.get(11),
        stopped_by: r.get(12),
        assignee: r.get(13),
        team: r.get(14),
    }
}

/// Start a clock for `stored` unless one is already running for its conversation (the oldest
/// waiting message holds the clock). First or next: whether a response was ever sent there.
pub(super) async fn start_clock(
    tx: &mut Tx<'_>,
    now: i64,
    stored: &StoredMessage,
    plan: &ClockPlan,
) -> Result<(), StoreError> {
    // One statement for both reads (each is a round trip to the store's thread).
    let row = sqlx::query(
        "SELECT (SELECT id FROM response_clocks WHERE conversation_id = $1 AND stopped_at IS NULL LIMIT 1), \
           (SELECT COUNT(*) FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.conversation_id = $1 AND o.status = 'sent' AND o.kind = 'response')",
    )
    .bind(&stored.conversation_id)
    .fetch_one(tx.conn().await?)
    .await
    .op("looking for a running clock and earlier responses")?;
    if row.get::<Option<String>, _>(0).is_some() {
        return Ok(());
    }
    let answered: i64 = row.get(1);
    let (kind, due) = if answered > 0 {
        ("next", plan.next)
    } else {
        ("first", plan.first)
    };
    let id = new_id();
    tx.defer("starting a response clock", "INSERT INTO response_clocks (id, tenant, conversation_id, channel, message_id, kind, started_at, internal_due_at, published_due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
    .bind(&id)
    .bind(&stored.tenant)
    .bind(&stored.conversation_id)
    .bind(&stored.message.channel)
    .bind(&stored.id)
    .bind(kind)
    .bind(plan.started_at)
    .bind(due.internal)
    .bind(due.published);
    audit(
        tx,
        now,
        &stored.tenant,
        "sla",
        "sla.started",
        &stored.conversation_id,
        &serde_json::json!({ "clock": id, "kind": kind, "started_at": plan.started_at, "internal_due_at": due.internal, "published_due_at": due.published }),
    )
    .await
}

/// A sent reply of kind `response` stops its conversation's running clock.
pub(super) async fn stop_clock(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    message_id: &str,
    reply_id: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT c.id, c.assignee, c.team FROM conversations c JOIN messages m ON m.conversation_id = c.id WHERE m.id = $1",
    )
    .bind(message_id)
    .fetch_optional(tx.conn().await?)
    .await
    .op("finding a reply's conversation")?;
    let Some(row) = row else { return Ok(()) };
    let conversation: String = row.get(0);
    let stopped = sqlx::query(
        "UPDATE response_clocks SET stopped_at = $1, stopped_by = $2, assignee = $3, team = $4 WHERE conversation_id = $5 AND stopped_at IS NULL",
    )
    .bind(now)
    .bind(reply_id)
    .bind(row.get::<Option<String>, _>(1))
    .bind(row.get::<Option<String>, _>(2))
    .bind(&conversation)
    .execute(tx.conn().await?)
    .await
    .op("stopping a response clock")?;
    if stopped.rows_affected() > 0 {
        audit(
            tx,
            now,
            tenant,
            "sla",
            "sla.stopped",
            &conversation,
            &serde_json::json!({ "reply": reply_id }),
        )
        .await?;
    }
    Ok(())
}

/// A conversation by id or channel key, as two indexed lookups: SQLite answers
/// `id = $2 OR conversation_key = $2` by reading every conversation of the tenant.
pub(crate) const CONVERSATION_REF: &str = "SELECT id, state, assignee, team, created_at FROM conversations WHERE tenant = $1 AND id = $2 \
     UNION ALL SELECT id, state, assignee, team, created_at FROM conversations WHERE tenant = $1 AND conversation_key = $2 \
     ORDER BY created_at LIMIT 1";

pub(crate) fn running_clocks_sql() -> String {
    format!(
        "SELECT {CLOCK_COLUMNS} FROM response_clocks WHERE tenant = $1 AND stopped_at IS NULL ORDER BY started_at, id"
    )
}

/// One clock event to record: see [`Store::clock_events`].
pub struct ClockEventItem<'a> {
    pub clock: &'a ClockRow,
    pub event: ClockEvent,
    pub actions: &'a [BreachAction],
    /// Where a reassignment goes.
    pub team: Option<&'a AssignPlan>,
}

async fn clock_event_in(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    item: &ClockEventItem<'_>,
) -> Result<bool, StoreError> {
    let ClockEventItem {
        clock,
        event,
        actions,
        team,
    } = *item;
    let marked = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE response_clocks SET {col} = $1 WHERE tenant = $2 AND id = $3 AND {col} IS NULL AND stopped_at IS NULL",
        col = event.column()
    )))
    .bind(now)
    .bind(tenant)
    .bind(&clock.id)
    .execute(tx.conn().await?)
    .await
    .op("recording a clock event")?;
    if marked.rows_affected() != 1 {
        // Nothing was written for it: recorded already, or the clock stopped.
        return Ok(false);
    }
    let due = match event {
        ClockEvent::PublishedBreach => clock.published_due_at,
        _ => clock.internal_due_at,
    };
    audit(
        tx,
        now,
        tenant,
        "sla",
        event.audit_action(),
        &clock.conversation_id,
        &serde_json::json!({ "clock": clock.id, "kind": clock.kind, "due_at": due, "actions": actions }),
    )
    .await?;
    for action in actions {
        match action {
            BreachAction::RaisePriority => {
                tx.defer("raising a conversation's priority", "UPDATE conversations SET priority = priority + 1, updated_at = $1 WHERE tenant = $2 AND id = $3")
                .bind(now)
                .bind(tenant)
                .bind(&clock.conversation_id);
            }
            BreachAction::Reassign => {
                let previous =
                    sqlx::query("SELECT assignee FROM conversations WHERE tenant = $1 AND id = $2")
                        .bind(tenant)
                        .bind(&clock.conversation_id)
                        .fetch_one(tx.conn().await?)
                        .await
                        .op("reading an assignee")?
                        .get::<Option<String>, _>(0);
                if previous.is_some() {
                    tx.defer("returning a conversation to its queue", "UPDATE conversations SET assignee = NULL, updated_at = $1 WHERE tenant = $2 AND id = $3")
                    .bind(now)
                    .bind(tenant)
                    .bind(&clock.conversation_id);
                    audit(
                        tx,
                        now,
                        tenant,
                        "sla",
                        "conversation.reassigned",
                        &clock.conversation_id,
                        &serde_json::json!({ "from": previous, "why": event.audit_action() }),
                    )
                    .await?;
                    // To the next member of its team with room, else the team's queue.
                    if let Some(plan) = team {
                        super::team::assign_round_robin(
                            tx,
                            now,
                            tenant,
                            &clock.conversation_id,
                            plan,
                            previous.as_deref(),
                        )
                        .await?;
                    }
                }
            }
            BreachAction::NotifySupervisor => {
                audit(
                    tx,
                    now,
                    tenant,
                    "sla",
                    "supervisor.notified",
                    &clock.conversation_id,
                    &serde_json::json!({ "clock": clock.id, "why": event.audit_action() }),
                )
                .await?;
            }
        }
    }
    Ok(true)
}

impl Store {
    /// Every clock of `tenant` still running (no response yet), oldest first.
    pub async fn running_clocks(&self, tenant: &str) -> Result<Vec<ClockRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(running_clocks_sql()))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .op("listing running clocks")?;
        Ok(rows.iter().map(clock_row).collect())
    }

    /// Clocks of `tenant` (of one conversation, when given) that started in `[since, until)`.
    pub async fn clocks(
        &self,
        tenant: &str,
        conversation: Option<&str>,
        since: i64,
        until: i64,
    ) -> Result<Vec<ClockRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOCK_COLUMNS} FROM response_clocks WHERE tenant = $1 AND ($2 = '' OR conversation_id = $2) AND started_at >= $3 AND started_at < $4 ORDER BY started_at, id"
        )))
        .bind(tenant)
        .bind(conversation.unwrap_or(""))
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .op("listing clocks")?;
        Ok(rows.iter().map(clock_row).collect())
    }

    /// Record `event` on a running clock once, and apply the breach actions to its
    /// conversation (`team`: where a reassignment may go). Returns false if it was already recorded (or the clock stopped meanwhile).
    pub async fn clock_event(
        &self,
        tenant: &str,
        clock: &ClockRow,
        event: ClockEvent,
        actions: &[BreachAction],
        team: Option<&AssignPlan>,
    ) -> Result<bool, StoreError> {
        let recorded = self
            .clock_events(
                tenant,
                &[ClockEventItem {
                    clock,
                    event,
                    actions,
                    team,
                }],
            )
            .await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    /// Record several clock events in one transaction: a sweep that finds a backlog breaching
    /// at once makes one commit per chunk, not one (and one fsync) per event. Says, per event,
    /// whether it was recorded (as [`Store::clock_event`]).
    pub async fn clock_events(
        &self,
        tenant: &str,
        items: &[ClockEventItem<'_>],
    ) -> Result<Vec<bool>, StoreError> {
        let now = self.now();
        let mut tx = self.begin("beginning clock events").await?;
        let mut recorded = Vec::with_capacity(items.len());
        for item in items {
            recorded.push(clock_event_in(&mut tx, now, tenant, item).await?);
        }
        tx.commit("recording clock events").await?;
        Ok(recorded)
    }

    /// The latest customer message of a conversation of `tenant` (what a survey answers to).
    pub async fn last_message(
        &self,
        tenant: &str,
        conversation: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant, connector, conversation_id, customer_id, body, status, attempts FROM messages WHERE tenant = $1 AND conversation_id = $2 AND event_key = external_id ORDER BY received_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await
        .op("loading a conversation's last message")?;
        row.as_ref().map(super::stored_message).transpose()
    }

    /// A conversation's id, state and owner, if it belongs to `tenant` (by id or channel key).
    pub async fn conversation_ref(
        &self,
        tenant: &str,
        id_or_key: &str,
    ) -> Result<Option<(String, String, Option<String>, Option<String>)>, StoreError> {
        let row = sqlx::query(CONVERSATION_REF)
            .bind(tenant)
            .bind(id_or_key)
            .fetch_optional(&self.pool)
            .await
            .op("loading a conversation")?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
    }

    /// Mark a conversation resolved and, if asked, queue the satisfaction survey and open it
    /// for an answer, in one transaction. Resolving twice is a conflict.
    pub async fn resolve(
        &self,
        tenant: &str,
        conversation: &str,
        actor: &str,
        survey: Option<&SurveyRequest>,
    ) -> Result<Option<String>, ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning a resolution").await?;
        let row = sqlx::query(
            "SELECT state, assignee, team, channel FROM conversations WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(conversation)
        .fetch_optional(tx.conn().await?)
        .await
        .op("loading a conversation")?
        .ok_or(ActionError::NotFound)?;
        let state: String = row.get(0);
        if state == "resolved" {
            tx.rollback("beginning a resolution").await?;
            return Err(ActionError::Conflict(format!(
                "conversation {conversation} is already resolved"
            )));
        }
        tx.defer("resolving a conversation", "UPDATE conversations SET state = 'resolved', resolved_at = $1, resolved_by = $2, updated_at = $1 WHERE id = $3")
        .bind(now)
        .bind(actor)
        .bind(conversation);
        // Nobody is waiting any more: a running clock stops with the resolution (the report
        // still judges it against its due times).
        tx.defer("stopping a resolved conversation's clock", "UPDATE response_clocks SET stopped_at = $1, stopped_by = $2, assignee = $3, team = $4 WHERE conversation_id = $5 AND stopped_at IS NULL")
        .bind(now)
        .bind(format!("resolution:{actor}"))
        .bind(row.get::<Option<String>, _>(1))
        .bind(row.get::<Option<String>, _>(2))
        .bind(conversation);
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "conversation.resolved",
            conversation,
            &serde_json::json!({ "previous_state": state, "survey": survey.is_some() }),
        )
        .await?;
        let mut survey_id = None;
        if let Some(s) = survey {
            let id = new_id();
            tx.defer("opening a survey", "INSERT INTO surveys (id, tenant, conversation_id, channel, assignee, team, requested_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(tenant)
            .bind(conversation)
            .bind(row.get::<String, _>(3))
            .bind(row.get::<Option<String>, _>(1))
            .bind(row.get::<Option<String>, _>(2))
            .bind(now)
            .bind(s.expires_at);
            tx.defer("queueing a survey", "INSERT INTO outbox (id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, next_attempt_at, created_at, updated_at, kind) VALUES ($1, $2, $3, $4, NULL, $5, $6, 'pending', $7, $8, $8, $9)")
            .bind(new_id())
            .bind(tenant)
            .bind(&s.connector)
            .bind(&s.message_id)
            .bind(&s.reply.idempotency_key)
            .bind(json(&s.reply))
            .bind(s.send_at)
            .bind(now)
            .bind(ReplyKind::Survey.as_str());
            audit(
                &mut tx,
                now,
                tenant,
                actor,
                "survey.queued",
                conversation,
                &serde_json::json!({ "survey": id, "send_at": s.send_at, "visibility": s.reply.visibility }),
            )
            .await?;
            survey_id = Some(id);
        }
        tx.commit("committing a resolution").await?;
        Ok(survey_id)
    }

    /// The survey of a conversation waiting for an answer at `at`, if any.
    pub async fn open_survey(
        &self,
        conversation: &str,
        at: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM surveys WHERE conversation_id = $1 AND answered_at IS NULL AND requested_at <= $2 AND expires_at > $2 ORDER BY requested_at DESC LIMIT 1",
        )
        .bind(conversation)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .op("looking for an open survey")?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Take `stored` as the answer to a survey: record the score, and finish the message with a
    /// decision that says so (no clock, no drafts), in one transaction.
    pub async fn record_survey_answer(
        &self,
        stored: &StoredMessage,
        survey: &str,
        score: u8,
        form: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin("beginning a survey answer").await?;
        let claimed = sqlx::query(
            "UPDATE messages SET status = 'done', last_error = NULL WHERE id = $1 AND status IN ('accepted', 'held')",
        )
        .bind(&stored.id)
        .execute(tx.conn().await?)
        .await
        .op("marking a message done")?;
        if claimed.rows_affected() != 1 {
            tx.rollback("recording a survey answer").await?;
            return Ok(false);
        }
        tx.defer("recording a survey answer", "UPDATE surveys SET answered_at = $1, score = $2, form = $3, answer_message_id = $4 WHERE id = $5 AND answered_at IS NULL")
        .bind(now)
        .bind(i64::from(score))
        .bind(form)
        .bind(&stored.id)
        .bind(survey);
        let fired = serde_json::json!({ "actions": [], "fired": [], "survey_answer": { "survey": survey, "score": score, "form": form } });
        tx.defer("storing a decision", "INSERT INTO decisions (message_id, tenant, actions, fired, shadows, decided_at) VALUES ($1, $2, '[]', $3, '[]', $4)")
        .bind(&stored.id)
        .bind(&stored.tenant)
        .bind(json(&fired))
        .bind(now);
        crate::count_outcome(&mut tx, stored).await?;
        audit(
            &mut tx,
            now,
            &stored.tenant,
            &format!("customer:{}", stored.message.author.id),
            "survey.answered",
            &stored.id,
            &serde_json::json!({ "survey": survey, "score": score, "form": form }),
        )
        .await?;
        tx.commit("recording a survey answer").await?;
        Ok(true)
    }
}

/// What a breach does to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreachAction {
    /// Priority + 1: the inbox shows it first.
    RaisePriority,
    /// Hand the conversation to the next member of its team with room (never back to the one
    /// who breached), else to the team's queue.
    Reassign,
    /// An entry for supervisors (audit `supervisor.notified`, listed by the service-level view).
    NotifySupervisor,
}

/// Due times of one kind of target (`None`: the hours never open again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Due {
    pub internal: Option<i64>,
    pub published: Option<i64>,
}

/// When a clock started now would fall due, for either kind: the store picks first or next by
/// whether the conversation already had a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockPlan {
    pub started_at: i64,
    pub first: Due,
    pub next: Due,
}

/// What a sent reply counts as for the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyKind {
    /// Moves the case: stops the clock.
    Response,
    /// "We're looking into it": the clock keeps running.
    Acknowledgement,
    /// The out-of-hours reply.
    Away,
    /// The satisfaction survey.
    Survey,
    /// The follow-up once an incident is closed: it tells the customer the problem is fixed,
    /// so it stops a running clock like a response.
    FollowUp,
    /// An incident's public statement from the main account: addressed to no one customer,
    /// it stops nobody's clock.
    Statement,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Response => "response",
            ReplyKind::Acknowledgement => "acknowledgement",
            ReplyKind::Away => "away",
            ReplyKind::Survey => "survey",
            ReplyKind::FollowUp => "follow-up",
            ReplyKind::Statement => "statement",
        }
    }

    /// Whether sending it stops the conversation's running clock.
    pub fn stops_clock(self) -> bool {
        matches!(self, ReplyKind::Response | ReplyKind::FollowUp)
    }
}
