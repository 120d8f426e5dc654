//! The care workflow's moves on the engine: the service-level sweep (warn, breach, act), the
//! clock as agents see it, resolution with its survey, and survey answers coming back.

use serde::Serialize;

use crate::care::ServiceLevelsConfig;
use crate::care::survey_answer::{AnswerForm, parse_answer};
use crate::tenant::Tenant;
use crate::worker::{Engine, Processed, idempotency_key};
use switchboard_contract::{MessageAction, OutboundReply, Visibility};
use switchboard_store::{
    ActionError, ClockEvent, ClockEventItem, ClockRow, StoreError, StoredMessage, SurveyRequest,
};

const MINUTE: i64 = 60_000;
/// Clock events a sweep records per transaction.
const EVENTS_PER_COMMIT: usize = 100;

/// What one sweep recorded.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub running: usize,
    pub warned: usize,
    pub internal_breaches: usize,
    pub published_breaches: usize,
}

/// A clock as an agent sees it now.
#[derive(Debug, Clone, Serialize)]
pub struct ClockView {
    #[serde(flatten)]
    pub clock: ClockRow,
    /// `running`, `warning`, `internal-breached`, `breached`; once stopped: `met` (inside
    /// the internal target), `met-published` (only the published one), `missed`.
    pub state: &'static str,
    /// Until the next due time that has not passed (negative once both have), while running.
    pub due_in_ms: Option<i64>,
}

fn state_of(c: &ClockRow, now: i64, warn_ms: i64) -> (&'static str, Option<i64>) {
    let passed = |due: Option<i64>, at: i64| due.is_some_and(|d| at > d);
    match c.stopped_at {
        Some(at) if !passed(c.internal_due_at, at) => ("met", None),
        Some(at) if !passed(c.published_due_at, at) => ("met-published", None),
        Some(_) => ("missed", None),
        None => {
            // Running: due at the due time itself, as the sweep records it.
            let reached = |due: Option<i64>| due.is_some_and(|d| now >= d);
            let next_due = if reached(c.internal_due_at) {
                c.published_due_at
            } else {
                c.internal_due_at
            };
            let due_in = next_due.map(|d| d - now);
            let state = if reached(c.published_due_at) {
                "breached"
            } else if reached(c.internal_due_at) {
                "internal-breached"
            } else if c.internal_due_at.is_some_and(|d| now >= d - warn_ms) {
                "warning"
            } else {
                "running"
            };
            (state, due_in)
        }
    }
}

fn warn_ms(levels: Option<&ServiceLevelsConfig>) -> i64 {
    levels.map_or(0, |l| i64::from(l.warn_before_min) * MINUTE)
}

impl Engine {
    /// Look at every running clock of `tenant` and record, once each, the warning before the
    /// internal target, the internal breach and the published breach, applying the tenant's
    /// breach actions. Safe to run as often as wanted, by several workers.
    pub async fn sweep_service_levels(&self, tenant: &Tenant) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let Some(levels) = &tenant.care.service_levels else {
            return Ok(report);
        };
        let now = self.store.now();
        let warn = warn_ms(Some(levels));
        let clocks = self.store.running_clocks(&tenant.name).await?;
        report.running = clocks.len();
        let reached = |due: Option<i64>, before: i64| due.is_some_and(|d| now >= d - before);
        // Where each breaching clock's reassignment goes: the next member of its conversation's
        // team with room. Looked up only for a clock that breaches now, not every running one.
        let mut teams = Vec::with_capacity(clocks.len());
        for clock in &clocks {
            let breach = (clock.internal_breached_at.is_none()
                && reached(clock.internal_due_at, 0))
                || (clock.published_breached_at.is_none() && reached(clock.published_due_at, 0));
            teams.push(match breach {
                false => None,
                true => match self
                    .store
                    .conversation_ref(&tenant.name, &clock.conversation_id)
                    .await?
                {
                    Some((_, _, _, Some(team))) => {
                        crate::care::team::assign_plan(&tenant.care.agents, &team, &[])
                    }
                    _ => None,
                },
            });
        }
        // In order per clock: a sweep that wakes late still warns before it breaches.
        let mut events = Vec::new();
        for (clock, team) in clocks.iter().zip(&teams) {
            if clock.warned_at.is_none() && reached(clock.internal_due_at, warn) {
                events.push(ClockEventItem {
                    clock,
                    event: ClockEvent::Warned,
                    actions: &[],
                    team: None,
                });
            }
            if clock.internal_breached_at.is_none() && reached(clock.internal_due_at, 0) {
                events.push(ClockEventItem {
                    clock,
                    event: ClockEvent::InternalBreach,
                    actions: &levels.on_internal_breach,
                    team: team.as_ref(),
                });
            }
            if clock.published_breached_at.is_none() && reached(clock.published_due_at, 0) {
                events.push(ClockEventItem {
                    clock,
                    event: ClockEvent::PublishedBreach,
                    actions: &levels.on_published_breach,
                    team: team.as_ref(),
                });
            }
        }
        // A backlog breaches thousands of clocks at once: one commit per chunk, not per event.
        for chunk in events.chunks(EVENTS_PER_COMMIT) {
            let recorded = self.store.clock_events(&tenant.name, chunk).await?;
            for (item, recorded) in chunk.iter().zip(recorded) {
                if recorded {
                    match item.event {
                        ClockEvent::Warned => report.warned += 1,
                        ClockEvent::InternalBreach => report.internal_breaches += 1,
                        ClockEvent::PublishedBreach => report.published_breaches += 1,
                    }
                }
            }
        }
        Ok(report)
    }

    /// The running clocks of `tenant` (or every clock of one conversation) with their state now,
    /// most urgent first.
    pub async fn service_levels(
        &self,
        tenant: &Tenant,
        conversation: Option<&str>,
    ) -> Result<Vec<ClockView>, StoreError> {
        let now = self.store.now();
        let warn = warn_ms(tenant.care.service_levels.as_ref());
        let rows = match conversation {
            Some(c) => {
                self.store
                    .clocks(&tenant.name, Some(c), i64::MIN, i64::MAX)
                    .await?
            }
            None => self.store.running_clocks(&tenant.name).await?,
        };
        let mut views: Vec<ClockView> = rows
            .into_iter()
            .map(|clock| {
                let (state, due_in_ms) = state_of(&clock, now, warn);
                ClockView {
                    clock,
                    state,
                    due_in_ms,
                }
            })
            .collect();
        views.sort_by_key(|v| v.due_in_ms.unwrap_or(i64::MAX));
        Ok(views)
    }

    /// Resolve a conversation of `tenant` (by id or channel key). With `[satisfaction]`, the
    /// survey goes out in the same channel after the configured delay, privately if the
    /// conversation was private. Returns the conversation id and the survey's id.
    pub async fn resolve(
        &self,
        tenant: &Tenant,
        conversation: &str,
        actor: &str,
    ) -> Result<(String, Option<String>), ActionError> {
        let (id, state, _, _) = self
            .store
            .conversation_ref(&tenant.name, conversation)
            .await?
            .ok_or(ActionError::NotFound)?;
        let survey = match &tenant.care.satisfaction {
            None => None,
            Some(config) => {
                let last = self
                    .store
                    .last_message(&tenant.name, &id)
                    .await?
                    .ok_or(ActionError::NotFound)?;
                let m = &last.message;
                let private = state == "private" || m.visibility == Visibility::Private;
                let now = self.store.now();
                let send_at = now + i64::from(config.delay_min) * MINUTE;
                Some(SurveyRequest {
                    connector: last.connector.clone(),
                    message_id: last.id.clone(),
                    send_at,
                    expires_at: send_at + i64::from(config.answer_within_h) * 60 * MINUTE,
                    reply: OutboundReply {
                        // One survey per resolution: a conversation resolved again later gets
                        // a new one.
                        idempotency_key: idempotency_key(&last.id, &format!("survey-{now}")),
                        conversation_key: m.conversation_key.clone(),
                        in_reply_to: Some(m.external_id.clone()),
                        recipient: m.author.clone(),
                        text: config.question.clone(),
                        visibility: if private {
                            Visibility::Private
                        } else {
                            Visibility::Public
                        },
                        extra: m.extra.clone(),
                    },
                })
            }
        };
        let survey_id = self
            .store
            .resolve(&tenant.name, &id, actor, survey.as_ref())
            .await?;
        Ok((id, survey_id))
    }

    /// If `stored` answers its conversation's open survey, record the answer instead of
    /// triaging it. A message that does not read as a rating is an ordinary message.
    pub(crate) async fn take_survey_answer(
        &self,
        stored: &StoredMessage,
    ) -> Result<Option<Processed>, StoreError> {
        if stored.message.action != MessageAction::Created {
            return Ok(None);
        }
        let Some(survey) = self
            .store
            .open_survey(&stored.conversation_id, self.store.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(rating) = parse_answer(&stored.message.text) else {
            return Ok(None);
        };
        let form = match rating.form {
            AnswerForm::Number => "number",
            AnswerForm::Word => "word",
            AnswerForm::Emoji => "emoji",
        };
        Ok(Some(
            if self
                .store
                .record_survey_answer(stored, &survey, rating.score, form)
                .await?
            {
                Processed::SurveyAnswer {
                    score: rating.score,
                }
            } else {
                Processed::AlreadyDone
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(internal: i64, published: i64, stopped: Option<i64>) -> ClockRow {
        ClockRow {
            id: "c".into(),
            conversation_id: "v".into(),
            channel: "x".into(),
            message_id: "m".into(),
            kind: "first".into(),
            started_at: 0,
            internal_due_at: Some(internal),
            published_due_at: Some(published),
            warned_at: None,
            internal_breached_at: None,
            published_breached_at: None,
            stopped_at: stopped,
            stopped_by: None,
            assignee: None,
            team: None,
        }
    }

    #[test]
    fn a_clock_reads_running_warning_breached_and_met_by_its_due_times() {
        let c = clock(30, 60, None);
        assert_eq!(state_of(&c, 10, 10), ("running", Some(20)));
        assert_eq!(state_of(&c, 20, 10), ("warning", Some(10)));
        assert_eq!(state_of(&c, 30, 10), ("internal-breached", Some(30)));
        assert_eq!(state_of(&c, 60, 10), ("breached", Some(0)));
        assert_eq!(state_of(&c, 61, 10), ("breached", Some(-1)));
        assert_eq!(state_of(&clock(30, 60, Some(30)), 99, 10).0, "met");
        assert_eq!(
            state_of(&clock(30, 60, Some(45)), 99, 10).0,
            "met-published"
        );
        assert_eq!(state_of(&clock(30, 60, Some(61)), 99, 10).0, "missed");
    }
}
