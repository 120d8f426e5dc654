//! How the CLI prints: JSON lines for programs, tables for people.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use switchboard::contract::{ChannelInfo, Event, WebhookOutcome};
use switchboard::replay::{self, ReplayReport, ShadowComparison};
use switchboard::runtime::Plugin;
use switchboard::store::{Store, StoreError};
use switchboard::worker::DeliveryReport;

use crate::{Format, Record};

/// Counts for the closing line of a run.
#[derive(Default)]
pub struct Summary {
    pub lines: usize,
    pub messages: usize,
    pub duplicates: usize,
    /// Messages taken as answers to a satisfaction survey.
    pub survey_answers: usize,
    pub held: usize,
    pub resumed: usize,
    pub skipped: usize,
    pub challenges: usize,
    pub failed_lines: usize,
    pub plugin_errors: usize,
    /// Messages in the store for this tenant, by status.
    pub store: Vec<(String, i64)>,
    /// Replies in the outbox, by status.
    pub outbox: std::collections::BTreeMap<String, usize>,
    pub delivery: Option<DeliveryReport>,
}

impl Summary {
    pub fn count(&mut self, r: &Record) {
        match r {
            Record::Processed { triage, status, .. } => {
                self.messages += 1;
                self.plugin_errors += triage.errors.len();
                if status != "done" {
                    self.held += 1;
                }
            }
            Record::Duplicate { .. } => self.duplicates += 1,
            Record::SurveyAnswer { .. } => self.survey_answers += 1,
            Record::Skipped { .. } => self.skipped += 1,
            Record::Challenge { .. } => self.challenges += 1,
            Record::LineError(_) => self.failed_lines += 1,
        }
    }
    pub fn failed(&self) -> bool {
        self.failed_lines > 0 || self.plugin_errors > 0
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

fn line_label(line: usize) -> String {
    if line == 0 {
        "resumed  ".to_string()
    } else {
        format!("line {line:<4}")
    }
}

pub fn write_record(
    out: &mut impl Write,
    format: Format,
    line: usize,
    record: &Record,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let value = match record {
                Record::Processed {
                    message_id,
                    status,
                    triage,
                } => {
                    let mut v = json!({ "line": line, "kind": "message", "message_id": message_id, "status": status });
                    if let (Value::Object(o), Value::Object(t)) =
                        (&mut v, switchboard::contract::wit_json(triage))
                    {
                        o.extend(t);
                    }
                    v
                }
                Record::Duplicate { message_id } => {
                    json!({ "line": line, "kind": "duplicate", "message_id": message_id })
                }
                Record::SurveyAnswer { message_id, score } => {
                    json!({ "line": line, "kind": "survey-answer", "message_id": message_id, "score": score })
                }
                Record::Skipped { event_type, reason } => {
                    json!({ "line": line, "kind": "skipped", "event_type": event_type, "reason": reason })
                }
                Record::Challenge { status } => {
                    json!({ "line": line, "kind": "challenge", "status": status })
                }
                Record::LineError(e) => json!({ "line": line, "kind": "error", "error": e }),
            };
            writeln!(out, "{value}")
        }
        Format::Table => match record {
            Record::Processed {
                status, triage: t, ..
            } => {
                let m = &t.message;
                let who = m
                    .author
                    .handle
                    .clone()
                    .unwrap_or_else(|| m.author.id.clone());
                writeln!(
                    out,
                    "{} {} {}  from {who}",
                    line_label(line),
                    m.channel,
                    m.external_id
                )?;
                writeln!(out, "    text     \"{}\"", one_line(&m.text, 100))?;
                if t.labels.is_empty() && t.held.is_none() {
                    writeln!(out, "    labels   (none)")?;
                }
                for l in &t.labels {
                    writeln!(
                        out,
                        "    label    {:<24} {:.2}  [{}]",
                        l.label.name, l.label.score, l.classifier
                    )?;
                }
                for l in &t.shadow_labels {
                    writeln!(
                        out,
                        "    shadow   {:<24} {:.2}  [{}]",
                        l.label.name, l.label.score, l.classifier
                    )?;
                }
                if let Some(reason) = &t.held {
                    writeln!(out, "    {status:<8} {reason}")?;
                } else {
                    let why = if t.decision.by_default {
                        "no rule matched: policy default".to_string()
                    } else {
                        t.decision
                            .fired
                            .iter()
                            .map(|f| match &f.why {
                                Some(why) => format!("rule `{}`: {why}", f.rule),
                                None => format!("rule `{}` ({})", f.rule, f.when),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    writeln!(out, "    decide   {}  — {why}", t.decision.summary())?;
                }
                for d in &t.drafts {
                    let len = d.length.map_or("?".to_string(), |n| n.to_string());
                    let verdict = if d.blocked { "BLOCKED" } else { "ok" };
                    writeln!(
                        out,
                        "    draft    [{}] {len}/{} {verdict}: \"{}\"",
                        d.suggester,
                        d.limit,
                        one_line(&d.draft.text, 100)
                    )?;
                    for f in &d.findings {
                        writeln!(
                            out,
                            "      {:<5}  {}: {}",
                            format!("{:?}", f.severity).to_lowercase(),
                            f.guard,
                            f.reason
                        )?;
                    }
                }
                if !t.degraded.is_empty() {
                    writeln!(out, "    degraded (skipped: {})", t.degraded.join(", "))?;
                }
                for e in &t.errors {
                    writeln!(out, "    ERROR    {e}")?;
                }
                writeln!(out)
            }
            Record::Duplicate { message_id } => writeln!(
                out,
                "{} duplicate: already stored as {message_id}, not processed again\n",
                line_label(line)
            ),
            Record::SurveyAnswer { message_id, score } => writeln!(
                out,
                "{} survey answer: {score}/5 (message {message_id}), recorded\n",
                line_label(line)
            ),
            Record::Skipped { event_type, reason } => writeln!(
                out,
                "{} skipped {}: {reason}\n",
                line_label(line),
                event_type.as_deref().unwrap_or("event")
            ),
            Record::Challenge { status } => {
                writeln!(out, "{} handshake answered ({status})\n", line_label(line))
            }
            Record::LineError(e) => writeln!(out, "{} ERROR {e}\n", line_label(line)),
        },
    }
}

pub fn write_summary(out: &mut impl Write, format: Format, s: &Summary) -> std::io::Result<()> {
    let store: std::collections::BTreeMap<&str, i64> =
        s.store.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            json!({
                "kind": "summary", "requests": s.lines, "messages": s.messages,
                "duplicates": s.duplicates, "survey_answers": s.survey_answers, "held": s.held, "resumed": s.resumed, "skipped": s.skipped,
                "challenges": s.challenges, "failed_lines": s.failed_lines, "plugin_errors": s.plugin_errors,
                "store": store, "outbox": s.outbox, "delivery": s.delivery,
            })
        ),
        Format::Table => {
            writeln!(
                out,
                "{} requests: {} new messages ({} held), {} duplicates, {} resumed, {} skipped, {} handshakes, {} failed lines, {} plugin errors",
                s.lines,
                s.messages,
                s.held,
                s.duplicates,
                s.resumed,
                s.skipped,
                s.challenges,
                s.failed_lines,
                s.plugin_errors
            )?;
            writeln!(out, "store: messages {store:?}; outbox {:?}", s.outbox)?;
            if let Some(d) = &s.delivery {
                writeln!(
                    out,
                    "delivery: {} sent, {} to retry, {} dead",
                    d.sent, d.retrying, d.dead
                )?;
            }
            Ok(())
        }
    }
}

pub fn write_replay(
    out: &mut impl Write,
    format: Format,
    report: &ReplayReport,
    refused: &[String],
    changed_only: bool,
) -> std::io::Result<()> {
    let shown = report
        .diffs
        .iter()
        .filter(|d| !changed_only || d.labels_changed || d.decision_changed || d.drafts_changed);
    match format {
        Format::Json => {
            for d in shown {
                writeln!(out, "{}", json!({ "kind": "message", "diff": d }))?;
            }
            writeln!(
                out,
                "{}",
                json!({
                    "kind": "summary", "messages": report.messages,
                    "labels_changed": report.labels_changed, "decisions_changed": report.decisions_changed,
                    "drafts_changed": report.drafts_changed, "decision_changes": report.decision_changes,
                    "refused": refused,
                })
            )
        }
        Format::Table => {
            for d in shown {
                let mark = |b: bool| if b { "CHANGED" } else { "same" };
                writeln!(out, "{}  \"{}\"", d.external_id, one_line(&d.text, 80))?;
                let labels = |side: &replay::Side| {
                    side.labels
                        .iter()
                        .filter(|(_, s)| **s >= replay::PRESENT)
                        .map(|(n, s)| format!("{n} {s:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                writeln!(
                    out,
                    "    labels    {:<7} {} ⇒ {}",
                    mark(d.labels_changed),
                    labels(&d.current),
                    labels(&d.candidate)
                )?;
                writeln!(
                    out,
                    "    decision  {:<7} {} [{}] ⇒ {} [{}]",
                    mark(d.decision_changed),
                    d.current.decision,
                    d.current.rules.join(","),
                    d.candidate.decision,
                    d.candidate.rules.join(",")
                )?;
                if d.drafts_changed {
                    for t in &d.current.drafts {
                        writeln!(out, "    draft  -  \"{}\"", one_line(t, 90))?;
                    }
                    for t in &d.candidate.drafts {
                        writeln!(out, "    draft  +  \"{}\"", one_line(t, 90))?;
                    }
                }
                for e in &d.candidate_errors {
                    writeln!(out, "    ERROR (candidate) {e}")?;
                }
                writeln!(out)?;
            }
            for r in refused {
                writeln!(out, "refused: {r}")?;
            }
            writeln!(
                out,
                "{} messages: labels changed on {}, decisions on {}, drafts on {}",
                report.messages,
                report.labels_changed,
                report.decisions_changed,
                report.drafts_changed
            )?;
            for (change, n) in &report.decision_changes {
                writeln!(out, "    {n:>5}  {change}")?;
            }
            Ok(())
        }
    }
}

pub fn write_shadow_report(
    out: &mut impl Write,
    format: Format,
    report: &[ShadowComparison],
) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", json!({ "shadows": report })),
        Format::Table => {
            for c in report {
                writeln!(
                    out,
                    "shadow `{}` beside live `{}`: {} messages, labels agree on {} ({:.1}%), decisions would change on {}",
                    c.shadow,
                    c.live,
                    c.messages,
                    c.agreeing,
                    c.agreement * 100.0,
                    c.decisions_changed
                )?;
                writeln!(
                    out,
                    "    {:<28} {:>6} {:>10} {:>12}",
                    "label", "both", "live only", "shadow only"
                )?;
                for (name, [both, live, shadow]) in &c.confusion {
                    writeln!(out, "    {name:<28} {both:>6} {live:>10} {shadow:>12}")?;
                }
                for (change, n) in &c.decision_changes {
                    writeln!(out, "    {n:>5}  {change}")?;
                }
                writeln!(out)?;
            }
            Ok(())
        }
    }
}

/// A stored conversation with everything an agent needs to see, as JSON.
pub async fn conversation_view(
    store: &Store,
    tenant: &str,
    id_or_key: &str,
) -> Result<Option<Value>, StoreError> {
    store.conversation_view(tenant, id_or_key).await
}

pub fn write_conversation(
    out: &mut impl Write,
    format: Format,
    view: &Value,
) -> std::io::Result<()> {
    if let Format::Json = format {
        return writeln!(out, "{view}");
    }
    let c = &view["conversation"];
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    writeln!(
        out,
        "conversation {} on {} (key {}): state {}, team {}, escalated {}, incident {}",
        s(&c["id"]),
        s(&c["channel"]),
        s(&c["conversation_key"]),
        s(&c["state"]),
        s(&c["team"]),
        s(&c["escalated"]),
        s(&c["incident"])
    )?;
    if !c["close_publicly"].is_null() {
        writeln!(out, "note: {}", s(&c["close_publicly"]))?;
    }
    for m in view["messages"].as_array().into_iter().flatten() {
        let msg = &m["message"];
        writeln!(
            out,
            "\n{} [{}] from {}: \"{}\"",
            s(&msg["external_id"]),
            s(&m["status"]),
            s(&msg["author"]["handle"]),
            one_line(&s(&msg["text"]), 100)
        )?;
        for l in m["labels"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    label  {:<6} {:<24} {:.2} [{}]",
                s(&l["role"]),
                s(&l["name"]),
                l["score"].as_f64().unwrap_or(0.0),
                s(&l["classifier"])
            )?;
        }
        if let Some(d) = m["decision"].as_object() {
            let summary =
                serde_json::from_value::<switchboard::policy::Decision>(Value::Object(d.clone()))
                    .map(|d| d.summary())
                    .unwrap_or_default();
            writeln!(out, "    decide {summary}")?;
            for f in d
                .get("fired")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                writeln!(
                    out,
                    "      rule `{}` when {} — {}",
                    s(&f["rule"]),
                    s(&f["when"]),
                    s(&f["why"])
                )?;
            }
        }
        for d in m["drafts"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    draft  [{}] {} {}: \"{}\"",
                s(&d["suggester"]),
                s(&d["purpose"]),
                s(&d["status"]),
                one_line(&s(&d["text"]), 90)
            )?;
            for f in d["findings"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "      {} {}: {}",
                    s(&f["severity"]),
                    s(&f["guard"]),
                    s(&f["reason"])
                )?;
            }
        }
        for r in m["replies"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    reply  {} (key {}, attempts {}){}",
                s(&r["status"]),
                s(&r["idempotency_key"]),
                s(&r["attempts"]),
                r["last_error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )?;
        }
        for a in m["audit"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    audit  {} {} by {}",
                s(&a["at"]),
                s(&a["action"]),
                s(&a["actor"])
            )?;
        }
    }
    Ok(())
}

/// A connector's answer to one request, as JSON.
pub fn outcome_json(outcome: &WebhookOutcome) -> Value {
    match outcome {
        WebhookOutcome::Challenge(r) => json!({
            "outcome": "challenge",
            "status": r.status,
            "headers": r.headers,
            "body": String::from_utf8_lossy(&r.body),
        }),
        WebhookOutcome::Events(events) => json!({
            "outcome": "events",
            "events": events.iter().map(|e| match e {
                Event::Message(m) => json!({ "message": switchboard::contract::wit_json(m) }),
                Event::Skipped(s) => json!({ "skipped": { "event_type": s.event_type, "reason": s.reason } }),
            }).collect::<Vec<_>>(),
        }),
    }
}

pub fn write_inspection(
    out: &mut impl Write,
    format: Format,
    path: &Path,
    p: &Plugin,
    channel: Option<&ChannelInfo>,
) -> std::io::Result<()> {
    let value = json!({
        "file": path.display().to_string(),
        "name": p.info.name,
        "version": p.info.version,
        "kind": p.kind,
        "world": p.world(),
        "contract_version": p.contract_version,
        "description": p.info.description,
        "vendor": p.info.vendor,
        "egress": p.info.egress,
        "config_keys": p.info.config_keys,
        "secrets": p.info.secrets,
        "digest": format!("sha256:{}", p.digest),
        "size_bytes": p.size_bytes,
        "channel": channel.map(switchboard::contract::wit_json),
    });
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Format::Table => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.join(", ")
                }
            };
            writeln!(out, "file        {}", path.display())?;
            writeln!(
                out,
                "plugin      {} {} ({})",
                p.info.name, p.info.version, p.info.vendor
            )?;
            writeln!(out, "            {}", p.info.description)?;
            writeln!(out, "kind        {} (world {})", p.kind, p.world())?;
            writeln!(out, "egress      {}", list(&p.info.egress))?;
            writeln!(out, "config      {}", list(&p.info.config_keys))?;
            writeln!(out, "secrets     {}", list(&p.info.secrets))?;
            if let Some(c) = channel {
                let names = switchboard::contract::wit_json(c);
                writeln!(
                    out,
                    "channel     {} ({}), limit {} {}",
                    c.channel,
                    c.display_name,
                    c.length_rule.max,
                    names["length_rule"]["unit"].as_str().unwrap_or("?")
                )?;
                let caps: Vec<&str> = names["capabilities"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
                    .unwrap_or_default();
                writeln!(out, "can         {}", caps.join(", "))?;
            }
            writeln!(out, "digest      sha256:{}", p.digest)?;
            writeln!(out, "size        {} bytes", p.size_bytes)
        }
    }
}

/// Running response clocks (`switchboard sla`).
pub fn write_clocks(
    out: &mut impl Write,
    format: Format,
    swept: &switchboard::care::SweepReport,
    clocks: &[switchboard::care::ClockView],
    time_zone: &str,
) -> std::io::Result<()> {
    if let Format::Json = format {
        return writeln!(out, "{}", json!({ "swept": swept, "clocks": clocks }));
    }
    let when = |ms: Option<i64>| {
        ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .and_then(|t| {
                jiff::tz::TimeZone::get(time_zone)
                    .ok()
                    .map(|z| t.to_zoned(z))
            })
            .map_or("never".to_string(), |z| {
                z.strftime("%a %d %b %H:%M").to_string()
            })
    };
    writeln!(
        out,
        "recorded now: {} warnings, {} internal breaches, {} published breaches",
        swept.warned, swept.internal_breaches, swept.published_breaches
    )?;
    if clocks.is_empty() {
        return writeln!(out, "no customer is waiting for a response");
    }
    writeln!(
        out,
        "{:<18} {:<6} {:<8} {:<17} {:<17} {:<17} conversation",
        "state", "kind", "channel", "waiting since", "internal due", "published due"
    )?;
    for v in clocks {
        let c = &v.clock;
        writeln!(
            out,
            "{:<18} {:<6} {:<8} {:<17} {:<17} {:<17} {}",
            v.state,
            c.kind,
            c.channel,
            when(Some(c.started_at)),
            when(c.internal_due_at),
            when(c.published_due_at),
            c.conversation_id
        )?;
    }
    Ok(())
}
