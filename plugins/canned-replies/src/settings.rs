//! The plugin's settings: built-in defaults, and parsing of the tenant's config values.
//!
//! Parsing takes a lookup function instead of calling the host, so it runs in native tests; the
//! plugin passes `switchboard_sdk::config::get`.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_sdk::PluginError;

/// Config keys the plugin reads.
pub const CONFIG_KEYS: [&str; 5] = [
    "templates",
    "vars",
    "skip_labels",
    "private_labels",
    "max_drafts",
];

/// Labels that silence the suggester by default: don't feed trolls and spammers.
pub const DEFAULT_SKIP_LABELS: [&str; 3] = ["spam", "profanity", "troll"];

/// Labels that move the reply to a private message by default.
pub const DEFAULT_PRIVATE_LABELS: [&str; 1] = ["private-data"];

/// How many drafts to return by default.
pub const DEFAULT_MAX_DRAFTS: usize = 3;

/// The template key used after every label's templates.
pub const DEFAULT_KEY: &str = "default";

/// Built-in templates, used when the tenant configures no `templates`.
///
/// Short, warm and specific; signed; no sales pitch; never "call us"; apologies own the problem
/// and ask only for what is needed to fix it (privately, since order numbers don't belong in
/// public); thanks to advocates are just thanks.
pub const BUILTIN_TEMPLATES: [(&str, &[&str]); 4] = [
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
        Ok(settings)
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::NotConfigured(format!("config key `{key}`: {why}"))
}

/// `{"label": "template"}` or `{"label": ["template", …]}`; keys are lowercased.
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
        let list = match value {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(bad(
                        "templates",
                        format!("template for `{key}` is not a string: {other}"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(bad(
                    "templates",
                    format!("`{key}` must be a string or a list of strings, not {other}"),
                ));
            }
        };
        let list = list.into_iter().filter(|t| !t.trim().is_empty());
        out.entry(key.trim().to_lowercase())
            .or_default()
            .extend(list);
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
        assert_eq!(s.private_labels, ["private-data"]);
        let keys: Vec<&str> = s.templates.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "advocate",
                "default",
                "sentiment:negative",
                "sentiment:positive"
            ]
        );
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
    fn malformed_values_are_not_configured_errors() {
        for (key, raw) in [
            ("templates", "not json"),
            ("templates", r#"["a"]"#),
            ("templates", r#"{"default": 3}"#),
            ("vars", r#"{"x": [1]}"#),
            ("max_drafts", "-1"),
            ("max_drafts", "many"),
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
