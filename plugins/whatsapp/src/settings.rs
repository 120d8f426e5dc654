//! The tenant's config values and secrets, read through a lookup so tests need no host.

use switchboard_sdk::PluginError;

/// Config key: base URL of the Graph API (tests point it at a loopback mock).
pub const API_BASE: &str = "api_base";
/// Config key: Graph API version in the request path.
pub const GRAPH_VERSION: &str = "graph_version";
/// Config key: business phone number id used when a reply carries none.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";
/// Every config key the plugin reads.
pub const CONFIG_KEYS: [&str; 3] = [API_BASE, GRAPH_VERSION, PHONE_NUMBER_ID];

/// Secret: the Meta app secret, key of `X-Hub-Signature-256`.
pub const APP_SECRET: &str = "app_secret";
/// Secret: the token the verification request must present.
pub const VERIFY_TOKEN: &str = "verify_token";
/// Secret: the system-user or business access token for the Cloud API.
pub const ACCESS_TOKEN: &str = "access_token";

pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";

/// Config values; values may be given bare or as JSON strings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub api_base: Option<String>,
    pub graph_version: Option<String>,
    pub phone_number_id: Option<String>,
}

fn clean(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let value = serde_json::from_str::<String>(&raw).unwrap_or(raw);
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        Config {
            api_base: clean(get(API_BASE)),
            graph_version: clean(get(GRAPH_VERSION)),
            phone_number_id: clean(get(PHONE_NUMBER_ID)),
        }
    }

    /// `api_base` without a trailing slash; must be an `http(s)://` URL.
    pub fn api_base(&self) -> Result<String, PluginError> {
        let base = self.api_base.as_deref().unwrap_or(DEFAULT_API_BASE);
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config key `{API_BASE}` must be an http(s):// URL"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// `graph_version` such as `v21.0`.
    pub fn graph_version(&self) -> Result<String, PluginError> {
        let v = self
            .graph_version
            .as_deref()
            .unwrap_or(DEFAULT_GRAPH_VERSION);
        let ok = v
            .strip_prefix('v')
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !ok {
            return Err(PluginError::NotConfigured(format!(
                "config key `{GRAPH_VERSION}` must look like `v21.0`"
            )));
        }
        Ok(v.to_string())
    }
}

/// Secrets; an empty value counts as not set.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub access_token: Option<String>,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, PluginError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!("secret `{name}` is not set for this plugin"))
    })
}

impl Secrets {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Secrets {
        Secrets {
            app_secret: get(APP_SECRET),
            verify_token: get(VERIFY_TOKEN),
            access_token: get(ACCESS_TOKEN),
        }
    }
    pub fn app_secret(&self) -> Result<&str, PluginError> {
        required(&self.app_secret, APP_SECRET)
    }
    pub fn verify_token(&self) -> Result<&str, PluginError> {
        required(&self.verify_token, VERIFY_TOKEN)
    }
    pub fn access_token(&self) -> Result<&str, PluginError> {
        required(&self.access_token, ACCESS_TOKEN)
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
    fn defaults_and_overrides() {
        let c = config(&[]);
        assert_eq!(c.api_base().unwrap(), "https://graph.facebook.com");
        assert_eq!(c.graph_version().unwrap(), "v21.0");
        let c = config(&[
            ("api_base", "http://127.0.0.1:9/"),
            ("graph_version", "\"v23.0\""),
            ("phone_number_id", " 106540352242922 "),
        ]);
        assert_eq!(c.api_base().unwrap(), "http://127.0.0.1:9");
        assert_eq!(c.graph_version().unwrap(), "v23.0");
        assert_eq!(c.phone_number_id.as_deref(), Some("106540352242922"));
    }

    #[test]
    fn bad_values_are_not_configured() {
        assert!(matches!(
            config(&[("api_base", "ftp://x")]).api_base(),
            Err(PluginError::NotConfigured(m)) if m.contains("api_base")
        ));
        for bad in ["21.0", "v21", "v21.x", "v21.0/../x"] {
            assert!(
                config(&[("graph_version", bad)]).graph_version().is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_secrets_count_as_missing() {
        let s = Secrets {
            app_secret: Some(String::new()),
            verify_token: None,
            access_token: Some("EAAG".into()),
        };
        assert!(
            matches!(s.app_secret(), Err(PluginError::NotConfigured(m)) if m == "secret `app_secret` is not set for this plugin")
        );
        assert!(s.verify_token().is_err());
        assert_eq!(s.access_token().unwrap(), "EAAG");
    }
}
