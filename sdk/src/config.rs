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
///
/// Secret names are kebab-case (`app-secret`), like the tenant TOML's secrets and the WIT
/// contract. Connectors once used snake_case for some (`app_secret`), so a kebab-case name that
/// is not set is also looked up under its snake_case spelling, with a warning in the plugin's
/// log asking the tenant to rename it: old tenant files keep working while they migrate.
pub fn secret(name: &str) -> Option<String> {
    lookup_secret(name, host::secret, crate::log::warn)
}

/// The snake_case name a kebab-case secret name was once spelled with, if it differs.
pub fn former_secret_name(name: &str) -> Option<String> {
    name.contains('-').then(|| name.replace('-', "_"))
}

/// [`secret`] over any store and logger, so that the alias rule is tested without a host.
pub fn lookup_secret(
    name: &str,
    get: impl Fn(&str) -> Option<String>,
    warn: impl FnOnce(&str),
) -> Option<String> {
    if let Some(value) = get(name) {
        return Some(value);
    }
    let former = former_secret_name(name)?;
    let value = get(&former)?;
    warn(&format!(
        "secret `{former}` is read as `{name}`: rename it to `{name}` in the tenant's secrets \
         (the old name is still accepted for now)"
    ));
    Some(value)
}

/// The secret `name`, or a `not-configured` error naming it (never its value).
pub fn require_secret(name: &str) -> Result<String, PluginError> {
    secret(name).ok_or_else(|| {
        PluginError::NotConfigured(format!("secret `{name}` is not set for this plugin"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn store(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_kebab_case_name_wins_and_logs_nothing() {
        let warnings = RefCell::new(Vec::new());
        let get = store(&[("app-secret", "new"), ("app_secret", "old")]);
        let value = lookup_secret("app-secret", get, |m| {
            warnings.borrow_mut().push(m.to_string())
        });
        assert_eq!(value.as_deref(), Some("new"));
        assert!(warnings.borrow().is_empty());
    }

    #[test]
    fn the_former_snake_case_name_still_works_with_a_warning() {
        let warnings = RefCell::new(Vec::new());
        let get = store(&[("page_access_token", "s3cr3t")]);
        let value = lookup_secret("page-access-token", get, |m| {
            warnings.borrow_mut().push(m.to_string())
        });
        assert_eq!(value.as_deref(), Some("s3cr3t"));
        let warnings = warnings.into_inner();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("`page_access_token`")
                && warnings[0].contains("`page-access-token`")
        );
        assert!(!warnings[0].contains("s3cr3t"), "never the value");
    }

    #[test]
    fn names_without_a_former_spelling_are_looked_up_once() {
        let asked = RefCell::new(Vec::new());
        let get = |name: &str| {
            asked.borrow_mut().push(name.to_string());
            None
        };
        assert_eq!(lookup_secret("token", get, |_| panic!("no warning")), None);
        assert_eq!(*asked.borrow(), vec!["token".to_string()]);
        assert_eq!(
            former_secret_name("bot-token").as_deref(),
            Some("bot_token")
        );
        assert_eq!(former_secret_name("token"), None);
    }
}
