//! The plugin's settings: built-in defaults, and parsing of the tenant's config values.
//!
//! Parsing takes a lookup function instead of calling the host, so it runs in native tests; the
//! plugin passes `switchboard_sdk::config::get`.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_sdk::PluginError;

/// Config keys the plugin reads.
pub const CONFIG_KEYS: [&str; 7] = [
    "templates",
    "vars",
    "skip_labels",
    "private_labels",
    "max_drafts",
    "tone",
    "tone_by_label",
];

/// The tones a template can come in. `warm` is the default and what a template without a tone
/// is taken to be.
pub const TONES: [&str; 3] = ["warm", "formal", "brief"];

/// Phrases that guess at the customer's life: a reply must not assume a family, a holiday or a
/// mood it was not told about. A template containing one is refused (`not-configured`).
pub const LIFE_GUESSES: [&str; 14] = [
    "your family",
    "your kids",
    "your children",
    "your wife",
    "your husband",
    "your partner",
    "your holiday",
    "your vacation",
    "your birthday",
    "your weekend",
    "enjoy your trip",
    "hope you're having",
    "hope you are having",
    "your special day",
];

/// Labels that silence the suggester by default: don't feed trolls and spammers.
pub const DEFAULT_SKIP_LABELS: [&str; 3] = ["spam", "profanity", "troll"];

/// Labels that move the reply to a private message by default.
pub const DEFAULT_PRIVATE_LABELS: [&str; 6] = [
    "private-data",
    "private:card-number",
    "private:account-number",
    "private:email",
    "private:phone",
    "private:postal-address",
];

/// How many drafts to return by default.
pub const DEFAULT_MAX_DRAFTS: usize = 3;

/// The template key used after every label's templates.
pub const DEFAULT_KEY: &str = "default";

/// Built-in templates, used when the tenant configures no `templates`.
///
/// Short, warm and specific; signed; no sales pitch; never "call us"; apologies own the problem
/// and ask only for what is needed to fix it (privately, since order numbers don't belong in
/// public); thanks to advocates are just thanks.
pub const BUILTIN_TEMPLATES: [(&str, &[&str]); 12] = [
    (
        DEFAULT_KEY,
        &[
            "Hi {name}, thanks for getting in touch. Could you tell us a bit more about what happened? We'll take it from there. {signature}",
        ],
    ),
    (
        "sentiment:negative",
        &[
            "Sorry, {name}, that's not good enough and it's on us. Could you send us your order or booking number in a private message? We'll get it fixed. {signature}",
            "We're sorry, {name}, we got this wrong. What happened, and when? We'll put it right. {signature}",
        ],
    ),
    (
        "sentiment:positive",
        &["Thank you, {name}! That made our day, and we'll pass it on to the team. {signature}"],
    ),
    (
        "advocate",
        &["Thanks for the support, {name}, it means a lot to all of us. {signature}"],
    ),
    (
        "default@formal",
        &[
            "Hello {name}, thank you for contacting us. Please tell us what happened and we will take it from there. {signature}",
        ],
    ),
    (
        "default@brief",
        &["Hi {name}, what happened? We'll sort it. {signature}"],
    ),
    (
        "sentiment:negative@formal",
        &[
            "We apologise, {name}: this is not the service we intend, and it is our responsibility. Please send us your order or booking number in a private message and we will resolve it. {signature}",
        ],
    ),
    (
        "sentiment:negative@brief",
        &["Sorry, {name}, that's on us. DM us the order number and we'll fix it. {signature}"],
    ),
    (
        "sentiment:positive@formal",
        &["Thank you, {name}. We will pass your kind words on to the team. {signature}"],
    ),
    ("sentiment:positive@brief", &["Thanks, {name}! {signature}"]),
    (
        "advocate@formal",
        &["Thank you for your support, {name}; it is much appreciated. {signature}"],
    ),
    ("advocate@brief", &["Thank you, {name}! {signature}"]),
];

/// Everything the suggester needs from the tenant's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Template key (a lowercase label name or `default`) → templates, in order.
    pub templates: BTreeMap<String, Vec<String>>,
    /// Extra variables for `{placeholders}`.
    pub vars: BTreeMap<String, String>,
    /// Lowercase label names that suppress every draft when scored ≥ 0.5.
    pub skip_labels: Vec<String>,
    /// Lowercase label names that make drafts private when scored ≥ 0.5.
    pub private_labels: Vec<String>,
    /// Largest number of drafts returned.
    pub max_drafts: usize,
    /// The tone used unless a label asks for another: `warm`, `formal` or `brief`.
    pub tone: String,
    /// Lowercase label name → tone, for labels (scored ≥ 0.5) that call for one, e.g.
    /// `urgency:legal` → `formal`. The highest-scored such label wins.
    pub tone_by_label: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            templates: BUILTIN_TEMPLATES
                .iter()
                .map(|(key, list)| {
                    (
                        key.to_string(),
                        list.iter().map(|t| t.to_string()).collect(),
                    )
                })
                .collect(),
            vars: BTreeMap::new(),
            skip_labels: DEFAULT_SKIP_LABELS.iter().map(|s| s.to_string()).collect(),
            private_labels: DEFAULT_PRIVATE_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_drafts: DEFAULT_MAX_DRAFTS,
            tone: TONES[0].to_string(),
            tone_by_label: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Settings from config values looked up by key; a key that is absent keeps its default.
    /// A value that is present but malformed is a `not-configured` error naming the key.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        let mut settings = Settings::default();
        if let Some(raw) = get("templates") {
            settings.templates = parse_templates(&raw)?;
        }
        if let Some(raw) = get("vars") {
            settings.vars = parse_vars(&raw)?;
        }
        if let Some(raw) = get("skip_labels") {
            settings.skip_labels = parse_list(&raw);
        }
        if let Some(raw) = get("private_labels") {
            settings.private_labels = parse_list(&raw);
        }
        if let Some(raw) = get("max_drafts") {
            settings.max_drafts = parse_count(&raw)?;
        }
        if let Some(raw) = get("tone") {
            settings.tone = parse_tone("tone", raw.trim().trim_matches('"'))?;
        }
        if let Some(raw) = get("tone_by_label") {
            settings.tone_by_label = parse_tone_by_label(&raw)?;
        }
        Ok(settings)
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::NotConfigured(format!("config key `{key}`: {why}"))
}

fn parse_tone(key: &str, tone: &str) -> Result<String, PluginError> {
    let tone = tone.trim().to_lowercase();
    if TONES.contains(&tone.as_str()) {
        Ok(tone)
    } else {
        Err(bad(
            key,
            format!(
                "unknown tone `{tone}` (expected one of {})",
                TONES.join(", ")
            ),
        ))
    }
}

/// `{"urgency:legal": "formal", "advocate": "warm"}`.
pub fn parse_tone_by_label(raw: &str) -> Result<BTreeMap<String, String>, PluginError> {
    let map: BTreeMap<String, String> =
        serde_json::from_str(raw).map_err(|e| bad("tone_by_label", e))?;
    map.into_iter()
        .map(|(label, tone)| {
            Ok((
                label.trim().to_lowercase(),
                parse_tone("tone_by_label", &tone)?,
            ))
        })
        .collect()
}

/// A template's strings: one, or a list of them.
fn template_list(key: &str, value: Value) -> Result<Vec<String>, PluginError> {
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(bad(
                    "templates",
                    format!("template for `{key}` is not a string: {other}"),
                )),
            })
            .collect(),
        other => Err(bad(
            "templates",
            format!(
                "`{key}` must be a string, a list of strings or an object of tones, not {other}"
            ),
        )),
    }
}

/// `{"label": "template"}`, `{"label": ["template", …]}`, or tone variants
/// `{"label": {"warm": …, "formal": …, "brief": …}}` (stored as `label`, `label@formal`, …;
/// `label` holds the warm variant, or the first one given). Keys are lowercased. A template that
/// guesses at the customer's life ([`LIFE_GUESSES`]) is refused.
pub fn parse_templates(raw: &str) -> Result<BTreeMap<String, Vec<String>>, PluginError> {
    let value: Value = serde_json::from_str(raw).map_err(|e| bad("templates", e))?;
    let Value::Object(map) = value else {
        return Err(bad(
            "templates",
            "expected a JSON object of label → template(s)",
        ));
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in map {
        let key = key.trim().to_lowercase();
        let entries: Vec<(String, Vec<String>)> = match value {
            Value::Object(tones) => {
                let mut entries = Vec::new();
                for (tone, list) in tones {
                    let tone = parse_tone("templates", &tone)?;
                    entries.push((format!("{key}@{tone}"), template_list(&key, list)?));
                }
                let plain = entries
                    .iter()
                    .find(|(k, _)| k.ends_with("@warm"))
                    .or(entries.first())
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default();
                entries.push((key.clone(), plain));
                entries
            }
            other => vec![(key.clone(), template_list(&key, other)?)],
        };
        for (k, list) in entries {
            for t in &list {
                let lower = t.to_lowercase();
                if let Some(guess) = LIFE_GUESSES.iter().find(|g| lower.contains(*g)) {
                    return Err(bad(
                        "templates",
                        format!("template for `{k}` guesses at the customer's life (\"{guess}\")"),
                    ));
                }
            }
            out.entry(k)
                .or_default()
                .extend(list.into_iter().filter(|t| !t.trim().is_empty()));
        }
    }
    Ok(out)
}

/// `{"help_url": "https://…"}`; numbers and booleans are accepted as their JSON text.
pub fn parse_vars(raw: &str) -> Result<BTreeMap<String, String>, PluginError> {
    let value: Value = serde_json::from_str(raw).map_err(|e| bad("vars", e))?;
    let Value::Object(map) = value else {
        return Err(bad("vars", "expected a JSON object of name → value"));
    };
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(bad(
                "vars",
                format!("`{key}` must be a string, not {other}"),
            )),
        })
        .collect()
}

/// A JSON array of strings, or items separated by commas or newlines (as `config::list`);
/// lowercased and trimmed. An empty list is allowed and turns the feature off.
pub fn parse_list(raw: &str) -> Vec<String> {
    let items = serde_json::from_str::<Vec<String>>(raw)
        .unwrap_or_else(|_| raw.split([',', '\n']).map(String::from).collect());
    items
        .into_iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-negative whole number, as JSON (`3`, `"3"`) or bare text.
pub fn parse_count(raw: &str) -> Result<usize, PluginError> {
    let text = match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(s)) => s,
        Ok(Value::Number(n)) => n.to_string(),
        _ => raw.to_string(),
    };
    text.trim().parse::<usize>().map_err(|_| {
        bad(
            "max_drafts",
            format!("expected a whole number ≥ 0, got {raw:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn nothing_configured_gives_the_built_ins() {
        let s = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(s.max_drafts, 3);
        assert_eq!(s.skip_labels, ["spam", "profanity", "troll"]);
        assert_eq!(s.private_labels[0], "private-data");
        assert!(
            s.private_labels
                .contains(&"private:card-number".to_string())
        );
        assert_eq!(s.tone, "warm");
        let keys: Vec<&str> = s
            .templates
            .keys()
            .map(String::as_str)
            .filter(|k| !k.contains('@'))
            .collect();
        assert_eq!(
            keys,
            [
                "advocate",
                "default",
                "sentiment:negative",
                "sentiment:positive"
            ]
        );
        // Every built-in key has a formal and a brief variant.
        for key in keys {
            for tone in ["formal", "brief"] {
                assert!(
                    s.templates.contains_key(&format!("{key}@{tone}")),
                    "{key}@{tone}"
                );
            }
        }
        assert_eq!(s.templates["sentiment:negative"].len(), 2);
    }

    #[test]
    fn built_in_templates_are_signed_and_never_deflect_or_pitch() {
        for (key, list) in BUILTIN_TEMPLATES {
            for t in list {
                assert!(t.trim_end().ends_with("{signature}"), "{key}: {t}");
                let lower = t.to_lowercase();
                for banned in [
                    "call us", "1-800", "phone", "discount", "offer", "buy", "upgrade",
                ] {
                    assert!(!lower.contains(banned), "{key} contains {banned:?}: {t}");
                }
            }
        }
    }

    #[test]
    fn configured_values_replace_the_defaults() {
        let s = Settings::from_lookup(lookup(&[
            (
                "templates",
                r#"{"Topic:Refund": "Refund {name}", "default": ["A", "B", "  "]}"#,
            ),
            (
                "vars",
                r#"{"help_url": "https://help.example.com", "hours": 24}"#,
            ),
            ("skip_labels", "Spam, troll"),
            ("private_labels", "[]"),
            ("max_drafts", "5"),
        ]))
        .unwrap();
        assert_eq!(s.templates.len(), 2);
        assert_eq!(s.templates["topic:refund"], ["Refund {name}"]);
        assert_eq!(s.templates["default"], ["A", "B"]);
        assert_eq!(s.vars["help_url"], "https://help.example.com");
        assert_eq!(s.vars["hours"], "24");
        assert_eq!(s.skip_labels, ["spam", "troll"]);
        assert!(s.private_labels.is_empty());
        assert_eq!(s.max_drafts, 5);
    }

    #[test]
    fn tone_variants_and_tone_settings() {
        let s = Settings::from_lookup(lookup(&[
            (
                "templates",
                r#"{"Advocate": {"formal": "Thank you, {name}.", "warm": "Thanks so much, {name}!"}, "default": "Hi"}"#,
            ),
            ("tone", "\"brief\""),
            ("tone_by_label", r#"{"Urgency:Legal": "formal"}"#),
        ]))
        .unwrap();
        assert_eq!(s.templates["advocate"], ["Thanks so much, {name}!"]);
        assert_eq!(s.templates["advocate@formal"], ["Thank you, {name}."]);
        assert_eq!(s.templates["advocate@warm"], ["Thanks so much, {name}!"]);
        assert_eq!(s.tone, "brief");
        assert_eq!(s.tone_by_label["urgency:legal"], "formal");
    }

    #[test]
    fn malformed_values_are_not_configured_errors() {
        for (key, raw) in [
            ("templates", "not json"),
            ("templates", r#"["a"]"#),
            ("templates", r#"{"default": 3}"#),
            ("vars", r#"{"x": [1]}"#),
            ("max_drafts", "-1"),
            ("max_drafts", "many"),
            ("tone", "sarcastic"),
            ("tone_by_label", r#"{"advocate": "gushing"}"#),
            ("templates", r#"{"default": {"chatty": "Hi"}}"#),
            (
                "templates",
                r#"{"default": "Hope you're having a lovely holiday, {name}!"}"#,
            ),
        ] {
            match Settings::from_lookup(lookup(&[(key, raw)])) {
                Err(PluginError::NotConfigured(msg)) => assert!(msg.contains(key), "{msg}"),
                other => panic!("{key}={raw}: expected not-configured, got {other:?}"),
            }
        }
        assert_eq!(parse_count(r#""2""#).unwrap(), 2);
        assert_eq!(parse_count("0").unwrap(), 0);
    }
}
