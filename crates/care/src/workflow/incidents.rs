//! Incidents on the engine: settling reports (attach, open a rule's incident or a burst),
//! drafting the statement and the replies, attach, merge and close with the follow-up. The
//! rules these apply (configuration, grouping, texts) are in [`crate::care::incidents`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;

use crate::care::incidents::*;
use crate::pipeline;
use crate::tenant::{Connector, Tenant};
use crate::worker::{Engine, idempotency_key};
use switchboard_contract::{Message, OutboundReply, Visibility};
use switchboard_store::{
    ActionError, Attachment, Closed, FollowUp, IncidentDraft, IncidentRow, LabelRow, NewIncident,
    Opened, ReportRow, StoreError, StoredMessage,
};

/// The latest report of each conversation among `reports` (oldest conversation first).
fn latest_per_conversation(reports: &[ReportRow]) -> Vec<&ReportRow> {
    let mut out: Vec<&ReportRow> = Vec::new();
    for r in reports {
        match out
            .iter_mut()
            .find(|o| o.conversation_id == r.conversation_id)
        {
            Some(o) if o.received_at <= r.received_at => *o = r,
            Some(_) => {}
            None => out.push(r),
        }
    }
    out
}

fn customers(reports: &[&ReportRow]) -> usize {
    reports
        .iter()
        .map(|r| r.customer_id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

fn visibility_of(m: &Message, private: bool) -> Visibility {
    if private || m.visibility == Visibility::Private {
        Visibility::Private
    } else {
        Visibility::Public
    }
}

fn visibility_str(v: Visibility) -> String {
    match v {
        Visibility::Public => "public".into(),
        Visibility::Private => "private".into(),
    }
}

/// A reply to `m` (its thread, its author).
fn reply_to(m: &StoredMessage, key: String, text: String, visibility: Visibility) -> OutboundReply {
    let msg = &m.message;
    OutboundReply {
        idempotency_key: key,
        conversation_key: msg.conversation_key.clone(),
        in_reply_to: Some(msg.external_id.clone()),
        recipient: msg.author.clone(),
        text,
        visibility,
        extra: msg.extra.clone(),
    }
}

/// What settling one report left to do.
enum Settled {
    /// It went to an incident, settled in that incident's transaction.
    Written,
    /// It went to none: to be marked settled with the rest of its batch.
    Alone,
}

/// What a settle pass reads once for its batch of reports rather than once per report.
#[derive(Default)]
struct PassReads {
    /// Each pending report's labels (what its groups come from).
    labels: HashMap<String, Vec<LabelRow>>,
    /// The open text incidents with their samples' shingles; `None` after a write that may
    /// have changed them (read again when next needed).
    open_texts: Option<Vec<(IncidentRow, Option<Shingles>)>>,
}

/// How many unsettled reports the detector reads to bring its text window up to date before
/// it falls back to listing the window: a burst's reports waiting behind the one settled.
const PENDING_READ_FOR_WINDOW: i64 = 200;

/// How many times the detector reads the pending reports before listing the window.
const PENDING_READS_FOR_WINDOW: usize = 3;

/// How many reports of a tenant are settled per read of the pending ones.
const SETTLE_BATCH: i64 = 50;

impl Engine {
    /// Look at every report of `tenant` not looked at yet: attach it to its incident, open one
    /// (a rule's, or a burst), or leave it. Returns how many were settled.
    pub async fn settle_incident_reports(&self, tenant: &Tenant) -> Result<usize, StoreError> {
        // One pass per tenant at a time: concurrent workers would each settle the same
        // pending reports. A caller that waited then finds what was committed meanwhile.
        let turn = self
            .settling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.name.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        let mut settled = 0;
        loop {
            let pending = self
                .store
                .pending_incident_reports(&tenant.name, SETTLE_BATCH)
                .await?;
            if pending.is_empty() {
                return Ok(settled);
            }
            // Reports that went to no incident are marked settled together, one commit for
            // the batch. A crash before that leaves them pending, to be looked at again: the
            // same decision, as nothing else was written for them.
            let mut alone = Vec::new();
            let mut reads = PassReads::default();
            if tenant.care.incidents.is_some() {
                let ids: Vec<String> = pending.iter().map(|r| r.message_id.clone()).collect();
                reads.labels = self.store.labels_of(&ids).await?;
            }
            for r in &pending {
                match self.settle_report(tenant, r, &mut reads).await {
                    Ok(Settled::Alone) => alone.push(r.message_id.clone()),
                    // It may have opened a text incident, or found one closed meanwhile.
                    Ok(Settled::Written) => reads.open_texts = None,
                    Err(e) => {
                        let _ = self
                            .store
                            .settle_reports_outside_incidents(&tenant.name, &alone)
                            .await;
                        return Err(e);
                    }
                }
                settled += 1;
            }
            self.store
                .settle_reports_outside_incidents(&tenant.name, &alone)
                .await?;
        }
    }

    async fn settle_report(
        &self,
        tenant: &Tenant,
        r: &ReportRow,
        reads: &mut PassReads,
    ) -> Result<Settled, StoreError> {
        let store = &self.store;
        let config = tenant.care.incidents.as_ref();
        // Two tries: an incident opened by someone else meanwhile is attached to instead.
        for attempt in 0..2 {
            if attempt > 0 {
                reads.open_texts = None;
            }
            if let Some(key) = &r.rule_key {
                let actor = r.rule_actor.as_deref().unwrap_or("policy");
                if let Some(open) = store.open_incident_for(&tenant.name, key).await? {
                    self.attach_report(tenant, &open, r, actor).await?;
                    return Ok(Settled::Written);
                }
                let new = NewIncident {
                    group_key: key.clone(),
                    title: title_for(config, key),
                    opened_by: actor.to_string(),
                    sample: None,
                    evidence: json!({ "rule": actor, "group": key }),
                };
                match self
                    .open_for_report(tenant, &new, r, std::slice::from_ref(r))
                    .await?
                {
                    Opened::KeyTaken => continue,
                    _ => return Ok(Settled::Written),
                }
            }
            let Some(config) = config else {
                return Ok(Settled::Alone);
            };
            let labels = reads
                .labels
                .get(&r.message_id)
                .map_or(&[][..], Vec::as_slice);
            let groups = config.groups(labels);
            for key in &groups {
                if let Some(open) = store.open_incident_for(&tenant.name, key).await? {
                    self.attach_report(tenant, &open, r, DETECTOR).await?;
                    return Ok(Settled::Written);
                }
            }
            let text = self
                .report_shingles(&tenant.name, r)
                .filter(|_| config.similar_text > 0.0);
            if let Some(text) = &text {
                if reads.open_texts.is_none() {
                    let open = store.open_text_incidents(&tenant.name).await?;
                    reads.open_texts = Some(
                        open.into_iter()
                            .map(|(incident, sample)| (incident, shingles(&sample)))
                            .collect(),
                    );
                }
                let open_texts = reads.open_texts.as_deref().unwrap_or_default();
                let found = open_texts.iter().find(|(_, sample)| {
                    sample
                        .as_ref()
                        .is_some_and(|s| near(text, s, config.similar_text))
                });
                if let Some((open, _)) = found {
                    self.attach_report(tenant, open, r, DETECTOR).await?;
                    return Ok(Settled::Written);
                }
            }
            match self
                .detect(tenant, config, r, &groups, text.as_ref())
                .await?
            {
                Some(Opened::KeyTaken) => continue,
                Some(_) => return Ok(Settled::Written),
                None => break,
            }
        }
        Ok(Settled::Alone)
    }

    /// The shingles of report `r`'s text, from the tenant's window state.
    fn report_shingles(&self, tenant: &str, r: &ReportRow) -> Option<Arc<Shingles>> {
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shingles(tenant, &r.message_id, r.received_at, &r.text)
    }

    /// Count the window ending at `r` for each of its groups, then for its text; open an
    /// incident for the first burst. `None`: no burst.
    async fn detect(
        &self,
        tenant: &Tenant,
        config: &IncidentsConfig,
        r: &ReportRow,
        groups: &[String],
        text: Option<&Arc<Shingles>>,
    ) -> Result<Option<Opened>, StoreError> {
        let store = &self.store;
        let anchor = r.received_at.min(store.now());
        let (window_ms, baseline_ms) = (config.window_ms(), config.baseline_ms());
        let from = anchor - window_ms;
        let scale = window_ms as f64 / baseline_ms as f64;
        let evidence = |group: &str, reports: usize, usual_count: usize, usual: f64| {
            json!({
                "group": group,
                "reports": reports,
                "usual": usual,
                "usual_reports": usual_count,
                "window_min": config.window_min,
                "baseline_h": config.baseline_h,
            })
        };
        for key in groups {
            let label = Some((key.as_str(), config.min_score));
            // Counted in the store; the rows are read only for a burst, to attach them.
            let reports = store
                .incident_report_customers(&tenant.name, label, from, anchor, false)
                .await? as usize;
            if reports < config.min_reports as usize {
                continue;
            }
            let usual_count = store
                .incident_report_customers(&tenant.name, label, from - baseline_ms, from, true)
                .await? as usize;
            let usual = usual_count as f64 * scale;
            if !config.is_burst(reports, usual) {
                continue;
            }
            let window = store
                .incident_reports_between(&tenant.name, label, from, anchor, false)
                .await?;
            let new = NewIncident {
                group_key: key.clone(),
                title: title_for(Some(config), key),
                opened_by: DETECTOR.into(),
                sample: None,
                evidence: evidence(key, reports, usual_count, usual),
            };
            return Ok(Some(self.open_for_report(tenant, &new, r, &window).await?));
        }
        let Some(text) = text else {
            return Ok(None);
        };
        // Nearness is decided on the texts kept in memory (tokenised once each), made to hold
        // every report this window and its baseline reach; the store is asked only which of
        // the near ones each count takes.
        let since = from - baseline_ms;
        self.complete_text_window(&tenant.name, since, anchor)
            .await?;
        let (near_now, near_before) = {
            let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            let threshold = config.similar_text;
            (
                texts.near_between(&tenant.name, from, anchor, text, threshold),
                texts.near_between(&tenant.name, since, from, text, threshold),
            )
        };
        let window = store
            .incident_reports_among(&tenant.name, &near_now, from, anchor, false)
            .await?;
        let reports = customers(&window.iter().collect::<Vec<_>>());
        if reports < config.min_reports as usize {
            return Ok(None);
        }
        let before = store
            .incident_reports_among(&tenant.name, &near_before, since, from, true)
            .await?;
        let usual_count = customers(&before.iter().collect::<Vec<_>>());
        let usual = usual_count as f64 * scale;
        if !config.is_burst(reports, usual) {
            return Ok(None);
        }
        let key = format!("text:{}", r.message_id);
        let new = NewIncident {
            title: title_for(Some(config), &key),
            evidence: evidence(&key, reports, usual_count, usual),
            group_key: key,
            opened_by: DETECTOR.into(),
            sample: Some(r.text.clone()),
        };
        Ok(Some(self.open_for_report(tenant, &new, r, &window).await?))
    }

    /// Make the tenant's text window hold every report received in `(since, until]`, and
    /// drop what no window reaches any more. Reports are never deleted and every kept one was
    /// read from the store, so equal counts mean the same reports. A report this process has
    /// not seen is usually one still unsettled (read with the few others pending); one
    /// settled by another process sharing the store is found by reading the range's ids.
    async fn complete_text_window(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<(), StoreError> {
        let store = &self.store;
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_until(tenant, since);
        let kept = |this: &Self| {
            this.texts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .count_between(tenant, since, until)
        };
        // Reports committed meanwhile by concurrent workers can make one count miss; a
        // second look at the pending ones usually catches up.
        for _ in 0..PENDING_READS_FOR_WINDOW {
            let stored = store.count_incident_reports(tenant, since, until).await? as usize;
            if kept(self) == stored {
                return Ok(());
            }
            let pending = store
                .pending_incident_reports(tenant, PENDING_READ_FOR_WINDOW)
                .await?;
            let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            for p in &pending {
                texts.shingles(tenant, &p.message_id, p.received_at, &p.text);
            }
        }
        if kept(self) == store.count_incident_reports(tenant, since, until).await? as usize {
            return Ok(());
        }
        let times = store.incident_report_times(tenant, since, until).await?;
        let unseen: Vec<&str> = {
            let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            times
                .iter()
                .filter(|(id, _)| !texts.knows(tenant, id))
                .map(|(id, _)| id.as_str())
                .collect()
        };
        let read = store.incident_report_texts(tenant, &unseen).await?;
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        for (id, at) in &times {
            if let Some(text) = read.get(id) {
                texts.shingles(tenant, id, *at, text);
            }
        }
        Ok(())
    }

    /// Open `new` for report `r`, attaching the latest message of each conversation among
    /// `window`; the statement hangs on `r`'s message.
    async fn open_for_report(
        &self,
        tenant: &Tenant,
        new: &NewIncident,
        r: &ReportRow,
        window: &[ReportRow],
    ) -> Result<Opened, StoreError> {
        let mut attachments = Vec::new();
        for w in latest_per_conversation(window) {
            let m = self.store.message(&w.message_id).await?;
            attachments.push(self.attachment(tenant, &new.title, &m).await);
        }
        let carrier = self.store.message(&r.message_id).await?;
        let statement = self.statement(tenant, &new.title, &carrier).await;
        let opened = self
            .store
            .open_incident(
                &tenant.name,
                new,
                Some(&r.message_id),
                &attachments,
                statement.as_ref(),
            )
            .await?;
        if let Opened::Opened(id) = &opened {
            tracing::info!(tenant = %tenant.name, incident = %id, group = %new.group_key, by = %new.opened_by, conversations = attachments.len(), "incident opened");
        }
        Ok(opened)
    }

    /// Attach report `r` to `open` (its conversation with a reply, unless attached already).
    async fn attach_report(
        &self,
        tenant: &Tenant,
        open: &IncidentRow,
        r: &ReportRow,
        actor: &str,
    ) -> Result<(), StoreError> {
        let m = self.store.message(&r.message_id).await?;
        let attachments = if self
            .store
            .is_attached(&tenant.name, &open.id, &r.conversation_id)
            .await?
        {
            vec![]
        } else {
            vec![self.attachment(tenant, &open.title, &m).await]
        };
        let statement = match open.statement_draft_id {
            None => self.statement(tenant, &open.title, &m).await,
            Some(_) => None,
        };
        match self
            .store
            .attach_to_incident(
                &tenant.name,
                &open.id,
                actor,
                &attachments,
                statement.as_ref(),
                Some(&r.message_id),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Closed or merged meanwhile: the report stays outside any incident.
            Err(
                ActionError::NotFound
                | ActionError::Conflict(_)
                | ActionError::Invalid(_)
                | ActionError::Forbidden(_),
            ) => {
                self.store
                    .settle_incident_report(&tenant.name, &r.message_id)
                    .await?;
                Ok(())
            }
            Err(ActionError::Store(e)) => Err(e),
        }
    }

    /// A draft by the incident workflow, measured by `connector`'s rule and checked by the
    /// reply guards like every draft.
    async fn checked(
        &self,
        tenant: &Tenant,
        connector: &Connector,
        message_id: &str,
        purpose: &'static str,
        text: String,
        visibility: Visibility,
    ) -> IncidentDraft {
        let (length, findings, error) =
            pipeline::check_text(&self.rt, tenant, connector, &text).await;
        if let Some(e) = error {
            tracing::warn!(tenant = %tenant.name, error = %e, "measuring an incident draft");
        }
        IncidentDraft {
            message_id: message_id.to_string(),
            purpose,
            blocked: crate::guards::blocks(&findings),
            findings: json!(findings),
            text,
            visibility: visibility_str(visibility),
            length: length.map(i64::from),
            length_limit: i64::from(connector.channel.length_rule.max),
            rationale: match purpose {
                STATEMENT => "incident: one public statement from the main account; a supervisor signs it off",
                REPLY => "incident: one of many customers reporting it; the reply points to the statement",
                _ => "incident closed: tell the customer it is fixed",
            }
            .into(),
            auto_send: None,
        }
    }

    /// The statement for the main account (the tenant's first connector), hung on `carrier`.
    async fn statement(
        &self,
        tenant: &Tenant,
        title: &str,
        carrier: &StoredMessage,
    ) -> Option<IncidentDraft> {
        let config = tenant.care.incidents.as_ref()?;
        let connector = tenant.connectors.first()?;
        let text = fill(&config.statement, tenant, config, title, "", None);
        Some(
            self.checked(
                tenant,
                connector,
                &carrier.id,
                STATEMENT,
                text,
                Visibility::Public,
            )
            .await,
        )
    }

    /// `m`'s conversation to attach, with the reply to its customer that refers to the
    /// statement (when the tenant drafts incident texts).
    async fn attachment(&self, tenant: &Tenant, title: &str, m: &StoredMessage) -> Attachment {
        let reply = match (
            tenant.care.incidents.as_ref(),
            tenant.connector(Some(&m.connector)),
        ) {
            (Some(config), Ok(connector)) => {
                let statement = fill(&config.statement, tenant, config, title, "", None);
                let text = fill(
                    &config.reply,
                    tenant,
                    config,
                    title,
                    &statement,
                    Some(&m.message),
                );
                let visibility = visibility_of(&m.message, false);
                let mut d = self
                    .checked(tenant, connector, &m.id, REPLY, text, visibility)
                    .await;
                if tenant.policy.auto_send {
                    let kind =
                        crate::care::reply_kind_of_text(&d.text, tenant.signature.as_deref());
                    d.auto_send = Some((
                        reply_to(m, idempotency_key(&m.id, REPLY), d.text.clone(), visibility),
                        kind,
                    ));
                }
                Some(d)
            }
            _ => None,
        };
        Attachment {
            conversation_id: m.conversation_id.clone(),
            message_id: m.id.clone(),
            reply,
        }
    }

    /// Open an incident by hand, attaching `conversations` (ids or channel keys) with their
    /// replies; the statement hangs on the first one's latest message. Returns its id.
    pub async fn open_incident(
        &self,
        tenant: &Tenant,
        request: &OpenRequest,
        actor: &str,
    ) -> Result<String, ActionError> {
        let title = request.title.trim();
        if title.is_empty() {
            return Err(ActionError::Conflict("an incident needs a title".into()));
        }
        let messages = self
            .store
            .latest_messages(&tenant.name, &request.conversations)
            .await?;
        let mut attachments = Vec::new();
        for m in &messages {
            attachments.push(self.attachment(tenant, title, m).await);
        }
        let statement = match messages.first() {
            Some(m) => self.statement(tenant, title, m).await,
            None => None,
        };
        let key = request
            .group
            .clone()
            .filter(|g| !g.trim().is_empty())
            .unwrap_or_else(|| format!("manual:{}", uuid::Uuid::now_v7()));
        let new = NewIncident {
            group_key: key.clone(),
            title: title.to_string(),
            opened_by: actor.to_string(),
            sample: None,
            evidence: json!({ "opened_by_hand": actor, "group": key }),
        };
        match self
            .store
            .open_incident(&tenant.name, &new, None, &attachments, statement.as_ref())
            .await?
        {
            Opened::Opened(id) => Ok(id),
            _ => Err(ActionError::Conflict(format!(
                "an incident for `{key}` is open already: attach to it or merge"
            ))),
        }
    }

    /// Attach conversations (ids or channel keys) to an open incident, each with its reply.
    /// Returns how many were new.
    pub async fn attach_to_incident(
        &self,
        tenant: &Tenant,
        id: &str,
        conversations: &[String],
        actor: &str,
    ) -> Result<usize, ActionError> {
        let incident = self
            .store
            .incident(&tenant.name, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        if incident.status != "open" {
            return Err(ActionError::Conflict(format!(
                "incident {id} is {}: only an open incident takes conversations",
                incident.status
            )));
        }
        let messages = self
            .store
            .latest_messages(&tenant.name, conversations)
            .await?;
        let mut attachments = Vec::new();
        for m in &messages {
            if !self
                .store
                .is_attached(&tenant.name, id, &m.conversation_id)
                .await?
            {
                attachments.push(self.attachment(tenant, &incident.title, m).await);
            }
        }
        let statement = match (&incident.statement_draft_id, messages.first()) {
            (None, Some(m)) => self.statement(tenant, &incident.title, m).await,
            _ => None,
        };
        self.store
            .attach_to_incident(
                &tenant.name,
                id,
                actor,
                &attachments,
                statement.as_ref(),
                None,
            )
            .await
    }

    /// Merge incident `from` into `into`; returns how many conversations moved.
    pub async fn merge_incidents(
        &self,
        tenant: &Tenant,
        from: &str,
        into: &str,
        actor: &str,
    ) -> Result<usize, ActionError> {
        self.store
            .merge_incidents(&tenant.name, from, into, actor)
            .await
    }

    /// Close an open incident and queue a follow-up to each affected customer (with
    /// `[incidents]`), each checked by the reply guards; a blocked one waits as a draft.
    /// Returns (queued, blocked). Closing twice is a conflict.
    pub async fn close_incident(
        &self,
        tenant: &Tenant,
        id: &str,
        actor: &str,
    ) -> Result<(usize, usize), ActionError> {
        for _ in 0..5 {
            let incident = self
                .store
                .incident(&tenant.name, id)
                .await?
                .ok_or(ActionError::NotFound)?;
            if incident.status != "open" {
                return Err(ActionError::Conflict(format!(
                    "incident {id} is already {}",
                    incident.status
                )));
            }
            let follow_ups = match &tenant.care.incidents {
                None => None,
                Some(config) => {
                    let (mut seen, mut out) = (Vec::new(), Vec::new());
                    for a in self.store.incident_conversations(&tenant.name, id).await? {
                        seen.push(a.conversation_id.clone());
                        let m = self.store.message(&a.message_id).await?;
                        // A connector the tenant no longer has cannot answer: no follow-up.
                        let Ok(connector) = tenant.connector(Some(&m.connector)) else {
                            continue;
                        };
                        let text = fill(
                            &config.follow_up,
                            tenant,
                            config,
                            &incident.title,
                            "",
                            Some(&m.message),
                        );
                        let visibility = visibility_of(&m.message, a.state == "private");
                        let draft = self
                            .checked(tenant, connector, &m.id, FOLLOW_UP, text, visibility)
                            .await;
                        let reply = reply_to(
                            &m,
                            idempotency_key(&m.id, &format!("incident-follow-up-{id}")),
                            draft.text.clone(),
                            visibility,
                        );
                        out.push(FollowUp {
                            conversation_id: a.conversation_id,
                            connector: m.connector.clone(),
                            draft,
                            reply,
                        });
                    }
                    Some((seen, out))
                }
            };
            match self
                .store
                .close_incident(
                    &tenant.name,
                    id,
                    actor,
                    follow_ups
                        .as_ref()
                        .map(|(s, f)| (s.as_slice(), f.as_slice())),
                )
                .await?
            {
                Closed::Closed {
                    follow_ups,
                    blocked,
                } => return Ok((follow_ups, blocked)),
                // A conversation was attached meanwhile: write its follow-up too.
                Closed::Stale => continue,
            }
        }
        Err(ActionError::Conflict(format!(
            "incident {id} kept changing while it was being closed; try again"
        )))
    }

    /// An incident of `tenant` as an agent sees it: its conversations with their replies, its
    /// statement draft and its audit trail. `None` if it is not the tenant's.
    pub async fn incident_view(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(incident) = self.store.incident(tenant, id).await? else {
            return Ok(None);
        };
        let mut conversations = Vec::new();
        for a in self.store.incident_conversations(tenant, id).await? {
            let drafts: Vec<_> = self
                .store
                .drafts(&a.message_id)
                .await?
                .into_iter()
                .filter(|d| d.purpose == REPLY || d.purpose == FOLLOW_UP)
                .map(|d| json!({ "id": d.id, "purpose": d.purpose, "status": d.status, "text": d.text }))
                .collect();
            let mut v = json!(a);
            v["drafts"] = json!(drafts);
            conversations.push(v);
        }
        let statement = match &incident.statement_draft_id {
            Some(d) => self.store.draft(tenant, d).await?.map(|d| {
                json!({ "id": d.id, "message_id": d.message_id, "purpose": d.purpose, "status": d.status, "text": d.text, "visibility": d.visibility })
            }),
            None => None,
        };
        Ok(Some(json!({
            "incident": incident,
            "conversations": conversations,
            "statement": statement,
            "audit": self.store.incident_audit(tenant, id).await?,
        })))
    }
}

/// Fill an incident template for `message`'s author (or for everyone, without one).
fn fill(
    template: &str,
    tenant: &Tenant,
    config: &IncidentsConfig,
    title: &str,
    statement: &str,
    message: Option<&Message>,
) -> String {
    let name = message
        .and_then(|m| {
            m.author
                .display_name
                .clone()
                .or_else(|| m.author.handle.clone())
        })
        .and_then(|n| n.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "there".into());
    template
        .replace("{name}", &name)
        .replace("{title}", title)
        .replace(
            "{statement_link}",
            config.statement_link.as_deref().unwrap_or(""),
        )
        .replace("{statement}", statement)
        .replace("{signature}", tenant.signature.as_deref().unwrap_or(""))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_report_of_each_conversation_is_the_one_attached() {
        let r = |m: &str, c: &str, at: i64| ReportRow {
            message_id: m.into(),
            conversation_id: c.into(),
            customer_id: format!("cust-{c}"),
            received_at: at,
            text: String::new(),
            rule_key: None,
            rule_actor: None,
        };
        let rows = [r("m1", "a", 1), r("m2", "b", 2), r("m3", "a", 3)];
        let latest: Vec<&str> = latest_per_conversation(&rows)
            .iter()
            .map(|r| r.message_id.as_str())
            .collect();
        assert_eq!(latest, ["m3", "m2"]);
        assert_eq!(customers(&rows.iter().collect::<Vec<_>>()), 2);
    }
}
