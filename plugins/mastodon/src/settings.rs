//! The tenant's configuration, read through a lookup function so it can be tested without a
//! host.

use switchboard_sdk::PluginError;

/// Config keys this connector reads.
pub const CONFIG_KEYS: &[&str] = &[
    "instance",
    "api_base",
    "account",
    "hashtags",
    "keywords",
    "reply_visibility",
    "decode_captured",
];
/// The Bearer token of the brand's account (scopes `read:notifications read:statuses
/// read:search write:statuses`).
pub const ACCESS_TOKEN: &str = "access-token";

/// How a public reply is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVisibility {
    Public,
    Unlisted,
}

impl ReplyVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyVisibility::Public => "public",
            ReplyVisibility::Unlisted => "unlisted",
        }
    }
}

/// The connector's configuration for one tenant.
#[derive(Debug, Clone, Default)]
pub struct Config {
    instance: Option<String>,
    account: Option<String>,
    pub hashtags: Vec<String>,
    pub keywords: Vec<String>,
    reply_visibility: Option<String>,
    pub decode_captured: bool,
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
        let hashtags = list(get("hashtags"))
            .into_iter()
            .map(|t| t.trim_start_matches('#').to_lowercase())
            .filter(|t| !t.is_empty())
            .fold(Vec::new(), |mut acc, t| {
                if !acc.contains(&t) {
                    acc.push(t);
                }
                acc
            });
        Config {
            instance: get("instance")
                .and_then(unquote)
                .or_else(|| get("api_base").and_then(unquote)),
            account: get("account").and_then(unquote),
            hashtags,
            keywords: list(get("keywords")),
            reply_visibility: get("reply_visibility").and_then(unquote),
            decode_captured: get("decode_captured")
                .and_then(unquote)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1")),
        }
    }

    /// The instance's base URL without a trailing slash (`https://mastodon.social`).
    pub fn instance(&self) -> Result<String, PluginError> {
        let raw = self.instance.as_deref().ok_or_else(|| {
            PluginError::NotConfigured(
                "config `instance` is not set: the base URL of the brand's Mastodon instance, \
                 e.g. https://mastodon.social"
                    .into(),
            )
        })?;
        let url = raw.trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(authority) if !authority.is_empty() && !authority.contains(['?', '#', ' ']) => {
                Ok(url.to_string())
            }
            _ => Err(PluginError::NotConfigured(format!(
                "config `instance` must be an http(s) base URL such as https://mastodon.social, \
                 got `{raw}`"
            ))),
        }
    }

    /// The instance's host name (no port), lowercased: the namespace of account ids.
    pub fn instance_host(&self) -> Option<String> {
        self.instance().ok().map(|url| host_of(&url))
    }

    /// The brand's own account as an `acct` on its instance (`acmecare`), lowercased.
    pub fn account(&self) -> Option<String> {
        let raw = self
            .account
            .as_deref()?
            .trim_start_matches('@')
            .to_lowercase();
        let local = match (raw.split_once('@'), self.instance_host()) {
            (Some((user, domain)), Some(host)) if domain == host => user.to_string(),
            _ => raw,
        };
        (!local.is_empty()).then_some(local)
    }

    /// Whether a status by `acct` (as the instance reports it) is the brand's own.
    pub fn is_own(&self, acct: &str) -> bool {
        let Some(own) = self.account() else {
            return false;
        };
        let acct = acct.trim_start_matches('@').to_lowercase();
        if acct == own {
            return true;
        }
        match (acct.split_once('@'), self.instance_host()) {
            (Some((user, domain)), Some(host)) => domain == host && user == own,
            _ => false,
        }
    }

    /// Visibility of public replies: config `reply_visibility`, `public` (default) or `unlisted`.
    pub fn reply_visibility(&self) -> Result<ReplyVisibility, PluginError> {
        match self
            .reply_visibility
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("public") => Ok(ReplyVisibility::Public),
            Some("unlisted") => Ok(ReplyVisibility::Unlisted),
            Some(other) => Err(PluginError::NotConfigured(format!(
                "config `reply_visibility` must be `public` or `unlisted`, got `{other}`"
            ))),
        }
    }
}

/// The host of an `http(s)://` URL, without user info or port, lowercased.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.to_lowercase()
}

#[cfg(test)]
mod tests {
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
    fn defaults_and_missing_instance() {
        let c = config(&[]);
        assert!(
            matches!(c.instance(), Err(PluginError::NotConfigured(m)) if m.contains("`instance`"))
        );
        assert_eq!(c.instance_host(), None);
        assert_eq!(c.account(), None);
        assert!(!c.is_own("anyone"));
        assert!(c.hashtags.is_empty() && c.keywords.is_empty());
        assert_eq!(c.reply_visibility().unwrap(), ReplyVisibility::Public);
        assert!(!c.decode_captured);
    }

    #[test]
    fn values_are_normalised() {
        let c = config(&[
            ("instance", "\"https://Mastodon.Social/\""),
            ("account", "@AcmeCare@mastodon.social"),
            ("hashtags", r##"["#Acme", "acme", "AcmeHelp"]"##),
            ("keywords", "lost luggage, refund\nrefund"),
            ("reply_visibility", "Unlisted"),
            ("decode_captured", "true"),
        ]);
        assert_eq!(c.instance().unwrap(), "https://Mastodon.Social");
        assert_eq!(c.instance_host().as_deref(), Some("mastodon.social"));
        assert_eq!(c.account().as_deref(), Some("acmecare"));
        assert!(c.is_own("acmecare"));
        assert!(c.is_own("AcmeCare@mastodon.social"));
        assert!(!c.is_own("acmecare@other.example"));
        assert!(!c.is_own("casey"));
        assert_eq!(c.hashtags, vec!["acme", "acmehelp"]);
        assert_eq!(c.keywords, vec!["lost luggage", "refund"]);
        assert_eq!(c.reply_visibility().unwrap(), ReplyVisibility::Unlisted);
        assert!(c.decode_captured);
    }

    #[test]
    fn api_base_is_an_alias_and_bad_values_are_reported() {
        let c = config(&[("api_base", "http://127.0.0.1:4567")]);
        assert_eq!(c.instance().unwrap(), "http://127.0.0.1:4567");
        assert_eq!(c.instance_host().as_deref(), Some("127.0.0.1"));
        let bad = config(&[
            ("instance", "mastodon.social"),
            ("reply_visibility", "direct"),
        ]);
        assert!(
            matches!(bad.instance(), Err(PluginError::NotConfigured(m)) if m.contains("`mastodon.social`"))
        );
        assert!(
            matches!(bad.reply_visibility(), Err(PluginError::NotConfigured(m)) if m.contains("`direct`"))
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://user:pw@Example.COM:8443/x?y"),
            "example.com"
        );
        assert_eq!(host_of("http://[::1]:3000/"), "::1");
        assert_eq!(host_of("https://mastodon.social"), "mastodon.social");
    }
}
