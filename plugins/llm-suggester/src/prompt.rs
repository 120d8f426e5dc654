//! Settings and the request: the care policy as a system prompt, the message as the user turn.

use serde_json::{Value, json};
use switchboard_sdk::{CallContext, Label, LengthUnit, Message, PluginError, Visibility};
use switchboard_textscan::names::greeting_name;

/// Config keys the plugin reads.
pub const CONFIG_KEYS: [&str; 9] = [
    "endpoint",
    "model",
    "max_tokens",
    "temperature",
    "timeout_ms",
    "brand",
    "policy",
    "skip_labels",
    "max_chars",
];

/// The built-in rules every draft is asked to follow (the reply guards check the result anyway).
pub const CARE_RULES: [&str; 7] = [
    "Be short and human: plain words, like a person on the care team would write. No corporate phrases, no hashtags.",
    "If the company got something wrong, say so plainly and own it. Apologise once, without excuses.",
    "Answer here, in this conversation. Never send the customer to a phone number, an e-mail address, a web form, a shop or another channel.",
    "No sales pitch: no offers, upgrades, discounts, products or promotions.",
    "Never invent facts. Do not state an order status, a refund, compensation or a date you were not given; say what you will check or do instead.",
    "Be personal without guessing at the customer's life, and never repeat private data from their message (card numbers, addresses, phone numbers).",
    "Reply with the text of the reply only: no quotes, no markdown, no notes.",
];

/// The plugin's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub endpoint: String,
    pub model: String,
    pub max_tokens: u32,
    pub temperature: f32,
    pub timeout_ms: u64,
    pub brand: Option<String>,
    pub policy: Vec<String>,
    pub skip_labels: Vec<String>,
    /// A length budget when the channel gives no rule (default 280).
    pub max_chars: u32,
}

fn bad(key: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::NotConfigured(format!("config key `{key}`: {why}"))
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
    ok: impl Fn(&T) -> bool,
) -> Result<T, PluginError> {
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .trim_matches('"')
            .parse::<T>()
            .ok()
            .filter(|v| ok(v))
            .ok_or_else(|| bad(key, format!("not a valid value: {raw:?}"))),
    }
}

fn list(raw: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(raw)
        .unwrap_or_else(|_| raw.lines().map(String::from).collect())
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Settings {
    /// Settings from config values looked up by key; malformed or missing required values are
    /// `not-configured` naming the key.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        let endpoint = get("endpoint")
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| bad("endpoint", "not set: the chat-completions base URL"))?;
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(bad(
                "endpoint",
                format!("`{endpoint}` is not an http(s) URL"),
            ));
        }
        let model = get("model")
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("model", "not set"))?;
        Ok(Settings {
            endpoint,
            model,
            max_tokens: number(&get, "max_tokens", 300u32, |v| (1..=8192).contains(v))?,
            temperature: number(&get, "temperature", 0.3f32, |v| (0.0..=2.0).contains(v))?,
            timeout_ms: number(&get, "timeout_ms", 8000u64, |v| (1..=120_000).contains(v))?,
            brand: get("brand")
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty()),
            policy: get("policy").map(|p| list(&p)).unwrap_or_default(),
            skip_labels: get("skip_labels")
                .map(|s| {
                    list(&s.replace(',', "\n"))
                        .into_iter()
                        .map(|l| l.to_lowercase())
                        .collect()
                })
                .unwrap_or_else(|| vec!["spam".into(), "troll".into(), "abuse".into()]),
            max_chars: number(&get, "max_chars", 280u32, |v| *v >= 20)?,
        })
    }

    /// Whether a label (≥ 0.5) says not to draft at all.
    pub fn skips(&self, labels: &[Label]) -> bool {
        labels.iter().any(|l| {
            l.score >= 0.5
                && self
                    .skip_labels
                    .iter()
                    .any(|s| l.name.eq_ignore_ascii_case(s))
        })
    }
}

fn unit_words(unit: LengthUnit) -> &'static str {
    match unit {
        LengthUnit::Characters => "characters",
        LengthUnit::Graphemes => "characters as a person counts them (an emoji is one)",
        LengthUnit::Weighted => {
            "weighted characters (a link counts 23, CJK characters and emoji count 2)"
        }
        LengthUnit::Bytes => "bytes of UTF-8",
    }
}

/// The system prompt: the care rules, the length and signature, the tenant's rules, the labels.
pub fn system_prompt(settings: &Settings, labels: &[Label], context: &CallContext) -> String {
    let who = match &settings.brand {
        Some(b) => format!("the customer care team of {b}"),
        None => "a customer care team".to_string(),
    };
    let mut lines = vec![format!(
        "You draft one reply to a customer on social media, for {who}. An agent reviews it before it is sent."
    )];
    lines.extend(CARE_RULES.iter().map(|r| format!("- {r}")));
    let (max, unit) = match &context.length_rule {
        Some(rule) => (rule.max, unit_words(rule.unit)),
        None => (settings.max_chars, "characters"),
    };
    lines.push(format!(
        "- The whole reply, signature included, must be at most {max} {unit}."
    ));
    match context
        .signature
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(sig) => lines.push(format!("- End the reply with the signature: {sig}")),
        None => lines.push("- Do not sign the reply.".into()),
    }
    if !settings.policy.is_empty() {
        lines.push("The company's own rules:".into());
        lines.extend(settings.policy.iter().map(|p| format!("- {p}")));
    }
    let mut sorted: Vec<&Label> = labels.iter().filter(|l| l.score >= 0.5).collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    if !sorted.is_empty() {
        let names: Vec<String> = sorted
            .iter()
            .map(|l| format!("{} ({:.2})", l.name, l.score))
            .collect();
        lines.push(format!(
            "What the classifiers noticed about the message (context, not facts to repeat): {}",
            names.join(", ")
        ));
    }
    lines.join("\n")
}

/// The user turn: who wrote what, where.
pub fn user_prompt(message: &Message) -> String {
    let name = greeting_name(
        message.author.display_name.as_deref(),
        message.author.handle.as_deref(),
    );
    let place = match message.visibility {
        Visibility::Public => "in public",
        Visibility::Private => "in a private message",
    };
    format!(
        "{name} wrote on {} ({place}):\n{}",
        message.channel, message.text
    )
}

/// The JSON body of the chat-completions request.
pub fn request_body(
    settings: &Settings,
    message: &Message,
    labels: &[Label],
    context: &CallContext,
) -> Value {
    json!({
        "model": settings.model,
        "messages": [
            {"role": "system", "content": system_prompt(settings, labels, context)},
            {"role": "user", "content": user_prompt(message)},
        ],
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "n": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn required_and_malformed_values_name_their_key() {
        for (pairs, key) in [
            (vec![("model", "m")], "endpoint"),
            (vec![("endpoint", "ftp://x"), ("model", "m")], "endpoint"),
            (vec![("endpoint", "https://x")], "model"),
            (
                vec![
                    ("endpoint", "https://x"),
                    ("model", "m"),
                    ("temperature", "hot"),
                ],
                "temperature",
            ),
            (
                vec![
                    ("endpoint", "https://x"),
                    ("model", "m"),
                    ("max_tokens", "0"),
                ],
                "max_tokens",
            ),
        ] {
            match Settings::from_lookup(lookup(&pairs)) {
                Err(PluginError::NotConfigured(m)) => assert!(m.contains(key), "{m}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
        let s = Settings::from_lookup(lookup(&[
            ("endpoint", "https://x"),
            ("model", "m"),
            ("policy", r#"["Say sorry by name."]"#),
        ]))
        .unwrap();
        assert_eq!(s.max_tokens, 300);
        assert_eq!(s.policy, ["Say sorry by name."]);
        assert_eq!(s.skip_labels, ["spam", "troll", "abuse"]);
    }
}
