//! Teams and sign-off: agents with skills and capacity, round-robin assignment within capacity
//! when the policy routes a conversation to a team, several participants on one conversation,
//! an agent asking a knowledge expert and getting the answer back as a draft, and sign-off of a
//! draft by one or more tiers before it goes out.
//!
//! ```toml
//! [[agents]]
//! name = "ana"               # the name on the agent's API token
//! teams = ["care"]
//! skills = ["language:es"]   # label names: preferred for conversations carrying them
//! expert_in = ["topic:refund"]
//! capacity = 5               # open conversations at once
//! new = false                # a new agent's drafts need sign-off ([signoff] new_agent)
//!
//! [signoff]                  # who must approve, in order, before a draft can be sent
//! escalated = ["supervisor"]
//! expert_answer = ["supervisor"]
//! incident_statement = ["supervisor", "admin"]
//! new_agent = ["supervisor"]
//! guard_findings = ["supervisor"]   # drafts carrying a guard's warning
//! ```

use serde::{Deserialize, Serialize};

use crate::contract::{OutboundReply, Visibility};
use crate::store::{ActionError, AssignPlan, DraftRow, Role, StoredDraftFacts};
use crate::tenant::Tenant;
use crate::worker::Engine;

fn default_capacity() -> u32 {
    5
}

/// One agent of the tenant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub expert_in: Vec<String>,
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    #[serde(default)]
    pub new: bool,
}

fn supervisor() -> Vec<Role> {
    vec![Role::Supervisor]
}

/// `[signoff]`: the approval tiers each kind of draft needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignoffConfig {
    #[serde(default = "supervisor")]
    pub escalated: Vec<Role>,
    #[serde(default)]
    pub expert_answer: Vec<Role>,
    #[serde(default = "supervisor")]
    pub incident_statement: Vec<Role>,
    #[serde(default)]
    pub new_agent: Vec<Role>,
    #[serde(default)]
    pub guard_findings: Vec<Role>,
}

impl Default for SignoffConfig {
    fn default() -> Self {
        toml::from_str("").expect("sign-off defaults")
    }
}

/// What decides a draft's sign-off.
#[derive(Debug, Clone, Default)]
pub struct DraftFacts<'a> {
    pub purpose: &'a str,
    pub escalated: bool,
    pub has_findings: bool,
    /// Who wrote the text: the agent who edited it, else the conversation's assignee.
    pub author: Option<&'a str>,
}

impl SignoffConfig {
    pub fn check(&self) -> Result<(), String> {
        for (name, tiers) in [
            ("escalated", &self.escalated),
            ("expert_answer", &self.expert_answer),
            ("incident_statement", &self.incident_statement),
            ("new_agent", &self.new_agent),
            ("guard_findings", &self.guard_findings),
        ] {
            if tiers.contains(&Role::Agent) {
                return Err(format!(
                    "[signoff] {name}: an approval tier must be supervisor or admin"
                ));
            }
        }
        Ok(())
    }

    /// The tiers a draft needs, lowest role first. Where several rules apply, each role is
    /// needed as many times as the most demanding rule asks for it.
    pub fn tiers(&self, facts: &DraftFacts, agents: &[AgentConfig]) -> Vec<Role> {
        let new_author = facts
            .author
            .is_some_and(|a| agents.iter().any(|g| g.name == a && g.new));
        let applicable: Vec<&Vec<Role>> = [
            (facts.escalated, &self.escalated),
            (facts.purpose == "expert-answer", &self.expert_answer),
            (
                facts.purpose == "incident-statement",
                &self.incident_statement,
            ),
            (new_author, &self.new_agent),
            (facts.has_findings, &self.guard_findings),
        ]
        .into_iter()
        .filter_map(|(applies, tiers)| applies.then_some(tiers))
        .collect();
        let mut out = Vec::new();
        for role in [Role::Supervisor, Role::Admin] {
            let n = applicable
                .iter()
                .map(|t| t.iter().filter(|r| **r == role).count())
                .max()
                .unwrap_or(0);
            out.extend(std::iter::repeat_n(role, n));
        }
        out
    }
}

/// The name part of an actor (`agent:ana` → `ana`).
pub fn actor_name(actor: &str) -> &str {
    actor.split_once(':').map_or(actor, |(_, n)| n)
}

/// Where a sign-off stands after an approval.
#[derive(Debug, Clone, Serialize)]
pub struct SignoffState {
    pub required: Vec<Role>,
    pub approved: usize,
    /// Every tier approved: the draft can be sent.
    pub complete: bool,
}

/// How to assign a conversation routed to `team` with `labels` (names with score ≥ 0.5).
pub fn assign_plan(agents: &[AgentConfig], team: &str, labels: &[String]) -> Option<AssignPlan> {
    let members: Vec<&AgentConfig> = agents
        .iter()
        .filter(|a| a.teams.iter().any(|t| t == team))
        .collect();
    if members.is_empty() {
        return None;
    }
    Some(AssignPlan {
        team: team.to_string(),
        members: members
            .iter()
            .map(|a| (a.name.clone(), i64::from(a.capacity)))
            .collect(),
        preferred: members
            .iter()
            .filter(|a| a.skills.iter().any(|s| labels.contains(s)))
            .map(|a| a.name.clone())
            .collect(),
    })
}

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

/// A reply to the customer of `message`, in its thread.
pub fn reply_to(message: &crate::contract::Message, key: String, text: String) -> OutboundReply {
    OutboundReply {
        idempotency_key: key,
        conversation_key: message.conversation_key.clone(),
        in_reply_to: Some(message.external_id.clone()),
        recipient: message.author.clone(),
        text,
        visibility: message.visibility,
        extra: message.extra.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, new: bool) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            teams: vec!["care".into()],
            skills: vec![],
            expert_in: vec![],
            capacity: 2,
            new,
        }
    }

    #[test]
    fn tiers_combine_the_most_demanding_rules() {
        let s: SignoffConfig = toml::from_str(
            r#"escalated = ["supervisor"]
               incident_statement = ["supervisor", "admin"]
               new_agent = ["supervisor", "supervisor"]
               guard_findings = ["supervisor"]"#,
        )
        .unwrap();
        let agents = [agent("tom", true), agent("ana", false)];
        let f = |purpose, escalated, has_findings, author| DraftFacts {
            purpose,
            escalated,
            has_findings,
            author,
        };
        assert!(
            s.tiers(&f("reply", false, false, Some("ana")), &agents)
                .is_empty()
        );
        assert_eq!(
            s.tiers(&f("reply", true, false, None), &agents),
            [Role::Supervisor]
        );
        assert_eq!(
            s.tiers(&f("incident-statement", true, true, None), &agents),
            [Role::Supervisor, Role::Admin]
        );
        assert_eq!(
            s.tiers(&f("reply", true, false, Some("tom")), &agents),
            [Role::Supervisor, Role::Supervisor]
        );
        assert!(
            toml::from_str::<SignoffConfig>(r#"escalated = ["agent"]"#)
                .unwrap()
                .check()
                .unwrap_err()
                .contains("supervisor or admin")
        );
    }
}
