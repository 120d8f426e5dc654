//! The tenant's configuration, read through a lookup function so it can be tested without a
//! host.

use switchboard_sdk::PluginError;

/// Config keys this connector reads.
pub const CONFIG_KEYS: &[&str] = &[
    "api_base",
    "user_id",
    "listen_keywords",
    "listen_query",
    "poll_direct_messages",
];
/// The X app's API key secret ("consumer secret"): the HMAC key of the CRC and of webhook
/// signatures.
pub const CONSUMER_SECRET: &str = "consumer-secret";
/// The brand account's OAuth 2.0 user-context access token (Bearer).
pub const ACCESS_TOKEN: &str = "access-token";
/// The real API.
pub const DEFAULT_API_BASE: &str = "https://api.x.com";

/// The connector's configuration for one tenant.
#[derive(Debug, Clone, Default)]
pub struct Config {
    api_base: Option<String>,
    /// The brand account's numeric user id.
    pub user_id: Option<String>,
    pub listen_keywords: Vec<String>,
    pub listen_query: Option<String>,
    pub poll_direct_messages: bool,
}

/// A config value with JSON string quotes removed and whitespace trimmed; blank is absent.
fn unquote(raw: String) -> Option<String> {
    let value = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Number(n)) => n.to_string(),
        _ => raw,
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// A JSON array of strings, or items separated by commas or newlines.
fn list(raw: Option<String>) -> Vec<String> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let items = serde_json::from_str::<Vec<String>>(&raw)
        .unwrap_or_else(|_| raw.split([',', '\n']).map(String::from).collect::<Vec<_>>());
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item.trim().to_string();
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

impl Config {
    /// Read the configuration through `get` (the trait impl passes `config::get`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            api_base: get("api_base").and_then(unquote),
            user_id: get("user_id").and_then(unquote),
            listen_keywords: list(get("listen_keywords")),
            listen_query: get("listen_query").and_then(unquote),
            poll_direct_messages: get("poll_direct_messages")
                .and_then(unquote)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")),
        }
    }

    /// The API base URL without a trailing slash.
    pub fn api_base(&self) -> Result<String, PluginError> {
        let base = self
            .api_base
            .clone()
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http:// or https:// URL, got `{base}`"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// The brand's user id, required for polling mentions.
    pub fn require_user_id(&self) -> Result<&str, PluginError> {
        match self.user_id.as_deref() {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
            Some(other) => Err(PluginError::NotConfigured(format!(
                "config `user_id` must be the brand account's numeric X user id, got `{other}`"
            ))),
            None => Err(PluginError::NotConfigured(
                "config `user_id` is not set: the brand account's numeric X user id (polling \
                 reads its mentions timeline)"
                    .into(),
            )),
        }
    }

    /// The recent-search query for listening, if any: `listen_query` as written, else the
    /// keywords OR-ed together without retweets.
    pub fn search_query(&self) -> Option<String> {
        if let Some(q) = &self.listen_query {
            return Some(q.clone());
        }
        if self.listen_keywords.is_empty() {
            return None;
        }
        let terms: Vec<String> = self
            .listen_keywords
            .iter()
            .map(|k| {
                if k.contains(char::is_whitespace) && !k.starts_with('"') {
                    format!("\"{}\"", k.replace('"', ""))
                } else {
                    k.clone()
                }
            })
            .collect();
        Some(format!("({}) -is:retweet", terms.join(" OR ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = config(&[]);
        assert_eq!(c.api_base().unwrap(), "https://api.x.com");
        assert!(!c.poll_direct_messages);
        assert_eq!(c.search_query(), None);
        assert!(
            matches!(c.require_user_id(), Err(PluginError::NotConfigured(m)) if m.contains("user_id"))
        );
    }

    #[test]
    fn values_and_query() {
        let c = config(&[
            ("api_base", "\"http://127.0.0.1:9/\""),
            ("user_id", "783214"),
            ("listen_keywords", r##"["acme", "lost bag", "#AcmeAir"]"##),
            ("poll_direct_messages", "true"),
        ]);
        assert_eq!(c.api_base().unwrap(), "http://127.0.0.1:9");
        assert_eq!(c.require_user_id().unwrap(), "783214");
        assert!(c.poll_direct_messages);
        assert_eq!(
            c.search_query().unwrap(),
            "(acme OR \"lost bag\" OR #AcmeAir) -is:retweet"
        );
        let raw = config(&[("listen_query", "acme lang:en"), ("listen_keywords", "x")]);
        assert_eq!(raw.search_query().unwrap(), "acme lang:en");
        assert!(config(&[("api_base", "ftp://x")]).api_base().is_err());
        assert!(config(&[("user_id", "@acme")]).require_user_id().is_err());
    }
}
