//! Teams and sign-off on the engine: assignment, participants, expert requests and answers,
//! approvals. The configuration and rules are in [`crate::care::team`].

use crate::care::team::*;
use crate::tenant::Tenant;
use crate::worker::Engine;
use switchboard_contract::Visibility;
use switchboard_store::{ActionError, DraftRow, Role, StoreError, StoredDraftFacts};

fn signoff_of(tenant: &Tenant, facts: &StoredDraftFacts) -> SignoffState {
    let required = tenant.care.signoff.tiers(
        &DraftFacts {
            purpose: &facts.purpose,
            escalated: facts.escalated,
            has_findings: facts.has_findings,
            author: facts.author.as_deref(),
        },
        &tenant.care.agents,
    );
    let approved = facts.approvers.len();
    SignoffState {
        complete: approved >= required.len(),
        required,
        approved,
    }
}

impl Engine {
    /// The sign-off a draft of `tenant` needs, and how far it got.
    pub async fn signoff_state(
        &self,
        tenant: &Tenant,
        draft_id: &str,
    ) -> Result<SignoffState, ActionError> {
        let facts = self
            .store
            .draft_facts(&tenant.name, draft_id)
            .await?
            .ok_or(ActionError::NotFound)?;
        Ok(signoff_of(tenant, &facts))
    }

    /// Drafts of `tenant` whose sign-off is not complete, oldest first: the supervisors' queue.
    /// Each with its conversation and how far its sign-off got.
    pub async fn signoff_queue(
        &self,
        tenant: &Tenant,
        limit: i64,
    ) -> Result<Vec<(String, String, SignoffState)>, StoreError> {
        let mut queue = Vec::new();
        for (draft, conversation) in self.store.waiting_drafts(&tenant.name, limit).await? {
            let Some(facts) = self.store.draft_facts(&tenant.name, &draft).await? else {
                continue;
            };
            let state = signoff_of(tenant, &facts);
            if !state.complete {
                queue.push((draft, conversation, state));
            }
        }
        Ok(queue)
    }

    /// Approve the next tier of a draft's sign-off as `actor` with `role`. An approver must
    /// hold at least the tier's role, and may not approve twice nor approve their own text.
    pub async fn approve_draft(
        &self,
        tenant: &Tenant,
        draft_id: &str,
        role: Role,
        actor: &str,
    ) -> Result<SignoffState, ActionError> {
        let facts = self
            .store
            .draft_facts(&tenant.name, draft_id)
            .await?
            .ok_or(ActionError::NotFound)?;
        if !matches!(facts.status.as_str(), "proposed" | "approved") {
            return Err(ActionError::Conflict(format!(
                "draft {draft_id} is {} and cannot be approved",
                facts.status
            )));
        }
        let state = signoff_of(tenant, &facts);
        let name = actor_name(actor);
        if facts.author.as_deref() == Some(name) {
            return Err(ActionError::Conflict(
                "a draft is signed off by someone other than its author".into(),
            ));
        }
        if facts.approvers.iter().any(|a| actor_name(a) == name) {
            return Err(ActionError::Conflict(format!(
                "{actor} already approved this draft; the next tier needs someone else"
            )));
        }
        let tier = state.approved;
        let needed = state
            .required
            .get(tier)
            .copied()
            .unwrap_or(Role::Supervisor);
        if state.complete && !state.required.is_empty() {
            return Err(ActionError::Conflict(format!(
                "draft {draft_id} is already signed off"
            )));
        }
        if role < needed {
            return Err(ActionError::Forbidden(format!(
                "tier {} of this draft's sign-off needs the {} role",
                tier + 1,
                needed.as_str()
            )));
        }
        let complete = tier + 1 >= state.required.len();
        self.store
            .record_approval(&tenant.name, draft_id, tier, needed, actor, complete)
            .await?;
        Ok(SignoffState {
            required: state.required,
            approved: tier + 1,
            complete,
        })
    }

    /// Ask a knowledge expert a question about a conversation: by name, or the first agent
    /// who is an expert in `topic`. The expert joins the conversation.
    pub async fn ask_expert(
        &self,
        tenant: &Tenant,
        conversation: &str,
        expert: Option<&str>,
        topic: Option<&str>,
        question: &str,
        actor: &str,
    ) -> Result<(String, String), ActionError> {
        let expert = match (expert, topic) {
            (Some(e), _) => tenant
                .care
                .agents
                .iter()
                .find(|a| a.name == e)
                .map(|a| a.name.clone())
                .ok_or_else(|| ActionError::Invalid(format!("no agent `{e}` in this tenant")))?,
            (None, Some(t)) => tenant
                .care
                .agents
                .iter()
                .find(|a| a.expert_in.iter().any(|x| x == t))
                .map(|a| a.name.clone())
                .ok_or_else(|| ActionError::Invalid(format!("no expert in `{t}`")))?,
            (None, None) => {
                return Err(ActionError::Invalid(
                    "name an expert or a topic".to_string(),
                ));
            }
        };
        let (conversation_id, ..) = self
            .store
            .conversation_ref(&tenant.name, conversation)
            .await?
            .ok_or(ActionError::NotFound)?;
        let id = self
            .store
            .ask_expert(
                &tenant.name,
                &conversation_id,
                &expert,
                topic,
                question,
                actor,
            )
            .await?;
        Ok((id, expert))
    }

    /// The expert's answer becomes a draft on the conversation's latest message, checked by the
    /// reply guards like any draft, and signed off as `[signoff] expert_answer` says.
    pub async fn answer_expert(
        &self,
        tenant: &Tenant,
        request: &str,
        answer: &str,
        actor: &str,
        may_answer_for_others: bool,
    ) -> Result<String, ActionError> {
        let req = self
            .store
            .expert_request(&tenant.name, request)
            .await?
            .ok_or(ActionError::NotFound)?;
        if req.answered_at.is_some() {
            return Err(ActionError::Conflict(format!(
                "expert request {request} is already answered"
            )));
        }
        if !may_answer_for_others && actor_name(actor) != req.expert {
            return Err(ActionError::Forbidden(format!(
                "this question was asked of {}",
                req.expert
            )));
        }
        let last = self
            .store
            .last_message(&tenant.name, &req.conversation_id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let connector = tenant
            .connector(Some(&last.connector))
            .map_err(ActionError::Conflict)?;
        let (length, findings, _) =
            crate::pipeline::check_text(&self.rt, tenant, connector, answer).await;
        let blocked = crate::guards::blocks(&findings);
        let draft = DraftRow {
            id: uuid::Uuid::now_v7().to_string(),
            suggester: format!("expert:{}", req.expert),
            purpose: "expert-answer".into(),
            text: answer.to_string(),
            visibility: match last.message.visibility {
                Visibility::Private => "private".into(),
                Visibility::Public => "public".into(),
            },
            confidence: 1.0,
            rationale: format!("answer to \"{}\"", req.question),
            length: length.map(i64::from),
            length_limit: i64::from(connector.channel.length_rule.max),
            findings: serde_json::to_value(&findings).unwrap_or_default(),
            status: if blocked { "blocked" } else { "proposed" }.into(),
        };
        self.store
            .answer_expert(&tenant.name, request, &last.id, answer, &draft, actor)
            .await?;
        Ok(draft.id)
    }
}
