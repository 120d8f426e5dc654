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
//! commit by `Engine::settle_incident_reports` (in [`crate::workflow::incidents`]) (plugin calls, the reply guards' length check,
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use switchboard_store::IncidentRow;

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

    pub(crate) fn window_ms(&self) -> i64 {
        i64::from(self.window_min) * MINUTE
    }

    pub(crate) fn baseline_ms(&self) -> i64 {
        i64::from(self.baseline_h) * 60 * MINUTE
    }

    /// The group labels of a message: live labels from `min_score` whose names start with a
    /// `group_by` prefix, strongest first.
    pub(crate) fn groups(&self, labels: &[switchboard_store::LabelRow]) -> Vec<String> {
        let mut found: Vec<&switchboard_store::LabelRow> = labels
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

/// The word pairs (shingles of two) of a text, each hashed to 64 bits, sorted and without
/// repeats; `None` when it is too short to compare. Hashed because comparing a report with a
/// window of hundreds is the detector's inner loop: a merge of two short sorted `u64` lists
/// instead of hashing strings into sets. Two pairs colliding in 64 bits is not a concern here.
pub fn shingles(text: &str) -> Option<Shingles> {
    use std::hash::{Hash, Hasher};
    let w = words(text);
    if w.len() < MIN_WORDS {
        return None;
    }
    let mut pairs: Vec<u64> = w
        .windows(2)
        .map(|p| {
            // SipHash with fixed keys: the same pair hashes the same in every process.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&p[0], &p[1]).hash(&mut h);
            h.finish()
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    Some(pairs)
}

/// Jaccard similarity of two shingle sets: shared over all.
pub fn jaccard(a: &Shingles, b: &Shingles) -> f64 {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let all = a.len() + b.len() - shared;
    if all == 0 {
        0.0
    } else {
        shared as f64 / all as f64
    }
}

/// A text's word pairs, as [`shingles`] makes them: sorted distinct hashes.
pub type Shingles = Vec<u64>;

/// Whether two shingle sets are near-identical at `threshold`: [`jaccard`], after a size-band
/// check that answers most pairs without intersecting (shared pairs cannot outnumber the smaller
/// set, nor all pairs fall short of the larger, so the ratio of sizes bounds the similarity).
pub fn near(a: &Shingles, b: &Shingles, threshold: f64) -> bool {
    let (small, large) = (a.len().min(b.len()), a.len().max(b.len()));
    if large > 0 && (small as f64 / large as f64) < threshold {
        return false;
    }
    jaccard(a, b) >= threshold
}

/// The shingles of each tenant's recent incident reports, so that counting a window does not
/// tokenise every text in it again for every report. A report's text never changes, so an entry
/// is never stale: a miss (after a restart, or a report older than the entries kept) computes
/// it from the text the store returned. Entries older than every window still counted are
/// dropped, which bounds the state by the window and its baseline.
#[derive(Debug, Default)]
pub struct TextWindow {
    tenants: HashMap<String, TenantTexts>,
}

#[derive(Debug, Default)]
struct TenantTexts {
    by_id: HashMap<String, Option<Arc<Shingles>>>,
    by_time: BTreeSet<(i64, String)>,
}

impl TenantTexts {
    /// Entries received in `(from, to]`.
    fn between(&self, from: i64, to: i64) -> impl Iterator<Item = &(i64, String)> {
        let bounds = (from < to).then(|| {
            (
                (from.saturating_add(1), String::new()),
                (to.saturating_add(1), String::new()),
            )
        });
        bounds
            .into_iter()
            .flat_map(|(start, end)| self.by_time.range(start..end))
    }
}

impl TextWindow {
    /// The shingles of report `message_id` (its `text`, received at `received_at`).
    pub fn shingles(
        &mut self,
        tenant: &str,
        message_id: &str,
        received_at: i64,
        text: &str,
    ) -> Option<Arc<Shingles>> {
        let t = self.tenants.entry(tenant.to_string()).or_default();
        if let Some(known) = t.by_id.get(message_id) {
            return known.clone();
        }
        let computed = shingles(text).map(Arc::new);
        t.by_id.insert(message_id.to_string(), computed.clone());
        t.by_time.insert((received_at, message_id.to_string()));
        computed
    }

    /// Whether report `message_id`'s shingles are kept (its text need not be read again).
    pub fn knows(&self, tenant: &str, message_id: &str) -> bool {
        self.tenants
            .get(tenant)
            .is_some_and(|t| t.by_id.contains_key(message_id))
    }

    /// Forget `tenant`'s reports received at or before `until`: no window reaches them now.
    pub fn forget_until(&mut self, tenant: &str, until: i64) {
        let Some(t) = self.tenants.get_mut(tenant) else {
            return;
        };
        while let Some((at, id)) = t.by_time.first().cloned() {
            if at > until {
                break;
            }
            t.by_time.pop_first();
            t.by_id.remove(&id);
        }
    }

    /// How many reports of `tenant` received in `(from, to]` are kept.
    pub fn count_between(&self, tenant: &str, from: i64, to: i64) -> usize {
        self.tenants
            .get(tenant)
            .map_or(0, |t| t.between(from, to).count())
    }

    /// The reports of `tenant` received in `(from, to]` whose text is near `text`.
    pub fn near_between(
        &self,
        tenant: &str,
        from: i64,
        to: i64,
        text: &Shingles,
        threshold: f64,
    ) -> Vec<String> {
        let Some(t) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        t.between(from, to)
            .filter(|(_, id)| {
                t.by_id
                    .get(id)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| near(text, s, threshold))
            })
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// How many reports' shingles are kept for `tenant`.
    pub fn len(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.by_id.len())
    }
}

/// Whether two texts are near-identical at `threshold`.
pub fn similar(a: &str, b: &str, threshold: f64) -> bool {
    match (shingles(a), shingles(b)) {
        (Some(a), Some(b)) => jaccard(&a, &b) >= threshold,
        _ => false,
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
    fn the_size_band_never_changes_what_is_near() {
        // Texts from one small vocabulary, of many lengths: pairs on both sides of every
        // threshold, including ones the band rejects.
        let vocab = [
            "flight", "delayed", "gate", "sabre", "down", "bag", "lost", "again",
        ];
        let mut rng = fastrand::Rng::with_seed(13);
        let texts: Vec<Shingles> = (0..200)
            .filter_map(|_| {
                let n = rng.usize(4..30);
                let t: Vec<&str> = (0..n).map(|_| vocab[rng.usize(..vocab.len())]).collect();
                shingles(&t.join(" "))
            })
            .collect();
        let (mut agreed, mut near_pairs) = (0, 0);
        for threshold in [0.1, 0.3, 0.5, 0.8, 1.0] {
            for a in &texts {
                for b in &texts {
                    let exact = jaccard(a, b) >= threshold;
                    assert_eq!(near(a, b, threshold), exact, "{a:?} {b:?} at {threshold}");
                    agreed += 1;
                    near_pairs += usize::from(exact);
                }
            }
        }
        assert!(
            near_pairs > 0 && near_pairs < agreed,
            "{near_pairs} of {agreed}"
        );
        assert!(near(
            &shingles(SABRE_AA).unwrap(),
            &shingles(SABRE_US).unwrap(),
            0.8
        ));
    }

    #[test]
    fn the_text_window_keeps_each_report_once_until_no_window_reaches_it() {
        let mut w = TextWindow::default();
        let first = w.shingles("t", "m1", 1_000, SABRE_AA).unwrap();
        assert_eq!(*first, shingles(SABRE_AA).unwrap());
        // Kept by id: asked again (whatever the text), the same set comes back, computed once.
        let again = w.shingles("t", "m1", 1_000, "ignored").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(w.shingles("t", "m2", 2_000, "too short").is_none());
        w.shingles("u", "m1", 1_000, COMPUTERS);
        assert_eq!((w.len("t"), w.len("u")), (2, 1));
        w.forget_until("t", 1_000);
        assert_eq!((w.len("t"), w.len("u")), (1, 1));
        // Forgotten, it is computed again from the text (as after a restart).
        let recomputed = w.shingles("t", "m1", 1_000, SABRE_US).unwrap();
        assert_eq!(*recomputed, shingles(SABRE_US).unwrap());
        w.forget_until("t", 5_000);
        assert_eq!(w.len("t"), 0);
    }

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
}
