//! What teams, sign-off and "one customer" keep: round-robin assignment, participants, expert
//! requests, draft approvals, verified contacts and reversible customer merges. Every query is
//! scoped by tenant.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use crate::tx::Tx;

use super::{ActionError, DraftRow, Op, Store, StoreError, audit, json, new_id};
use crate::Role;

/// Who may take a conversation routed to a team: members with their capacity (open
/// conversations at once), and those whose skills match the message (tried first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignPlan {
    pub team: String,
    pub members: Vec<(String, i64)>,
    pub preferred: Vec<String>,
}

/// What a draft's sign-off depends on, as stored.
#[derive(Debug, Clone)]
pub struct StoredDraftFacts {
    pub purpose: String,
    pub status: String,
    pub escalated: bool,
    pub has_findings: bool,
    /// The agent who edited the text, else the conversation's assignee (a name, no role).
    pub author: Option<String>,
    /// Approvers so far, in tier order.
    pub approvers: Vec<String>,
}

/// An expert request as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ExpertRequest {
    pub id: String,
    pub conversation_id: String,
    pub asked_by: String,
    pub expert: String,
    pub topic: Option<String>,
    pub question: String,
    pub asked_at: i64,
    pub answer: Option<String>,
    pub answered_at: Option<i64>,
    pub draft_id: Option<String>,
}

/// Conversations that count against an agent's capacity.
const OPEN_STATES: &str = "('open', 'private', 'monitored')";

/// The load of `n` agents (`$2`…), the open conversations assigned to each; an agent with
/// none has no row.
pub(crate) fn agent_loads_sql(n: usize) -> String {
    format!(
        "SELECT assignee, COUNT(*) FROM conversations WHERE tenant = $1 AND assignee IN ({}) AND state IN {OPEN_STATES} GROUP BY assignee",
        crate::in_list(2, n)
    )
}

/// The loads of `agents`, in one statement per chunk: a team whose members were all at
/// capacity cost a statement per member for every message routed to it.
async fn agent_loads(
    tx: &mut Tx<'_>,
    tenant: &str,
    agents: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut loads = HashMap::new();
    for chunk in agents.chunks(crate::IN_LIST_CHUNK) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(agent_loads_sql(chunk.len()))).bind(tenant);
        for agent in chunk {
            query = query.bind(*agent);
        }
        for row in query
            .fetch_all(tx.conn().await?)
            .await
            .op("measuring agents' load")?
        {
            loads.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
        }
    }
    Ok(loads)
}

/// Assign a conversation routed to `plan.team`, if nobody has it: the next member after the
/// team's last assignee (round robin) with room under their capacity, skilled members first,
/// never `exclude` (who just breached on it). Nobody with room: it stays in the team's queue.
pub(super) async fn assign_round_robin(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    conversation: &str,
    plan: &AssignPlan,
    exclude: Option<&str>,
) -> Result<(), StoreError> {
    // One statement for both reads (each is a round trip to the store's thread).
    let row = sqlx::query(
        "SELECT c.assignee, (SELECT last_agent FROM team_cursors WHERE tenant = $2 AND team = $3) \
         FROM conversations c WHERE c.id = $1",
    )
    .bind(conversation)
    .bind(tenant)
    .bind(&plan.team)
    .fetch_one(tx.conn().await?)
    .await
    .op("reading an assignee and a team's cursor")?;
    let (current, last): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    if current.is_some() || plan.members.is_empty() {
        return Ok(());
    }
    // The members in round-robin order, starting after the last one assigned.
    let start = last
        .and_then(|l| plan.members.iter().position(|(m, _)| *m == l))
        .map_or(0, |i| i + 1);
    let order: Vec<&(String, i64)> = plan
        .members
        .iter()
        .cycle()
        .skip(start)
        .take(plan.members.len())
        .collect();
    let candidates: Vec<&str> = order
        .iter()
        .map(|(agent, _)| agent.as_str())
        .filter(|agent| exclude != Some(*agent))
        .collect();
    let loads = agent_loads(tx, tenant, &candidates).await?;
    let mut chosen = None;
    for skilled_only in [true, false] {
        for (agent, capacity) in &order {
            if (skilled_only && !plan.preferred.contains(agent)) || exclude == Some(agent.as_str())
            {
                continue;
            }
            let load = loads.get(agent.as_str()).copied().unwrap_or(0);
            if load < *capacity {
                chosen = Some(agent.clone());
                break;
            }
        }
        if chosen.is_some() {
            break;
        }
    }
    let Some(agent) = chosen else {
        return audit(
            tx,
            now,
            tenant,
            "routing",
            "conversation.queued",
            conversation,
            &serde_json::json!({ "team": plan.team, "why": "every member is at capacity" }),
        )
        .await;
    };
    tx.defer(
        "assigning a conversation",
        "UPDATE conversations SET assignee = $1 WHERE id = $2",
    )
    .bind(&agent)
    .bind(conversation);
    add_participant_in(tx, now, tenant, conversation, &agent, "assignee", "routing").await?;
    let moved = sqlx::query(
        "UPDATE team_cursors SET last_agent = $1, updated_at = $2 WHERE tenant = $3 AND team = $4",
    )
    .bind(&agent)
    .bind(now)
    .bind(tenant)
    .bind(&plan.team)
    .execute(tx.conn().await?)
    .await
    .op("moving a team's cursor")?;
    if moved.rows_affected() == 0 {
        tx.defer("starting a team's cursor", "INSERT INTO team_cursors (tenant, team, last_agent, updated_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant)
        .bind(&plan.team)
        .bind(&agent)
        .bind(now);
    }
    audit(
        tx,
        now,
        tenant,
        "routing",
        "conversation.assigned",
        conversation,
        &serde_json::json!({ "assignee": agent, "team": plan.team, "how": "round-robin", "instead_of": exclude }),
    )
    .await
}

async fn add_participant_in(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    conversation: &str,
    agent: &str,
    role: &str,
    actor: &str,
) -> Result<bool, StoreError> {
    let exists =
        sqlx::query("SELECT role FROM participants WHERE conversation_id = $1 AND agent = $2")
            .bind(conversation)
            .bind(agent)
            .fetch_optional(tx.conn().await?)
            .await
            .op("reading participants")?;
    if exists.is_some() {
        return Ok(false);
    }
    tx.defer("adding a participant", "INSERT INTO participants (tenant, conversation_id, agent, role, added_at, added_by) VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(tenant)
    .bind(conversation)
    .bind(agent)
    .bind(role)
    .bind(now)
    .bind(actor);
    Ok(true)
}

/// Link a new identity to the customer who already owns one of the message's verified
/// contacts (`verified-phone`, `verified-email` in `extra`), and remember the contacts.
/// Returns the customer it belongs to, if any was found.
pub(super) async fn customer_by_contact(
    tx: &mut Tx<'_>,
    tenant: &str,
    contacts: &[(String, String)],
) -> Result<Option<String>, StoreError> {
    for (kind, value) in contacts {
        if let Some(r) = sqlx::query(
            "SELECT customer_id FROM customer_contacts WHERE tenant = $1 AND kind = $2 AND value = $3",
        )
        .bind(tenant)
        .bind(kind)
        .bind(value)
        .fetch_optional(tx.conn().await?)
        .await
        .op("looking up a verified contact")?
        {
            return Ok(Some(r.get(0)));
        }
    }
    Ok(None)
}

pub(super) async fn remember_contacts(
    tx: &mut Tx<'_>,
    now: i64,
    tenant: &str,
    customer: &str,
    contacts: &[(String, String)],
) -> Result<(), StoreError> {
    for (kind, value) in contacts {
        tx.defer("remembering a verified contact", "INSERT INTO customer_contacts (tenant, kind, value, customer_id, first_seen_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, kind, value) DO NOTHING")
        .bind(tenant)
        .bind(kind)
        .bind(value)
        .bind(customer)
        .bind(now);
    }
    Ok(())
}

/// The verified contacts a connector vouched for, normalised (e-mail lowercased, phone digits
/// with a leading `+`).
pub fn verified_contacts(extra: &[(String, String)]) -> Vec<(String, String)> {
    extra
        .iter()
        .filter_map(|(k, v)| match k.as_str() {
            "verified-email" if v.contains('@') => {
                Some(("email".to_string(), v.trim().to_lowercase()))
            }
            "verified-phone" => {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                (digits.len() >= 6).then(|| ("phone".to_string(), format!("+{digits}")))
            }
            _ => None,
        })
        .collect()
}

/// The name part of an actor (`agent:ana` → `ana`).
pub fn actor_name(actor: &str) -> &str {
    actor.split_once(':').map_or(actor, |(_, n)| n)
}

impl Store {
    /// Drafts of `tenant` still waiting to go out (proposed, or approved part-way), oldest
    /// first, with their conversation: the candidates for the sign-off queue.
    pub async fn waiting_drafts(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, m.conversation_id FROM drafts d JOIN messages m ON m.id = d.message_id
             JOIN conversations c ON c.id = m.conversation_id
             WHERE d.tenant = $1 AND d.status IN ('proposed', 'approved') AND c.state <> 'ignored'
             ORDER BY d.created_at, d.id LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .op("listing drafts waiting to go out")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// What a draft's sign-off depends on.
    pub async fn draft_facts(
        &self,
        tenant: &str,
        draft: &str,
    ) -> Result<Option<StoredDraftFacts>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT d.purpose, d.status, c.escalated, d.findings, d.edited_by, c.assignee FROM drafts d JOIN messages m ON m.id = d.message_id JOIN conversations c ON c.id = m.conversation_id WHERE d.tenant = $1 AND d.id = $2",
        )
        .bind(tenant)
        .bind(draft)
        .fetch_optional(&self.pool)
        .await
        .op("loading a draft's sign-off facts")?
        else {
            return Ok(None);
        };
        let findings: Vec<serde_json::Value> =
            serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default();
        let author = r
            .get::<Option<String>, _>(4)
            .map(|a| actor_name(&a).to_string())
            .or_else(|| r.get::<Option<String>, _>(5));
        let approvers =
            sqlx::query("SELECT approver FROM draft_approvals WHERE draft_id = $1 ORDER BY tier")
                .bind(draft)
                .fetch_all(&self.pool)
                .await
                .op("loading approvals")?
                .iter()
                .map(|r| r.get(0))
                .collect();
        Ok(Some(StoredDraftFacts {
            purpose: r.get(0),
            status: r.get(1),
            escalated: r.get::<i64, _>(2) == 1,
            has_findings: !findings.is_empty(),
            author,
            approvers,
        }))
    }

    /// Record the approval of sign-off tier `tier`; the draft becomes `approved` when `complete`.
    pub async fn record_approval(
        &self,
        tenant: &str,
        draft: &str,
        tier: usize,
        role: Role,
        actor: &str,
        complete: bool,
    ) -> Result<(), ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning an approval").await?;
        let inserted = sqlx::query(
            "INSERT INTO draft_approvals (draft_id, tier, role, approver, approved_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (draft_id, tier) DO NOTHING",
        )
        .bind(draft)
        .bind(tier as i64)
        .bind(role.as_str())
        .bind(actor)
        .bind(now)
        .execute(tx.conn().await?)
        .await
        .op("recording an approval")?;
        if inserted.rows_affected() != 1 {
            tx.rollback("recording an approval").await?;
            return Err(ActionError::Conflict(
                "someone approved this tier at the same moment; look again".into(),
            ));
        }
        if complete {
            tx.defer("approving a draft", "UPDATE drafts SET status = 'approved', decided_by = $1 WHERE tenant = $2 AND id = $3 AND status IN ('proposed', 'approved')")
            .bind(actor)
            .bind(tenant)
            .bind(draft);
        }
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            if complete {
                "draft.approved"
            } else {
                "draft.tier-approved"
            },
            draft,
            &serde_json::json!({ "tier": tier + 1, "role": role }),
        )
        .await?;
        tx.commit("recording an approval").await?;
        Ok(())
    }

    /// Add an agent to a conversation of `tenant`.
    pub async fn add_participant(
        &self,
        tenant: &str,
        conversation: &str,
        agent: &str,
        role: &str,
        actor: &str,
    ) -> Result<bool, ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning a participant").await?;
        let known = sqlx::query("SELECT 1 FROM conversations WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(conversation)
            .fetch_optional(tx.conn().await?)
            .await
            .op("loading a conversation")?;
        if known.is_none() {
            tx.rollback("adding a participant").await?;
            return Err(ActionError::NotFound);
        }
        let added =
            add_participant_in(&mut tx, now, tenant, conversation, agent, role, actor).await?;
        if added {
            audit(
                &mut tx,
                now,
                tenant,
                actor,
                "conversation.participant-added",
                conversation,
                &serde_json::json!({ "agent": agent, "role": role }),
            )
            .await?;
        }
        tx.commit("adding a participant").await?;
        Ok(added)
    }

    /// Everyone on a conversation: (agent, role).
    pub async fn participants(
        &self,
        conversation: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query(
            "SELECT agent, role FROM participants WHERE conversation_id = $1 ORDER BY added_at, agent",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
        .await
        .op("listing participants")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    pub async fn ask_expert(
        &self,
        tenant: &str,
        conversation: &str,
        expert: &str,
        topic: Option<&str>,
        question: &str,
        actor: &str,
    ) -> Result<String, ActionError> {
        let now = self.now();
        let id = new_id();
        let mut tx = self.begin("beginning an expert request").await?;
        tx.defer("asking an expert", "INSERT INTO expert_requests (id, tenant, conversation_id, asked_by, expert, topic, question, asked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&id)
        .bind(tenant)
        .bind(conversation)
        .bind(actor)
        .bind(expert)
        .bind(topic.map(str::to_string))
        .bind(question)
        .bind(now);
        add_participant_in(&mut tx, now, tenant, conversation, expert, "expert", actor).await?;
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "expert.asked",
            conversation,
            &serde_json::json!({ "request": id, "expert": expert, "topic": topic, "question": question }),
        )
        .await?;
        tx.commit("asking an expert").await?;
        Ok(id)
    }

    pub async fn expert_request(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ExpertRequest>, StoreError> {
        Ok(self
            .expert_requests(tenant, None)
            .await?
            .into_iter()
            .find(|r| r.id == id))
    }

    /// Expert requests of `tenant` (of one expert, when given), unanswered first.
    pub async fn expert_requests(
        &self,
        tenant: &str,
        expert: Option<&str>,
    ) -> Result<Vec<ExpertRequest>, StoreError> {
        Ok(sqlx::query(
            "SELECT id, conversation_id, asked_by, expert, topic, question, asked_at, answer, answered_at, draft_id FROM expert_requests WHERE tenant = $1 AND ($2 = '' OR expert = $2) ORDER BY CASE WHEN answered_at IS NULL THEN 0 ELSE 1 END, asked_at, id",
        )
        .bind(tenant)
        .bind(expert.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .op("listing expert requests")?
        .iter()
        .map(|r| ExpertRequest {
            id: r.get(0),
            conversation_id: r.get(1),
            asked_by: r.get(2),
            expert: r.get(3),
            topic: r.get(4),
            question: r.get(5),
            asked_at: r.get(6),
            answer: r.get(7),
            answered_at: r.get(8),
            draft_id: r.get(9),
        })
        .collect())
    }

    /// Record an expert's answer and its draft (on `message_id`), once.
    pub async fn answer_expert(
        &self,
        tenant: &str,
        request: &str,
        message_id: &str,
        answer: &str,
        draft: &DraftRow,
        actor: &str,
    ) -> Result<(), ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning an expert answer").await?;
        let r = sqlx::query(
            "UPDATE expert_requests SET answer = $1, answered_at = $2, draft_id = $3 WHERE tenant = $4 AND id = $5 AND answered_at IS NULL",
        )
        .bind(answer)
        .bind(now)
        .bind(&draft.id)
        .bind(tenant)
        .bind(request)
        .execute(tx.conn().await?)
        .await
        .op("answering an expert request")?;
        if r.rows_affected() != 1 {
            tx.rollback("answering an expert request").await?;
            return Err(ActionError::Conflict(format!(
                "expert request {request} is already answered"
            )));
        }
        tx.defer("storing the expert's draft", "INSERT INTO drafts (id, tenant, message_id, suggester, purpose, text, visibility, confidence, rationale, length, length_limit, findings, status, created_at, edited_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
        .bind(&draft.id)
        .bind(tenant)
        .bind(message_id)
        .bind(&draft.suggester)
        .bind(&draft.purpose)
        .bind(&draft.text)
        .bind(&draft.visibility)
        .bind(draft.confidence)
        .bind(&draft.rationale)
        .bind(draft.length)
        .bind(draft.length_limit)
        .bind(json(&draft.findings))
        .bind(&draft.status)
        .bind(now)
        .bind(actor);
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "expert.answered",
            message_id,
            &serde_json::json!({ "request": request, "draft": draft.id, "status": draft.status }),
        )
        .await?;
        tx.commit("answering an expert request").await?;
        Ok(())
    }

    /// Merge customer `from` into `into` (an agent's decision that they are one person):
    /// identities, conversations and messages move; the merge is kept so it can be undone.
    pub async fn merge_customers(
        &self,
        tenant: &str,
        from: &str,
        into: &str,
        actor: &str,
    ) -> Result<String, ActionError> {
        if from == into {
            return Err(ActionError::Invalid(
                "a customer cannot be merged into itself".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.begin("beginning a merge").await?;
        let known: i64 = sqlx::query(
            "SELECT COUNT(*) FROM customers WHERE tenant = $1 AND (id = $2 OR id = $3)",
        )
        .bind(tenant)
        .bind(from)
        .bind(into)
        .fetch_one(tx.conn().await?)
        .await
        .op("loading customers")?
        .get(0);
        if known != 2 {
            tx.rollback("merging customers").await?;
            return Err(ActionError::NotFound);
        }
        let identities: Vec<(String, String)> = sqlx::query(
            "SELECT channel, author_id FROM identities WHERE tenant = $1 AND customer_id = $2 ORDER BY channel, author_id",
        )
        .bind(tenant)
        .bind(from)
        .fetch_all(tx.conn().await?)
        .await
        .op("loading identities")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        move_identities(&mut tx, tenant, &identities, into).await?;
        let contacts: Vec<(String, String)> = sqlx::query(
            "SELECT kind, value FROM customer_contacts WHERE tenant = $1 AND customer_id = $2 ORDER BY kind, value",
        )
        .bind(tenant)
        .bind(from)
        .fetch_all(tx.conn().await?)
        .await
        .op("loading contacts")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        move_contacts(&mut tx, tenant, &contacts, into).await?;
        let id = new_id();
        tx.defer("recording a merge", "INSERT INTO customer_merges (id, tenant, from_customer, into_customer, identities, merged_at, merged_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&id)
        .bind(tenant)
        .bind(from)
        .bind(into)
        .bind(json(&serde_json::json!({ "identities": identities, "contacts": contacts })))
        .bind(now)
        .bind(actor);
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "customer.merged",
            into,
            &serde_json::json!({ "merge": id, "from": from, "identities": identities }),
        )
        .await?;
        tx.commit("merging customers").await?;
        Ok(id)
    }

    /// Undo a merge: the identities it moved go back to the customer they came from, with
    /// their conversations and messages.
    pub async fn undo_merge(
        &self,
        tenant: &str,
        merge: &str,
        actor: &str,
    ) -> Result<(), ActionError> {
        let now = self.now();
        let mut tx = self.begin("beginning an unmerge").await?;
        let row = sqlx::query(
            "SELECT from_customer, into_customer, identities, undone_at FROM customer_merges WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(merge)
        .fetch_optional(tx.conn().await?)
        .await
        .op("loading a merge")?
        .ok_or(ActionError::NotFound)?;
        if row.get::<Option<i64>, _>(3).is_some() {
            tx.rollback("undoing a merge").await?;
            return Err(ActionError::Conflict(format!(
                "merge {merge} was already undone"
            )));
        }
        let from: String = row.get(0);
        let moved: serde_json::Value =
            serde_json::from_str(&row.get::<String, _>(2)).unwrap_or_default();
        let pairs = |key: &str| -> Vec<(String, String)> {
            serde_json::from_value(moved[key].clone()).unwrap_or_default()
        };
        let identities = pairs("identities");
        move_identities(&mut tx, tenant, &identities, &from).await?;
        move_contacts(&mut tx, tenant, &pairs("contacts"), &from).await?;
        tx.defer(
            "undoing a merge",
            "UPDATE customer_merges SET undone_at = $1, undone_by = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(actor)
        .bind(merge);
        audit(
            &mut tx,
            now,
            tenant,
            actor,
            "customer.unmerged",
            &from,
            &serde_json::json!({ "merge": merge, "from": row.get::<String, _>(1), "identities": identities }),
        )
        .await?;
        tx.commit("undoing a merge").await?;
        Ok(())
    }

    /// One customer across channels: identities, verified contacts, conversations (newest
    /// first), merges, whether blocked or an advocate.
    pub async fn customer_view(
        &self,
        tenant: &str,
        customer: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(c) = sqlx::query(
            "SELECT id, created_at, blocked_at, advocate_since FROM customers WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(customer)
        .fetch_optional(&self.pool)
        .await
        .op("loading a customer")?
        else {
            return Ok(None);
        };
        let identities: Vec<serde_json::Value> = sqlx::query(
            "SELECT channel, author_id, handle, display_name FROM identities WHERE tenant = $1 AND customer_id = $2 ORDER BY channel, author_id",
        )
        .bind(tenant)
        .bind(customer)
        .fetch_all(&self.pool)
        .await
        .op("loading identities")?
        .iter()
        .map(|r| serde_json::json!({ "channel": r.get::<String, _>(0), "author_id": r.get::<String, _>(1), "handle": r.get::<Option<String>, _>(2), "display_name": r.get::<Option<String>, _>(3) }))
        .collect();
        let contacts: Vec<serde_json::Value> = sqlx::query(
            "SELECT kind, value FROM customer_contacts WHERE tenant = $1 AND customer_id = $2 ORDER BY kind, value",
        )
        .bind(tenant)
        .bind(customer)
        .fetch_all(&self.pool)
        .await
        .op("loading contacts")?
        .iter()
        .map(|r| serde_json::json!({ "kind": r.get::<String, _>(0), "value": r.get::<String, _>(1) }))
        .collect();
        let conversations: Vec<serde_json::Value> = sqlx::query(
            "SELECT c.id, c.channel, c.conversation_key, c.state, c.team, c.assignee, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id), (SELECT MAX(m.received_at) FROM messages m WHERE m.conversation_id = c.id) AS last FROM conversations c WHERE c.tenant = $1 AND c.customer_id = $2 ORDER BY last DESC, c.id",
        )
        .bind(tenant)
        .bind(customer)
        .fetch_all(&self.pool)
        .await
        .op("loading a customer's conversations")?
        .iter()
        .map(|r| serde_json::json!({
            "id": r.get::<String, _>(0), "channel": r.get::<String, _>(1), "conversation_key": r.get::<String, _>(2),
            "state": r.get::<String, _>(3), "team": r.get::<Option<String>, _>(4), "assignee": r.get::<Option<String>, _>(5),
            "messages": r.get::<i64, _>(6), "last_message_at": r.get::<Option<i64>, _>(7),
        }))
        .collect();
        let merges: Vec<serde_json::Value> = sqlx::query(
            "SELECT id, from_customer, into_customer, merged_at, merged_by, undone_at FROM customer_merges WHERE tenant = $1 AND (from_customer = $2 OR into_customer = $2) ORDER BY merged_at, id",
        )
        .bind(tenant)
        .bind(customer)
        .fetch_all(&self.pool)
        .await
        .op("loading merges")?
        .iter()
        .map(|r| serde_json::json!({
            "id": r.get::<String, _>(0), "from": r.get::<String, _>(1), "into": r.get::<String, _>(2),
            "merged_at": r.get::<i64, _>(3), "merged_by": r.get::<String, _>(4), "undone_at": r.get::<Option<i64>, _>(5),
        }))
        .collect();
        Ok(Some(serde_json::json!({
            "id": c.get::<String, _>(0),
            "created_at": c.get::<i64, _>(1),
            "blocked": c.get::<Option<i64>, _>(2).is_some(),
            "advocate_since": c.get::<Option<i64>, _>(3),
            "identities": identities,
            "verified_contacts": contacts,
            "conversations": conversations,
            "merges": merges,
        })))
    }

    /// The customer behind an identity.
    pub async fn customer_of(
        &self,
        tenant: &str,
        channel: &str,
        author_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT customer_id FROM identities WHERE tenant = $1 AND channel = $2 AND author_id = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(author_id)
        .fetch_optional(&self.pool)
        .await
        .op("looking up an identity")?
        .map(|r| r.get(0)))
    }
}

/// Point every row keyed by (tenant, `a`, `b`) at customer `to`, for each `(sql, op)`:
/// `$1` is the customer, `$2` the tenant, `$3` and `$4` the key.
async fn repoint(
    tx: &mut Tx<'_>,
    statements: &[(&'static str, &'static str)],
    to: &str,
    tenant: &str,
    a: &str,
    b: &str,
) -> Result<(), StoreError> {
    for (sql, op) in statements {
        // `&'static str` statements written above, never built from input.
        sqlx::query(*sql)
            .bind(to)
            .bind(tenant)
            .bind(a)
            .bind(b)
            .execute(tx.conn().await?)
            .await
            .op(op)?;
    }
    Ok(())
}

async fn move_contacts(
    tx: &mut Tx<'_>,
    tenant: &str,
    contacts: &[(String, String)],
    to: &str,
) -> Result<(), StoreError> {
    for (kind, value) in contacts {
        repoint(
            tx,
            &[(
                "UPDATE customer_contacts SET customer_id = $1 WHERE tenant = $2 AND kind = $3 AND value = $4",
                "moving a contact",
            )],
            to,
            tenant,
            kind,
            value,
        )
        .await?;
    }
    Ok(())
}

/// An identity, its messages and its conversations move together.
async fn move_identities(
    tx: &mut Tx<'_>,
    tenant: &str,
    identities: &[(String, String)],
    to: &str,
) -> Result<(), StoreError> {
    for (channel, author) in identities {
        repoint(
            tx,
            &[
                (
                    "UPDATE identities SET customer_id = $1 WHERE tenant = $2 AND channel = $3 AND author_id = $4",
                    "moving an identity",
                ),
                (
                    "UPDATE messages SET customer_id = $1 WHERE tenant = $2 AND channel = $3 AND author_id = $4",
                    "moving an identity's messages",
                ),
                (
                    "UPDATE conversations SET customer_id = $1 WHERE tenant = $2 AND channel = $3 AND id IN (SELECT DISTINCT conversation_id FROM messages WHERE tenant = $2 AND channel = $3 AND author_id = $4)",
                    "moving an identity's conversations",
                ),
            ],
            to,
            tenant,
            channel,
            author,
        )
        .await?;
    }
    Ok(())
}
