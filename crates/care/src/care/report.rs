//! The period report a care lead reads: volumes per channel, response times against the
//! targets, breaches, top topics and rising keywords, guard findings on replies that went out
//! (agent QA), and satisfaction per agent, team and channel. From the store alone, so it can be
//! run on any period after the fact.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use switchboard_store::{Store, StoreError};

/// The report for `[since, until)`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tenant: String,
    pub since: i64,
    pub until: i64,
    /// Customer messages (not edits or deletions) per channel.
    pub volumes: BTreeMap<String, i64>,
    /// How many messages each policy action was decided for.
    pub decisions: BTreeMap<String, i64>,
    pub service_levels: ServiceLevelSummary,
    /// Per channel.
    pub service_levels_by_channel: BTreeMap<String, ServiceLevelSummary>,
    /// Live `topic:*` labels (score ≥ 0.5), most frequent first.
    pub top_topics: Vec<(String, i64)>,
    /// Words much more frequent than in the period of the same length before.
    pub rising_keywords: Vec<RisingKeyword>,
    pub replies: ReplyQa,
    pub satisfaction: Satisfaction,
    /// Incidents opened in the period (by the detector, a policy rule or an agent).
    pub incidents: i64,
}

/// Response clocks that started in the period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServiceLevelSummary {
    pub clocks: i64,
    /// Stopped by a response.
    pub answered: i64,
    pub met_internal: i64,
    pub met_published: i64,
    /// Breached (answered late, or still waiting past the due time at the report's end).
    pub internal_breaches: i64,
    pub published_breaches: i64,
    /// Still waiting and not yet due: not counted either way.
    pub pending: i64,
    /// Met over decided (met + breached); `None` when nothing is decided yet.
    pub share_met_internal: Option<f64>,
    pub share_met_published: Option<f64>,
    /// Median wall-clock time from the customer's message to the response, in minutes.
    pub median_response_min: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RisingKeyword {
    pub word: String,
    pub count: i64,
    pub previous: i64,
}

/// Replies sent in the period and what the guards had found on them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplyQa {
    pub sent: i64,
    pub by_kind: BTreeMap<String, i64>,
    /// Sent replies that carried at least one (warning) finding.
    pub with_findings: i64,
    pub findings_by_guard: BTreeMap<String, i64>,
    /// Per agent who queued them (`decided_by`), with findings.
    pub findings_by_agent: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Satisfaction {
    pub surveys: i64,
    pub answered: i64,
    pub average: Option<f64>,
    pub by_agent: BTreeMap<String, Score>,
    pub by_team: BTreeMap<String, Score>,
    pub by_channel: BTreeMap<String, Score>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Score {
    pub answers: i64,
    pub average: f64,
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "you", "your", "our", "are", "was", "but", "not", "have", "has", "with",
    "this", "that", "from", "they", "them", "what", "when", "where", "why", "how", "can", "cant",
    "will", "just", "still", "been", "about", "any", "all", "get", "got", "out", "its", "it's",
    "i'm", "im", "don't", "dont", "did", "didn't", "there", "their", "then", "than", "who", "one",
    "would", "could", "should", "again", "after", "before", "now", "today", "here", "hey",
    "thanks", "thank", "please", "very", "really", "into", "over", "more", "some", "only", "also",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace()
        .filter(|t| !t.starts_with('@') && !t.contains("://"))
        .flat_map(|t| t.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '#')))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| {
            w.chars().count() >= 3
                && !w.chars().all(|c| c.is_ascii_digit())
                && !STOPWORDS.contains(&w.as_str())
        })
}

impl ServiceLevelSummary {
    fn add(
        &mut self,
        internal: Option<i64>,
        published: Option<i64>,
        stopped: Option<i64>,
        until: i64,
    ) {
        self.clocks += 1;
        let at = stopped.unwrap_or(until);
        let judge = |due: Option<i64>| -> Option<bool> {
            match (due, stopped) {
                (Some(d), Some(s)) => Some(s <= d),
                (Some(d), None) if at > d => Some(false),
                (None, Some(_)) => Some(true),
                _ => None,
            }
        };
        if stopped.is_some() {
            self.answered += 1;
        }
        match judge(internal) {
            Some(true) => self.met_internal += 1,
            Some(false) => self.internal_breaches += 1,
            None => {}
        }
        match judge(published) {
            Some(true) => self.met_published += 1,
            Some(false) => self.published_breaches += 1,
            None => self.pending += 1,
        }
    }

    fn finish(&mut self, mut response_ms: Vec<i64>) {
        let share =
            |met: i64, missed: i64| (met + missed > 0).then(|| met as f64 / (met + missed) as f64);
        self.share_met_internal = share(self.met_internal, self.internal_breaches);
        self.share_met_published = share(self.met_published, self.published_breaches);
        response_ms.sort_unstable();
        self.median_response_min = match response_ms.len() {
            0 => None,
            n if n % 2 == 1 => Some(response_ms[n / 2] as f64 / 60_000.0),
            n => Some((response_ms[n / 2 - 1] + response_ms[n / 2]) as f64 / 120_000.0),
        };
    }
}

fn scores(rows: &[(Option<String>, i64)]) -> BTreeMap<String, Score> {
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (key, score) in rows {
        let e = sums
            .entry(key.clone().unwrap_or_else(|| "(none)".into()))
            .or_default();
        e.0 += 1;
        e.1 += score;
    }
    sums.into_iter()
        .map(|(k, (n, total))| {
            (
                k,
                Score {
                    answers: n,
                    average: total as f64 / n as f64,
                },
            )
        })
        .collect()
}

/// An answered survey: assignee, team, channel, score.
type Answer = (Option<String>, Option<String>, String, i64);

/// Build the report of `tenant` for `[since, until)` (epoch milliseconds).
pub async fn build(
    store: &Store,
    tenant: &str,
    since: i64,
    until: i64,
) -> Result<Report, StoreError> {
    let mut report = Report {
        tenant: tenant.to_string(),
        since,
        until,
        volumes: BTreeMap::new(),
        decisions: BTreeMap::new(),
        service_levels: ServiceLevelSummary::default(),
        service_levels_by_channel: BTreeMap::new(),
        top_topics: vec![],
        rising_keywords: vec![],
        replies: ReplyQa::default(),
        satisfaction: Satisfaction::default(),
        incidents: 0,
    };

    report.volumes = store
        .report_volumes(tenant, since, until)
        .await?
        .into_iter()
        .collect();

    for actions in store.report_decision_actions(tenant, since, until).await? {
        let actions: Vec<serde_json::Value> = serde_json::from_str(&actions).unwrap_or_default();
        for a in actions {
            if let Some(name) = a.get("action").and_then(|v| v.as_str()) {
                *report.decisions.entry(name.to_string()).or_default() += 1;
            }
        }
    }

    let mut all_ms = Vec::new();
    let mut by_channel_ms: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for c in store.clocks(tenant, None, since, until).await? {
        report
            .service_levels
            .add(c.internal_due_at, c.published_due_at, c.stopped_at, until);
        report
            .service_levels_by_channel
            .entry(c.channel.clone())
            .or_default()
            .add(c.internal_due_at, c.published_due_at, c.stopped_at, until);
        if let Some(s) = c.stopped_at {
            all_ms.push(s - c.started_at);
            by_channel_ms
                .entry(c.channel.clone())
                .or_default()
                .push(s - c.started_at);
        }
    }
    report.service_levels.finish(all_ms);
    for (channel, summary) in report.service_levels_by_channel.iter_mut() {
        summary.finish(by_channel_ms.remove(channel).unwrap_or_default());
    }

    report.top_topics = store.report_top_topics(tenant, since, until).await?;

    // Rising keywords: this period against the one of the same length before it.
    let span = (until - since).max(1);
    let mut now_counts: HashMap<String, i64> = HashMap::new();
    let mut before_counts: HashMap<String, i64> = HashMap::new();
    for (body, received_at) in store
        .report_message_bodies(tenant, since.saturating_sub(span), until)
        .await?
    {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let text = body
            .get("text")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        let counts = if received_at >= since {
            &mut now_counts
        } else {
            &mut before_counts
        };
        // A word counts once per message: one customer repeating it is not a trend.
        let mut seen = std::collections::HashSet::new();
        for w in words(text) {
            if seen.insert(w.clone()) {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    let mut rising: Vec<RisingKeyword> = now_counts
        .into_iter()
        .filter_map(|(word, count)| {
            let previous = before_counts.get(&word).copied().unwrap_or(0);
            (count >= 3 && count >= 2 * (previous + 1)).then_some(RisingKeyword {
                word,
                count,
                previous,
            })
        })
        .collect();
    rising.sort_by(|a, b| {
        let ratio = |k: &RisingKeyword| k.count as f64 / (k.previous + 1) as f64;
        ratio(b)
            .total_cmp(&ratio(a))
            .then(b.count.cmp(&a.count))
            .then(a.word.cmp(&b.word))
    });
    rising.truncate(10);
    report.rising_keywords = rising;

    for r in store.report_sent_replies(tenant, since, until).await? {
        report.replies.sent += 1;
        *report.replies.by_kind.entry(r.kind).or_default() += 1;
        let findings: Vec<serde_json::Value> = r
            .findings
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default();
        if !findings.is_empty() {
            report.replies.with_findings += 1;
            let agent = r.decided_by.unwrap_or_else(|| "policy:auto-send".into());
            *report.replies.findings_by_agent.entry(agent).or_default() += 1;
        }
        for f in findings {
            if let Some(g) = f.get("guard").and_then(|g| g.as_str()) {
                *report
                    .replies
                    .findings_by_guard
                    .entry(g.to_string())
                    .or_default() += 1;
            }
        }
    }

    let surveys = store.report_surveys(tenant, since, until).await?;
    report.satisfaction.surveys = surveys.len() as i64;
    let answered: Vec<Answer> = surveys
        .into_iter()
        .filter_map(|r| r.score.map(|s| (r.assignee, r.team, r.channel, s)))
        .collect();
    report.satisfaction.answered = answered.len() as i64;
    if !answered.is_empty() {
        report.satisfaction.average =
            Some(answered.iter().map(|a| a.3).sum::<i64>() as f64 / answered.len() as f64);
    }
    let pick = |f: &dyn Fn(&Answer) -> Option<String>| {
        scores(&answered.iter().map(|a| (f(a), a.3)).collect::<Vec<_>>())
    };
    report.satisfaction.by_agent = pick(&|a| a.0.clone());
    report.satisfaction.by_team = pick(&|a| a.1.clone());
    report.satisfaction.by_channel = pick(&|a| Some(a.2.clone()));
    report.incidents = store.report_incidents_opened(tenant, since, until).await?;
    Ok(report)
}

fn pct(share: Option<f64>) -> String {
    share.map_or("–".into(), |s| format!("{:.0} %", s * 100.0))
}

/// The report as a readable table.
pub fn render(r: &Report, time_zone: &str) -> String {
    let when = |ms: i64| {
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
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Report for {}: {} to {}",
        r.tenant,
        when(r.since),
        when(r.until)
    );
    let _ = writeln!(out, "\nVolume (customer messages)");
    for (channel, n) in &r.volumes {
        let _ = writeln!(out, "  {channel:<16} {n:>6}");
    }
    if r.volumes.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    let _ = writeln!(out, "\nDecisions");
    for (action, n) in &r.decisions {
        let _ = writeln!(out, "  {action:<16} {n:>6}");
    }
    let _ = writeln!(
        out,
        "\nService levels      clocks  answered  internal met  published met  breaches (int/pub)  pending  median"
    );
    let mut line = |name: &str, s: &ServiceLevelSummary| {
        let _ = writeln!(
            out,
            "  {name:<16} {:>7} {:>9} {:>13} {:>14} {:>13}/{:<5} {:>8}  {}",
            s.clocks,
            s.answered,
            pct(s.share_met_internal),
            pct(s.share_met_published),
            s.internal_breaches,
            s.published_breaches,
            s.pending,
            s.median_response_min
                .map_or("–".into(), |m| format!("{m:.0} min")),
        );
    };
    line("all", &r.service_levels);
    for (channel, s) in &r.service_levels_by_channel {
        line(channel, s);
    }
    let _ = writeln!(out, "\nTop topics");
    for (topic, n) in &r.top_topics {
        let _ = writeln!(out, "  {topic:<30} {n:>6}");
    }
    let _ = writeln!(out, "\nRising keywords (this period / the one before)");
    for k in &r.rising_keywords {
        let _ = writeln!(out, "  {:<30} {:>4} / {}", k.word, k.count, k.previous);
    }
    let _ = writeln!(
        out,
        "\nReplies sent: {} ({}); with guard findings: {}",
        r.replies.sent,
        r.replies
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.replies.with_findings
    );
    for (guard, n) in &r.replies.findings_by_guard {
        let _ = writeln!(out, "  guard {guard:<24} {n:>6}");
    }
    for (agent, n) in &r.replies.findings_by_agent {
        let _ = writeln!(out, "  by {agent:<27} {n:>6}");
    }
    let s = &r.satisfaction;
    let _ = writeln!(
        out,
        "\nSatisfaction: {} answered of {} surveys, average {}",
        s.answered,
        s.surveys,
        s.average.map_or("–".into(), |a| format!("{a:.2} / 5"))
    );
    for (what, map) in [
        ("agent", &s.by_agent),
        ("team", &s.by_team),
        ("channel", &s.by_channel),
    ] {
        for (k, v) in map {
            let _ = writeln!(
                out,
                "  {what} {k:<24} {:.2} ({} answers)",
                v.average, v.answers
            );
        }
    }
    let _ = writeln!(out, "\nIncidents opened: {}", r.incidents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_count_answered_and_overdue_clocks_but_not_pending_ones() {
        let mut s = ServiceLevelSummary::default();
        s.add(Some(30), Some(60), Some(20), 1000); // met both
        s.add(Some(30), Some(60), Some(45), 1000); // internal missed, published met
        s.add(Some(30), Some(60), None, 1000); // still waiting past both: breached
        s.add(Some(3000), Some(6000), None, 1000); // waiting, not due: pending
        s.finish(vec![20, 45]);
        assert_eq!((s.clocks, s.answered), (4, 2));
        assert_eq!((s.met_internal, s.internal_breaches), (1, 2));
        assert_eq!(
            (s.met_published, s.published_breaches, s.pending),
            (2, 1, 1)
        );
        assert_eq!(s.share_met_internal, Some(1.0 / 3.0));
        assert_eq!(s.share_met_published, Some(2.0 / 3.0));
        assert_eq!(s.median_response_min, Some(65.0 / 120_000.0));
    }

    #[test]
    fn keywords_skip_stopwords_mentions_and_numbers() {
        let w: Vec<String> =
            words("@AcmeCare the app CRASHED again, order 48213 #outage").collect();
        assert_eq!(w, vec!["app", "crashed", "order", "#outage"]);
    }
}
