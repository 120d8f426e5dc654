//! Tenant configuration: which plugins a tenant runs, with what config, secrets, limits and
//! egress. Parsed from TOML (see `examples/acme/tenant.toml`), checked, and loaded into a
//! [`Tenant`] whose every plugin call is scoped to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::care::team::{AgentConfig, SignoffConfig};
use crate::care::{AwayConfig, Care, IncidentsConfig, SatisfactionConfig, ServiceLevelsConfig};
use crate::guards::{Guards, GuardsConfig};
use crate::hours::{BusinessHours, HoursConfig};
use crate::policy::{Policy, PolicyConfig};
use switchboard_contract::{ChannelInfo, PluginKind};
use switchboard_runtime::capabilities::config::{PluginConfig, Secret};
use switchboard_runtime::capabilities::egress::EgressPolicy;
use switchboard_runtime::{LimitOverrides, Plugin, Runtime, Scope};

/// Where the first-party plugins live (built by the `switchboard-builtin-plugins` crate).
pub const BUILTIN_PLUGIN_DIR: &str = switchboard_builtin_plugins::DIR;

/// A tenant config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// The tenant's id: lowercase letters, digits, `-` and `_`.
    pub tenant: String,
    /// IANA time zone for business hours and timestamps shown to agents.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// How replies are signed (`^Ana`), passed to suggesters.
    pub signature: Option<String>,
    /// Extra folders to find plugins in, before the built-in ones.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Limits for every plugin of this tenant.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Hosts this tenant's plugins may call.
    #[serde(default)]
    pub egress: EgressPolicy,
    #[serde(default)]
    pub connectors: Vec<PluginEntry>,
    #[serde(default)]
    pub classifiers: Vec<PluginEntry>,
    #[serde(default)]
    pub suggesters: Vec<PluginEntry>,
    /// Candidate classifiers that run beside the live ones: recorded, compared, never acted on.
    #[serde(default)]
    pub shadow_classifiers: Vec<PluginEntry>,
    /// Per stage: timeout and what a failure does.
    #[serde(default)]
    pub stages: StagesConfig,
    /// The care policy (`crate::policy`).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Reply guards (`crate::guards`).
    #[serde(default)]
    pub guards: GuardsConfig,
    /// Business hours (`crate::hours`); always open when absent.
    pub hours: Option<HoursConfig>,
    /// Webhook rate limits under `switchboard serve`.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Response targets (`crate::care`); no clocks when absent.
    pub service_levels: Option<ServiceLevelsConfig>,
    /// The out-of-hours reply (`crate::care`).
    pub away: Option<AwayConfig>,
    /// The survey after resolution (`crate::care`).
    pub satisfaction: Option<SatisfactionConfig>,
    /// The care team (`crate::care::team`): skills, capacity, expertise.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Who signs off which drafts (`crate::care::team`).
    #[serde(default)]
    pub signoff: SignoffConfig,
    /// Incident detection and its texts (`crate::care::incidents`).
    pub incidents: Option<IncidentsConfig>,
}

/// What a failing plugin does to the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Skip the plugin, mark the message as degraded, go on.
    #[default]
    Open,
    /// Hold the message and retry it later; nothing is decided without this plugin.
    Closed,
}

/// One pipeline stage's settings.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Deadline of each plugin call in this stage (over the tenant's `[limits]`).
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub on_failure: FailurePolicy,
}

/// The `[stages]` section.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    #[serde(default)]
    pub classify: StageConfig,
    #[serde(default)]
    pub suggest: StageConfig,
    /// A held message is retried this many times in all before it is marked failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; each later one doubles, up to 5 minutes.
    #[serde(default = "default_retry_ms")]
    pub retry_after_ms: u64,
}

fn default_max_attempts() -> u32 {
    8
}

fn default_retry_ms() -> u64 {
    1_000
}

impl Default for StagesConfig {
    fn default() -> Self {
        StagesConfig {
            classify: StageConfig::default(),
            suggest: StageConfig::default(),
            max_attempts: default_max_attempts(),
            retry_after_ms: default_retry_ms(),
        }
    }
}

impl StagesConfig {
    /// When to retry after `attempts` failed attempts.
    pub fn retry_delay_ms(&self, attempts: i64) -> i64 {
        let exp = attempts.clamp(0, 20) as u32;
        (self.retry_after_ms as i64)
            .saturating_mul(1i64 << exp)
            .min(300_000)
    }
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// One plugin instance in a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The instance's name, unique in the tenant (`webhook`, `keywords`).
    pub name: String,
    /// A plugin name found in the plugin folders (`keyword-classifier`), or a path to a
    /// `.wasm` file relative to the config file.
    pub plugin: String,
    /// Refuse to load the plugin unless its SHA-256 is this (pinning a reviewed build).
    pub digest: Option<String>,
    /// Values the plugin reads through `config.get`. Non-string values reach it as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// Secrets the plugin reads through `config.secret`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Limits for this plugin, over the tenant's.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// A folder the plugin may read, at `/data` (relative to the config file).
    pub granted_dir: Option<PathBuf>,
    /// Overrides the stage's failure policy for this plugin.
    pub on_failure: Option<FailurePolicy>,
    /// Shadow classifiers only: the live classifier this one is a candidate to replace.
    pub replaces: Option<String>,
    /// Connectors only: under `switchboard serve`, poll the channel this often (seconds). The
    /// connector must have the `polling` capability.
    pub poll_every_s: Option<u64>,
    /// Connectors only: what the server answers a webhook once its messages are stored, for
    /// platforms that read the answer (Twilio sends a non-TwiML body back to the customer as
    /// an error; it wants `<Response/>`). Default: `200` with a JSON count.
    pub ack: Option<AckConfig>,
}

/// A fixed webhook acknowledgement.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AckConfig {
    #[serde(default = "ok_status")]
    pub status: u16,
    pub content_type: String,
    #[serde(default)]
    pub body: String,
}

fn ok_status() -> u16 {
    200
}

/// The `[ingress]` section: how much webhook traffic the server takes from this tenant.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Sustained webhook requests per second across the tenant's connectors.
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> u32 {
    200
}

fn default_burst() -> u32 {
    400
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            requests_per_second: default_rate(),
            burst: default_burst(),
        }
    }
}

/// Where a secret's value comes from. Values are read once at load and never printed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file (relative to the config file); surrounding whitespace is trimmed.
    File(PathBuf),
    /// Written in the config itself: for examples and tests only.
    Value(String),
}

/// Why a tenant could not be loaded. Messages name the file, the tenant and the entry, never
/// a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: tenant `{tenant}`, {section} `{entry}`: {message}")]
    Entry {
        path: String,
        tenant: String,
        section: &'static str,
        entry: String,
        message: String,
    },
}

impl ConfigError {
    fn entry(
        path: &Path,
        tenant: &str,
        section: &'static str,
        entry: &str,
        message: String,
    ) -> Self {
        ConfigError::Entry {
            path: path.display().to_string(),
            tenant: tenant.to_string(),
            section,
            entry: entry.to_string(),
            message,
        }
    }
}

/// A loaded plugin instance, with the scope its calls run in.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub scope: Arc<Scope>,
    pub on_failure: FailurePolicy,
    /// For shadow classifiers: the live classifier it would replace.
    pub replaces: Option<String>,
    /// For polled connectors: how often to poll.
    pub poll_every_s: Option<u64>,
}

/// A connector instance and what it said about its channel at load.
#[derive(Debug, Clone)]
pub struct Connector {
    pub instance: Instance,
    pub channel: ChannelInfo,
    /// The server's answer to an accepted webhook, if the platform needs a particular one.
    pub ack: Option<AckConfig>,
}

/// A tenant ready to process messages.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub time_zone: String,
    pub signature: Option<String>,
    pub connectors: Vec<Connector>,
    pub classifiers: Vec<Instance>,
    pub suggesters: Vec<Instance>,
    pub shadow_classifiers: Vec<Instance>,
    pub stages: StagesConfig,
    pub policy: Arc<Policy>,
    pub guards: Arc<Guards>,
    pub hours: BusinessHours,
    pub ingress: IngressConfig,
    pub care: Arc<Care>,
}

impl Tenant {
    /// Every plugin instance with its role (`connector`, `classifier`, `suggester`,
    /// `shadow-classifier`).
    pub fn instances(&self) -> impl Iterator<Item = (&'static str, &Instance)> {
        self.connectors
            .iter()
            .map(|c| ("connector", &c.instance))
            .chain(self.classifiers.iter().map(|i| ("classifier", i)))
            .chain(self.suggesters.iter().map(|i| ("suggester", i)))
            .chain(
                self.shadow_classifiers
                    .iter()
                    .map(|i| ("shadow-classifier", i)),
            )
    }

    /// The connector instance called `name`, or the only one if `name` is `None`.
    pub fn connector(&self, name: Option<&str>) -> Result<&Connector, String> {
        match name {
            Some(n) => self
                .connectors
                .iter()
                .find(|c| c.instance.name == n)
                .ok_or_else(|| {
                    format!(
                        "tenant `{}` has no connector `{n}` (it has: {})",
                        self.name,
                        self.connectors
                            .iter()
                            .map(|c| c.instance.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            None if self.connectors.len() == 1 => Ok(&self.connectors[0]),
            None if self.connectors.is_empty() => {
                Err(format!("tenant `{}` has no connectors", self.name))
            }
            None => Err(format!(
                "tenant `{}` has several connectors; name one (`connector` field of the request)",
                self.name
            )),
        }
    }
}

impl TenantFile {
    /// The care sections together.
    pub fn care(&self) -> Care {
        Care {
            service_levels: self.service_levels.clone(),
            away: self.away.clone(),
            satisfaction: self.satisfaction.clone(),
            agents: self.agents.clone(),
            signoff: self.signoff.clone(),
            incidents: self.incidents.clone(),
        }
    }

    /// Parse and check a config file's text (`path` is for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file: TenantFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let valid_id = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        if !valid_id(&file.tenant) {
            return Err(invalid(format!(
                "tenant id `{}` must be 1-64 lowercase letters, digits, `-` or `_`",
                file.tenant
            )));
        }
        file.limits
            .validate()
            .map_err(|m| invalid(format!("[limits]: {m}")))?;
        let mut seen = BTreeSet::new();
        for (section, entry) in file.entries() {
            let fail = |message: String| {
                ConfigError::entry(path, &file.tenant, section, &entry.name, message)
            };
            if !valid_id(&entry.name) {
                return Err(fail(
                    "names must be lowercase letters, digits, `-` or `_`".into(),
                ));
            }
            if !seen.insert(entry.name.clone()) {
                return Err(fail("this name is used twice in the tenant".into()));
            }
            entry.limits.validate().map_err(fail)?;
            match (section, &entry.replaces) {
                ("shadow classifier", Some(live)) => {
                    if !file.classifiers.iter().any(|c| &c.name == live) {
                        return Err(fail(format!(
                            "`replaces = \"{live}\"` names no live classifier of this tenant"
                        )));
                    }
                }
                ("shadow classifier", None) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(fail("`replaces` is only for shadow classifiers".into()));
                }
            }
            match (section, entry.poll_every_s) {
                ("connector", Some(0)) => {
                    return Err(fail("poll_every_s must be at least 1".into()));
                }
                ("connector", _) | (_, None) => {}
                (_, Some(_)) => return Err(fail("`poll_every_s` is only for connectors".into())),
            }
            if let Some(ack) = &entry.ack {
                if section != "connector" {
                    return Err(fail("`ack` is only for connectors".into()));
                }
                if !(200..300).contains(&ack.status) {
                    return Err(fail("ack.status must be a 2xx status".into()));
                }
            }
            if let Some(d) = &entry.digest
                && (d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(fail("digest must be 64 hex digits (SHA-256)".into()));
            }
        }
        if file.ingress.requests_per_second == 0 || file.ingress.burst == 0 {
            return Err(invalid(
                "[ingress]: requests_per_second and burst must be at least 1".into(),
            ));
        }
        Policy::compile(&file.policy).map_err(|e| invalid(e.to_string()))?;
        BusinessHours::from_config(&file.time_zone, file.hours.as_ref()).map_err(invalid)?;
        file.care().check(file.hours.is_some()).map_err(invalid)?;
        Ok(file)
    }

    /// Use `plugin` (a name or a path) for the instance called `instance`, dropping its digest
    /// pin: how a replay tries a candidate plugin version on an otherwise unchanged tenant.
    pub fn swap(&mut self, instance: &str, plugin: &str) -> Result<(), String> {
        let tenant = self.tenant.clone();
        let entry = self
            .entries_mut()
            .find(|e| e.name == instance)
            .ok_or_else(|| format!("tenant `{tenant}` has no plugin instance `{instance}`"))?;
        entry.plugin = plugin.to_string();
        entry.digest = None;
        Ok(())
    }

    /// The settings of this config that reach the server's own resources rather than the
    /// tenant's: files and folders on the server, its environment, its private network. A
    /// config submitted by a tenant's admin over the API may not use them (only the operator
    /// may), or a tenant could read the host's secrets through a plugin it controls.
    pub fn server_privileges(&self) -> Vec<String> {
        let mut found = Vec::new();
        if !self.plugin_dirs.is_empty() {
            found.push("plugin_dirs".to_string());
        }
        if self.egress.allow_private {
            found.push("egress.allow_private".to_string());
        }
        for (i, a) in self.guards.help_articles.iter().enumerate() {
            if a.file.is_some() {
                found.push(format!("guards.help_articles[{i}].file"));
            }
        }
        for (section, e) in self.entries() {
            if e.plugin.contains('/') || e.plugin.contains('\\') || e.plugin.ends_with(".wasm") {
                found.push(format!(
                    "{section} `{}`: plugin path (use a plugin name)",
                    e.name
                ));
            }
            if e.granted_dir.is_some() {
                found.push(format!("{section} `{}`: granted_dir", e.name));
            }
            for (name, source) in &e.secrets {
                if !matches!(source, SecretSource::Value(_)) {
                    found.push(format!(
                        "{section} `{}`: secret `{name}` from the server's environment or files (write it with the secrets API)",
                        e.name
                    ));
                }
            }
        }
        found
    }

    /// Every plugin entry, for changes that apply to all of them (pins, injected secrets).
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut PluginEntry> {
        self.connectors
            .iter_mut()
            .chain(self.classifiers.iter_mut())
            .chain(self.suggesters.iter_mut())
            .chain(self.shadow_classifiers.iter_mut())
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, &PluginEntry)> {
        self.connectors
            .iter()
            .map(|e| ("connector", e))
            .chain(self.classifiers.iter().map(|e| ("classifier", e)))
            .chain(self.suggesters.iter().map(|e| ("suggester", e)))
            .chain(
                self.shadow_classifiers
                    .iter()
                    .map(|e| ("shadow classifier", e)),
            )
    }
}

/// Render a config value the way a plugin receives it: strings as they are, anything else as JSON.
fn config_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Find `spec` (a plugin name or a path) relative to `base`.
pub fn resolve_plugin(spec: &str, base: &Path, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if spec.contains('/') || spec.ends_with(".wasm") {
        let p = base.join(spec);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("no plugin file at {}", p.display()))
        };
    }
    let builtin = PathBuf::from(BUILTIN_PLUGIN_DIR);
    for dir in dirs
        .iter()
        .map(|d| base.join(d))
        .chain(std::iter::once(builtin))
    {
        let candidate = dir.join(format!("{spec}.wasm"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    // Test fixtures (a hostile plugin among them) and examples are built apart, in
    // `FIXTURES_DIR`, so a name never reaches them; say so rather than "not found" alone.
    if PathBuf::from(switchboard_builtin_plugins::FIXTURES_DIR)
        .join(format!("{spec}.wasm"))
        .is_file()
    {
        return Err(format!(
            "no plugin named `{spec}`: `{spec}` is a test fixture or example, which a tenant cannot name"
        ));
    }
    // The folders are the server's: not named in an error a tenant may read.
    Err(format!(
        "no plugin named `{spec}` among the built-in plugins and {} plugin folder(s)",
        dirs.len()
    ))
}

impl Tenant {
    /// Read, check and load a tenant config file.
    pub async fn load(path: &Path, runtime: &Runtime) -> Result<Tenant, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let file = TenantFile::parse(&text, path)?;
        Self::from_file(file, path, runtime).await
    }

    /// Load a tenant config with some plugin instances swapped (`instance`, `plugin`); plugin
    /// paths are relative to the current directory.
    pub async fn load_swapped(
        path: &Path,
        runtime: &Runtime,
        swaps: &[(String, String)],
    ) -> Result<Tenant, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let mut file = TenantFile::parse(&text, path)?;
        for (instance, plugin) in swaps {
            let plugin = if plugin.contains('/') || plugin.ends_with(".wasm") {
                let abs = std::path::absolute(plugin).map_err(|e| ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: format!("{plugin}: {e}"),
                })?;
                // Joining an absolute path onto the config's folder gives it back unchanged.
                abs.display().to_string()
            } else {
                plugin.clone()
            };
            file.swap(instance, &plugin)
                .map_err(|message| ConfigError::Invalid {
                    path: path.display().to_string(),
                    message,
                })?;
        }
        Self::from_file(file, path, runtime).await
    }

    /// Load a parsed config; `path` anchors relative paths.
    pub async fn from_file(
        file: TenantFile,
        path: &Path,
        runtime: &Runtime,
    ) -> Result<Tenant, ConfigError> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let tenant_limits = file.limits.apply(runtime.default_limits());
        let egress = Arc::new(file.egress.clone());
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let mut tenant = Tenant {
            name: file.tenant.clone(),
            time_zone: file.time_zone.clone(),
            signature: file.signature.clone(),
            connectors: vec![],
            classifiers: vec![],
            suggesters: vec![],
            shadow_classifiers: vec![],
            stages: file.stages,
            policy: Arc::new(Policy::compile(&file.policy).map_err(|e| invalid(e.to_string()))?),
            guards: Arc::new(Guards::new(file.guards.clone(), &base).map_err(invalid)?),
            hours: BusinessHours::from_config(&file.time_zone, file.hours.as_ref())
                .map_err(invalid)?,
            care: Arc::new(file.care()),
            ingress: file.ingress,
        };
        let ceiling = runtime.ceilings().plugin_instances;
        let instances = file.entries().count();
        if instances > ceiling {
            return Err(invalid(format!(
                "{instances} plugin instances; the operator allows at most {ceiling} per tenant"
            )));
        }
        for (section, entry) in file.entries() {
            let fail = |message: String| {
                ConfigError::entry(path, &file.tenant, section, &entry.name, message)
            };
            let plugin_path =
                resolve_plugin(&entry.plugin, &base, &file.plugin_dirs).map_err(fail)?;
            let plugin = runtime
                .load_file(&plugin_path)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let expected = match section {
                "connector" => PluginKind::Connector,
                "suggester" => PluginKind::Suggester,
                _ => PluginKind::Classifier,
            };
            let stage = match expected {
                PluginKind::Suggester => file.stages.suggest,
                PluginKind::Classifier => file.stages.classify,
                PluginKind::Connector => StageConfig::default(),
            };
            if plugin.kind != expected {
                return Err(fail(format!(
                    "`{}` is a {}, not a {expected}",
                    entry.plugin, plugin.kind
                )));
            }
            if let Some(pin) = &entry.digest
                && !pin.eq_ignore_ascii_case(&plugin.digest)
            {
                return Err(fail(format!(
                    "digest mismatch: pinned {pin}, but {} has {}",
                    plugin_path.display(),
                    plugin.digest
                )));
            }
            let mut secrets = BTreeMap::new();
            for (name, source) in &entry.secrets {
                let value = match source {
                    SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                        fail(format!(
                            "secret `{name}`: environment variable `{var}` is not set"
                        ))
                    })?,
                    SecretSource::File(p) => std::fs::read_to_string(base.join(p))
                        .map_err(|e| {
                            fail(format!("secret `{name}`: cannot read {}: {e}", p.display()))
                        })?
                        .trim()
                        .to_string(),
                    SecretSource::Value(v) => v.clone(),
                };
                secrets.insert(name.clone(), Secret::new(value));
            }
            let granted_dir = match &entry.granted_dir {
                Some(d) => {
                    let dir = base.join(d);
                    if !dir.is_dir() {
                        return Err(fail(format!(
                            "granted_dir {} is not a directory",
                            dir.display()
                        )));
                    }
                    Some(dir)
                }
                None => None,
            };
            let limits = entry.limits.apply(
                LimitOverrides {
                    timeout_ms: stage.timeout_ms,
                    ..Default::default()
                }
                .apply(tenant_limits),
            );
            runtime.ceilings().check(&limits).map_err(fail)?;
            let scope = Arc::new(Scope {
                tenant: file.tenant.clone(),
                instance: entry.name.clone(),
                config: PluginConfig {
                    values: entry
                        .config
                        .iter()
                        .map(|(k, v)| (k.clone(), config_value(v)))
                        .collect(),
                    secrets,
                },
                egress: egress.clone(),
                limits,
                granted_dir,
            });
            let instance = Instance {
                name: entry.name.clone(),
                plugin,
                scope,
                on_failure: entry.on_failure.unwrap_or(stage.on_failure),
                replaces: entry.replaces.clone(),
                poll_every_s: entry.poll_every_s,
            };
            match expected {
                PluginKind::Connector => {
                    let channel = runtime
                        .channel_info(&instance.plugin, &instance.scope)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    if instance.poll_every_s.is_some()
                        && !channel
                            .capabilities
                            .contains(&switchboard_contract::Capability::Polling)
                    {
                        return Err(fail(format!(
                            "poll_every_s is set, but `{}` cannot poll (no `polling` capability)",
                            entry.plugin
                        )));
                    }
                    tenant.connectors.push(Connector {
                        instance,
                        channel,
                        ack: entry.ack.clone(),
                    });
                }
                PluginKind::Classifier if section == "shadow classifier" => {
                    tenant.shadow_classifiers.push(instance)
                }
                PluginKind::Classifier => tenant.classifiers.push(instance),
                PluginKind::Suggester => tenant.suggesters.push(instance),
            }
        }
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantFile, String> {
        TenantFile::parse(text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_file_tenant_and_entry() {
        let err = parse("tenant = \"acme\"\n[[classifiers]]\nname = \"k\"\nplugin = \"x\"\n[[classifiers]]\nname = \"k\"\nplugin = \"y\"\n").unwrap_err();
        assert_eq!(
            err,
            "t.toml: tenant `acme`, classifier `k`: this name is used twice in the tenant"
        );
        let err = parse("tenant = \"Acme Corp\"").unwrap_err();
        assert!(err.starts_with("t.toml: tenant id `Acme Corp`"), "{err}");
        let err = parse("tenant = \"acme\"\ncolour = \"blue\"").unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let err = parse("tenant = \"acme\"\n[limits]\nmemory_mb = 0").unwrap_err();
        assert!(err.contains("memory_mb"), "{err}");
    }

    #[test]
    fn non_string_config_values_reach_plugins_as_json() {
        let v: toml::Table = toml::from_str("a = \"x\"\nb = [\"p\", \"q\"]\nc = 3").unwrap();
        assert_eq!(config_value(&v["a"]), "x");
        assert_eq!(config_value(&v["b"]), "[\"p\",\"q\"]");
        assert_eq!(config_value(&v["c"]), "3");
    }
}
