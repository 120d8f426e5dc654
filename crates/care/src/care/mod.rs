//! The care workflow around the pipeline: service-level clocks (first and next response,
//! internal and published targets, in business hours or around the clock), the out-of-hours
//! reply, resolution with a satisfaction survey, the period report, and incidents (many
//! customers reporting the same problem: [`incidents`]).
//!
//! ```toml
//! [service_levels]
//! counting = "business-hours"        # or "around-the-clock"
//! warn_before_min = 10
//! first_response = { internal_min = 30, published_min = 60 }
//! next_response = { internal_min = 60, published_min = 120 }
//! on_internal_breach = ["raise-priority", "notify-supervisor"]
//! on_published_breach = ["raise-priority", "reassign", "notify-supervisor"]
//! [service_levels.channels.x]
//! first_response = { internal_min = 15, published_min = 30 }
//!
//! [away]                             # one automatic reply per conversation outside hours
//! message = "Thanks, {name}. We're back {opens}; meanwhile {self_service} may help. {signature}"
//! self_service = "https://help.acme.example"
//!
//! [satisfaction]                     # a survey after an agent resolves a conversation
//! question = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
//! delay_min = 0
//! answer_within_h = 72
//! ```

pub mod ack;
pub mod incidents;
pub mod report;
pub mod survey_answer;
pub mod team;

pub use incidents::IncidentsConfig;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use switchboard_store::{BreachAction, ClockPlan, Due, ReplyKind};

use crate::hours::BusinessHours;
use crate::policy::Action;

/// Whether the clock counts every minute or only opening hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counting {
    /// Minutes count only while the channel's business hours are open.
    #[default]
    BusinessHours,
    AroundTheClock,
}

/// One target: the team's own (tighter) and the one published to customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub internal_min: u32,
    pub published_min: u32,
}

/// A channel's own targets; what it leaves out comes from the tenant's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTargets {
    pub first_response: Option<Target>,
    pub next_response: Option<Target>,
}

fn default_warn() -> u32 {
    10
}
fn default_internal_actions() -> Vec<BreachAction> {
    vec![BreachAction::RaisePriority, BreachAction::NotifySupervisor]
}
fn default_published_actions() -> Vec<BreachAction> {
    vec![
        BreachAction::RaisePriority,
        BreachAction::Reassign,
        BreachAction::NotifySupervisor,
    ]
}

/// `[service_levels]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelsConfig {
    #[serde(default)]
    pub counting: Counting,
    #[serde(default = "default_warn")]
    pub warn_before_min: u32,
    pub first_response: Target,
    /// Defaults to the first-response target.
    pub next_response: Option<Target>,
    #[serde(default = "default_internal_actions")]
    pub on_internal_breach: Vec<BreachAction>,
    #[serde(default = "default_published_actions")]
    pub on_published_breach: Vec<BreachAction>,
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelTargets>,
}

/// `[away]`: the out-of-hours reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwayConfig {
    #[serde(default = "default_away")]
    pub message: String,
    /// Where customers can help themselves meanwhile (`{self_service}`).
    pub self_service: String,
}

fn default_away() -> String {
    "Thanks for your message, {name}. Our team is away right now and back {opens}. Meanwhile, {self_service} may have your answer. {signature}".into()
}

/// `[satisfaction]`: the survey after resolution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionConfig {
    #[serde(default = "default_question")]
    pub question: String,
    /// Minutes between resolution and the survey.
    #[serde(default)]
    pub delay_min: u32,
    /// How long an answer is taken as an answer to the survey.
    #[serde(default = "default_answer_window")]
    pub answer_within_h: u32,
}

fn default_question() -> String {
    "How did we do? Reply with a number from 1 (poor) to 5 (great).".into()
}
fn default_answer_window() -> u32 {
    72
}

/// The care sections of a tenant, checked.
#[derive(Debug, Clone, Default)]
pub struct Care {
    pub service_levels: Option<ServiceLevelsConfig>,
    pub away: Option<AwayConfig>,
    pub satisfaction: Option<SatisfactionConfig>,
    pub agents: Vec<team::AgentConfig>,
    pub signoff: team::SignoffConfig,
    pub incidents: Option<IncidentsConfig>,
}

const MINUTE: i64 = 60_000;

impl Care {
    pub fn check(&self, hours_configured: bool) -> Result<(), String> {
        if let Some(s) = &self.service_levels {
            let check = |what: &str, t: &Target| {
                if t.internal_min == 0 || t.published_min == 0 {
                    return Err(format!(
                        "[service_levels] {what}: targets must be at least 1 minute"
                    ));
                }
                if t.internal_min > t.published_min {
                    return Err(format!(
                        "[service_levels] {what}: the internal target ({} min) must not be looser than the published one ({} min)",
                        t.internal_min, t.published_min
                    ));
                }
                Ok(())
            };
            check("first_response", &s.first_response)?;
            if let Some(n) = &s.next_response {
                check("next_response", n)?;
            }
            for (channel, c) in &s.channels {
                if let Some(t) = &c.first_response {
                    check(&format!("channels.{channel}.first_response"), t)?;
                }
                if let Some(t) = &c.next_response {
                    check(&format!("channels.{channel}.next_response"), t)?;
                }
            }
        }
        if let Some(a) = &self.away {
            if !hours_configured {
                return Err("[away] needs [hours]: without them the tenant is never away".into());
            }
            if a.self_service.trim().is_empty() {
                return Err("[away] self_service: say where customers can help themselves".into());
            }
        }
        self.signoff.check()?;
        let mut names = std::collections::BTreeSet::new();
        for a in &self.agents {
            if a.name.trim().is_empty() || !names.insert(a.name.as_str()) {
                return Err(format!(
                    "[[agents]] `{}`: every agent needs a name of their own",
                    a.name
                ));
            }
            if a.capacity == 0 {
                return Err(format!(
                    "[[agents]] `{}`: capacity must be at least 1",
                    a.name
                ));
            }
        }
        if let Some(s) = &self.satisfaction {
            if s.question.trim().is_empty() {
                return Err("[satisfaction] question is empty".into());
            }
            if s.answer_within_h == 0 {
                return Err("[satisfaction] answer_within_h must be at least 1".into());
            }
        }
        if let Some(i) = &self.incidents {
            i.check()?;
        }
        Ok(())
    }

    /// The clock a customer message starting at `started_at` on `channel` would run, if the
    /// tenant keeps service levels.
    pub fn plan(&self, hours: &BusinessHours, channel: &str, started_at: i64) -> Option<ClockPlan> {
        let s = self.service_levels.as_ref()?;
        let own = s.channels.get(channel);
        let first = own
            .and_then(|c| c.first_response)
            .unwrap_or(s.first_response);
        let next = own
            .and_then(|c| c.next_response)
            .or(s.next_response)
            .unwrap_or(first);
        let hours = hours.for_channel(channel);
        let due = |minutes: u32| -> Option<i64> {
            let span = i64::from(minutes) * MINUTE;
            match s.counting {
                Counting::AroundTheClock => Some(started_at + span),
                Counting::BusinessHours => hours.add_open(started_at, span),
            }
        };
        let due_of = |t: Target| Due {
            internal: due(t.internal_min),
            published: due(t.published_min),
        };
        Some(ClockPlan {
            started_at,
            first: due_of(first),
            next: due_of(next),
        })
    }
}

/// Whether a decision means someone owes the customer an answer (so a clock runs).
pub fn engages(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| a.wants_drafts() || matches!(a, Action::Escalate { .. }))
}

/// A reply text's kind by what it says (agents may override when sending).
pub fn reply_kind_of_text(text: &str, signature: Option<&str>) -> ReplyKind {
    if ack::is_acknowledgement(text, signature) {
        ReplyKind::Acknowledgement
    } else {
        ReplyKind::Response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hours::HoursConfig;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn levels(counting: Counting) -> Care {
        Care {
            service_levels: Some(ServiceLevelsConfig {
                counting,
                warn_before_min: 10,
                first_response: Target {
                    internal_min: 30,
                    published_min: 60,
                },
                next_response: None,
                on_internal_breach: default_internal_actions(),
                on_published_breach: default_published_actions(),
                channels: BTreeMap::from([(
                    "x".to_string(),
                    ChannelTargets {
                        first_response: Some(Target {
                            internal_min: 15,
                            published_min: 30,
                        }),
                        next_response: None,
                    },
                )]),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn business_hours_push_the_due_time_past_closing_and_channels_have_their_own_targets() {
        let config = HoursConfig {
            fri: Some("08:00-20:00".into()),
            mon: Some("08:00-20:00".into()),
            ..Default::default()
        };
        let hours = BusinessHours::from_config("Europe/London", Some(&config)).unwrap();
        // Friday 19:50 London (GMT in December): 10 minutes left, 20 on Monday from 08:00.
        let start = ms("2026-12-04T19:50:00Z");
        let p = levels(Counting::BusinessHours)
            .plan(&hours, "webhook", start)
            .unwrap();
        assert_eq!(p.first.internal, Some(ms("2026-12-07T08:20:00Z")));
        assert_eq!(p.first.published, Some(ms("2026-12-07T08:50:00Z")));
        assert_eq!(p.next, p.first, "next defaults to first");
        let x = levels(Counting::BusinessHours)
            .plan(&hours, "x", start)
            .unwrap();
        assert_eq!(x.first.internal, Some(ms("2026-12-07T08:05:00Z")));
        let around = levels(Counting::AroundTheClock)
            .plan(&hours, "webhook", start)
            .unwrap();
        assert_eq!(around.first.internal, Some(start + 30 * MINUTE));
        assert!(Care::default().plan(&hours, "x", start).is_none());
    }

    #[test]
    fn loose_internal_targets_and_away_without_hours_are_refused() {
        let mut c = levels(Counting::BusinessHours);
        c.service_levels.as_mut().unwrap().first_response = Target {
            internal_min: 90,
            published_min: 60,
        };
        assert!(c.check(true).unwrap_err().contains("looser"));
        let away = Care {
            away: Some(AwayConfig {
                message: default_away(),
                self_service: "https://help.example".into(),
            }),
            ..Default::default()
        };
        assert!(away.check(false).unwrap_err().contains("[hours]"));
        assert!(away.check(true).is_ok());
    }

    #[test]
    fn only_decisions_that_owe_an_answer_start_a_clock() {
        assert!(engages(&[Action::Respond]));
        assert!(engages(&[Action::Escalate { to: "s".into() }]));
        assert!(!engages(&[Action::Monitor]));
        assert!(!engages(&[Action::Route {
            team: "brand".into()
        }]));
    }
}
