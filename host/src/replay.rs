//! Replay and shadow mode: how a candidate pipeline (a new classifier, a new plugin version, new
//! rules) would have treated real traffic, before it acts on any.
//!
//! - [`replay_stored`] runs a tenant's stored messages through a candidate and compares with what
//!   the store recorded; [`replay_requests`] runs a file of captured requests through both the
//!   current and the candidate pipeline. Neither writes to the store or sends anything.
//! - [`shadow_report`] compares, on stored traffic, each shadow classifier with the live one it
//!   would replace: label agreement, per-label confusion, and the decisions that would change.

use crate::contract::{Event, WebhookOutcome};
use crate::ingest::CapturedRequest;
use crate::pipeline;
use crate::policy::AuthorHistory;
use crate::runtime::Runtime;
use crate::tenant::Tenant;

// Stored-traffic replay and the shadow report live in the care layer, so the server can serve
// them to the console.
pub use switchboard_care::workflow::replay::{
    MessageDiff, PRESENT, ReplayReport, Side, replay_stored,
};

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

pub use switchboard_care::workflow::shadow::{ShadowComparison, shadow_report};
