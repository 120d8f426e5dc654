//! The tenant's configuration and secrets, read through lookup functions so they can be tested
//! without a host.

use switchboard_sdk::PluginError;

/// The PDS (or entryway) every XRPC call goes to when `api_base` is not configured.
pub const DEFAULT_API_BASE: &str = "https://bsky.social";

/// Config keys this connector reads.
pub const CONFIG_KEYS: &[&str] = &[
    "api_base",
    "handle",
    "keywords",
    "hashtags",
    "direct_messages",
];
/// The brand account's app password (Settings → Privacy and security → App passwords).
pub const APP_PASSWORD: &str = "app-password";
/// Optional shared secret a relay must present to `handle-webhook`.
pub const RELAY_SECRET: &str = "relay-secret";

/// The connector's configuration for one tenant.
#[derive(Debug, Clone, Default)]
pub struct Config {
    api_base: Option<String>,
    handle: Option<String>,
    /// Keywords searched with `app.bsky.feed.searchPosts`.
    pub keywords: Vec<String>,
    /// Hashtags (without `#`, lowercased) searched with `app.bsky.feed.searchPosts`.
    pub hashtags: Vec<String>,
    /// Whether `poll` also reads chat.bsky direct messages (default true).
    pub direct_messages: bool,
}

/// A config value with JSON string quotes removed and whitespace trimmed; blank is absent.
fn unquote(raw: String) -> Option<String> {
    let value = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::String(s)) => s,
        _ => raw,
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// A JSON array of strings, or items separated by commas or newlines; trimmed, deduplicated.
fn list(raw: Option<String>) -> Vec<String> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let items = serde_json::from_str::<Vec<String>>(&raw)
        .unwrap_or_else(|_| raw.split([',', '\n']).map(String::from).collect());
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
        let mut hashtags: Vec<String> = Vec::new();
        for tag in list(get("hashtags")) {
            let tag = tag.trim_start_matches('#').to_lowercase();
            if !tag.is_empty() && !hashtags.contains(&tag) {
                hashtags.push(tag);
            }
        }
        Config {
            api_base: get("api_base").and_then(unquote),
            handle: get("handle").and_then(unquote),
            keywords: list(get("keywords")),
            hashtags,
            direct_messages: get("direct_messages")
                .and_then(unquote)
                .is_none_or(|v| !matches!(v.to_ascii_lowercase().as_str(), "false" | "no" | "0")),
        }
    }

    /// The PDS base URL without a trailing slash (default `https://bsky.social`).
    pub fn api_base(&self) -> Result<String, PluginError> {
        let Some(raw) = self.api_base.as_deref() else {
            return Ok(DEFAULT_API_BASE.to_string());
        };
        let url = raw.trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(authority)
                if !authority.is_empty() && !authority.contains(['/', '?', '#', ' ']) =>
            {
                Ok(url.to_string())
            }
            _ => Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http(s) base URL of a PDS such as \
                 https://bsky.social (no path), got `{raw}`"
            ))),
        }
    }

    /// The brand account's handle (`acme.bsky.social`), lowercased, without `@`.
    pub fn handle(&self) -> Option<String> {
        let h = self
            .handle
            .as_deref()?
            .trim()
            .trim_start_matches('@')
            .to_lowercase();
        (!h.is_empty()).then_some(h)
    }

    /// The handle, or a `not-configured` error saying what it is for.
    pub fn require_handle(&self) -> Result<String, PluginError> {
        self.handle().ok_or_else(|| {
            PluginError::NotConfigured(
                "config `handle` is not set: the brand account's handle (or DID), the \
                 identifier for com.atproto.server.createSession"
                    .into(),
            )
        })
    }

    /// The search queries for listening: every keyword as given, every hashtag as `#tag`.
    pub fn search_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = self.keywords.clone();
        for tag in &self.hashtags {
            let term = format!("#{tag}");
            if !terms.iter().any(|t| t.eq_ignore_ascii_case(&term)) {
                terms.push(term);
            }
        }
        terms
    }
}

/// The secrets this connector reads.
#[derive(Clone, Default)]
pub struct Secrets {
    pub app_password: Option<String>,
    pub relay_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret values, not even in debug output.
        f.debug_struct("Secrets")
            .field("app_password", &self.app_password.as_ref().map(|_| "<set>"))
            .field("relay_secret", &self.relay_secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Secrets {
    /// Read the secrets through `get` (the trait impl passes `config::secret`); blank is absent.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Secrets {
            app_password: non_blank(get(APP_PASSWORD)),
            relay_secret: non_blank(get(RELAY_SECRET)),
        }
    }

    /// The app password, or a `not-configured` error naming the secret (never its value).
    pub fn require_app_password(&self) -> Result<String, PluginError> {
        self.app_password.clone().ok_or_else(|| {
            PluginError::NotConfigured(format!(
                "secret `{APP_PASSWORD}` is not set for this plugin: an app password of the \
                 brand account (with direct-message access if DMs are used)"
            ))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn config(pairs: &[(&str, &str)]) -> Config {
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
        assert_eq!(c.api_base().unwrap(), "https://bsky.social");
        assert_eq!(c.handle(), None);
        assert!(
            matches!(c.require_handle(), Err(PluginError::NotConfigured(m)) if m.contains("`handle`"))
        );
        assert!(c.search_terms().is_empty());
        assert!(c.direct_messages);
    }

    #[test]
    fn values_are_normalised() {
        let c = config(&[
            ("api_base", "\"https://pds.acme.example/\""),
            ("handle", "@AcmeCare.bsky.social"),
            ("keywords", "lost luggage, refund\nrefund"),
            ("hashtags", r##"["#AcmeAir", "acmeair", "AcmeHelp"]"##),
            ("direct_messages", "false"),
        ]);
        assert_eq!(c.api_base().unwrap(), "https://pds.acme.example");
        assert_eq!(c.handle().as_deref(), Some("acmecare.bsky.social"));
        assert_eq!(
            c.search_terms(),
            vec!["lost luggage", "refund", "#acmeair", "#acmehelp"]
        );
        assert!(!c.direct_messages);
        let bad = config(&[("api_base", "bsky.social")]);
        assert!(
            matches!(bad.api_base(), Err(PluginError::NotConfigured(m)) if m.contains("`bsky.social`"))
        );
        let bad = config(&[("api_base", "https://bsky.social/xrpc")]);
        assert!(bad.api_base().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secrets::from_lookup(|k| (k == APP_PASSWORD).then(|| "abcd-efgh".to_string()));
        assert_eq!(s.require_app_password().unwrap(), "abcd-efgh");
        assert!(!format!("{s:?}").contains("abcd"));
        let none = Secrets::from_lookup(|_| Some("  ".into()));
        assert!(
            matches!(none.require_app_password(), Err(PluginError::NotConfigured(m)) if m.contains("`app-password`") && !m.contains("  "))
        );
    }
}
