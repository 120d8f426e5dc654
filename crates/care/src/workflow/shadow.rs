//! Shadow classifiers against the live ones they would replace, on the stored traffic: label
//! agreement, a confusion table, and the decisions that would change. Read by the CLI
//! (`switchboard shadow-report`) and by the console's Plugins page before a swap.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_contract::Label;
use switchboard_store::{Store, StoreError};

use crate::pipeline;
use crate::tenant::Tenant;

/// A label counts as present from this score.
const PRESENT: f64 = 0.5;

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
        let to_label = |r: &switchboard_store::LabelRow| Label {
            name: r.name.clone(),
            score: r.score as f32,
            evidence: vec![],
        };
        let live_all: Vec<&switchboard_store::LabelRow> =
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
