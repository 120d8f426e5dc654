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

use switchboard_contract::OutboundReply;
use switchboard_store::{AssignPlan, Role};

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

pub use switchboard_store::actor_name;

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

/// A reply to the customer of `message`, in its thread.
pub fn reply_to(
    message: &switchboard_contract::Message,
    key: String,
    text: String,
) -> OutboundReply {
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
