//! One message through a tenant's plugins: classifiers (concurrently), reply-suggesters, and
//! the channel's own length rule on every draft. Failures of one plugin are recorded with the
//! message and never stop the others.

use serde::Serialize;

use crate::contract::{CallContext, Draft, Label, Message};
use crate::runtime::{CallError, Runtime, now_ms};
use crate::tenant::{Connector, Tenant};

/// A label and the classifier instance that produced it.
#[derive(Debug, Clone, Serialize)]
pub struct SourcedLabel {
    pub classifier: String,
    #[serde(flatten)]
    pub label: Label,
}

/// A draft, who proposed it, and how it measures against the channel's limit.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedDraft {
    pub suggester: String,
    #[serde(flatten)]
    pub draft: Draft,
    /// Length by the connector's own rule, if it could measure.
    pub length: Option<u32>,
    pub limit: u32,
    pub fits: bool,
}

/// Everything the pipeline produced for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    pub message: Message,
    pub labels: Vec<SourcedLabel>,
    pub drafts: Vec<CheckedDraft>,
    /// Plugin calls that failed for this message (the message itself is kept).
    pub errors: Vec<CallError>,
}

/// The context every classifier and suggester call gets for a message from `connector`.
pub fn call_context(tenant: &Tenant, connector: &Connector) -> CallContext {
    CallContext {
        now: now_ms(),
        length_rule: Some(connector.channel.length_rule.clone()),
        signature: tenant.signature.clone(),
        time_zone: tenant.time_zone.clone(),
    }
}

/// Run `message` (which came in through `connector`) through the tenant's pipeline.
pub async fn triage(
    rt: &Runtime,
    tenant: &Tenant,
    connector: &Connector,
    message: Message,
) -> Triage {
    let ctx = call_context(tenant, connector);
    let mut errors = Vec::new();

    let classified = futures::future::join_all(
        tenant
            .classifiers
            .iter()
            .map(|c| rt.classify(&c.plugin, &c.scope, &message, &ctx)),
    )
    .await;
    let mut labels = Vec::new();
    for (classifier, result) in tenant.classifiers.iter().zip(classified) {
        match result {
            Ok(found) => labels.extend(found.into_iter().map(|label| SourcedLabel {
                classifier: classifier.name.clone(),
                label,
            })),
            Err(e) => errors.push(e),
        }
    }
    let plain: Vec<Label> = labels.iter().map(|l| l.label.clone()).collect();

    let suggested = futures::future::join_all(
        tenant
            .suggesters
            .iter()
            .map(|s| rt.suggest(&s.plugin, &s.scope, &message, &plain, &ctx)),
    )
    .await;
    let limit = connector.channel.length_rule.max;
    let conn = &connector.instance;
    let mut drafts = Vec::new();
    for (suggester, result) in tenant.suggesters.iter().zip(suggested) {
        match result {
            Ok(found) => {
                for draft in found {
                    let length = match rt.measure(&conn.plugin, &conn.scope, &draft.text).await {
                        Ok(n) => Some(n),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    };
                    let fits = length.is_some_and(|n| n <= limit);
                    drafts.push(CheckedDraft {
                        suggester: suggester.name.clone(),
                        draft,
                        length,
                        limit,
                        fits,
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Triage {
        message,
        labels,
        drafts,
        errors,
    }
}
