//! What the server keeps besides the pipeline's records: API tokens, tenant state, write-only
//! secrets, poll cursors, and the agent's actions on conversations and drafts. Every query is
//! scoped by tenant: an id of another tenant is simply not found.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Op, Store, StoreError, audit, json, new_id};
use switchboard_contract::OutboundReply;

/// What an API token may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Works conversations: reads, edits and sends drafts, assigns, blocks.
    Agent,
    /// An agent who may also approve drafts that need sign-off.
    Supervisor,
    /// Configures the tenant: config, plugins, secrets, tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenOwner {
    pub tenant: String,
    pub role: Role,
    pub name: String,
}

/// A token as listed (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

/// Tokens are stored as their SHA-256 so a copy of the database does not hand out access.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random API token (about 244 bits).
pub fn new_token() -> String {
    format!(
        "sbt_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A conversation as the agent inbox lists it.
#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    pub id: String,
    pub channel: String,
    pub conversation_key: String,
    pub state: String,
    pub team: Option<String>,
    pub assignee: Option<String>,
    pub escalated: bool,
    pub incident: Option<String>,
    /// Raised by service-level breaches; the inbox lists higher first.
    pub priority: i64,
    /// Drafts waiting for an agent.
    pub proposed_drafts: i64,
    /// Replies that failed for good.
    pub dead_replies: i64,
    pub last_message_at: i64,
    /// The oldest customer message not yet answered by a sent reply, if any (the SLA clock).
    pub waiting_since: Option<i64>,
    /// Who the customer is, as the channel shows them (display name, else handle).
    pub customer: Option<String>,
    /// The labels its messages carry (score at least 0.5), for the inbox's chips and filter.
    pub labels: Vec<String>,
}

/// A draft and the message it answers.
#[derive(Debug, Clone)]
pub struct DraftRef {
    pub id: String,
    pub message_id: String,
    pub connector: String,
    pub purpose: String,
    pub status: String,
    pub text: String,
    pub visibility: String,
}

/// Why an agent action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// The request names something that cannot be (an unknown agent, a missing field).
    #[error("{0}")]
    Invalid(String),
    /// The caller's role is not enough for this step.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Create a token for `tenant` and return it: the only time it is ever shown.
    pub async fn create_token(
        &self,
        tenant: &str,
        role: Role,
        name: &str,
    ) -> Result<(String, String), StoreError> {
        let token = new_token();
        let hash = token_hash(&token);
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, tenant, role, name, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&hash)
        .bind(tenant)
        .bind(role.as_str())
        .bind(name)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .op("creating a token")?;
        Ok((hash[..16].to_string(), token))
    }

    /// Open a console session for the person holding `token`, valid for `ttl_ms`: the
    /// session secret (shown once, for the cookie) and its owner; `None` if the token is
    /// unknown or revoked. Expired sessions are swept on the way.
    pub async fn create_session(
        &self,
        token: &str,
        ttl_ms: i64,
    ) -> Result<Option<(String, TokenOwner)>, StoreError> {
        let Some(owner) = self.token_owner(token).await? else {
            return Ok(None);
        };
        let now = self.now();
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .op("sweeping expired sessions")?;
        let session = new_token();
        sqlx::query(
            "INSERT INTO console_sessions (session_hash, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&session))
        .bind(token_hash(token))
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&self.pool)
        .await
        .op("opening a session")?;
        Ok(Some((session, owner)))
    }

    /// Whose console session this is, if it has not expired, ended, or lost its token.
    pub async fn session_owner(&self, session: &str) -> Result<Option<TokenOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT t.tenant, t.role, t.name FROM console_sessions s JOIN api_tokens t ON t.token_hash = s.token_hash
             WHERE s.session_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(token_hash(session))
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await
        .op("checking a session")?;
        Ok(row.and_then(|r| {
            Some(TokenOwner {
                tenant: r.get(0),
                role: Role::parse(&r.get::<String, _>(1))?,
                name: r.get(2),
            })
        }))
    }

    /// End a console session (sign-out).
    pub async fn end_session(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
            .bind(token_hash(session))
            .execute(&self.pool)
            .await
            .op("ending a session")?;
        Ok(())
    }

    /// A cheap fingerprint of what the tenant's inbox shows (messages, conversation changes,
    /// drafts waiting, replies sent): the console's event stream compares it every second
    /// instead of listing the inbox.
    pub async fn inbox_version(&self, tenant: &str) -> Result<String, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM messages WHERE tenant = $1),
                    (SELECT COALESCE(MAX(updated_at), 0) FROM conversations WHERE tenant = $1),
                    (SELECT COUNT(*) FROM drafts WHERE tenant = $1 AND status = 'proposed'),
                    (SELECT COUNT(*) FROM outbox WHERE tenant = $1 AND status = 'sent')",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .op("fingerprinting the inbox")?;
        Ok(format!(
            "{}:{}:{}:{}",
            r.get::<i64, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2),
            r.get::<i64, _>(3)
        ))
    }

    /// Whose token this is, if it exists and was not revoked.
    pub async fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant, role, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await
        .op("checking a token")?;
        Ok(row.and_then(|r| {
            Some(TokenOwner {
                tenant: r.get(0),
                role: Role::parse(&r.get::<String, _>(1))?,
                name: r.get(2),
            })
        }))
    }

    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, name, role, created_at FROM api_tokens WHERE tenant = $1 AND revoked_at IS NULL ORDER BY created_at",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("listing tokens")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(TokenInfo {
                    id: r.get::<String, _>(0)[..16].to_string(),
                    name: r.get(1),
                    role: Role::parse(&r.get::<String, _>(2))?,
                    created_at: r.get(3),
                })
            })
            .collect())
    }

    /// Revoke the token of `tenant` whose id (hash prefix) is `id`.
    pub async fn revoke_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE tenant = $2 AND token_hash LIKE $3 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(tenant)
        .bind(format!("{}%", id.to_ascii_lowercase()))
        .execute(&self.pool)
        .await
        .op("revoking a token")?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_disabled(&self, tenant: &str, disabled: bool) -> Result<(), StoreError> {
        let mut tx = self.begin("beginning a tenant state change").await?;
        tx.defer(
            "changing tenant state",
            "DELETE FROM tenant_state WHERE tenant = $1",
        )
        .bind(tenant);
        tx.defer(
            "changing tenant state",
            "INSERT INTO tenant_state (tenant, disabled, updated_at) VALUES ($1, $2, $3)",
        )
        .bind(tenant)
        .bind(i64::from(disabled))
        .bind(self.now());
        tx.commit("changing tenant state").await
    }

    pub async fn is_disabled(&self, tenant: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT disabled FROM tenant_state WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .op("reading tenant state")?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) == 1))
    }

    /// Store a secret (replacing any earlier value). It can never be read back through the API.
    pub async fn put_secret(
        &self,
        tenant: &str,
        instance: &str,
        name: &str,
        value: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin("beginning a secret write").await?;
        tx.defer(
            "writing a secret",
            "DELETE FROM tenant_secrets WHERE tenant = $1 AND instance = $2 AND name = $3",
        )
        .bind(tenant)
        .bind(instance)
        .bind(name);
        tx.defer("writing a secret", "INSERT INTO tenant_secrets (tenant, instance, name, value, updated_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(instance)
        .bind(name)
        .bind(value)
        .bind(self.now());
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            "secret.written",
            &format!("{instance}/{name}"),
            &serde_json::json!({ "instance": instance, "name": name }),
        )
        .await?;
        tx.commit("writing a secret").await
    }

    /// Secrets of `tenant` written through the API: (instance, name, value). Only the tenant
    /// loader reads values.
    pub async fn secrets(&self, tenant: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance, name, value FROM tenant_secrets WHERE tenant = $1 ORDER BY instance, name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("reading secrets")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Every tenant's secrets, by tenant: what loading all tenants at start reads in one
    /// query instead of one per tenant.
    pub async fn all_secrets(
        &self,
    ) -> Result<HashMap<String, Vec<(String, String, String)>>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, instance, name, value FROM tenant_secrets ORDER BY tenant, instance, name",
        )
        .fetch_all(&self.pool)
        .await
        .op("reading secrets")?;
        let mut by_tenant: HashMap<String, Vec<_>> = HashMap::new();
        for r in &rows {
            by_tenant
                .entry(r.get(0))
                .or_default()
                .push((r.get(1), r.get(2), r.get(3)));
        }
        Ok(by_tenant)
    }

    /// The tenants an operator has disabled.
    pub async fn disabled_tenants(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT tenant FROM tenant_state WHERE disabled = 1")
            .fetch_all(&self.pool)
            .await
            .op("reading tenant state")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The cursor a polled connector got to, if it ever polled.
    pub async fn cursor(
        &self,
        tenant: &str,
        connector: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT cursor FROM poll_cursors WHERE tenant = $1 AND connector = $2")
                .bind(tenant)
                .bind(connector)
                .fetch_optional(&self.pool)
                .await
                .op("reading a poll cursor")?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    /// Record a poll: the new cursor (when the batch gave one) after its messages were
    /// accepted, or the failure. Returns the count of consecutive failures.
    pub async fn record_poll(
        &self,
        tenant: &str,
        connector: &str,
        cursor: Option<&str>,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin("beginning a poll record").await?;
        let row = sqlx::query(
            "SELECT cursor, failures FROM poll_cursors WHERE tenant = $1 AND connector = $2",
        )
        .bind(tenant)
        .bind(connector)
        .fetch_optional(tx.conn().await?)
        .await
        .op("reading a poll cursor")?;
        let (old_cursor, old_failures) = row
            .map(|r| (r.get::<Option<String>, _>(0), r.get::<i64, _>(1)))
            .unwrap_or((None, 0));
        let failures = if error.is_some() { old_failures + 1 } else { 0 };
        let cursor = cursor.map(str::to_string).or(old_cursor);
        tx.defer(
            "writing a poll cursor",
            "DELETE FROM poll_cursors WHERE tenant = $1 AND connector = $2",
        )
        .bind(tenant)
        .bind(connector);
        tx.defer("writing a poll cursor", "INSERT INTO poll_cursors (tenant, connector, cursor, polled_at, failures, last_error) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(tenant)
        .bind(connector)
        .bind(cursor)
        .bind(self.now())
        .bind(failures)
        .bind(error.map(str::to_string));
        tx.commit("writing a poll cursor").await?;
        Ok(failures)
    }

    /// The tenant's conversations that need someone, most recent first: anything not ignored,
    /// with drafts waiting, dead replies, or an open clock. `filter` narrows by state, team or
    /// assignee (`state:open`, `team:care`, `assignee:ana`).
    pub async fn inbox(
        &self,
        tenant: &str,
        filter: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let (clause, value) = match filter {
            Some(("state", v)) => ("AND c.state = $2", v),
            Some(("team", v)) => ("AND c.team = $2", v),
            Some(("assignee", v)) => ("AND c.assignee = $2", v),
            _ => ("AND $2 = $2", ""),
        };
        let sql = format!(
            "SELECT c.id, c.channel, c.conversation_key, c.state, c.team, c.assignee, c.escalated, c.incident, c.priority,
                (SELECT COUNT(*) FROM drafts d JOIN messages m ON m.id = d.message_id WHERE m.conversation_id = c.id AND d.status = 'proposed'),
                (SELECT COUNT(*) FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.conversation_id = c.id AND o.status = 'dead'),
                (SELECT MAX(m.received_at) FROM messages m WHERE m.conversation_id = c.id),
                (SELECT MIN(m.received_at) FROM messages m WHERE m.conversation_id = c.id
                    AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.status = 'sent')),
                (SELECT COALESCE(i.display_name, i.handle) FROM identities i WHERE i.tenant = c.tenant
                    AND i.customer_id = c.customer_id AND i.channel = c.channel
                    ORDER BY i.first_seen_at LIMIT 1)
             FROM conversations c WHERE c.tenant = $1 {clause} AND c.state <> 'ignored'
             ORDER BY c.priority DESC, c.updated_at DESC, c.id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(value)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .op("listing the inbox")?;
        let mut items: Vec<InboxItem> = rows
            .iter()
            .map(|r| InboxItem {
                id: r.get(0),
                channel: r.get(1),
                conversation_key: r.get(2),
                state: r.get(3),
                team: r.get(4),
                assignee: r.get(5),
                escalated: r.get::<i64, _>(6) == 1,
                incident: r.get(7),
                priority: r.get(8),
                proposed_drafts: r.get(9),
                dead_replies: r.get(10),
                last_message_at: r.get::<Option<i64>, _>(11).unwrap_or(0),
                waiting_since: r.get(12),
                customer: r.get(13),
                labels: Vec::new(),
            })
            .collect();
        for item in &mut items {
            item.labels = sqlx::query(
                "SELECT DISTINCT l.name FROM labels l JOIN messages m ON m.id = l.message_id
                 WHERE m.conversation_id = $1 AND m.tenant = $2 AND l.score >= 0.5 ORDER BY l.name",
            )
            .bind(&item.id)
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .op("listing the inbox's labels")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        }
        Ok(items)
    }

    /// Replies that failed for good, with their reasons.
    pub async fn dead_letters(&self, tenant: &str) -> Result<Vec<super::OutboxRow>, StoreError> {
        Ok(self
            .outbox(tenant)
            .await?
            .into_iter()
            .filter(|r| r.status == "dead")
            .collect())
    }

    /// A draft of `tenant` with what is needed to act on it.
    pub async fn draft(&self, tenant: &str, id: &str) -> Result<Option<DraftRef>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.message_id, m.connector, d.purpose, d.status, d.text, d.visibility FROM drafts d JOIN messages m ON m.id = d.message_id WHERE d.tenant = $1 AND d.id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .op("loading a draft")?;
        Ok(row.map(|r| DraftRef {
            id: r.get(0),
            message_id: r.get(1),
            connector: r.get(2),
            purpose: r.get(3),
            status: r.get(4),
            text: r.get(5),
            visibility: r.get(6),
        }))
    }

    /// Replace a draft's text (and the guards' findings on the new text). Only a draft nobody
    /// has queued or rejected yet can change.
    pub async fn edit_draft(
        &self,
        tenant: &str,
        id: &str,
        text: &str,
        findings: &serde_json::Value,
        blocked: bool,
        actor: &str,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin("beginning a draft edit").await?;
        let r = sqlx::query(
            "UPDATE drafts SET text = $1, findings = $2, status = $3, decided_by = $4, edited_by = $4 WHERE tenant = $5 AND id = $6 AND status IN ('proposed', 'blocked', 'approved')",
        )
        .bind(text)
        .bind(json(findings))
        .bind(if blocked { "blocked" } else { "proposed" })
        .bind(actor)
        .bind(tenant)
        .bind(id)
        .execute(tx.conn().await?)
        .await
        .op("editing a draft")?;
        if r.rows_affected() != 1 {
            tx.rollback("editing a draft").await?;
            return Err(self.why_not(tenant, id, "edited").await);
        }
        // New text, new sign-off: approvals were for the old one.
        tx.defer(
            "clearing a draft's approvals",
            "DELETE FROM draft_approvals WHERE draft_id = $1",
        )
        .bind(id);
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            "draft.edited",
            id,
            &serde_json::json!({ "text": text, "blocked": blocked }),
        )
        .await?;
        tx.commit("editing a draft").await?;
        Ok(())
    }

    /// Reject a draft that was not sent, with a reason. (Approval goes tier by tier through
    /// `record_approval`, so that no path skips the sign-off.)
    pub async fn reject_draft(
        &self,
        tenant: &str,
        id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<(), ActionError> {
        let status = "rejected";
        let reason = Some(reason);
        let mut tx = self.begin("beginning a draft decision").await?;
        let r = sqlx::query(
            "UPDATE drafts SET status = $1, decided_by = $2, reason = $3 WHERE tenant = $4 AND id = $5 AND status IN ('proposed', 'approved')",
        )
        .bind(status)
        .bind(actor)
        .bind(reason.map(str::to_string))
        .bind(tenant)
        .bind(id)
        .execute(tx.conn().await?)
        .await
        .op("deciding on a draft")?;
        if r.rows_affected() != 1 {
            tx.rollback("deciding on a draft").await?;
            return Err(self.why_not(tenant, id, status).await);
        }
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            &format!("draft.{status}"),
            id,
            &serde_json::json!({ "reason": reason }),
        )
        .await?;
        tx.commit("deciding on a draft").await?;
        Ok(())
    }

    /// Queue a draft for delivery. The reply's idempotency key belongs to the message and
    /// purpose, so the same answer can never be queued twice, whoever sends it.
    pub async fn queue_draft(
        &self,
        tenant: &str,
        draft: &DraftRef,
        reply: &OutboundReply,
        kind: crate::care::ReplyKind,
        allowed_from: &[&str],
        actor: &str,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin("beginning a send").await?;
        let in_list = allowed_from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE drafts SET status = 'queued', decided_by = $1 WHERE tenant = $2 AND id = $3 AND status IN ({in_list})"
        )))
        .bind(actor)
        .bind(tenant)
        .bind(&draft.id)
        .execute(tx.conn().await?)
        .await
        .op("queueing a draft")?;
        if r.rows_affected() != 1 {
            tx.rollback("queueing a draft").await?;
            return Err(self.why_not(tenant, &draft.id, "sent").await);
        }
        let existing = sqlx::query("SELECT draft_id FROM outbox WHERE idempotency_key = $1")
            .bind(&reply.idempotency_key)
            .fetch_optional(tx.conn().await?)
            .await
            .op("queueing a draft")?;
        if existing.is_some() {
            tx.rollback("queueing a draft").await?;
            return Err(ActionError::Conflict(
                "a reply of this purpose to this message is already queued or sent".into(),
            ));
        }
        let now = self.now();
        tx.defer("queueing a reply", "INSERT INTO outbox (id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, created_at, updated_at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $9)")
        .bind(new_id())
        .bind(tenant)
        .bind(&draft.connector)
        .bind(&draft.message_id)
        .bind(&draft.id)
        .bind(&reply.idempotency_key)
        .bind(json(reply))
        .bind(now)
        .bind(kind.as_str());
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            "reply.queued",
            &draft.message_id,
            &serde_json::json!({ "draft": draft.id, "kind": kind }),
        )
        .await?;
        tx.commit("queueing a draft").await?;
        Ok(())
    }

    async fn why_not(&self, tenant: &str, id: &str, verb: &str) -> ActionError {
        match self.draft(tenant, id).await {
            Ok(Some(d)) => {
                ActionError::Conflict(format!("draft {id} is {} and cannot be {verb}", d.status))
            }
            Ok(None) => ActionError::NotFound,
            Err(e) => e.into(),
        }
    }

    /// An agent's judgement that a conversation needs a supervisor: its drafts then need
    /// sign-off, as when a policy rule escalates. Escalating twice is a conflict.
    pub async fn escalate(
        &self,
        tenant: &str,
        conversation: &str,
        reason: &str,
        actor: &str,
    ) -> Result<(), ActionError> {
        self.conversation_change(
            tenant,
            conversation,
            "UPDATE conversations SET escalated = 1, updated_at = $1 WHERE tenant = $2 AND id = $3 AND escalated = 0",
            "conversation.escalated",
            serde_json::json!({ "to": "supervisor", "why": reason }),
            actor,
            "already escalated",
        )
        .await
    }

    /// Continue a public conversation in private (a customer shared something they should
    /// not have): as the policy's `take-private` does, the public thread is to be closed
    /// once resolved.
    pub async fn take_private(
        &self,
        tenant: &str,
        conversation: &str,
        actor: &str,
    ) -> Result<(), ActionError> {
        self.conversation_change(
            tenant,
            conversation,
            "UPDATE conversations SET state = 'private', close_publicly = 'taken private: once resolved, close the loop in the public thread', updated_at = $1 WHERE tenant = $2 AND id = $3 AND state = 'open'",
            "conversation.taken-private",
            serde_json::json!({}),
            actor,
            "only an open conversation can be taken private",
        )
        .await
    }

    /// One guarded update of a conversation and its audit line: not found if the tenant has
    /// no such conversation, a conflict (`conflict`) if the update's guard refused it.
    #[allow(clippy::too_many_arguments)]
    async fn conversation_change(
        &self,
        tenant: &str,
        conversation: &str,
        update: &'static str,
        action: &str,
        detail: serde_json::Value,
        actor: &str,
        conflict: &str,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin("changing a conversation").await?;
        let exists = sqlx::query("SELECT 1 FROM conversations WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(conversation)
            .fetch_optional(tx.conn().await?)
            .await
            .op("changing a conversation")?;
        if exists.is_none() {
            tx.rollback("changing a conversation").await?;
            return Err(ActionError::NotFound);
        }
        let r = sqlx::query(update)
            .bind(self.now())
            .bind(tenant)
            .bind(conversation)
            .execute(tx.conn().await?)
            .await
            .op("changing a conversation")?;
        if r.rows_affected() != 1 {
            tx.rollback("changing a conversation").await?;
            return Err(ActionError::Conflict(conflict.into()));
        }
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            action,
            conversation,
            &detail,
        )
        .await?;
        tx.commit("changing a conversation").await?;
        Ok(())
    }

    /// Assign a conversation to an agent (or unassign with `None`).
    pub async fn assign(
        &self,
        tenant: &str,
        conversation: &str,
        agent: Option<&str>,
        actor: &str,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin("beginning an assignment").await?;
        let r = sqlx::query(
            "UPDATE conversations SET assignee = $1, updated_at = $2 WHERE tenant = $3 AND id = $4",
        )
        .bind(agent.map(str::to_string))
        .bind(self.now())
        .bind(tenant)
        .bind(conversation)
        .execute(tx.conn().await?)
        .await
        .op("assigning a conversation")?;
        if r.rows_affected() != 1 {
            tx.rollback("assigning a conversation").await?;
            return Err(ActionError::NotFound);
        }
        audit(
            &mut tx,
            self.now(),
            tenant,
            actor,
            "conversation.assigned",
            conversation,
            &serde_json::json!({ "assignee": agent }),
        )
        .await?;
        tx.commit("assigning a conversation").await?;
        Ok(())
    }

    /// Block the customer behind an identity on a channel.
    pub async fn block_author(
        &self,
        tenant: &str,
        channel: &str,
        author_id: &str,
        actor: &str,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin("beginning a block").await?;
        let r = sqlx::query(
            "UPDATE customers SET blocked_at = $1 WHERE tenant = $2 AND blocked_at IS NULL AND id = (SELECT customer_id FROM identities WHERE tenant = $2 AND channel = $3 AND author_id = $4)",
        )
        .bind(self.now())
        .bind(tenant)
        .bind(channel)
        .bind(author_id)
        .execute(tx.conn().await?)
        .await
        .op("blocking an author")?;
        let known = sqlx::query(
            "SELECT 1 FROM identities WHERE tenant = $1 AND channel = $2 AND author_id = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(author_id)
        .fetch_optional(tx.conn().await?)
        .await
        .op("blocking an author")?;
        if known.is_none() {
            tx.rollback("blocking an author").await?;
            return Err(ActionError::NotFound);
        }
        if r.rows_affected() == 1 {
            audit(
                &mut tx,
                self.now(),
                tenant,
                actor,
                "customer.blocked",
                &format!("{channel}/{author_id}"),
                &serde_json::json!({ "author": author_id, "channel": channel }),
            )
            .await?;
        }
        tx.commit("blocking an author").await?;
        Ok(())
    }

    /// The audit log of `tenant`, newest first.
    pub async fn audit_log(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, subject, detail FROM audit WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .op("loading the audit log")?;
        Ok(rows.iter().map(super::audit_entry).collect())
    }

    /// Queue depths for metrics: (tenant, table, status, count).
    pub async fn queue_depths(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, 'messages', status, COUNT(*) FROM messages WHERE status <> 'done' GROUP BY tenant, status
             UNION ALL SELECT tenant, 'outbox', status, COUNT(*) FROM outbox WHERE status <> 'sent' GROUP BY tenant, status
             UNION ALL SELECT tenant, 'drafts', status, COUNT(*) FROM drafts WHERE status = 'proposed' GROUP BY tenant, status",
        )
        .fetch_all(&self.pool)
        .await
        .op("measuring queues")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// A conversation of `tenant` (by id or channel key) with everything an agent needs:
    /// messages, labels, decisions with the rules that fired, drafts with guard findings,
    /// replies and their delivery state, the audit trail, and the response clock.
    pub async fn conversation_view(
        &self,
        tenant: &str,
        id_or_key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some((mut info, messages)) = self.conversation(tenant, id_or_key).await? else {
            return Ok(None);
        };
        let conversation_id = info["id"].as_str().unwrap_or_default().to_string();
        let rows = sqlx::query(
            "SELECT o.id, o.tenant, o.connector, o.message_id, o.draft_id, o.idempotency_key, o.reply, o.status, o.attempts, o.last_error, o.receipt, o.kind FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.conversation_id = $1 AND o.tenant = $2 ORDER BY o.created_at, o.id",
        )
        .bind(&conversation_id)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("loading a conversation's replies")?;
        let outbox = rows
            .iter()
            .map(super::outbox_row)
            .collect::<Result<Vec<_>, _>>()?;
        let assignee = sqlx::query("SELECT assignee FROM conversations WHERE id = $1")
            .bind(&conversation_id)
            .fetch_one(&self.pool)
            .await
            .op("loading a conversation")?
            .get::<Option<String>, _>(0);
        info["assignee"] = serde_json::json!(assignee);
        let mut list = Vec::new();
        let mut waiting_since: Option<i64> = None;
        for m in messages {
            let decision = self.decision(&m.id).await?;
            let replies: Vec<_> = outbox.iter().filter(|r| r.message_id == m.id).collect();
            if !replies.iter().any(|r| r.status == "sent") {
                waiting_since = Some(
                    waiting_since.map_or(m.message.received_at, |w| w.min(m.message.received_at)),
                );
            }
            list.push(serde_json::json!({
                "id": m.id,
                "status": m.status,
                "message": switchboard_contract::wit_json(&m.message),
                "labels": self.labels(&m.id).await?,
                "decision": decision.map(|(_, fired)| fired),
                "drafts": self.drafts(&m.id).await?,
                "replies": replies,
                "audit": self.audit_of(&m.id).await?,
            }));
        }
        let now = self.now();
        Ok(Some(serde_json::json!({
            "conversation": info,
            "messages": list,
            "sla": {
                "waiting_since": waiting_since,
                "waiting_ms": waiting_since.map(|w| (now - w).max(0)),
            },
        })))
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .op("pinging the store")?;
        Ok(())
    }
}
