//! Replay and shadow mode: how a candidate pipeline (a new classifier, a new plugin version, new
//! rules) would have treated real traffic, before it acts on any.
//!
//! - [`replay_stored`] runs a tenant's stored messages through a candidate and compares with what
//!   the store recorded; [`replay_requests`] runs a file of captured requests through both the
//!   current and the candidate pipeline. Neither writes to the store or sends anything.
//! - [`shadow_report`] compares, on stored traffic, each shadow classifier with the live one it
//!   would replace: label agreement, per-label confusion, and the decisions that would change.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::contract::{Event, Message, WebhookOutcome};
use crate::ingest::CapturedRequest;
use crate::pipeline::{self, Triage};
use crate::policy::{AuthorHistory, Decision};
use crate::runtime::Runtime;
use crate::store::{Store, StoreError};
use crate::tenant::Tenant;

/// A label's presence threshold for comparisons.
pub const PRESENT: f64 = 0.5;

/// One side of a comparison.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Side {
    /// Label name → score (highest per name).
    pub labels: BTreeMap<String, f64>,
    pub decision: String,
    pub rules: Vec<String>,
    pub drafts: Vec<String>,
}

impl Side {
    fn from_triage(t: &Triage) -> Side {
        Side {
            labels: pipeline::label_scores(t.labels.iter().map(|l| &l.label)),
            decision: t.decision.summary(),
            rules: t.decision.fired.iter().map(|f| f.rule.clone()).collect(),
            drafts: t.drafts.iter().map(|d| d.draft.text.clone()).collect(),
        }
    }

    fn present(&self) -> BTreeSet<&str> {
        self.labels
            .iter()
            .filter(|(_, s)| **s >= PRESENT)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// How one message fares under the current and the candidate pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDiff {
    pub external_id: String,
    pub text: String,
    pub current: Side,
    pub candidate: Side,
    pub labels_changed: bool,
    pub decision_changed: bool,
    pub drafts_changed: bool,
    /// Candidate plugin calls that failed on this message.
    pub candidate_errors: Vec<String>,
}

/// Totals of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    pub messages: usize,
    pub labels_changed: usize,
    pub decisions_changed: usize,
    pub drafts_changed: usize,
    /// "current → candidate" decision pairs that changed, with their counts.
    pub decision_changes: BTreeMap<String, usize>,
    pub diffs: Vec<MessageDiff>,
}

impl ReplayReport {
    fn add(&mut self, message: &Message, current: Side, candidate: Side, errors: Vec<String>) {
        let labels_changed = current.present() != candidate.present();
        let decision_changed = current.decision != candidate.decision;
        let drafts_changed = current.drafts != candidate.drafts;
        self.messages += 1;
        self.labels_changed += usize::from(labels_changed);
        self.decisions_changed += usize::from(decision_changed);
        self.drafts_changed += usize::from(drafts_changed);
        if decision_changed {
            *self
                .decision_changes
                .entry(format!("{} → {}", current.decision, candidate.decision))
                .or_default() += 1;
        }
        self.diffs.push(MessageDiff {
            external_id: message.external_id.clone(),
            text: message.text.clone(),
            current,
            candidate,
            labels_changed,
            decision_changed,
            drafts_changed,
            candidate_errors: errors,
        });
    }
}

/// Run `current`'s stored, processed messages through `candidate`; compare with what the
/// store recorded. Both tenants must be the same tenant id.
pub async fn replay_stored(
    rt: &Runtime,
    store: &Store,
    current: &Tenant,
    candidate: &Tenant,
) -> Result<ReplayReport, StoreError> {
    if current.name != candidate.name {
        return Err(StoreError::Data(format!(
            "the candidate is tenant `{}`, the stored traffic is tenant `{}`",
            candidate.name, current.name
        )));
    }
    let mut report = ReplayReport::default();
    for id in store.done_messages(&current.name).await? {
        let stored = store.message(&id).await?;
        let history = store.author_history(&stored).await?;
        let labels = store.labels(&id).await?;
        let mut before = Side {
            labels: BTreeMap::new(),
            ..Default::default()
        };
        for l in labels.iter().filter(|l| l.role == "live") {
            let s = before.labels.entry(l.name.clone()).or_insert(0.0);
            *s = s.max(l.score);
        }
        if let Some((_, fired)) = store.decision(&id).await? {
            let d: Decision = serde_json::from_value(fired).unwrap_or_default();
            before.decision = d.summary();
            before.rules = d.fired.iter().map(|f| f.rule.clone()).collect();
        }
        before.drafts = store
            .drafts(&id)
            .await?
            .into_iter()
            .map(|d| d.text)
            .collect();
        let Ok(connector) = candidate.connector(Some(&stored.connector)) else {
            return Err(StoreError::Data(format!(
                "the candidate has no connector `{}`, which stored messages came through",
                stored.connector
            )));
        };
        let t = pipeline::triage(rt, candidate, connector, stored.message.clone(), &history).await;
        let errors = t.errors.iter().map(ToString::to_string).collect();
        report.add(&stored.message, before, Side::from_triage(&t), errors);
    }
    Ok(report)
}

/// Run captured requests through the current and the candidate pipeline, side by side. Requests
/// the current connector refuses are counted in `refused`, with their reasons.
pub async fn replay_requests(
    rt: &Runtime,
    current: &Tenant,
    candidate: &Tenant,
    requests: &[CapturedRequest],
) -> (ReplayReport, Vec<String>) {
    let mut report = ReplayReport::default();
    let mut refused = Vec::new();
    let history = AuthorHistory::default();
    for (i, captured) in requests.iter().enumerate() {
        let (Ok(now), Ok(next)) = (
            current.connector(captured.connector.as_deref()),
            candidate.connector(captured.connector.as_deref()),
        ) else {
            refused.push(format!(
                "request {}: no such connector in both tenants",
                i + 1
            ));
            continue;
        };
        let c = &now.instance;
        let events = match rt
            .handle_webhook(&c.plugin, &c.scope, &now.channel.channel, &captured.request)
            .await
        {
            Ok(WebhookOutcome::Events(events)) => events,
            Ok(WebhookOutcome::Challenge(_)) => continue,
            Err(e) => {
                refused.push(format!("request {}: {e}", i + 1));
                continue;
            }
        };
        for event in events {
            if let Event::Message(m) = event {
                let (a, b) = futures::future::join(
                    pipeline::triage(rt, current, now, m.clone(), &history),
                    pipeline::triage(rt, candidate, next, m.clone(), &history),
                )
                .await;
                let errors = b.errors.iter().map(ToString::to_string).collect();
                report.add(&m, Side::from_triage(&a), Side::from_triage(&b), errors);
            }
        }
    }
    (report, refused)
}

// The shadow report moved to the care layer so the server can serve it to the console.
pub use switchboard_care::workflow::shadow::{ShadowComparison, shadow_report};
