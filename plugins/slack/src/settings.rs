//! The tenant's configuration and secrets for this connector, read through a lookup function so
//! the logic is testable without a host.

use switchboard_sdk::PluginError;

use crate::signature::DEFAULT_MAX_SKEW_SECONDS;

/// Base URL of Slack's Web API.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";
/// Config keys this plugin reads.
pub const CONFIG_KEYS: [&str; 2] = ["api_base", "max_skew_seconds"];
/// Secret: the app's signing secret (Basic Information → App Credentials).
pub const SIGNING_SECRET: &str = "signing-secret";
/// Secret: the bot user OAuth token (`xoxb-…`), with `chat:write` (and `im:write` for moving
/// a conversation to a direct message).
pub const BOT_TOKEN: &str = "bot-token";

/// Config values as given (strings may be bare or JSON strings).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub api_base: Option<String>,
    pub max_skew_seconds: Option<String>,
}

/// `value` without surrounding whitespace or JSON string quotes; `None` when blank.
fn trimmed(value: Option<&String>) -> Option<String> {
    let v = value?.trim();
    let v = serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_string());
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            api_base: get("api_base"),
            max_skew_seconds: get("max_skew_seconds"),
        }
    }

    /// The Web API base URL without a trailing slash.
    pub fn api_base(&self) -> Result<String, PluginError> {
        let Some(base) = trimmed(self.api_base.as_ref()) else {
            return Ok(DEFAULT_API_BASE.to_string());
        };
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http:// or https:// URL, got `{base}`"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// The replay window in seconds. A malformed value is an error rather than a silent
    /// default: it is a security setting.
    pub fn max_skew_seconds(&self) -> Result<u64, PluginError> {
        match trimmed(self.max_skew_seconds.as_ref()) {
            None => Ok(DEFAULT_MAX_SKEW_SECONDS),
            Some(v) => v.parse::<u64>().map_err(|_| {
                PluginError::NotConfigured(format!(
                    "config `max_skew_seconds` must be a whole number of seconds, got `{v}`"
                ))
            }),
        }
    }
}

/// The two secrets; `Debug` never shows their values.
#[derive(Clone, Default)]
pub struct Secrets {
    pub signing_secret: Option<String>,
    pub bot_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("signing_secret", &shown(&self.signing_secret))
            .field("bot_token", &shown(&self.bot_token))
            .finish()
    }
}

impl Secrets {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Secrets {
            signing_secret: get(SIGNING_SECRET),
            bot_token: get(BOT_TOKEN),
        }
    }

    fn required<'a>(
        value: &'a Option<String>,
        name: &str,
        what: &str,
    ) -> Result<&'a str, PluginError> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PluginError::NotConfigured(format!(
                    "secret `{name}` is not set for this plugin: it is {what}"
                ))
            })
    }

    pub fn signing_secret(&self) -> Result<&str, PluginError> {
        Self::required(
            &self.signing_secret,
            SIGNING_SECRET,
            "the Slack app's signing secret that verifies Events API requests",
        )
    }

    pub fn bot_token(&self) -> Result<&str, PluginError> {
        Self::required(
            &self.bot_token,
            BOT_TOKEN,
            "the bot user OAuth token (xoxb-…) used to post replies",
        )
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
        assert_eq!(c.api_base().unwrap(), "https://slack.com/api");
        assert_eq!(c.max_skew_seconds().unwrap(), 300);
    }

    #[test]
    fn configured_values_and_errors() {
        let c = config(&[
            ("api_base", "\"http://127.0.0.1:9/api/\""),
            ("max_skew_seconds", " 600 "),
        ]);
        assert_eq!(c.api_base().unwrap(), "http://127.0.0.1:9/api");
        assert_eq!(c.max_skew_seconds().unwrap(), 600);
        let bad = config(&[("api_base", "slack.com"), ("max_skew_seconds", "5m")]);
        assert!(
            matches!(bad.api_base(), Err(PluginError::NotConfigured(m)) if m.contains("`slack.com`"))
        );
        assert!(
            matches!(bad.max_skew_seconds(), Err(PluginError::NotConfigured(m)) if m.contains("`5m`"))
        );
        assert!(
            config(&[("max_skew_seconds", "-1")])
                .max_skew_seconds()
                .is_err()
        );
    }

    #[test]
    fn secrets_required_and_hidden() {
        let s = Secrets {
            signing_secret: Some("  ".into()),
            bot_token: Some("xoxb-123".into()),
        };
        assert!(
            matches!(s.signing_secret(), Err(PluginError::NotConfigured(m)) if m.contains("`signing-secret` is not set"))
        );
        assert_eq!(s.bot_token().unwrap(), "xoxb-123");
        let debug = format!("{s:?}");
        assert!(!debug.contains("xoxb") && debug.contains("<set>"));
        assert!(matches!(
            Secrets::default().bot_token(),
            Err(PluginError::NotConfigured(m)) if m.contains("`bot-token`")
        ));
    }
}
