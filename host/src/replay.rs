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

use crate::contract::{Event, Label, Message, WebhookOutcome};
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

/// Agreement between one shadow classifier and the live classifier it would replace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShadowComparison {
    pub shadow: String,
    pub live: String,
    pub messages: usize,
    /// Messages where both give the same set of labels (score ≥ 0.5).
    pub agreeing: usize,
    pub agreement: f64,
    /// Per label: [both, live only, shadow only].
    pub confusion: BTreeMap<String, [usize; 3]>,
    /// Messages whose decision would change if the shadow replaced the live classifier.
    pub decisions_changed: usize,
    /// "live decision → shadow decision" with counts.
    pub decision_changes: BTreeMap<String, usize>,
}

/// Compare every shadow classifier of `tenant` with the live one it names in `replaces`, on
/// the stored traffic: labels, and the policy's decisions as they would be with the shadow's
/// labels in place of the live one's.
pub async fn shadow_report(
    store: &Store,
    tenant: &Tenant,
) -> Result<Vec<ShadowComparison>, StoreError> {
    let mut out: Vec<ShadowComparison> = tenant
        .shadow_classifiers
        .iter()
        .filter_map(|s| {
            s.replaces.as_ref().map(|live| ShadowComparison {
                shadow: s.name.clone(),
                live: live.clone(),
                ..Default::default()
            })
        })
        .collect();
    if out.is_empty() {
        return Ok(out);
    }
    for id in store.done_messages(&tenant.name).await? {
        let ran = store.shadows_run(&id).await?;
        if ran.is_empty() {
            continue;
        }
        let rows = store.labels(&id).await?;
        let stored = store.message(&id).await?;
        let history = store.author_history(&stored).await?;
        let to_label = |r: &crate::store::LabelRow| Label {
            name: r.name.clone(),
            score: r.score as f32,
            evidence: vec![],
        };
        let live_all: Vec<&crate::store::LabelRow> =
            rows.iter().filter(|r| r.role == "live").collect();
        let degraded = vec![];
        let before_labels: Vec<Label> = live_all.iter().map(|r| to_label(r)).collect();
        let before = tenant
            .policy
            .decide(&pipeline::facts(
                tenant,
                &stored.message,
                &before_labels,
                &history,
                &degraded,
            ))
            .summary();
        for cmp in out.iter_mut().filter(|c| ran.contains(&c.shadow)) {
            let present = |role: &str, classifier: &str| -> BTreeSet<String> {
                rows.iter()
                    .filter(|r| r.role == role && r.classifier == classifier && r.score >= PRESENT)
                    .map(|r| r.name.clone())
                    .collect()
            };
            let live = present("live", &cmp.live);
            let shadow = present("shadow", &cmp.shadow);
            cmp.messages += 1;
            cmp.agreeing += usize::from(live == shadow);
            for name in live.union(&shadow) {
                let cell = cmp.confusion.entry(name.clone()).or_default();
                match (live.contains(name), shadow.contains(name)) {
                    (true, true) => cell[0] += 1,
                    (true, false) => cell[1] += 1,
                    _ => cell[2] += 1,
                }
            }
            let swapped: Vec<Label> = rows
                .iter()
                .filter(|r| {
                    (r.role == "live" && r.classifier != cmp.live)
                        || (r.role == "shadow" && r.classifier == cmp.shadow)
                })
                .map(to_label)
                .collect();
            let after = tenant
                .policy
                .decide(&pipeline::facts(
                    tenant,
                    &stored.message,
                    &swapped,
                    &history,
                    &degraded,
                ))
                .summary();
            if after != before {
                cmp.decisions_changed += 1;
                *cmp.decision_changes
                    .entry(format!("{before} → {after}"))
                    .or_default() += 1;
            }
        }
    }
    for cmp in &mut out {
        cmp.agreement = if cmp.messages == 0 {
            0.0
        } else {
            cmp.agreeing as f64 / cmp.messages as f64
        };
    }
    Ok(out)
}
