//! `switchboard:plugin/config`: the plugin's configuration and secrets in one tenant.

use std::collections::BTreeMap;
use std::fmt;

use switchboard_contract::switchboard::plugin::config::Host;
use wasmtime::component::HasData;

/// A secret value. Its `Debug` and `Display` never show the value, so it cannot leak through
/// logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for handing to the plugin that owns it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Config and secrets of one plugin instance in one tenant.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
}

/// What a call's `config` import sees: its own instance's configuration, nothing else (the
/// runtime hands it out from the call's scope, in the style of wasmtime-wasi-http's views).
pub struct ConfigView<'a>(pub &'a PluginConfig);

/// The `config` capability, for `add_to_linker`.
pub struct ConfigCapability;

impl HasData for ConfigCapability {
    type Data<'a> = ConfigView<'a>;
}

impl Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> Option<String> {
        self.0.values.get(&key).cloned()
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        self.0
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        self.0.secrets.get(&name).map(|s| s.expose().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format_their_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let cfg = PluginConfig {
            secrets: [("k".into(), s)].into(),
            ..Default::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
