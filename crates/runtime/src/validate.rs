//! Plugin output is untrusted: every result is checked for sizes, ranges and required fields
//! before the host uses it. A failed check is reported as malformed output of that stage.

use crate::limits::Limits;
use switchboard_contract::{
    AnsweredWebhook, ChannelInfo, DeliveryReceipt, Draft, Event, HttpResponse, Label, Message,
    PluginInfo, PollBatch, WebhookOutcome,
};

const MAX_LABELS: usize = 256;
const MAX_EVIDENCE: usize = 64;
const MAX_DRAFTS: usize = 32;
const MAX_EVENTS: usize = 10_000;
const MAX_NAME: usize = 128;
const MAX_ID: usize = 1024;

pub(crate) trait Checked {
    fn check(&self, limits: &Limits) -> Result<(), String>;
}

fn within_total(total: usize, limits: &Limits) -> Result<(), String> {
    if total as u64 > limits.max_output_bytes {
        return Err(format!(
            "output of {total} bytes exceeds the limit of {} bytes",
            limits.max_output_bytes
        ));
    }
    Ok(())
}

fn unit_score(what: &str, v: f32) -> Result<(), String> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("{what} {v} is not in [0, 1]"));
    }
    Ok(())
}

fn bounded(what: &str, s: &str, max: usize, required: bool) -> Result<(), String> {
    if required && s.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > max {
        return Err(format!("{what} is {} bytes, more than {max}", s.len()));
    }
    Ok(())
}

impl Checked for Vec<Label> {
    fn check(&self, limits: &Limits) -> Result<(), String> {
        if self.len() > MAX_LABELS {
            return Err(format!("{} labels, more than {MAX_LABELS}", self.len()));
        }
        let mut total = 0;
        for l in self {
            bounded("label name", &l.name, MAX_NAME, true)?;
            unit_score(&format!("score of label `{}`", l.name), l.score)?;
            if l.evidence.len() > MAX_EVIDENCE {
                return Err(format!(
                    "label `{}` has more than {MAX_EVIDENCE} evidence items",
                    l.name
                ));
            }
            total += l.name.len() + l.evidence.iter().map(|e| e.note.len()).sum::<usize>();
        }
        within_total(total, limits)
    }
}

/// Evidence spans must point inside the message text, on character boundaries.
pub(crate) fn spans_within(labels: &[Label], text: &str, len: usize) -> Result<(), String> {
    for l in labels {
        for e in &l.evidence {
            if let Some(span) = &e.span {
                let (s, t) = (span.start as usize, span.end as usize);
                if s > t || t > len || !text.is_char_boundary(s) || !text.is_char_boundary(t) {
                    return Err(format!(
                        "label `{}` has evidence span {s}..{t} outside the text",
                        l.name
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Checked for Vec<Draft> {
    fn check(&self, limits: &Limits) -> Result<(), String> {
        if self.len() > MAX_DRAFTS {
            return Err(format!("{} drafts, more than {MAX_DRAFTS}", self.len()));
        }
        let mut total = 0;
        for d in self {
            bounded("draft text", &d.text, 64 * 1024, true)?;
            unit_score("draft confidence", d.confidence)?;
            total += d.text.len() + d.rationale.len();
        }
        within_total(total, limits)
    }
}

fn message_bytes(m: &Message) -> usize {
    m.text.len()
        + m.external_id.len()
        + m.conversation_key.len()
        + m.author.id.len()
        + m.extra
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + m.attachments
            .iter()
            .map(|a| a.url.as_deref().map_or(0, str::len))
            .sum::<usize>()
}

fn check_message(m: &Message) -> Result<(), String> {
    bounded("message external-id", &m.external_id, MAX_ID, true)?;
    bounded(
        "message conversation-key",
        &m.conversation_key,
        MAX_ID,
        true,
    )?;
    bounded("message author id", &m.author.id, MAX_ID, true)?;
    bounded("message text", &m.text, 1024 * 1024, false)?;
    Ok(())
}

fn check_events(events: &[Event], limits: &Limits) -> Result<(), String> {
    if events.len() > MAX_EVENTS {
        return Err(format!("{} events, more than {MAX_EVENTS}", events.len()));
    }
    let mut total = 0;
    for e in events {
        match e {
            Event::Message(m) => {
                check_message(m)?;
                total += message_bytes(m);
            }
            Event::Skipped(s) => total += s.reason.len(),
        }
    }
    within_total(total, limits)
}

impl Checked for WebhookOutcome {
    fn check(&self, limits: &Limits) -> Result<(), String> {
        match self {
            WebhookOutcome::Challenge(r) => {
                if !(100..=599).contains(&r.status) {
                    return Err(format!(
                        "challenge status {} is not an HTTP status",
                        r.status
                    ));
                }
                within_total(r.body.len(), limits)
            }
            WebhookOutcome::Events(events) => check_events(events, limits),
        }
    }
}

/// The largest acknowledgement body a connector may give; platforms expect a few bytes.
const MAX_ACK_BODY: usize = 64 * 1024;

/// A connector's own answer to the platform goes out on the host's origin, which also serves
/// the console: a plugin may set the body's type and its own `x-` headers, never cookies,
/// caching, framing or security headers.
fn check_acknowledgement(r: &HttpResponse) -> Result<(), String> {
    if !(200..=299).contains(&r.status) {
        return Err(format!(
            "acknowledgement status {} is not 2xx: a platform would retry messages already stored",
            r.status
        ));
    }
    if r.body.len() > MAX_ACK_BODY {
        return Err(format!(
            "acknowledgement body is {} bytes, more than {MAX_ACK_BODY}",
            r.body.len()
        ));
    }
    if r.headers.len() > 16 {
        return Err(format!(
            "acknowledgement has {} headers, more than 16",
            r.headers.len()
        ));
    }
    for (name, value) in &r.headers {
        let lower = name.to_ascii_lowercase();
        if lower != "content-type" && !lower.starts_with("x-") {
            return Err(format!(
                "acknowledgement header `{name}` is not allowed (only `content-type` and `x-…`)"
            ));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(format!(
                "acknowledgement header `{name}` is not a valid HTTP header"
            ));
        }
    }
    Ok(())
}

impl Checked for AnsweredWebhook {
    fn check(&self, limits: &Limits) -> Result<(), String> {
        self.outcome.check(limits)?;
        match (&self.outcome, &self.acknowledgement) {
            (WebhookOutcome::Events(_), Some(ack)) => check_acknowledgement(ack),
            _ => Ok(()),
        }
    }
}

/// Extra channel names a connector declares: a few short lowercase names, like channel names.
impl Checked for Vec<String> {
    fn check(&self, _: &Limits) -> Result<(), String> {
        if self.len() > 8 {
            return Err(format!("{} extra channels, more than 8", self.len()));
        }
        for name in self {
            bounded("extra channel", name, 32, true)?;
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!(
                    "extra channel `{name}` is not a lowercase name (a-z, 0-9, -)"
                ));
            }
        }
        Ok(())
    }
}

impl Checked for PollBatch {
    fn check(&self, limits: &Limits) -> Result<(), String> {
        if let Some(c) = &self.next_cursor {
            bounded("next cursor", c, 8 * 1024, false)?;
        }
        check_events(&self.events, limits)
    }
}

impl Checked for DeliveryReceipt {
    fn check(&self, _: &Limits) -> Result<(), String> {
        bounded("delivered external-id", &self.external_id, MAX_ID, true)
    }
}

impl Checked for ChannelInfo {
    fn check(&self, _: &Limits) -> Result<(), String> {
        bounded("channel name", &self.channel, MAX_NAME, true)?;
        if !self
            .channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "channel name `{}` must be lowercase kebab-case",
                self.channel
            ));
        }
        if self.length_rule.max == 0 {
            return Err("length rule max is 0".into());
        }
        Ok(())
    }
}

impl Checked for PluginInfo {
    fn check(&self, _: &Limits) -> Result<(), String> {
        bounded("plugin name", &self.name, 64, true)?;
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "plugin name `{}` must be lowercase kebab-case",
                self.name
            ));
        }
        bounded("plugin version", &self.version, 64, true)?;
        bounded("plugin description", &self.description, 1024, false)?;
        if self.egress.len() > 64 {
            return Err("more than 64 egress hosts".into());
        }
        for host in &self.egress {
            bounded("egress host", host, 253, true)?;
        }
        Ok(())
    }
}
