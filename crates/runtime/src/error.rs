//! Typed failures of loading and calling plugins. Every call failure names the tenant, plugin,
//! version and stage; none carries a secret.

use std::fmt;

use serde::Serialize;

use switchboard_contract::PluginError;

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}: cannot read plugin: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin}: not a WebAssembly component ({detail}); build plugins with `cargo build --target wasm32-wasip2`"
    )]
    NotAComponent { origin: String, detail: String },
    #[error(
        "{origin}: plugin targets `{export}` (contract {found}), but this host supports switchboard:plugin@{supported}; rebuild the plugin against switchboard-sdk {supported}"
    )]
    IncompatibleContract {
        origin: String,
        export: String,
        found: String,
        supported: String,
    },
    #[error(
        "{origin}: not a Switchboard plugin: it exports none of switchboard:plugin/{{channel,classify,suggest}}@{supported} (its exports: {exports})"
    )]
    UnknownWorld {
        origin: String,
        exports: String,
        supported: String,
    },
    #[error("{origin}: needs an import this host does not provide: {detail}")]
    Link { origin: String, detail: String },
    #[error("{origin}: plugin could not describe itself: {detail}")]
    About { origin: String, detail: String },
    /// The plugin exports `preinit` and its `init` could not be run and snapshotted (it trapped,
    /// called an import, overran the deadline or the memory limit): it does not load.
    #[error("{origin}: pre-initialisation failed: {detail}")]
    Preinit { origin: String, detail: String },
    #[error("{origin}: compile cache: {detail}")]
    Cache { origin: String, detail: String },
}

/// The pipeline stage a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    About,
    ChannelInfo,
    Webhook,
    Poll,
    Deliver,
    Measure,
    Classify,
    Suggest,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// What went wrong inside one call.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallFailure {
    #[error("deadline of {limit_ms} ms exceeded")]
    Timeout { limit_ms: u64 },
    #[error("memory limit of {limit_bytes} bytes exceeded")]
    MemoryExhausted { limit_bytes: u64 },
    #[error("stack overflow")]
    StackOverflow,
    #[error("trapped: {message}")]
    Trap { message: String },
    #[error("malformed output: {reason}")]
    MalformedOutput { reason: String },
    #[error("egress denied: {reason}")]
    EgressDenied { reason: String },
    #[error("could not instantiate: {message}")]
    Instantiate { message: String },
    /// The tenant's other calls held all of its share of plugin instances until this call's
    /// deadline: the tenant is waiting on itself, and its neighbours are not.
    #[error("the tenant's share of {share} plugin instances stayed in use past the deadline")]
    TenantBusy { share: u32 },
    #[error("plugin error: {}", plugin_error_text(error))]
    Plugin {
        #[serde(serialize_with = "serialize_plugin_error")]
        error: PluginError,
    },
}

impl CallFailure {
    /// A short, bounded name for metrics labels (`timeout`, `plugin-rate-limited`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Timeout { .. } => "timeout",
            CallFailure::MemoryExhausted { .. } => "memory",
            CallFailure::StackOverflow => "stack-overflow",
            CallFailure::Trap { .. } => "trap",
            CallFailure::MalformedOutput { .. } => "malformed-output",
            CallFailure::EgressDenied { .. } => "egress-denied",
            CallFailure::Instantiate { .. } => "instantiate",
            CallFailure::TenantBusy { .. } => "tenant-busy",
            CallFailure::Plugin { error } => match error {
                PluginError::InvalidInput(_) => "plugin-invalid-input",
                PluginError::Unauthorized(_) => "plugin-unauthorized",
                PluginError::NotConfigured(_) => "plugin-not-configured",
                PluginError::RateLimited(_) => "plugin-rate-limited",
                PluginError::Unavailable(_) => "plugin-unavailable",
                PluginError::Rejected(_) => "plugin-rejected",
                PluginError::Internal(_) => "plugin-internal",
            },
        }
    }
}

fn serialize_plugin_error<S: serde::Serializer>(e: &PluginError, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&plugin_error_text(e))
}

/// A one-line rendering of a plugin's own error.
pub fn plugin_error_text(e: &PluginError) -> String {
    match e {
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::Unauthorized(m) => format!("unauthorized: {m}"),
        PluginError::NotConfigured(m) => format!("not configured: {m}"),
        PluginError::RateLimited(Some(s)) => format!("rate limited, retry after {s} s"),
        PluginError::RateLimited(None) => "rate limited".to_string(),
        PluginError::Unavailable(m) => format!("unavailable: {m}"),
        PluginError::Rejected(m) => format!("rejected: {m}"),
        PluginError::Internal(m) => format!("internal error: {m}"),
    }
}

/// A failed call, with the context an operator needs to find it.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("tenant `{tenant}`, plugin `{plugin}` {version}, stage {stage}: {failure}")]
pub struct CallError {
    pub tenant: String,
    pub plugin: String,
    pub version: String,
    pub stage: Stage,
    pub failure: CallFailure,
}

impl CallError {
    /// The plugin's own typed error, if that is why the call failed (not a trap, deadline, …).
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match &self.failure {
            CallFailure::Plugin { error } => Some(error),
            _ => None,
        }
    }

    /// True when the plugin itself rejected the input as unverifiable (bad signature).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            &self.failure,
            CallFailure::Plugin {
                error: PluginError::Unauthorized(_)
            }
        )
    }
}
