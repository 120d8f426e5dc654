//! Incidents: many customers reporting the same problem in a short window. One incident per
//! problem, with every affected conversation attached; one public statement for the main
//! account, which a supervisor signs off; a reply to each affected customer that refers to it;
//! and, when the incident closes, a follow-up to each of them.
//!
//! ```toml
//! [incidents]
//! window_min = 30           # reports are counted in a window this long…
//! min_reports = 5           # …an incident needs at least this many customers in it…
//! over_usual = 3.0          # …and this many times the usual count for a window that long,
//! baseline_h = 24           # measured over this period before the window (none: min_reports decides)
//! group_by = ["topic:"]     # label-name prefixes whose labels group reports
//! min_score = 0.5           # a label groups from this score
//! similar_text = 0.8        # near-identical texts group too (Jaccard over word pairs); 0 = off
//! statement_link = "https://social.example/@acme"   # where customers find the statement
//! statement = "We know some of you are affected by {title}. We're on it and will post updates here. {signature}"
//! reply = "Hi {name}, sorry: it's {title}, and we're on it. Updates: {statement_link} {signature}"
//! follow_up = "Hi {name}, {title} is fixed now. Thanks for bearing with us. {signature}"
//! [incidents.titles]
//! "topic:website" = "the website outage"
//! ```
//!
//! Templates read `{name}` (the customer's shown first name), `{signature}`, `{title}`,
//! `{statement_link}` and, in replies, `{statement}` (the statement's text).
//!
//! Where it runs: every message the policy answers (or a rule names an incident for) is
//! recorded as a report in the same transaction as its outcome, and settled right after the
//! commit by [`Engine::settle_incident_reports`] (plugin calls, the reply guards' length check,
//! must not run inside the store's transaction). A report a crash left unsettled is settled
//! with the next message, by `resume`, or by the server's periodic sweep.
//!
//! What a report does, in order: a rule's `incident` action attaches it to the open incident
//! of that name or opens one at once; otherwise (with `[incidents]`) it attaches to an open
//! incident of one of its group labels, or of a near-identical text; otherwise the detector
//! counts the customers who reported the same label (or a near-identical text) in the window
//! ending at this report, and opens an incident when that count is a burst: at least
//! `min_reports`, and at least `over_usual` times the usual count (the customers who reported
//! it during `baseline_h` before the window, outside any incident, scaled to the window).
//! Without `[incidents]`, rules still open and attach incidents, but no texts are drafted.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::json;

use crate::care::ReplyKind;
use crate::contract::{Message, MessageAction, OutboundReply, Visibility};
use crate::pipeline::{self, Triage};
use crate::policy::Action;
use crate::store::{
    ActionError, Attachment, Closed, FollowUp, IncidentDraft, IncidentReport, IncidentRow,
    NewIncident, Opened, ReportRow, StoreError, StoredMessage,
};
use crate::tenant::{Connector, Tenant};
use crate::worker::{Engine, idempotency_key};

/// Draft purpose of an incident's public statement (sign-off tiers key on it).
pub const STATEMENT: &str = "incident-statement";
/// Draft purpose of the reply to each affected customer.
pub const REPLY: &str = "incident-reply";
/// Draft purpose of the follow-up sent when an incident closes.
pub const FOLLOW_UP: &str = "incident-follow-up";

/// Who opens and attaches what the detector finds, in the audit log.
pub const DETECTOR: &str = "detector";

const MINUTE: i64 = 60_000;

/// Texts of fewer words are too short to call two of them near-identical ("help!").
const MIN_WORDS: usize = 4;

/// `[incidents]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    #[serde(default = "default_window")]
    pub window_min: u32,
    #[serde(default = "default_min_reports")]
    pub min_reports: u32,
    #[serde(default = "default_over_usual")]
    pub over_usual: f64,
    #[serde(default = "default_baseline")]
    pub baseline_h: u32,
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// Jaccard similarity over word pairs from which two texts are near-identical; 0 turns
    /// text grouping off.
    #[serde(default = "default_similar_text")]
    pub similar_text: f64,
    /// Where customers find the statement (`{statement_link}`): the main account or a status page.
    pub statement_link: Option<String>,
    #[serde(default = "default_statement")]
    pub statement: String,
    #[serde(default = "default_reply")]
    pub reply: String,
    #[serde(default = "default_follow_up")]
    pub follow_up: String,
    /// Titles by group (label, rule incident name); others are made from the group's name.
    #[serde(default)]
    pub titles: BTreeMap<String, String>,
}

fn default_window() -> u32 {
    30
}
fn default_min_reports() -> u32 {
    5
}
fn default_over_usual() -> f64 {
    3.0
}
fn default_baseline() -> u32 {
    24
}
fn default_group_by() -> Vec<String> {
    vec!["topic:".into()]
}
fn default_min_score() -> f64 {
    0.5
}
fn default_similar_text() -> f64 {
    0.8
}
fn default_statement() -> String {
    "We know some of you are affected by {title}, and we're sorry. We're working on a fix and will post updates here. {signature}".into()
}
fn default_reply() -> String {
    "Hi {name}, sorry about this. We know about {title} and are working on a fix; we'll post updates on our main account. {signature}".into()
}
fn default_follow_up() -> String {
    "Hi {name}, {title} is fixed now. Thanks for bearing with us; if anything still isn't right, tell us here. {signature}".into()
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            window_min: default_window(),
            min_reports: default_min_reports(),
            over_usual: default_over_usual(),
            baseline_h: default_baseline(),
            group_by: default_group_by(),
            min_score: default_min_score(),
            similar_text: default_similar_text(),
            statement_link: None,
            statement: default_statement(),
            reply: default_reply(),
            follow_up: default_follow_up(),
            titles: BTreeMap::new(),
        }
    }
}

impl IncidentsConfig {
    pub fn check(&self) -> Result<(), String> {
        let fail = |m: &str| Err(format!("[incidents] {m}"));
        if self.window_min == 0 {
            return fail("window_min must be at least 1");
        }
        if self.min_reports < 2 {
            return fail("min_reports must be at least 2: one customer is not a mass problem");
        }
        if self.over_usual.is_nan() || self.over_usual < 1.0 {
            return fail("over_usual must be at least 1.0 (times the usual count)");
        }
        if i64::from(self.baseline_h) * 60 < i64::from(self.window_min) {
            return fail("baseline_h must be at least as long as the window");
        }
        if self.group_by.iter().any(|p| p.trim().is_empty()) {
            return fail("group_by: an empty prefix would group every label");
        }
        if !(0.0..=1.0).contains(&self.min_score) || !(0.0..=1.0).contains(&self.similar_text) {
            return fail("min_score and similar_text must be between 0 and 1");
        }
        for (name, t) in [
            ("statement", &self.statement),
            ("reply", &self.reply),
            ("follow_up", &self.follow_up),
        ] {
            if t.trim().is_empty() {
                return Err(format!("[incidents] {name} is empty"));
            }
            if t.contains("{statement_link}") && self.statement_link.is_none() {
                return Err(format!(
                    "[incidents] {name} uses {{statement_link}}: set statement_link"
                ));
            }
        }
        if self.statement.contains("{name}") {
            return fail("statement is for everyone: it cannot use {name}");
        }
        Ok(())
    }

    /// Whether `reports` customers in one window are a burst against `usual` (the usual count
    /// for a window that long).
    pub fn is_burst(&self, reports: usize, usual: f64) -> bool {
        reports >= self.min_reports as usize && reports as f64 >= self.over_usual * usual
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.window_min) * MINUTE
    }

    fn baseline_ms(&self) -> i64 {
        i64::from(self.baseline_h) * 60 * MINUTE
    }

    /// The group labels of a message: live labels from `min_score` whose names start with a
    /// `group_by` prefix, strongest first.
    fn groups(&self, labels: &[crate::store::LabelRow]) -> Vec<String> {
        let mut found: Vec<&crate::store::LabelRow> = labels
            .iter()
            .filter(|l| {
                l.role == "live"
                    && l.score >= self.min_score
                    && self.group_by.iter().any(|p| l.name.starts_with(p.as_str()))
            })
            .collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let mut keys: Vec<String> = Vec::new();
        for l in found {
            if !keys.contains(&l.name) {
                keys.push(l.name.clone());
            }
        }
        keys
    }
}

/// A title for an incident of `group`: the tenant's, else made from the group's name
/// (`topic:website` → "the website problem").
pub fn title_for(config: Option<&IncidentsConfig>, group: &str) -> String {
    if let Some(t) = config.and_then(|c| c.titles.get(group)) {
        return t.clone();
    }
    if group.starts_with("text:") || group.starts_with("manual:") {
        return "the problem many of you are reporting".into();
    }
    let name = group.rsplit(':').next().unwrap_or(group);
    format!("the {} problem", name.replace(['-', '_'], " ").trim())
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

/// The words of a text as the similarity sees them: lower case, without @-mentions, links and
/// punctuation, every number the same word (flight 719 and flight 1702 are the same report).
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|t| !t.starts_with('@') && !t.contains("://") && !t.starts_with("www."))
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.chars().all(|c| c.is_ascii_digit()) {
                "0".to_string()
            } else {
                w.to_lowercase()
            }
        })
        .collect()
}

/// The word pairs (shingles of two) of a text; `None` when it is too short to compare.
pub fn shingles(text: &str) -> Option<HashSet<(String, String)>> {
    let w = words(text);
    (w.len() >= MIN_WORDS).then(|| w.windows(2).map(|p| (p[0].clone(), p[1].clone())).collect())
}

/// Jaccard similarity of two shingle sets: shared over all.
pub fn jaccard(a: &HashSet<(String, String)>, b: &HashSet<(String, String)>) -> f64 {
    let shared = a.intersection(b).count();
    let all = a.len() + b.len() - shared;
    if all == 0 {
        0.0
    } else {
        shared as f64 / all as f64
    }
}

/// Whether two texts are near-identical at `threshold`.
pub fn similar(a: &str, b: &str, threshold: f64) -> bool {
    match (shingles(a), shingles(b)) {
        (Some(a), Some(b)) => jaccard(&a, &b) >= threshold,
        _ => false,
    }
}

/// What a processed message hands to the detector: a rule's incident, or (with
/// `[incidents]`) any new customer message the policy answers. `None`: not a report.
pub fn report_for(tenant: &Tenant, t: &Triage) -> Option<IncidentReport> {
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
    let answered = tenant.care.incidents.is_some() && super::engages(&t.decision.actions);
    (rule_key.is_some() || answered).then_some(IncidentReport {
        rule_key,
        rule_actor,
    })
}

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

/// An incident opened by hand.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    pub title: String,
    /// The group later reports join by: a label (`topic:website`) or a rule's incident name.
    /// Default: this incident only.
    pub group: Option<String>,
    /// Conversations (ids or channel keys) to attach now.
    #[serde(default)]
    pub conversations: Vec<String>,
}

impl Engine {
    /// Look at every report of `tenant` not looked at yet: attach it to its incident, open one
    /// (a rule's, or a burst), or leave it. Returns how many were settled.
    pub async fn settle_incident_reports(&self, tenant: &Tenant) -> Result<usize, StoreError> {
        let mut settled = 0;
        loop {
            let pending = self
                .store
                .pending_incident_reports(&tenant.name, 50)
                .await?;
            if pending.is_empty() {
                return Ok(settled);
            }
            for r in &pending {
                self.settle_report(tenant, r).await?;
                settled += 1;
            }
        }
    }

    async fn settle_report(&self, tenant: &Tenant, r: &ReportRow) -> Result<(), StoreError> {
        let store = &self.store;
        let config = tenant.care.incidents.as_ref();
        // Two tries: an incident opened by someone else meanwhile is attached to instead.
        for _ in 0..2 {
            if let Some(key) = &r.rule_key {
                let actor = r.rule_actor.as_deref().unwrap_or("policy");
                if let Some(open) = store.open_incident_for(&tenant.name, key).await? {
                    return self.attach_report(tenant, &open, r, actor).await;
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
                    _ => return Ok(()),
                }
            }
            let Some(config) = config else {
                store
                    .settle_incident_report(&tenant.name, &r.message_id)
                    .await?;
                return Ok(());
            };
            let labels = store.labels(&r.message_id).await?;
            let groups = config.groups(&labels);
            for key in &groups {
                if let Some(open) = store.open_incident_for(&tenant.name, key).await? {
                    return self.attach_report(tenant, &open, r, DETECTOR).await;
                }
            }
            let text = shingles(&r.text).filter(|_| config.similar_text > 0.0);
            if let Some(text) = &text {
                for (open, sample) in store.open_text_incidents(&tenant.name).await? {
                    if shingles(&sample).is_some_and(|s| jaccard(text, &s) >= config.similar_text) {
                        return self.attach_report(tenant, &open, r, DETECTOR).await;
                    }
                }
            }
            match self
                .detect(tenant, config, r, &groups, text.as_ref())
                .await?
            {
                Some(Opened::KeyTaken) => continue,
                Some(_) => return Ok(()),
                None => break,
            }
        }
        store
            .settle_incident_report(&tenant.name, &r.message_id)
            .await?;
        Ok(())
    }

    /// Count the window ending at `r` for each of its groups, then for its text; open an
    /// incident for the first burst. `None`: no burst.
    async fn detect(
        &self,
        tenant: &Tenant,
        config: &IncidentsConfig,
        r: &ReportRow,
        groups: &[String],
        text: Option<&HashSet<(String, String)>>,
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
            let window = store
                .incident_reports_between(
                    &tenant.name,
                    Some((key, config.min_score)),
                    from,
                    anchor,
                    false,
                )
                .await?;
            let reports = customers(&window.iter().collect::<Vec<_>>());
            if reports < config.min_reports as usize {
                continue;
            }
            let usual_count = store
                .usual_reports(
                    &tenant.name,
                    key,
                    config.min_score,
                    from - baseline_ms,
                    from,
                )
                .await? as usize;
            let usual = usual_count as f64 * scale;
            if !config.is_burst(reports, usual) {
                continue;
            }
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
        let like = |rows: Vec<ReportRow>| -> Vec<ReportRow> {
            rows.into_iter()
                .filter(|w| {
                    w.message_id == r.message_id
                        || shingles(&w.text)
                            .is_some_and(|s| jaccard(text, &s) >= config.similar_text)
                })
                .collect()
        };
        let window = like(
            store
                .incident_reports_between(&tenant.name, None, from, anchor, false)
                .await?,
        );
        let reports = customers(&window.iter().collect::<Vec<_>>());
        if reports < config.min_reports as usize {
            return Ok(None);
        }
        let before = like(
            store
                .incident_reports_between(&tenant.name, None, from - baseline_ms, from, true)
                .await?,
        );
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
                    let kind = ReplyKind::of_text(&d.text, tenant.signature.as_deref());
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

fn when(ms: i64, time_zone: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .and_then(|t| {
            jiff::tz::TimeZone::get(time_zone)
                .ok()
                .map(|z| t.to_zoned(z))
        })
        .map_or(ms.to_string(), |z| {
            z.strftime("%Y-%m-%d %H:%M %Z").to_string()
        })
}

/// Incidents as a table for people (`switchboard incidents TENANT list`).
pub fn render_list(incidents: &[IncidentRow], time_zone: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if incidents.is_empty() {
        return "no incidents\n".into();
    }
    for i in incidents {
        let _ = writeln!(
            out,
            "{}  {:<7} {:>3} conv  {}  {}  \"{}\"  by {}",
            i.id,
            i.status,
            i.conversations,
            when(i.opened_at, time_zone),
            i.group_key,
            i.title,
            i.opened_by
        );
    }
    out
}

/// One incident as [`Engine::incident_view`] gives it, for people.
pub fn render_view(v: &serde_json::Value, time_zone: &str) -> String {
    use std::fmt::Write as _;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let i = &v["incident"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "incident {} ({}): \"{}\", group {}, opened {} by {}",
        s(&i["id"]),
        s(&i["status"]),
        s(&i["title"]),
        s(&i["group_key"]),
        i["opened_at"]
            .as_i64()
            .map_or("-".into(), |t| when(t, time_zone)),
        s(&i["opened_by"]),
    );
    let _ = writeln!(out, "  why: {}", i["evidence"]);
    if let Some(into) = i["merged_into"].as_str() {
        let _ = writeln!(out, "  merged into {into}");
    }
    if let Some(at) = i["closed_at"].as_i64() {
        let _ = writeln!(
            out,
            "  ended {} by {}",
            when(at, time_zone),
            s(&i["closed_by"])
        );
    }
    match v["statement"].as_object() {
        Some(st) => {
            let _ = writeln!(
                out,
                "statement (draft {}, {}): {}",
                st.get("id").map_or("-".into(), s),
                st.get("status").map_or("-".into(), s),
                st.get("text").map_or("-".into(), s)
            );
        }
        None => {
            let _ = writeln!(out, "statement: none yet");
        }
    }
    let conversations = v["conversations"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "conversations ({}):", conversations.len());
    for c in &conversations {
        let drafts: Vec<String> = c["drafts"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| format!("{} {}", s(&d["purpose"]), s(&d["status"])))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} ({} {}, {}) attached by {}: {}",
            s(&c["conversation_id"]),
            s(&c["channel"]),
            s(&c["conversation_key"]),
            s(&c["state"]),
            s(&c["attached_by"]),
            if drafts.is_empty() {
                "no drafts".into()
            } else {
                drafts.join(", ")
            }
        );
    }
    let _ = writeln!(out, "audit:");
    for a in v["audit"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            out,
            "  {}  {:<28} {}",
            a["at"].as_i64().map_or("-".into(), |t| when(t, time_zone)),
            s(&a["action"]),
            s(&a["actor"])
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real tweets from the 22 February 2015 Sabre outage (`airline_sentiment.train.csv`).
    const SABRE_AA: &str = "@AmericanAir Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?";
    const SABRE_US: &str = "@USAirways Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?";
    const COMPUTERS: &str = "@USAirways @AmericanAir Sitting at the gate on Flight 719 for an hour due to computers being down. What backup plan is in place for this??";

    #[test]
    fn near_identical_texts_are_similar_and_different_ones_are_not() {
        // The same complaint at two accounts: mentions do not count.
        assert!(similar(SABRE_AA, SABRE_US, 0.8));
        // Another flight number, shouting, a link and a hashtag-free sign-off: still the same.
        assert!(similar(
            SABRE_AA,
            "@AmericanAir SITTING at the gate on flight 1702 for an hour due to Sabre being down!! What backup plan is in place if Sabre cannot be fixed? https://t.co/x",
            0.8
        ));
        // The same event in other words is a topic's job, not near-identical text.
        let j = jaccard(&shingles(SABRE_AA).unwrap(), &shingles(COMPUTERS).unwrap());
        assert!((0.5..0.8).contains(&j), "{j}");
        assert!(!similar(SABRE_AA, COMPUTERS, 0.8));
        assert!(!similar(
            SABRE_AA,
            "@AmericanAir my bag never arrived in Dallas",
            0.2
        ));
        // Too short to compare.
        assert!(shingles("help!!").is_none());
        assert!(!similar("site down?", "site down?", 0.8));
        assert_eq!(
            words("@x Flight UA719, 3 hrs!"),
            ["flight", "ua719", "0", "hrs"]
        );
    }

    #[test]
    fn a_burst_needs_enough_customers_and_enough_over_the_usual_count() {
        let c = IncidentsConfig::default();
        assert!(!c.is_burst(4, 0.0), "fewer than min_reports");
        assert!(c.is_burst(5, 0.0), "no baseline: min_reports decides");
        assert!(!c.is_burst(5, 2.0), "5 is not 3 x 2");
        assert!(c.is_burst(6, 2.0));
    }

    #[test]
    fn titles_come_from_the_tenant_or_the_group_name() {
        let mut c = IncidentsConfig::default();
        assert_eq!(title_for(None, "topic:website"), "the website problem");
        assert_eq!(title_for(None, "app-crash"), "the app crash problem");
        assert_eq!(
            title_for(None, "text:0190"),
            "the problem many of you are reporting"
        );
        c.titles
            .insert("topic:website".into(), "the website outage".into());
        assert_eq!(title_for(Some(&c), "topic:website"), "the website outage");
    }

    #[test]
    fn bad_settings_are_refused_with_the_key() {
        let ok = IncidentsConfig::default();
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut IncidentsConfig)| {
            let mut c = IncidentsConfig::default();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(|c| c.min_reports = 1).contains("min_reports"));
        assert!(bad(|c| c.over_usual = 0.5).contains("over_usual"));
        assert!(bad(|c| c.baseline_h = 0).contains("baseline_h"));
        assert!(bad(|c| c.similar_text = 1.5).contains("similar_text"));
        assert!(bad(|c| c.group_by = vec!["".into()]).contains("group_by"));
        assert!(bad(|c| c.reply = "{statement_link}".into()).contains("statement_link"));
        assert!(bad(|c| c.statement = "Hi {name}".into()).contains("{name}"));
    }

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
