//! A candidate pipeline against the current one on the tenant's stored traffic: per message and
//! in total, which labels, decisions and drafts would change. Read by the CLI (`switchboard
//! replay`) and by the console's Plugins page before a swap is promoted. Nothing is stored or
//! sent.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_contract::Message;
use switchboard_runtime::Runtime;
use switchboard_store::{Store, StoreError};

use crate::pipeline::{self, Triage};
use crate::policy::Decision;
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
    /// What a pipeline run made of a message.
    pub fn from_triage(t: &Triage) -> Side {
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
    /// Count one message's two sides.
    pub fn add(&mut self, message: &Message, current: Side, candidate: Side, errors: Vec<String>) {
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

/// Run `current`'s stored, processed messages through `candidate` (only the `latest` ones when
/// given, so a request from the console stays short); compare with what the store recorded.
/// Both tenants must be the same tenant id.
pub async fn replay_stored(
    rt: &Runtime,
    store: &Store,
    current: &Tenant,
    candidate: &Tenant,
    latest: Option<usize>,
) -> Result<ReplayReport, StoreError> {
    if current.name != candidate.name {
        return Err(StoreError::Data(format!(
            "the candidate is tenant `{}`, the stored traffic is tenant `{}`",
            candidate.name, current.name
        )));
    }
    let mut report = ReplayReport::default();
    let mut ids = store.done_messages(&current.name).await?;
    if let Some(n) = latest {
        ids.drain(..ids.len().saturating_sub(n));
    }
    for id in ids {
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
