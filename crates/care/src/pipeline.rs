//! One message through a tenant's pipeline, without side effects: classifiers (live and shadow,
//! concurrently), the care policy, reply-suggesters when the policy asks for drafts, and the
//! reply guards on every draft (the channel's own length rule included). The durable worker
//! (`crate::worker`) stores what this returns; replay runs it on a candidate tenant and
//! compares.
//!
//! Failures follow each plugin's failure policy: fail-open skips the plugin and marks the
//! message degraded; fail-closed stops here and asks for the message to be held and retried.

use serde::Serialize;
use tracing::Instrument;

use crate::guards::{self, Finding};
use crate::policy::{Action, AuthorHistory, Decision, Facts};
use crate::tenant::{Connector, FailurePolicy, Instance, Tenant};
use switchboard_contract::{CallContext, Draft, Label, Message, MessageAction, Visibility};
use switchboard_runtime::{CallError, Runtime, now_ms};

/// A label and the classifier instance that produced it.
#[derive(Debug, Clone, Serialize)]
pub struct SourcedLabel {
    pub classifier: String,
    /// The plugin version behind it (`name@version#digest-prefix`): which version decided.
    pub plugin: String,
    #[serde(flatten)]
    pub label: Label,
}

/// Why a draft exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftPurpose {
    /// An answer from a reply-suggester.
    Reply,
    /// The host's public invitation to continue in a private message (`take-private`).
    PrivateInvitation,
    /// The host's out-of-hours reply (`[away]`): when the team is back, where to help yourself.
    Away,
}

impl DraftPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftPurpose::Reply => "reply",
            DraftPurpose::PrivateInvitation => "private-invitation",
            DraftPurpose::Away => "away",
        }
    }
}

/// A draft, who proposed it, how it measures against the channel's limit, and what the guards
/// found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedDraft {
    pub suggester: String,
    pub purpose: DraftPurpose,
    #[serde(flatten)]
    pub draft: Draft,
    /// Length by the connector's own rule, if it could measure.
    pub length: Option<u32>,
    pub limit: u32,
    pub fits: bool,
    pub findings: Vec<Finding>,
    /// A guard blocked it: it cannot go out automatically.
    pub blocked: bool,
}

/// Everything the pipeline produced for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    pub message: Message,
    pub labels: Vec<SourcedLabel>,
    /// Labels of shadow classifiers: recorded and compared, never acted on.
    pub shadow_labels: Vec<SourcedLabel>,
    pub decision: Decision,
    pub drafts: Vec<CheckedDraft>,
    /// Plugin calls that failed for this message (the message itself is kept).
    pub errors: Vec<CallError>,
    /// Plugins skipped by a fail-open failure.
    pub degraded: Vec<String>,
    /// Set when a fail-closed plugin failed: hold the message and retry; nothing else here
    /// is to be acted on.
    pub held: Option<String>,
    /// Shadow classifiers that ran without failing.
    pub shadows_run: Vec<String>,
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

/// The highest score per label name.
pub fn label_scores<'a>(
    labels: impl IntoIterator<Item = &'a Label>,
) -> std::collections::BTreeMap<String, f64> {
    let mut scores = std::collections::BTreeMap::new();
    for l in labels {
        let s = scores.entry(l.name.clone()).or_insert(0.0f64);
        *s = s.max(f64::from(l.score));
    }
    scores
}

/// What a policy rule can read about `message`.
pub fn facts(
    tenant: &Tenant,
    message: &Message,
    labels: &[Label],
    history: &AuthorHistory,
    degraded: &[String],
) -> Facts {
    let moment = tenant.hours.for_channel(&message.channel).at(now_ms());
    Facts {
        labels: label_scores(labels),
        channel: message.channel.clone(),
        public: message.visibility == Visibility::Public,
        origin: format!("{:?}", message.origin)
            .chars()
            .fold(String::new(), |mut s, c| {
                if c.is_uppercase() && !s.is_empty() {
                    s.push('-');
                }
                s.extend(c.to_lowercase());
                s
            }),
        text: message.text.clone(),
        language: message.language.clone().unwrap_or_default(),
        author_id: message.author.id.clone(),
        author_handle: message.author.handle.clone().unwrap_or_default(),
        history: history.clone(),
        in_hours: moment.open,
        weekday: moment.weekday,
        hour: moment.hour,
        degraded: degraded.to_vec(),
    }
}

fn fill(template: &str, tenant: &Tenant, message: &Message) -> String {
    let name = message
        .author
        .display_name
        .clone()
        .or_else(|| message.author.handle.clone())
        .unwrap_or_else(|| "there".into());
    let first = name
        .split_whitespace()
        .next()
        .unwrap_or("there")
        .to_string();
    template
        .replace("{name}", &first)
        .replace("{signature}", tenant.signature.as_deref().unwrap_or(""))
        .trim()
        .to_string()
}

async fn classify_all(
    rt: &Runtime,
    classifiers: &[Instance],
    message: &Message,
    ctx: &CallContext,
) -> Vec<(String, String, FailurePolicy, Result<Vec<Label>, CallError>)> {
    let results = futures::future::join_all(
        classifiers
            .iter()
            .map(|c| rt.classify(&c.plugin, &c.scope, message, ctx)),
    )
    .await;
    classifiers
        .iter()
        .zip(results)
        .map(|(c, r)| (c.name.clone(), c.plugin.provenance(), c.on_failure, r))
        .collect()
}

/// Run `message` (which came in through `connector`) through the tenant's pipeline.
pub async fn triage(
    rt: &Runtime,
    tenant: &Tenant,
    connector: &Connector,
    message: Message,
    history: &AuthorHistory,
) -> Triage {
    let ctx = call_context(tenant, connector);
    let mut t = Triage {
        message,
        labels: vec![],
        shadow_labels: vec![],
        decision: Decision::default(),
        drafts: vec![],
        errors: vec![],
        degraded: vec![],
        held: None,
        shadows_run: vec![],
    };
    // A deletion is recorded, not triaged: there is nothing left to answer.
    if t.message.action == MessageAction::Deleted {
        return t;
    }

    let (live, shadow) = futures::future::join(
        classify_all(rt, &tenant.classifiers, &t.message, &ctx),
        classify_all(rt, &tenant.shadow_classifiers, &t.message, &ctx),
    )
    .instrument(tracing::info_span!("classify", tenant = %tenant.name))
    .await;
    for (name, plugin, policy, result) in live {
        match result {
            Ok(found) => t.labels.extend(found.into_iter().map(|label| SourcedLabel {
                classifier: name.clone(),
                plugin: plugin.clone(),
                label,
            })),
            Err(e) => {
                if policy == FailurePolicy::Closed && t.held.is_none() {
                    t.held = Some(format!("classifier `{name}` (fail-closed): {e}"));
                } else {
                    t.degraded.push(name.clone());
                }
                t.errors.push(e);
            }
        }
    }
    for (name, plugin, _, result) in shadow {
        match result {
            Ok(found) => {
                t.shadows_run.push(name.clone());
                t.shadow_labels
                    .extend(found.into_iter().map(|label| SourcedLabel {
                        classifier: name.clone(),
                        plugin: plugin.clone(),
                        label,
                    }));
            }
            Err(e) => t.errors.push(e),
        }
    }
    if t.held.is_some() {
        return t;
    }

    let plain: Vec<Label> = t.labels.iter().map(|l| l.label.clone()).collect();
    t.decision = tracing::info_span!("policy", tenant = %tenant.name).in_scope(|| {
        tenant
            .policy
            .decide(&facts(tenant, &t.message, &plain, history, &t.degraded))
    });
    if !t.decision.actions.iter().any(Action::wants_drafts) {
        return t;
    }
    let private = t.decision.actions.contains(&Action::TakePrivate);

    let suggested = futures::future::join_all(
        tenant
            .suggesters
            .iter()
            .map(|s| rt.suggest(&s.plugin, &s.scope, &t.message, &plain, &ctx)),
    )
    .instrument(tracing::info_span!("suggest", tenant = %tenant.name))
    .await;
    let mut proposals: Vec<(String, DraftPurpose, Draft)> = Vec::new();
    if private {
        proposals.push((
            "policy".into(),
            DraftPurpose::PrivateInvitation,
            Draft {
                text: fill(&tenant.policy.private_invitation, tenant, &t.message),
                visibility: Visibility::Public,
                confidence: 1.0,
                rationale: "take-private: a public invitation to continue in a private message"
                    .into(),
            },
        ));
    }
    if let Some(text) = away_text(tenant, &t.message) {
        proposals.push((
            "away".into(),
            DraftPurpose::Away,
            Draft {
                text,
                visibility: t.message.visibility,
                confidence: 1.0,
                rationale: "written outside business hours: when the team is back, and where to help yourself meanwhile".into(),
            },
        ));
    }
    for (suggester, result) in tenant.suggesters.iter().zip(suggested) {
        match result {
            Ok(found) => {
                for mut draft in found {
                    if private {
                        draft.visibility = Visibility::Private;
                    }
                    proposals.push((suggester.name.clone(), DraftPurpose::Reply, draft));
                }
            }
            Err(e) => {
                if suggester.on_failure == FailurePolicy::Closed && t.held.is_none() {
                    t.held = Some(format!("suggester `{}` (fail-closed): {e}", suggester.name));
                } else {
                    t.degraded.push(suggester.name.clone());
                }
                t.errors.push(e);
            }
        }
    }
    if t.held.is_some() {
        return t;
    }

    let limit = connector.channel.length_rule.max;
    for (suggester, purpose, draft) in proposals {
        let (length, findings, error) = check_text(rt, tenant, connector, &draft.text)
            .instrument(
                tracing::info_span!("guards", tenant = %tenant.name, suggester = %suggester),
            )
            .await;
        t.errors.extend(error);
        t.drafts.push(CheckedDraft {
            suggester,
            purpose,
            blocked: guards::blocks(&findings),
            fits: length.is_some_and(|n| n <= limit),
            draft,
            length,
            limit,
            findings,
        });
    }
    t
}

/// The out-of-hours reply for `message`, if the tenant has one and the message came in while its
/// channel's hours were closed. Whether the conversation already had one is the store's call.
fn away_text(tenant: &Tenant, message: &Message) -> Option<String> {
    let away = tenant.care.away.as_ref()?;
    let hours = tenant.hours.for_channel(&message.channel);
    if hours.at(message.received_at).open {
        return None;
    }
    let opens = hours
        .next_open(message.received_at)
        .map(|at| hours.describe(at))
        .unwrap_or_else(|| "as soon as we can".into());
    Some(fill(
        &away
            .message
            .replace("{opens}", &opens)
            .replace("{self_service}", &away.self_service),
        tenant,
        message,
    ))
}

/// Measure a reply text by the channel's own rule and run the tenant's reply guards on it: what
/// every draft goes through, whether a suggester or an agent wrote it.
pub async fn check_text(
    rt: &Runtime,
    tenant: &Tenant,
    connector: &Connector,
    text: &str,
) -> (Option<u32>, Vec<Finding>, Option<CallError>) {
    let conn = &connector.instance;
    let (length, error) = match rt.measure(&conn.plugin, &conn.scope, text).await {
        Ok(n) => (Some(n), None),
        Err(e) => (None, Some(e)),
    };
    let findings = tenant
        .guards
        .check(text, length, connector.channel.length_rule.max);
    (length, findings, error)
}
