//! How the CLI prints: JSON lines for programs, tables for people.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use switchboard::contract::{ChannelInfo, Event, WebhookOutcome};
use switchboard::runtime::Plugin;

use crate::{Format, Record};

/// Counts for the closing line of a run.
#[derive(Default)]
pub struct Summary {
    pub lines: usize,
    pub messages: usize,
    pub skipped: usize,
    pub challenges: usize,
    pub failed_lines: usize,
    pub plugin_errors: usize,
}

impl Summary {
    pub fn count(&mut self, r: &Record) {
        match r {
            Record::Triage(t) => {
                self.messages += 1;
                self.plugin_errors += t.errors.len();
            }
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

pub fn write_record(
    out: &mut impl Write,
    format: Format,
    line: usize,
    record: &Record,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let value = match record {
                Record::Triage(t) => {
                    let mut v = json!({ "line": line, "kind": "message" });
                    if let (Value::Object(o), Ok(Value::Object(t))) =
                        (&mut v, serde_json::to_value(t))
                    {
                        o.extend(t);
                    }
                    v
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
            Record::Triage(t) => {
                let m = &t.message;
                let who = m
                    .author
                    .handle
                    .clone()
                    .unwrap_or_else(|| m.author.id.clone());
                writeln!(
                    out,
                    "line {line:<4} {} {}  from {who}",
                    m.channel, m.external_id
                )?;
                writeln!(out, "    text    \"{}\"", one_line(&m.text, 100))?;
                if t.labels.is_empty() {
                    writeln!(out, "    labels  (none)")?;
                }
                for l in &t.labels {
                    writeln!(
                        out,
                        "    label   {:<24} {:.2}  [{}]",
                        l.label.name, l.label.score, l.classifier
                    )?;
                }
                for d in &t.drafts {
                    let len = d.length.map_or("?".to_string(), |n| n.to_string());
                    let fit = if d.fits { "fits" } else { "TOO LONG" };
                    writeln!(
                        out,
                        "    draft   [{}] {len}/{} {fit}: \"{}\"",
                        d.suggester,
                        d.limit,
                        one_line(&d.draft.text, 100)
                    )?;
                }
                for e in &t.errors {
                    writeln!(out, "    ERROR   {e}")?;
                }
                writeln!(out)
            }
            Record::Skipped { event_type, reason } => writeln!(
                out,
                "line {line:<4} skipped {}: {reason}\n",
                event_type.as_deref().unwrap_or("event")
            ),
            Record::Challenge { status } => {
                writeln!(out, "line {line:<4} handshake answered ({status})\n")
            }
            Record::LineError(e) => writeln!(out, "line {line:<4} ERROR {e}\n"),
        },
    }
}

pub fn write_summary(out: &mut impl Write, format: Format, s: &Summary) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            json!({
                "kind": "summary", "requests": s.lines, "messages": s.messages, "skipped": s.skipped,
                "challenges": s.challenges, "failed_lines": s.failed_lines, "plugin_errors": s.plugin_errors,
            })
        ),
        Format::Table => writeln!(
            out,
            "{} requests: {} messages, {} skipped, {} handshakes, {} failed lines, {} plugin errors",
            s.lines, s.messages, s.skipped, s.challenges, s.failed_lines, s.plugin_errors
        ),
    }
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
                Event::Message(m) => json!({ "message": m }),
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
        "world": format!("switchboard:plugin/{}@{}", p.kind.world(), p.contract_version),
        "contract_version": p.contract_version,
        "description": p.info.description,
        "vendor": p.info.vendor,
        "egress": p.info.egress,
        "config_keys": p.info.config_keys,
        "secrets": p.info.secrets,
        "digest": format!("sha256:{}", p.digest),
        "size_bytes": p.size_bytes,
        "channel": channel,
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
            writeln!(
                out,
                "kind        {} (world switchboard:plugin/{}@{})",
                p.kind,
                p.kind.world(),
                p.contract_version
            )?;
            writeln!(out, "egress      {}", list(&p.info.egress))?;
            writeln!(out, "config      {}", list(&p.info.config_keys))?;
            writeln!(out, "secrets     {}", list(&p.info.secrets))?;
            if let Some(c) = channel {
                writeln!(
                    out,
                    "channel     {} ({}), limit {} {:?}",
                    c.channel, c.display_name, c.length_rule.max, c.length_rule.unit
                )?;
                let caps: Vec<String> = c.capabilities.iter().map(|c| format!("{c:?}")).collect();
                writeln!(out, "can         {}", caps.join(", "))?;
            }
            writeln!(out, "digest      sha256:{}", p.digest)?;
            writeln!(out, "size        {} bytes", p.size_bytes)
        }
    }
}
