//! This plugin's configuration and secrets in the current tenant.

use crate::PluginError;
use crate::bindings::base::switchboard::plugin::config as host;

/// The configured value of `key`, if any. Structured values arrive as JSON text.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// Every configured key and value, sorted by key.
pub fn all() -> Vec<(String, String)> {
    host::get_all()
}

/// The value of `key` parsed from JSON (strings may be given bare).
pub fn parse<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    let Some(raw) = host::get(key) else {
        return Ok(None);
    };
    serde_json::from_str(&raw)
        .or_else(|_| serde_json::from_value(serde_json::Value::String(raw.clone())))
        .map(Some)
        .map_err(|e| PluginError::NotConfigured(format!("config key `{key}`: {e}")))
}

/// A list of strings: a JSON array, or one item per line / comma.
pub fn list(key: &str) -> Vec<String> {
    let Some(raw) = host::get(key) else {
        return Vec::new();
    };
    if let Ok(items) = serde_json::from_str::<Vec<String>>(&raw) {
        return items;
    }
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The secret `name`, if the tenant stored one for this plugin. Never log it.
pub fn secret(name: &str) -> Option<String> {
    host::secret(name)
}

/// The secret `name`, or a `not-configured` error naming it (never its value).
pub fn require_secret(name: &str) -> Result<String, PluginError> {
    host::secret(name).ok_or_else(|| {
        PluginError::NotConfigured(format!("secret `{name}` is not set for this plugin"))
    })
}
