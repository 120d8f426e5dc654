//! The tenant's config values and secrets, read through a lookup so tests need no host.

use meta_graph::graph::Graph;
use switchboard_sdk::PluginError;

/// Config key: business phone number id used when a reply carries none.
pub const PHONE_NUMBER_ID: &str = "phone_number_id";
/// Every config key the plugin reads: the Graph API's (`api_base`, `graph_version`, see
/// [`Graph::from_lookup`]), then its own.
pub const CONFIG_KEYS: [&str; 3] = ["api_base", "graph_version", PHONE_NUMBER_ID];

/// Secret: the Meta app secret, key of `X-Hub-Signature-256`.
pub const APP_SECRET: &str = meta_graph::APP_SECRET;
/// Secret: the token the verification request must present.
pub const VERIFY_TOKEN: &str = meta_graph::VERIFY_TOKEN;
/// Secret: the system-user or business access token for the Cloud API.
pub const ACCESS_TOKEN: &str = "access-token";

/// Config values; values may be given bare or as JSON strings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where Graph API requests go, or why the config does not say.
    pub graph: Result<Graph, PluginError>,
    pub phone_number_id: Option<String>,
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let phone = get(PHONE_NUMBER_ID)
            .map(|raw| serde_json::from_str::<String>(&raw).unwrap_or(raw))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        Config {
            graph: Graph::from_lookup(get),
            phone_number_id: phone,
        }
    }

    /// The Graph API's base URL and version (`api_base`, `graph_version`).
    pub fn graph(&self) -> Result<Graph, PluginError> {
        self.graph.clone()
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
        Config::from_lookup(meta_graph::test_support::lookup(pairs))
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]);
        assert_eq!(
            c.graph().unwrap().url("1/messages"),
            "https://graph.facebook.com/v21.0/1/messages"
        );
        assert_eq!(c.phone_number_id, None);
        let c = config(&[
            ("api_base", "http://127.0.0.1:9/"),
            ("graph_version", "\"v23.0\""),
            ("phone_number_id", " 106540352242922 "),
        ]);
        assert_eq!(
            c.graph().unwrap().url("1/messages"),
            "http://127.0.0.1:9/v23.0/1/messages"
        );
        assert_eq!(c.phone_number_id.as_deref(), Some("106540352242922"));
    }

    #[test]
    fn bad_values_are_not_configured() {
        assert!(matches!(
            config(&[("api_base", "ftp://x")]).graph(),
            Err(PluginError::NotConfigured(m)) if m.contains("api_base")
        ));
        for bad in ["21.0", "v21", "v21.x", "v21.0/../x"] {
            assert!(config(&[("graph_version", bad)]).graph().is_err(), "{bad}");
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
            matches!(s.app_secret(), Err(PluginError::NotConfigured(m)) if m == "secret `app-secret` is not set for this plugin")
        );
        assert!(s.verify_token().is_err());
        assert_eq!(s.access_token().unwrap(), "EAAG");
    }
}
