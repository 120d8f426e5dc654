//! The durable pipeline: a message is stored before it is acknowledged, processed in one
//! transaction (labels, decision, drafts, outbox), and its replies are delivered from the
//! outbox at least once with a stable idempotency key. After a crash, whatever was accepted but
//! not committed is processed again from the start (plugin calls have no side effects; the
//! commit happens once), and replies caught mid-send are sent again with the same key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tracing::Instrument;
use tracing::field::Empty;

use crate::care::ReplyKind;
use crate::care::incidents::TextWindow;
use crate::pipeline::{self, Triage};
use crate::policy::Action;
use crate::tenant::{Connector, Tenant};
use crate::traces;
use switchboard_contract::{
    AnsweredWebhook, Event, HttpRequest, Message, MessageAction, OutboundReply, PluginError,
    Visibility, WebhookOutcome,
};
use switchboard_runtime::{CallError, CallFailure, Runtime};
use switchboard_store::{
    Acceptance, Accepted, ActionError, DraftRow, IncidentReport, LabelRow, OutboxRow, Outcome,
    QueuedReply, Store, StoreError,
};

/// A runtime and a store: everything needed to move a tenant's messages along.
#[derive(Clone)]
pub struct Engine {
    pub rt: Runtime,
    pub store: Store,
    /// Shingles of recent incident reports, shared by the engine's clones (rebuilt on demand
    /// after a restart).
    pub(crate) texts: Arc<Mutex<TextWindow>>,
    /// Each tenant's turn to settle incident reports (see `settle_incident_reports`).
    pub(crate) settling: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// What became of one event of a webhook request.
#[derive(Debug)]
pub enum Intake {
    /// Stored (or found stored, when `duplicate`).
    Accepted(Accepted),
    /// The connector skipped the event, with its reason.
    Skipped {
        event_type: Option<String>,
        reason: String,
    },
}

/// What processing one stored message did.
#[derive(Debug)]
pub enum Processed {
    /// Committed with this triage.
    Done(Box<Triage>),
    /// A fail-closed stage failed: held for a retry (or `failed` after the last attempt).
    Held { triage: Box<Triage>, status: String },
    /// Someone else committed it first; nothing was written.
    AlreadyDone,
    /// The customer answered a satisfaction survey (1-5): recorded, not triaged.
    SurveyAnswer { score: u8 },
}

/// Counts from one delivery pass.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
}

impl Engine {
    pub fn new(rt: Runtime, store: Store) -> Self {
        Engine {
            rt,
            store,
            texts: Arc::default(),
            settling: Arc::default(),
        }
    }

    /// Hand a platform's request to the connector and store every message it yields before
    /// returning: the caller acknowledges the platform (with the connector's own answer, if it
    /// gave one) only after this succeeds.
    pub async fn ingest(
        &self,
        connector: &Connector,
        request: &HttpRequest,
    ) -> Result<(AnsweredWebhook, Vec<Intake>), IngestError> {
        let c = &connector.instance;
        let answered = self
            .rt
            .answer_webhook(&c.plugin, &c.scope, &connector.channel.channel, request)
            .await
            .map_err(IngestError::Refused)?;
        let Some(events) = (match &answered.outcome {
            WebhookOutcome::Events(events) => Some(events),
            _ => None,
        }) else {
            return Ok((answered, Vec::new()));
        };
        // Every message of the request goes into the same group commit, each in a span of its
        // own whose trace context is stored with it.
        let mut spans = Vec::new();
        let mut acceptances = Vec::new();
        for event in events {
            if let Event::Message(m) = event {
                let span = accept_span(&c.name, m);
                acceptances.push(Acceptance {
                    connector: c.name.clone(),
                    message: m.clone(),
                    traceparent: traces::traceparent(&span),
                });
                spans.push(span);
            }
        }
        let mut accepted = self.store.accept_all(acceptances).await?.into_iter();
        let mut spans = spans.into_iter();
        let mut intakes = Vec::with_capacity(events.len());
        for event in events {
            intakes.push(match event {
                Event::Message(_) => {
                    let (Some(result), Some(span)) = (accepted.next(), spans.next()) else {
                        return Err(StoreError::Data("an acceptance went unanswered".into()).into());
                    };
                    let a = result?;
                    span.record("message", a.message_id.as_str());
                    span.record("duplicate", a.duplicate);
                    Intake::Accepted(a)
                }
                Event::Skipped(s) => Intake::Skipped {
                    event_type: s.event_type.clone(),
                    reason: s.reason.clone(),
                },
            });
        }
        Ok((answered, intakes))
    }

    /// Store one message (see [`Store::accept_traced`]) in a span of its own, whose trace
    /// context goes into the store with it: processing and delivery continue that trace.
    pub async fn accept(&self, connector: &str, m: &Message) -> Result<Accepted, StoreError> {
        let span = accept_span(connector, m);
        let traceparent = traces::traceparent(&span);
        let accepted = self
            .store
            .accept_traced(connector, m, traceparent.as_deref())
            .instrument(span.clone())
            .await?;
        span.record("message", accepted.message_id.as_str());
        span.record("duplicate", accepted.duplicate);
        Ok(accepted)
    }

    /// Run one stored message through the pipeline and commit the outcome, in a span that
    /// continues the trace the message was accepted in.
    pub async fn process(
        &self,
        tenant: &Tenant,
        message_id: &str,
    ) -> Result<Processed, StoreError> {
        self.process_as(tenant, message_id, true).await
    }

    /// [`Self::process`] without the incident step: the message's report stays pending until
    /// the caller runs [`Self::settle_incident_reports`] (or a sweep, or a restart's resume
    /// does). For a batch processed in lanes: its messages commit out of received order, and
    /// the detector must see a window's reports in order, or the last of a burst to commit
    /// counts a window that misses one committed after it and the burst goes unseen.
    pub async fn process_unsettled(
        &self,
        tenant: &Tenant,
        message_id: &str,
    ) -> Result<Processed, StoreError> {
        self.process_as(tenant, message_id, false).await
    }

    async fn process_as(
        &self,
        tenant: &Tenant,
        message_id: &str,
        settle: bool,
    ) -> Result<Processed, StoreError> {
        let span = tracing::info_span!(
            "process",
            tenant = %tenant.name,
            message = message_id,
            outcome = Empty,
        );
        traces::set_parent(&span, self.traceparent(message_id).await.as_deref());
        let result = self
            .process_traced(tenant, message_id, settle)
            .instrument(span.clone())
            .await;
        span.record(
            "outcome",
            match &result {
                Ok(Processed::Done(_)) => "done",
                Ok(Processed::Held { status, .. }) => status.as_str(),
                Ok(Processed::AlreadyDone) => "already-done",
                Ok(Processed::SurveyAnswer { .. }) => "survey-answer",
                Err(_) => "error",
            },
        );
        result
    }

    /// The trace context `message_id` was accepted in, when traces are exported. Never fails:
    /// a missing context only starts a new trace.
    async fn traceparent(&self, message_id: &str) -> Option<String> {
        if !traces::enabled() {
            return None;
        }
        self.store.traceparent(message_id).await.ok().flatten()
    }

    async fn process_traced(
        &self,
        tenant: &Tenant,
        message_id: &str,
        settle: bool,
    ) -> Result<Processed, StoreError> {
        let stored = self.store.message(message_id).await?;
        if stored.tenant != tenant.name {
            return Err(StoreError::Data(format!(
                "message {message_id} does not belong to tenant `{}`",
                tenant.name
            )));
        }
        if stored.status == "done" {
            return Ok(Processed::AlreadyDone);
        }
        if let Some(score) = self.take_survey_answer(&stored).await? {
            return Ok(score);
        }
        let connector = tenant
            .connector(Some(&stored.connector))
            .map_err(StoreError::Data)?;
        let history = self.store.author_history(&stored).await?;
        let triage = pipeline::triage(
            &self.rt,
            tenant,
            connector,
            stored.message.clone(),
            &history,
        )
        .await;
        if let Some(reason) = &triage.held {
            let next = self.store.now() + tenant.stages.retry_delay_ms(stored.attempts);
            let status = self
                .store
                .hold(
                    &stored.id,
                    reason,
                    next,
                    i64::from(tenant.stages.max_attempts),
                )
                .await?;
            return Ok(Processed::Held {
                triage: Box::new(triage),
                status,
            });
        }
        let outcome = outcome(tenant, &stored.id, &triage, &history);
        if !self.store.commit(&stored, &outcome).await? {
            return Ok(Processed::AlreadyDone);
        }
        // Incidents are settled after the commit (they call plugins to check their drafts); a
        // failure leaves the report pending for the next message, never the message undone.
        if settle && let Err(e) = self.settle_incident_reports(tenant).await {
            tracing::warn!(tenant = %tenant.name, error = %e, "incident reports left pending");
        }
        Ok(Processed::Done(Box::new(triage)))
    }

    /// After a start: replies caught mid-send go back to the queue, then every message that was
    /// accepted but not finished (or is due for a retry) is processed. Returns what was done.
    pub async fn resume(&self, tenant: &Tenant) -> Result<Vec<(String, Processed)>, StoreError> {
        self.store.requeue_interrupted(&tenant.name).await?;
        let mut done = Vec::new();
        // A message held again during this pass is left for a later pass, not retried in a loop.
        let mut seen = std::collections::HashSet::new();
        loop {
            let due = self
                .store
                .due_messages(&tenant.name, self.store.now(), 100)
                .await?;
            let fresh: Vec<String> = due
                .into_iter()
                .filter(|id| seen.insert(id.clone()))
                .collect();
            if fresh.is_empty() {
                // Reports a crash left between a commit and the incident step.
                self.settle_incident_reports(tenant).await?;
                return Ok(done);
            }
            for id in fresh {
                let p = self.process(tenant, &id).await?;
                done.push((id, p));
            }
        }
    }

    /// Send every reply of `tenant` that is due, through its connector.
    pub async fn deliver_due(&self, tenant: &Tenant) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let batch = self
                .store
                .claim_due_replies(&tenant.name, self.store.now(), 50)
                .await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for row in batch {
                let span = tracing::info_span!(
                    "deliver",
                    tenant = %tenant.name,
                    message = %row.message_id,
                    connector = %row.connector,
                    attempt = row.attempts,
                    outcome = Empty,
                );
                traces::set_parent(&span, self.traceparent(&row.message_id).await.as_deref());
                let before = report.clone();
                let result = self
                    .deliver_one(tenant, &row, &mut report)
                    .instrument(span.clone())
                    .await;
                span.record(
                    "outcome",
                    if result.is_err() {
                        "error"
                    } else if report.sent > before.sent {
                        "sent"
                    } else if report.dead > before.dead {
                        "dead"
                    } else {
                        "retrying"
                    },
                );
                result?;
            }
        }
    }

    async fn deliver_one(
        &self,
        tenant: &Tenant,
        row: &OutboxRow,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let connector = match tenant.connector(Some(&row.connector)) {
            Ok(c) => c,
            Err(e) => {
                report.dead += 1;
                return self
                    .store
                    .finish_reply(row, "dead", None, Some(&e), 0)
                    .await;
            }
        };
        let c = &connector.instance;
        match self.rt.deliver(&c.plugin, &c.scope, &row.reply).await {
            Ok(receipt) => {
                report.sent += 1;
                let receipt = serde_json::to_string(&receipt).unwrap_or_default();
                self.store
                    .finish_reply(row, "sent", Some(&receipt), None, 0)
                    .await
            }
            Err(e) => {
                let (permanent, wait_s) = classify_delivery_error(&e);
                let attempts = row.attempts;
                if permanent || attempts >= i64::from(tenant.stages.max_attempts) {
                    report.dead += 1;
                    self.store
                        .finish_reply(row, "dead", None, Some(&e.to_string()), 0)
                        .await
                } else {
                    report.retrying += 1;
                    let backoff = tenant.stages.retry_delay_ms(attempts - 1);
                    // Jitter spreads the retries of many replies that failed together.
                    let backoff = backoff + (backoff as f64 * fastrand::f64() * 0.2) as i64;
                    let wait = wait_s.map_or(backoff, |s| i64::from(s) * 1000).max(backoff);
                    self.store
                        .finish_reply(
                            row,
                            "pending",
                            None,
                            Some(&e.to_string()),
                            self.store.now() + wait,
                        )
                        .await
                }
            }
        }
    }
}

impl Engine {
    /// Queue a draft of `tenant` as the reply to its message. A draft a guard blocks cannot be
    /// sent (edit it first); a draft of an escalated conversation must be approved by a
    /// supervisor first. `counts_as` says whether it stops the service-level clock (by default
    /// the text decides). Returns the reply's idempotency key and what it counts as.
    pub async fn send_draft(
        &self,
        tenant: &Tenant,
        draft_id: &str,
        counts_as: Option<ReplyKind>,
        actor: &str,
    ) -> Result<(String, ReplyKind), ActionError> {
        let store = &self.store;
        let d = store
            .draft(&tenant.name, draft_id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let message = store.message(&d.message_id).await?;
        if d.status == "blocked" {
            return Err(ActionError::Conflict(format!(
                "draft {draft_id} is blocked by a reply guard; edit it first"
            )));
        }
        // Sign-off: escalated conversations, expert answers, statements, new agents' text and
        // drafts with guard warnings, as the tenant's [signoff] says.
        let signoff = self.signoff_state(tenant, draft_id).await?;
        if !signoff.complete {
            let tiers: Vec<&str> = signoff.required.iter().map(|r| r.as_str()).collect();
            return Err(ActionError::Conflict(format!(
                "draft {draft_id} needs sign-off ({}): {} of {} approved",
                tiers.join(", then "),
                signoff.approved,
                signoff.required.len()
            )));
        }
        let allowed: &[&str] = if signoff.required.is_empty() {
            &["proposed", "approved"]
        } else {
            &["approved"]
        };
        let m = &message.message;
        // An incident's statement is a post of its own from the main account, not a reply.
        let statement = d.purpose == crate::care::incidents::STATEMENT;
        let reply = OutboundReply {
            idempotency_key: idempotency_key(&d.message_id, &d.purpose),
            conversation_key: m.conversation_key.clone(),
            in_reply_to: (!statement).then(|| m.external_id.clone()),
            recipient: m.author.clone(),
            text: d.text.clone(),
            visibility: if d.visibility == "private" {
                Visibility::Private
            } else {
                Visibility::Public
            },
            extra: m.extra.clone(),
        };
        let kind = if statement {
            ReplyKind::Statement
        } else {
            kind_for_send(counts_as, &d.text, tenant)
        };
        store
            .queue_draft(&tenant.name, &d, &reply, kind, allowed, actor)
            .await?;
        Ok((reply.idempotency_key, kind))
    }
}

/// Whether a delivery failure is permanent, and how long the platform asked us to wait.
fn classify_delivery_error(e: &CallError) -> (bool, Option<u32>) {
    match &e.failure {
        CallFailure::Plugin {
            error:
                PluginError::Rejected(_)
                | PluginError::NotConfigured(_)
                | PluginError::InvalidInput(_)
                | PluginError::Unauthorized(_),
        }
        | CallFailure::EgressDenied { .. } => (true, None),
        CallFailure::Plugin {
            error: PluginError::RateLimited(s),
        } => (false, *s),
        _ => (false, None),
    }
}

/// Why a webhook request was not taken in.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The connector refused it (bad signature, malformed body): nothing was stored.
    #[error("{0}")]
    Refused(CallError),
    /// The store could not take it: the platform must be told to retry.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The stable idempotency key of a message's reply of one purpose: the same across retries,
/// reprocessing after a crash and restarts.
pub fn idempotency_key(message_id: &str, purpose: &str) -> String {
    format!("sb-{message_id}-{purpose}")
}

/// What the store records for a processed message.
pub fn outcome(
    tenant: &Tenant,
    message_id: &str,
    t: &Triage,
    history: &crate::policy::AuthorHistory,
) -> Outcome {
    let mut o = Outcome::default();
    let label_row = |role: &str, l: &pipeline::SourcedLabel| LabelRow {
        role: role.into(),
        classifier: l.classifier.clone(),
        plugin: l.plugin.clone(),
        name: l.label.name.clone(),
        score: f64::from(l.label.score),
        evidence: serde_json::to_value(&l.label.evidence).unwrap_or_default(),
    };
    o.labels = t
        .labels
        .iter()
        .map(|l| label_row("live", l))
        .chain(t.shadow_labels.iter().map(|l| label_row("shadow", l)))
        .collect();
    o.actions = serde_json::to_value(&t.decision.actions).unwrap_or_default();
    o.fired = serde_json::to_value(&t.decision).unwrap_or_default();
    o.degraded = t.degraded.clone();
    o.shadows = t.shadows_run.clone();
    o.incident_report = incident_report_for(tenant, t);
    let created = t.message.action == MessageAction::Created;
    o.reopen = created;
    // Praise again from someone who praised before: a repeat advocate.
    o.advocate = created
        && history.praise >= 1
        && t.labels
            .iter()
            .any(|l| l.label.name == "advocate" && l.label.score >= 0.5);
    if created && crate::care::engages(&t.decision.actions) {
        o.clock = tenant
            .care
            .plan(&tenant.hours, &t.message.channel, t.message.received_at);
    }
    let rules: Vec<&str> = t.decision.fired.iter().map(|f| f.rule.as_str()).collect();
    let actor = if rules.is_empty() {
        "policy:default".to_string()
    } else {
        format!("policy:{}", rules.join(","))
    };
    o.audit.push((
        actor.clone(),
        "decision.made".into(),
        serde_json::json!({ "actions": t.decision.summary(), "rules": rules, "degraded": t.degraded }),
    ));
    let mut escalated = false;
    for a in &t.decision.actions {
        match a {
            Action::Ignore => o.conversation_state = Some("ignored".into()),
            Action::Monitor => o.conversation_state = Some("monitored".into()),
            Action::Block => {
                o.block_customer = true;
                o.conversation_state = Some("ignored".into());
                o.audit.push((
                    actor.clone(),
                    "customer.blocked".into(),
                    serde_json::json!({ "author": t.message.author.id, "channel": t.message.channel }),
                ));
            }
            Action::Route { team } => {
                o.team = Some(team.clone());
                let labels: Vec<String> = t
                    .labels
                    .iter()
                    .filter(|l| l.label.score >= 0.5)
                    .map(|l| l.label.name.clone())
                    .collect();
                o.assign = crate::care::team::assign_plan(&tenant.care.agents, team, &labels);
                o.audit.push((
                    actor.clone(),
                    "conversation.routed".into(),
                    serde_json::json!({ "team": team }),
                ));
            }
            Action::Escalate { to } => {
                escalated = true;
                o.escalated = true;
                o.audit.push((
                    actor.clone(),
                    "conversation.escalated".into(),
                    serde_json::json!({ "to": to }),
                ));
            }
            Action::TakePrivate => {
                o.conversation_state = Some("private".into());
                o.close_publicly = Some(
                    "taken private: once resolved, close the loop in the public thread".into(),
                );
            }
            // The incident step after the commit attaches it (and audits that).
            Action::Incident { incident } => o.incident = Some(incident.clone()),
            Action::Respond => {}
        }
    }

    // Auto-send: the private invitation when taking private, else the best unblocked reply.
    // Never when escalated (a supervisor signs off) and never a blocked draft.
    let chosen: Option<usize> = if tenant.policy.auto_send && !escalated {
        let candidates = t
            .drafts
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.blocked && d.purpose != pipeline::DraftPurpose::Away);
        if t.decision.actions.contains(&Action::TakePrivate) {
            candidates
                .filter(|(_, d)| d.purpose == pipeline::DraftPurpose::PrivateInvitation)
                .map(|(i, _)| i)
                .next()
        } else {
            candidates
                .max_by(|(_, a), (_, b)| a.draft.confidence.total_cmp(&b.draft.confidence))
                .map(|(i, _)| i)
        }
    } else {
        None
    };
    for (i, d) in t.drafts.iter().enumerate() {
        let id = uuid::Uuid::now_v7().to_string();
        // The out-of-hours reply is automatic by nature (and sent once per conversation).
        let away = d.purpose == pipeline::DraftPurpose::Away;
        let queued = chosen == Some(i) || (away && !d.blocked);
        o.drafts.push(DraftRow {
            id: id.clone(),
            suggester: d.suggester.clone(),
            purpose: d.purpose.as_str().into(),
            text: d.draft.text.clone(),
            visibility: match d.draft.visibility {
                Visibility::Public => "public".into(),
                Visibility::Private => "private".into(),
            },
            confidence: f64::from(d.draft.confidence),
            rationale: d.draft.rationale.clone(),
            length: d.length.map(i64::from),
            length_limit: i64::from(d.limit),
            findings: serde_json::to_value(&d.findings).unwrap_or_default(),
            status: if d.blocked {
                "blocked".into()
            } else if queued {
                "queued".into()
            } else {
                "proposed".into()
            },
        });
        if d.blocked {
            o.audit.push((
                "guards".into(),
                "draft.blocked".into(),
                serde_json::json!({ "draft": id, "findings": d.findings }),
            ));
        }
        if queued {
            let m = &t.message;
            let kind = match d.purpose {
                pipeline::DraftPurpose::Away => ReplyKind::Away,
                pipeline::DraftPurpose::PrivateInvitation => ReplyKind::Response,
                pipeline::DraftPurpose::Reply => {
                    crate::care::reply_kind_of_text(&d.draft.text, tenant.signature.as_deref())
                }
            };
            o.outbox.push(QueuedReply {
                draft_id: Some(id.clone()),
                kind,
                reply: OutboundReply {
                    idempotency_key: idempotency_key(message_id, d.purpose.as_str()),
                    conversation_key: m.conversation_key.clone(),
                    in_reply_to: Some(m.external_id.clone()),
                    recipient: m.author.clone(),
                    text: d.draft.text.clone(),
                    visibility: d.draft.visibility,
                    extra: m.extra.clone(),
                },
            });
            o.audit.push((
                if away {
                    "policy:away"
                } else {
                    "policy:auto-send"
                }
                .into(),
                "reply.queued".into(),
                serde_json::json!({ "draft": id, "kind": kind }),
            ));
        }
    }
    o
}

/// What a sent reply counts as, when an agent sends a draft: their word, else the text's.
pub fn kind_for_send(requested: Option<ReplyKind>, text: &str, tenant: &Tenant) -> ReplyKind {
    requested.unwrap_or_else(|| crate::care::reply_kind_of_text(text, tenant.signature.as_deref()))
}

/// What a processed message hands to the detector: a rule's incident, or (with
/// `[incidents]`) any new customer message the policy answers. `None`: not a report.
pub fn incident_report_for(tenant: &Tenant, t: &Triage) -> Option<IncidentReport> {
    if t.message.action != MessageAction::Created {
        return None;
    }
    let rule_key = t.decision.actions.iter().find_map(|a| match a {
        Action::Incident { incident } => Some(incident.clone()),
        _ => None,
    });
    let rules: Vec<&str> = t
        .decision
        .fired
        .iter()
        .filter(|f| {
            f.actions
                .iter()
                .any(|a| matches!(a, Action::Incident { .. }))
        })
        .map(|f| f.rule.as_str())
        .collect();
    let rule_actor = rule_key.as_ref().map(|_| {
        if rules.is_empty() {
            "policy:default".to_string()
        } else {
            format!("policy:{}", rules.join(","))
        }
    });
    let answered = tenant.care.incidents.is_some() && crate::care::engages(&t.decision.actions);
    (rule_key.is_some() || answered).then_some(IncidentReport {
        rule_key,
        rule_actor,
    })
}

/// The span a message is accepted in; `message` and `duplicate` are recorded once stored.
fn accept_span(connector: &str, m: &Message) -> tracing::Span {
    tracing::info_span!(
        "accept",
        tenant = %m.tenant,
        connector,
        external_id = %m.external_id,
        message = Empty,
        duplicate = Empty,
    )
}
