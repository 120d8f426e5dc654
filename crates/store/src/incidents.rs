//! What the incident workflow keeps (`migrations/0005_incidents.sql`): incidents, the
//! conversations they affect, and the reports the detector counts. The texts (statement,
//! replies, follow-ups) arrive here already written and checked by the reply guards; every
//! change is one transaction with its audit rows. Every query is scoped by tenant: another
//! tenant's incident is simply not found.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use super::{ActionError, Op, Store, StoreError, StoredMessage, audit, json, new_id};
use crate::care::ReplyKind;
use crate::tx::Tx;
use switchboard_contract::OutboundReply;

/// An incident as stored, with how many conversations it affects.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub id: String,
    pub group_key: String,
    pub title: String,
    /// `open`, `closed` or `merged`.
    pub status: String,
    pub opened_by: String,
    pub opened_at: i64,
    /// For near-identical-text incidents: the text later reports are compared with.
    pub sample: Option<String>,
    /// Why it opened: reports in the window against the usual count, the rule, or the agent.
    pub evidence: serde_json::Value,
    pub statement_draft_id: Option<String>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
    pub merged_into: Option<String>,
    pub conversations: i64,
}

/// A conversation an incident affects.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedRow {
    pub conversation_id: String,
    pub conversation_key: String,
    pub channel: String,
    pub state: String,
    /// The customer message that tied it to the incident.
    pub message_id: String,
    pub attached_at: i64,
    pub attached_by: String,
}

/// A customer message as the detector sees it.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub message_id: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub received_at: i64,
    pub text: String,
    /// A policy rule's incident name, and the rules that named it (`policy:<rule>`).
    pub rule_key: Option<String>,
    pub rule_actor: Option<String>,
}

/// What a message's outcome hands to the detector (written with the outcome).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentReport {
    pub rule_key: Option<String>,
    pub rule_actor: Option<String>,
}

/// A text the incident workflow drafts for a message, already checked by the reply guards.
#[derive(Debug, Clone)]
pub struct IncidentDraft {
    pub message_id: String,
    /// `incident-statement`, `incident-reply` or `incident-follow-up`.
    pub purpose: &'static str,
    pub text: String,
    /// `public` or `private`.
    pub visibility: String,
    pub length: Option<i64>,
    pub length_limit: i64,
    pub findings: serde_json::Value,
    pub blocked: bool,
    pub rationale: String,
    /// Queue it at once (`auto_send`) if nothing stops it: with this reply and kind.
    pub auto_send: Option<(OutboundReply, ReplyKind)>,
}

/// A conversation to attach, with the message that ties it and the reply drafted for it.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub conversation_id: String,
    pub message_id: String,
    pub reply: Option<IncidentDraft>,
}

/// A new incident.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub group_key: String,
    pub title: String,
    pub opened_by: String,
    pub sample: Option<String>,
    pub evidence: serde_json::Value,
}

/// A follow-up to queue when an incident closes.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub conversation_id: String,
    pub connector: String,
    pub draft: IncidentDraft,
    pub reply: OutboundReply,
}

/// What opening an incident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Opened(String),
    /// An incident with this group key is open already.
    KeyTaken,
    /// The report was settled by someone else meanwhile; nothing was written.
    AlreadySettled,
}

/// What closing an incident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Closed; this many follow-ups queued.
    Closed { follow_ups: usize, blocked: usize },
    /// A conversation was attached after the follow-ups were written: write them again.
    Stale,
}

const INCIDENT_COLUMNS: &str = "i.id, i.group_key, i.title, i.status, i.opened_by, i.opened_at, i.sample, i.evidence, i.statement_draft_id, i.closed_at, i.closed_by, i.merged_into, (SELECT COUNT(*) FROM incident_conversations ic WHERE ic.incident_id = i.id)";

fn incident_row(r: &sqlx::any::AnyRow) -> IncidentRow {
    IncidentRow {
        id: r.get(0),
        group_key: r.get(1),
        title: r.get(2),
        status: r.get(3),
        opened_by: r.get(4),
        opened_at: r.get(5),
        sample: r.get(6),
        evidence: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or_default(),
        statement_draft_id: r.get(8),
        closed_at: r.get(9),
        closed_by: r.get(10),
        merged_into: r.get(11),
        conversations: r.get(12),
    }
}

const REPORT_COLUMNS: &str = "r.message_id, r.conversation_id, r.customer_id, r.received_at, r.text, r.rule_key, r.rule_actor";
const REPORT_COLUMNS_WITHOUT_TEXT: &str = "r.message_id, r.conversation_id, r.customer_id, r.received_at, '' AS text, r.rule_key, r.rule_actor";

/// The conditions of a window of reports: with live label `$4` scoring at least `$5` (when
/// `labelled`; otherwise both parameters are still used, as PostgreSQL wants every one), and
/// outside any incident (`usual`, a baseline) or outside open ones only.
fn report_filters(labelled: bool, usual: bool) -> (&'static str, &'static str) {
    let labelled = if labelled {
        "AND EXISTS (SELECT 1 FROM labels l WHERE l.message_id = r.message_id AND l.role = 'live' AND l.name = $4 AND l.score >= $5)"
    } else {
        "AND $4 = $4 AND $5 = $5"
    };
    let attached = if usual {
        "r.incident_id IS NULL"
    } else {
        "NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = r.incident_id AND i.status <> 'closed')"
    };
    (labelled, attached)
}

fn report_row(r: &sqlx::any::AnyRow) -> ReportRow {
    ReportRow {
        message_id: r.get(0),
        conversation_id: r.get(1),
        customer_id: r.get(2),
        received_at: r.get(3),
        text: r.get(4),
        rule_key: r.get(5),
        rule_actor: r.get(6),
    }
}

/// Record `stored` for the detector, in the transaction of its outcome.
pub(super) async fn queue_report(
    tx: &mut Tx<'_>,
    now: i64,
    stored: &StoredMessage,
    report: &IncidentReport,
) -> Result<(), StoreError> {
    tx.defer("recording an incident report", "INSERT INTO incident_reports (message_id, tenant, conversation_id, customer_id, received_at, text, rule_key, rule_actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
    .bind(&stored.id)
    .bind(&stored.tenant)
    .bind(&stored.conversation_id)
    .bind(&stored.customer_id)
    .bind(stored.message.received_at)
    .bind(&stored.message.text)
    .bind(report.rule_key.clone())
    .bind(report.rule_actor.clone())
    .bind(now);
    Ok(())
}

/// Mark a report settled (with the incident it went to). False if it already was.
async fn settle(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    message_id: &str,
    incident: Option<&str>,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE incident_reports SET settled_at = $1, incident_id = $2 WHERE tenant = $3 AND message_id = $4 AND settled_at IS NULL",
    )
    .bind(now)
    .bind(incident.map(str::to_string))
    .bind(tenant)
    .bind(message_id)
    .execute(tx.conn().await?)
    .await
    .op("settling an incident report")?;
    Ok(r.rows_affected() == 1)
}

/// Mark reports `ids` of `tenant` settled with no incident; one already settled (an incident
/// took it meanwhile) is left as it is.
async fn settle_outside_incidents(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(crate::IN_LIST_CHUNK) {
        let sql = format!(
            "UPDATE incident_reports SET settled_at = $1 WHERE tenant = $2 AND settled_at IS NULL AND message_id IN ({})",
            crate::in_list(3, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(tenant);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query
            .execute(tx.conn().await?)
            .await
            .op("settling incident reports")?;
    }
    Ok(())
}

/// Store a draft of the incident workflow with `status`; returns its id.
async fn insert_draft(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    d: &IncidentDraft,
    status: &str,
) -> Result<String, StoreError> {
    let id = new_id();
    tx.defer("storing an incident draft", "INSERT INTO drafts (id, tenant, message_id, suggester, purpose, text, visibility, confidence, rationale, length, length_limit, findings, status, created_at) VALUES ($1, $2, $3, 'incidents', $4, $5, $6, 1.0, $7, $8, $9, $10, $11, $12)")
    .bind(&id)
    .bind(tenant)
    .bind(&d.message_id)
    .bind(d.purpose)
    .bind(&d.text)
    .bind(&d.visibility)
    .bind(&d.rationale)
    .bind(d.length)
    .bind(d.length_limit)
    .bind(json(&d.findings))
    .bind(status)
    .bind(now);
    if d.blocked {
        audit(
            tx,
            now,
            tenant,
            "guards",
            "draft.blocked",
            &d.message_id,
            &serde_json::json!({ "draft": id, "findings": d.findings }),
        )
        .await?;
    }
    Ok(id)
}

/// Insert a pending outbox row unless a reply with the same idempotency key exists (then
/// nothing happens and false comes back).
async fn queue_reply(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    connector: &str,
    (message_id, draft_id): (&str, &str),
    reply: &OutboundReply,
    kind: ReplyKind,
) -> Result<bool, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM outbox WHERE idempotency_key = $1")
        .bind(&reply.idempotency_key)
        .fetch_optional(tx.conn().await?)
        .await
        .op("looking for a queued reply")?;
    if exists.is_some() {
        return Ok(false);
    }
    tx.defer("queueing an incident reply", "INSERT INTO outbox (id, tenant, connector, message_id, draft_id, idempotency_key, reply, status, created_at, updated_at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $9)")
    .bind(new_id())
    .bind(tenant)
    .bind(connector)
    .bind(message_id)
    .bind(draft_id)
    .bind(&reply.idempotency_key)
    .bind(json(reply))
    .bind(now)
    .bind(kind.as_str());
    Ok(true)
}

/// Attach one conversation (if it is not attached yet) with its reply draft; returns whether
/// it was new.
async fn attach(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    incident: &str,
    group_key: &str,
    actor: &str,
    a: &Attachment,
) -> Result<bool, StoreError> {
    let there = sqlx::query(
        "SELECT 1 FROM incident_conversations WHERE incident_id = $1 AND conversation_id = $2",
    )
    .bind(incident)
    .bind(&a.conversation_id)
    .fetch_optional(tx.conn().await?)
    .await
    .op("looking for an attachment")?;
    if there.is_some() {
        return Ok(false);
    }
    tx.defer("attaching a conversation to an incident", "INSERT INTO incident_conversations (incident_id, conversation_id, tenant, message_id, attached_at, attached_by) VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(incident)
    .bind(&a.conversation_id)
    .bind(tenant)
    .bind(&a.message_id)
    .bind(now)
    .bind(actor);
    tx.defer(
        "marking a conversation's incident",
        "UPDATE conversations SET incident = $1, updated_at = $2 WHERE tenant = $3 AND id = $4",
    )
    .bind(group_key)
    .bind(now)
    .bind(tenant)
    .bind(&a.conversation_id);
    tx.defer(
        "linking a report to its incident",
        "UPDATE incident_reports SET incident_id = $1 WHERE tenant = $2 AND message_id = $3",
    )
    .bind(incident)
    .bind(tenant)
    .bind(&a.message_id);
    let mut reply_id = None;
    let mut queued = false;
    if let Some(d) = &a.reply {
        // Auto-send like other drafts: never blocked, never in an escalated conversation, and
        // never a second reply to the same message.
        let allowed = match &d.auto_send {
            Some(_) if !d.blocked => {
                let row = sqlx::query(
                    "SELECT c.escalated, (SELECT COUNT(*) FROM outbox o WHERE o.message_id = $1), m.connector FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = $1",
                )
                .bind(&d.message_id)
                .fetch_one(tx.conn().await?)
                .await
                .op("checking whether a reply may go out")?;
                (row.get::<i64, _>(0) == 0 && row.get::<i64, _>(1) == 0)
                    .then(|| row.get::<String, _>(2))
            }
            _ => None,
        };
        let status = if d.blocked {
            "blocked"
        } else if allowed.is_some() {
            "queued"
        } else {
            "proposed"
        };
        let id = insert_draft(tx, now, tenant, d, status).await?;
        if let (Some(connector), Some((reply, kind))) = (allowed, &d.auto_send) {
            queued = queue_reply(
                tx,
                now,
                tenant,
                &connector,
                (&d.message_id, &id),
                reply,
                *kind,
            )
            .await?;
            if queued {
                audit(
                    tx,
                    now,
                    tenant,
                    "policy:auto-send",
                    "reply.queued",
                    &d.message_id,
                    &serde_json::json!({ "draft": id, "kind": kind }),
                )
                .await?;
            }
        }
        reply_id = Some(id);
    }
    audit(
        tx,
        now,
        tenant,
        actor,
        "incident.attached",
        incident,
        &serde_json::json!({ "conversation": a.conversation_id, "message": a.message_id, "reply_draft": reply_id, "queued": queued }),
    )
    .await?;
    Ok(true)
}

/// Store the public statement's draft: never sent without a supervisor's approval, so its
/// conversation is marked escalated (drafts of escalated conversations need sign-off).
async fn add_statement(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    incident: &str,
    actor: &str,
    d: &IncidentDraft,
) -> Result<String, StoreError> {
    let id = insert_draft(
        tx,
        now,
        tenant,
        d,
        if d.blocked { "blocked" } else { "proposed" },
    )
    .await?;
    tx.defer(
        "recording an incident's statement",
        "UPDATE incidents SET statement_draft_id = $1 WHERE tenant = $2 AND id = $3",
    )
    .bind(&id)
    .bind(tenant)
    .bind(incident);
    let conversation: String = sqlx::query("SELECT conversation_id FROM messages WHERE id = $1")
        .bind(&d.message_id)
        .fetch_one(tx.conn().await?)
        .await
        .op("finding a statement's conversation")?
        .get(0);
    let escalated = sqlx::query(
        "UPDATE conversations SET escalated = 1, updated_at = $1 WHERE tenant = $2 AND id = $3 AND escalated = 0",
    )
    .bind(now)
    .bind(tenant)
    .bind(&conversation)
    .execute(tx.conn().await?)
    .await
    .op("escalating a statement's conversation")?;
    if escalated.rows_affected() == 1 {
        audit(
            tx,
            now,
            tenant,
            actor,
            "conversation.escalated",
            &d.message_id,
            &serde_json::json!({ "to": "supervisor", "why": "the incident statement needs a supervisor's sign-off", "incident": incident }),
        )
        .await?;
    }
    audit(
        tx,
        now,
        tenant,
        actor,
        "incident.statement-drafted",
        incident,
        &serde_json::json!({ "draft": id, "message": d.message_id, "blocked": d.blocked }),
    )
    .await?;
    Ok(id)
}

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Sql { source: sqlx::Error::Database(d), .. } if d.is_unique_violation())
}

pub(crate) fn pending_reports_sql() -> String {
    format!(
        "SELECT {REPORT_COLUMNS} FROM incident_reports r WHERE r.tenant = $1 AND r.settled_at IS NULL ORDER BY r.created_at, r.message_id LIMIT $2"
    )
}

impl Store {
    /// Reports of `tenant` the detector has not looked at yet, oldest first.
    pub async fn pending_incident_reports(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(pending_reports_sql()))
            .bind(tenant)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .op("listing pending incident reports")?;
        Ok(rows.iter().map(report_row).collect())
    }

    /// Reports of `tenant` received in `(from, to]`, with a live label `label` of at least
    /// `min_score` when given, oldest first. `usual` (a baseline) leaves out every report that
    /// went to an incident; otherwise only those of an incident still open (or merged into
    /// one): a problem that persists after its incident closed can open a new one.
    pub async fn incident_reports_between(
        &self,
        tenant: &str,
        label: Option<(&str, f64)>,
        from: i64,
        to: i64,
        usual: bool,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let (labelled, attached) = report_filters(label.is_some(), usual);
        let (name, score) = label.unwrap_or(("", 0.0));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM incident_reports r WHERE r.tenant = $1 AND r.received_at > $2 AND r.received_at <= $3 {labelled} AND {attached} ORDER BY r.received_at, r.message_id"
        )))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .bind(name)
        .bind(score)
        .fetch_all(&self.pool)
        .await
        .op("listing incident reports")?;
        Ok(rows.iter().map(report_row).collect())
    }

    /// The texts of `tenant`'s reports among `ids` (ids not found are left out).
    pub async fn incident_report_texts(
        &self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut texts = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::IN_LIST_CHUNK) {
            let marks = crate::in_list(2, chunk.len());
            let sql = format!(
                "SELECT message_id, text FROM incident_reports WHERE tenant = $1 AND message_id IN ({})",
                marks
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query
                .fetch_all(&self.pool)
                .await
                .op("reading incident report texts")?
            {
                texts.insert(row.get(0), row.get(1));
            }
        }
        Ok(texts)
    }

    /// How many customers reported in `(from, to]`, counted as
    /// [`Self::incident_reports_between`] would list them (with `usual`: the baseline a window
    /// is measured against). The detector needs only this
    /// number for most reports; reading the window's rows for each one made a burst cost
    /// O(n²) rows.
    pub async fn incident_report_customers(
        &self,
        tenant: &str,
        label: Option<(&str, f64)>,
        from: i64,
        to: i64,
        usual: bool,
    ) -> Result<i64, StoreError> {
        let (labelled, attached) = report_filters(label.is_some(), usual);
        let (name, score) = label.unwrap_or(("", 0.0));
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(DISTINCT r.customer_id) FROM incident_reports r WHERE r.tenant = $1 AND r.received_at > $2 AND r.received_at <= $3 {labelled} AND {attached}"
        )))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .bind(name)
        .bind(score)
        .fetch_one(&self.pool)
        .await
        .op("counting incident reports")?;
        Ok(row.get(0))
    }

    /// How many reports of `tenant` were received in `(from, to]`, attached or not: what a
    /// copy of the window kept in memory is checked against.
    pub async fn count_incident_reports(
        &self,
        tenant: &str,
        from: i64,
        to: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM incident_reports r WHERE r.tenant = $1 AND r.received_at > $2 AND r.received_at <= $3",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .op("counting incident reports")?;
        Ok(row.get(0))
    }

    /// The id and time of every report of `tenant` received in `(from, to]`, attached or not.
    pub async fn incident_report_times(
        &self,
        tenant: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.message_id, r.received_at FROM incident_reports r WHERE r.tenant = $1 AND r.received_at > $2 AND r.received_at <= $3",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .op("listing incident report times")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// [`Self::incident_reports_between`] among the reports `ids` only, with every `text` left
    /// empty: the detector picks the near-identical reports from the texts it keeps, and asks
    /// the store only which of those the window counts.
    pub async fn incident_reports_among(
        &self,
        tenant: &str,
        ids: &[String],
        from: i64,
        to: i64,
        usual: bool,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let (_, attached) = report_filters(false, usual);
        let mut out = Vec::new();
        for chunk in ids.chunks(crate::IN_LIST_CHUNK) {
            let marks = crate::in_list(4, chunk.len());
            let sql = format!(
                "SELECT {REPORT_COLUMNS_WITHOUT_TEXT} FROM incident_reports r WHERE r.tenant = $1 AND r.received_at > $2 AND r.received_at <= $3 AND r.message_id IN ({}) AND {attached}",
                marks
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(from)
                .bind(to);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .op("listing incident reports")?;
            out.extend(rows.iter().map(report_row));
        }
        out.sort_by(|a, b| (a.received_at, &a.message_id).cmp(&(b.received_at, &b.message_id)));
        Ok(out)
    }

    /// The open incident of `tenant` for `group_key`: the one with that key, or the open one
    /// an incident with that key was merged into.
    pub async fn open_incident_for(
        &self,
        tenant: &str,
        group_key: &str,
    ) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.tenant = $1 AND i.status = 'open' AND (i.group_key = $2 OR i.id IN (SELECT m.merged_into FROM incidents m WHERE m.tenant = $1 AND m.group_key = $2 AND m.status = 'merged')) ORDER BY CASE WHEN i.group_key = $2 THEN 0 ELSE 1 END, i.opened_at DESC LIMIT 1"
        )))
        .bind(tenant)
        .bind(group_key)
        .fetch_optional(&self.pool)
        .await
        .op("looking for an open incident")?;
        Ok(row.as_ref().map(incident_row))
    }

    /// Open incidents of `tenant` that group near-identical texts, as (the open incident, its
    /// sample text); an incident merged into an open one still brings its sample.
    pub async fn open_text_incidents(
        &self,
        tenant: &str,
    ) -> Result<Vec<(IncidentRow, String)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS}, s.sample FROM incidents s JOIN incidents i ON i.id = CASE WHEN s.status = 'merged' THEN s.merged_into ELSE s.id END WHERE s.tenant = $1 AND s.sample IS NOT NULL AND s.status IN ('open', 'merged') AND i.status = 'open' ORDER BY i.opened_at, i.id"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .op("listing open text incidents")?;
        Ok(rows
            .iter()
            .map(|r| (incident_row(r), r.get::<String, _>(13)))
            .collect())
    }

    /// Whether a conversation of `tenant` is attached to an incident.
    pub async fn is_attached(
        &self,
        tenant: &str,
        incident: &str,
        conversation: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 FROM incident_conversations WHERE tenant = $1 AND incident_id = $2 AND conversation_id = $3",
        )
        .bind(tenant)
        .bind(incident)
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await
        .op("looking for an attachment")?
        .is_some())
    }

    /// Mark a report looked at, with nothing to attach it to. False if it already was.
    pub async fn settle_incident_report(
        &self,
        tenant: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin("beginning to settle a report").await?;
        let done = settle(&mut tx, self.now(), tenant, message_id, None).await?;
        tx.commit("settling a report").await?;
        Ok(done)
    }

    /// Settle reports `ids` of `tenant` that went to no incident, in one transaction: the
    /// detector settles a batch of reports with one commit, not one each. A report an incident
    /// took meanwhile keeps its incident.
    pub async fn settle_reports_outside_incidents(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin("beginning to settle reports").await?;
        settle_outside_incidents(&mut tx, self.now(), tenant, ids).await?;
        tx.commit("settling incident reports").await?;
        Ok(())
    }

    /// Open an incident with its conversations, their reply drafts and the statement draft,
    /// settling `report` (the message that opened it), in one transaction.
    pub async fn open_incident(
        &self,
        tenant: &str,
        new: &NewIncident,
        report: Option<&str>,
        attachments: &[Attachment],
        statement: Option<&IncidentDraft>,
    ) -> Result<Opened, StoreError> {
        let now = self.now();
        let id = new_id();
        let mut tx = self.begin("beginning to open an incident").await?;
        let inserted = sqlx::query(
            "INSERT INTO incidents (id, tenant, group_key, title, status, opened_by, opened_at, sample, evidence) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(tenant)
        .bind(&new.group_key)
        .bind(&new.title)
        .bind(&new.opened_by)
        .bind(now)
        .bind(new.sample.clone())
        .bind(json(&new.evidence))
        .execute(tx.conn().await?)
        .await
        .op("opening an incident");
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback("opening an incident").await?;
                return Ok(Opened::KeyTaken);
            }
            Err(e) => return Err(e),
        }
        if let Some(r) = report
            && !settle(&mut tx, now, tenant, r, Some(&id)).await?
        {
            tx.rollback("opening an incident").await?;
            return Ok(Opened::AlreadySettled);
        }
        audit(
            &mut tx,
            now,
            tenant,
            &new.opened_by,
            "incident.opened",
            &id,
            &serde_json::json!({ "group": new.group_key, "title": new.title, "evidence": new.evidence, "conversations": attachments.len() }),
        )
        .await?;
        for a in attachments {
            attach(&mut tx, now, tenant, &id, &new.group_key, &new.opened_by, a).await?;
        }
        if let Some(d) = statement {
            add_statement(&mut tx, now, tenant, &id, &new.opened_by, d).await?;
        }
        tx.commit("committing an incident").await?;
        Ok(Opened::Opened(id))
    }

    /// Attach conversations to an open incident of `tenant` (those attached already are left
    /// as they are), settling `report` if given; with `statement` when the incident has none
    /// yet. Returns how many were new. An incident that is not open is a conflict.
    pub async fn attach_to_incident(
        &self,
        tenant: &str,
        incident: &str,
        actor: &str,
        attachments: &[Attachment],
        statement: Option<&IncidentDraft>,
        report: Option<&str>,
    ) -> Result<usize, ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning to attach to an incident").await?;
        let row = sqlx::query(
            "SELECT status, group_key, statement_draft_id FROM incidents WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(incident)
        .fetch_optional(tx.conn().await?)
        .await
        .op("loading an incident")?;
        let Some(row) = row else {
            tx.rollback("attaching to an incident").await?;
            return Err(ActionError::NotFound);
        };
        let status: String = row.get(0);
        if status != "open" {
            tx.rollback("attaching to an incident").await?;
            return Err(ActionError::Conflict(format!(
                "incident {incident} is {status}: only an open incident takes conversations"
            )));
        }
        if let Some(r) = report
            && !settle(&mut tx, now, tenant, r, Some(incident)).await?
        {
            tx.rollback("attaching to an incident").await?;
            return Ok(0);
        }
        let key: String = row.get(1);
        let mut added = 0;
        for a in attachments {
            if attach(&mut tx, now, tenant, incident, &key, actor, a).await? {
                added += 1;
            }
        }
        if let Some(d) = statement
            && row.get::<Option<String>, _>(2).is_none()
        {
            add_statement(&mut tx, now, tenant, incident, actor, d).await?;
        }
        tx.commit("committing an attachment").await?;
        Ok(added)
    }

    /// Incidents of `tenant`, newest first; `status` narrows (`open`, `closed`, `merged`).
    pub async fn incidents(
        &self,
        tenant: &str,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.tenant = $1 AND ($2 = '' OR i.status = $2) ORDER BY i.opened_at DESC, i.id DESC LIMIT $3"
        )))
        .bind(tenant)
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .op("listing incidents")?;
        Ok(rows.iter().map(incident_row).collect())
    }

    /// One incident of `tenant`.
    pub async fn incident(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.tenant = $1 AND i.id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .op("loading an incident")?;
        Ok(row.as_ref().map(incident_row))
    }

    /// The conversations an incident of `tenant` affects, in the order they were attached.
    pub async fn incident_conversations(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Vec<AttachedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT ic.conversation_id, c.conversation_key, c.channel, c.state, ic.message_id, ic.attached_at, ic.attached_by FROM incident_conversations ic JOIN conversations c ON c.id = ic.conversation_id WHERE ic.tenant = $1 AND ic.incident_id = $2 ORDER BY ic.attached_at, ic.conversation_id",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .op("listing an incident's conversations")?;
        Ok(rows
            .iter()
            .map(|r| AttachedRow {
                conversation_id: r.get(0),
                conversation_key: r.get(1),
                channel: r.get(2),
                state: r.get(3),
                message_id: r.get(4),
                attached_at: r.get(5),
                attached_by: r.get(6),
            })
            .collect())
    }

    /// Merge incident `from` into `into` (both open, both of `tenant`): its conversations move
    /// over, it is marked `merged`, incidents merged into it earlier now point at `into`, and
    /// its statement draft, if nobody sent it, is rejected (one statement per problem).
    /// Returns how many conversations moved.
    pub async fn merge_incidents(
        &self,
        tenant: &str,
        from: &str,
        into: &str,
        actor: &str,
    ) -> Result<usize, ActionError> {
        if from == into {
            return Err(ActionError::Conflict(
                "an incident cannot be merged into itself".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.begin("beginning a merge").await?;
        let mut rows = Vec::new();
        for id in [from, into] {
            let row = sqlx::query(
                "SELECT status, group_key, statement_draft_id FROM incidents WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(tx.conn().await?)
            .await
            .op("loading an incident")?;
            let Some(row) = row else {
                tx.rollback("merging incidents").await?;
                return Err(ActionError::NotFound);
            };
            let status: String = row.get(0);
            if status != "open" {
                tx.rollback("merging incidents").await?;
                return Err(ActionError::Conflict(format!(
                    "incident {id} is {status}: only open incidents merge"
                )));
            }
            rows.push((row.get::<String, _>(1), row.get::<Option<String>, _>(2)));
        }
        let into_key = rows[1].0.clone();
        let moving = sqlx::query(
            "SELECT conversation_id, message_id, attached_at, attached_by FROM incident_conversations WHERE incident_id = $1 AND conversation_id NOT IN (SELECT conversation_id FROM incident_conversations WHERE incident_id = $2)",
        )
        .bind(from)
        .bind(into)
        .fetch_all(tx.conn().await?)
        .await
        .op("listing an incident's conversations")?;
        for r in &moving {
            tx.defer("moving a conversation", "INSERT INTO incident_conversations (incident_id, conversation_id, tenant, message_id, attached_at, attached_by) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(into)
            .bind(r.get::<String, _>(0))
            .bind(tenant)
            .bind(r.get::<String, _>(1))
            .bind(r.get::<i64, _>(2))
            .bind(r.get::<String, _>(3));
        }
        tx.defer(
            "moving conversations",
            "DELETE FROM incident_conversations WHERE incident_id = $1",
        )
        .bind(from);
        tx.defer("marking conversations' incident", "UPDATE conversations SET incident = $1, updated_at = $2 WHERE tenant = $3 AND id IN (SELECT conversation_id FROM incident_conversations WHERE incident_id = $4)")
        .bind(&into_key)
        .bind(now)
        .bind(tenant)
        .bind(into);
        for sql in [
            "UPDATE incident_reports SET incident_id = $1 WHERE tenant = $2 AND incident_id = $3",
            "UPDATE incidents SET merged_into = $1 WHERE tenant = $2 AND merged_into = $3",
        ] {
            sqlx::query(sql)
                .bind(into)
                .bind(tenant)
                .bind(from)
                .execute(tx.conn().await?)
                .await
                .op("pointing at the merged incident")?;
        }
        tx.defer("merging an incident", "UPDATE incidents SET status = 'merged', merged_into = $1, closed_at = $2, closed_by = $3 WHERE tenant = $4 AND id = $5")
        .bind(into)
        .bind(now)
        .bind(actor)
        .bind(tenant)
        .bind(from);
        let mut withdrawn = None;
        if let Some(d) = &rows[0].1 {
            let r = sqlx::query(
                "UPDATE drafts SET status = 'rejected', decided_by = $1, reason = $2 WHERE tenant = $3 AND id = $4 AND status IN ('proposed', 'blocked', 'approved')",
            )
            .bind(actor)
            .bind(format!("incident merged into {into}: one statement per problem"))
            .bind(tenant)
            .bind(d)
            .execute(tx.conn().await?)
            .await
            .op("withdrawing a statement")?;
            if r.rows_affected() == 1 {
                withdrawn = Some(d.clone());
            }
        }
        let moved = moving.len();
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "incident.merged",
            from,
            &serde_json::json!({ "into": into, "conversations_moved": moved, "statement_withdrawn": withdrawn }),
        )
        .await?;
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "incident.merged",
            into,
            &serde_json::json!({ "from": from, "conversations_moved": moved }),
        )
        .await?;
        tx.commit("committing a merge").await?;
        Ok(moved)
    }

    /// Close an open incident of `tenant` and queue `follow_ups`, written for the attached
    /// conversations the caller saw (`None` when the tenant drafts no texts), in one
    /// transaction. Closing twice is a conflict; each follow-up's idempotency key is unique, so
    /// none is queued twice.
    pub async fn close_incident(
        &self,
        tenant: &str,
        id: &str,
        actor: &str,
        follow_ups: Option<(&[String], &[FollowUp])>,
    ) -> Result<Closed, ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning to close an incident").await?;
        let r = sqlx::query(
            "UPDATE incidents SET status = 'closed', closed_at = $1, closed_by = $2 WHERE tenant = $3 AND id = $4 AND status = 'open'",
        )
        .bind(now)
        .bind(actor)
        .bind(tenant)
        .bind(id)
        .execute(tx.conn().await?)
        .await
        .op("closing an incident")?;
        if r.rows_affected() != 1 {
            tx.rollback("closing an incident").await?;
            return Err(match self.incident(tenant, id).await? {
                None => ActionError::NotFound,
                Some(i) => ActionError::Conflict(format!("incident {id} is already {}", i.status)),
            });
        }
        let attached: Vec<String> = sqlx::query(
            "SELECT conversation_id FROM incident_conversations WHERE incident_id = $1 ORDER BY conversation_id",
        )
        .bind(id)
        .fetch_all(tx.conn().await?)
        .await
        .op("listing an incident's conversations")?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let (mut queued, mut blocked) = (0, 0);
        if let Some((seen, follow_ups)) = follow_ups {
            let mut seen = seen.to_vec();
            seen.sort();
            seen.dedup();
            if seen != attached {
                tx.rollback("closing an incident").await?;
                return Ok(Closed::Stale);
            }
            for f in follow_ups {
                let d = &f.draft;
                let draft = insert_draft(
                    &mut tx,
                    now,
                    tenant,
                    d,
                    if d.blocked { "blocked" } else { "queued" },
                )
                .await?;
                if d.blocked {
                    blocked += 1;
                    continue;
                }
                if queue_reply(
                    &mut tx,
                    now,
                    tenant,
                    &f.connector,
                    (&d.message_id, &draft),
                    &f.reply,
                    ReplyKind::FollowUp,
                )
                .await?
                {
                    queued += 1;
                    audit(
                        &mut tx,
                        now,
                        tenant,
                        actor,
                        "incident.follow-up-queued",
                        id,
                        &serde_json::json!({ "conversation": f.conversation_id, "message": d.message_id, "draft": draft, "idempotency_key": f.reply.idempotency_key }),
                    )
                    .await?;
                }
            }
        }
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "incident.closed",
            id,
            &serde_json::json!({ "conversations": attached.len(), "follow_ups": queued, "blocked": blocked }),
        )
        .await?;
        tx.commit("committing a closure").await?;
        Ok(Closed::Closed {
            follow_ups: queued,
            blocked,
        })
    }

    /// The audit trail of an incident of `tenant`, oldest first.
    pub async fn incident_audit(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, subject, detail FROM audit WHERE tenant = $1 AND subject = $2 ORDER BY at, id",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .op("loading an incident's audit trail")?;
        Ok(rows.iter().map(super::audit_entry).collect())
    }

    /// The latest customer message of each of `conversations` (ids or channel keys) of
    /// `tenant`, in order; `NotFound` if any is not the tenant's.
    pub async fn latest_messages(
        &self,
        tenant: &str,
        conversations: &[String],
    ) -> Result<Vec<StoredMessage>, ActionError> {
        let mut out = Vec::new();
        for c in conversations {
            let (id, _, _, _) = self
                .conversation_ref(tenant, c)
                .await?
                .ok_or(ActionError::NotFound)?;
            out.push(
                self.last_message(tenant, &id)
                    .await?
                    .ok_or(ActionError::NotFound)?,
            );
        }
        Ok(out)
    }
}
