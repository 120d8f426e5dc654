//! Run a Switchboard plugin in the real runtime from an ordinary `cargo test`.
//!
//! Add `switchboard-testkit` as a dev-dependency of the plugin crate, then:
//!
//! ```ignore
//! #[tokio::test]
//! async fn flags_refund_requests() {
//!     let plugin = switchboard_testkit::this_plugin!()
//!         .await
//!         .config("labels", r#"{"topic:refund": ["refund"]}"#);
//!     let labels = plugin.classify_text("I want a refund").await.unwrap();
//!     assert!(labels.iter().any(|l| l.name == "topic:refund"));
//! }
//! ```
//!
//! `this_plugin!()` builds the calling crate with `cargo build --release --target wasm32-wasip2`
//! (once per test binary run; cargo makes repeat builds a no-op) and loads the component with the
//! same sandbox, limits and capability checks as production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
pub use switchboard;
use switchboard::capabilities::config::{PluginConfig, Secret};
use switchboard::capabilities::egress::EgressPolicy;
use switchboard::contract::PluginError;
use switchboard::contract::{
    AnsweredWebhook, CallContext, ChannelInfo, DeliveryReceipt, Draft, HttpRequest, Label,
    LengthRule, Message, OutboundReply, PollBatch, WebhookOutcome,
};
use switchboard::runtime::{CallError, Limits, Plugin, Runtime, RuntimeOptions, Scope};

pub mod logs;
pub mod mock;
pub use logs::LogLine;
pub use mock::{PlatformMock, Recorded, Reply};

/// Build the crate that invokes this macro as a component and load it into a [`Harness`].
#[macro_export]
macro_rules! this_plugin {
    () => {
        $crate::Harness::build_crate(env!("CARGO_MANIFEST_DIR"), env!("CARGO_PKG_NAME"))
    };
}

/// A loaded plugin plus the tenant-side settings its calls run with.
pub struct Harness {
    runtime: Runtime,
    plugin: Arc<Plugin>,
    tenant: String,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, Secret>,
    egress: EgressPolicy,
    limits: Limits,
    granted_dir: Option<PathBuf>,
    length_rule: Option<LengthRule>,
    signature: Option<String>,
}

/// The workspace's target folder, as cargo reports it.
fn target_dir(manifest_dir: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(manifest_dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    Ok(PathBuf::from(
        meta["target_directory"]
            .as_str()
            .context("no target_directory")?,
    ))
}

impl Harness {
    /// Build the crate at `manifest_dir` for wasm32-wasip2 and load it.
    pub async fn build_crate(manifest_dir: &str, package: &str) -> anyhow::Result<Harness> {
        let dir = Path::new(manifest_dir);
        let target = target_dir(dir)?.join("wasm-plugins");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(dir)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
                "--target-dir",
            ])
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .status()
            .context("running cargo build for the plugin")?;
        if !status.success() {
            bail!(
                "building {package} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
            );
        }
        let wasm = target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        Self::load(&wasm).await
    }

    /// Load an already built component.
    pub async fn load(path: &Path) -> anyhow::Result<Harness> {
        let runtime = Runtime::new(RuntimeOptions {
            max_instances: 16,
            ..Default::default()
        })?;
        let plugin = runtime.load_file(path).await?;
        logs::install();
        Ok(Harness {
            limits: runtime.default_limits(),
            runtime,
            plugin,
            tenant: "test-tenant".into(),
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            egress: EgressPolicy::default(),
            granted_dir: None,
            length_rule: None,
            signature: None,
        })
    }

    /// The loaded plugin (kind, info, digest).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.into();
        self
    }
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.into(), Secret::new(value));
        self
    }
    /// Let the plugin call `host` (it must also declare it).
    pub fn allow_egress(mut self, host: &str) -> Self {
        self.egress.allow.push(host.into());
        self
    }
    /// Let the plugin reach loopback and private addresses (for mock servers on 127.0.0.1).
    pub fn allow_private_addresses(mut self) -> Self {
        self.egress.allow_private = true;
        self
    }
    /// Skip the check that the plugin declared the host it calls, so a test can point the
    /// plugin's API base at a loopback mock. Tenants cannot do this.
    pub fn trust_undeclared_egress(mut self) -> Self {
        self.egress.trust_undeclared = true;
        self
    }
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    pub fn grant_dir(mut self, dir: &Path) -> Self {
        self.granted_dir = Some(dir.to_path_buf());
        self
    }
    /// The channel length rule given to classifiers and suggesters in their call context.
    pub fn length_rule(mut self, rule: LengthRule) -> Self {
        self.length_rule = Some(rule);
        self
    }
    pub fn signature(mut self, signature: &str) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// What the plugin logged so far in calls for this harness's tenant (see [`logs`]).
    pub fn logs(&self) -> Vec<LogLine> {
        logs::of(&self.tenant, &self.plugin.info.name)
    }

    /// The scope calls run in, as the host would build it for a tenant.
    pub fn scope(&self) -> Arc<Scope> {
        Arc::new(Scope {
            tenant: self.tenant.clone(),
            instance: self.plugin.info.name.clone(),
            config: PluginConfig {
                values: self.config.clone(),
                secrets: self.secrets.clone(),
            },
            egress: Arc::new(self.egress.clone()),
            limits: self.limits,
            granted_dir: self.granted_dir.clone(),
        })
    }

    pub fn context(&self) -> CallContext {
        CallContext {
            now: switchboard::runtime::now_ms(),
            length_rule: self.length_rule.clone(),
            signature: self.signature.clone(),
            time_zone: "UTC".into(),
        }
    }

    pub async fn classify(&self, message: &Message) -> Result<Vec<Label>, CallError> {
        self.runtime
            .classify(&self.plugin, &self.scope(), message, &self.context())
            .await
    }
    pub async fn classify_text(&self, text: &str) -> Result<Vec<Label>, CallError> {
        self.classify(&message(text)).await
    }
    pub async fn suggest(
        &self,
        message: &Message,
        labels: &[Label],
    ) -> Result<Vec<Draft>, CallError> {
        self.runtime
            .suggest(
                &self.plugin,
                &self.scope(),
                message,
                labels,
                &self.context(),
            )
            .await
    }
    pub async fn channel_info(&self) -> Result<ChannelInfo, CallError> {
        self.runtime.channel_info(&self.plugin, &self.scope()).await
    }
    pub async fn webhook(&self, request: &HttpRequest) -> Result<WebhookOutcome, CallError> {
        let channel = self.channel_info().await?.channel;
        self.runtime
            .handle_webhook(&self.plugin, &self.scope(), &channel, request)
            .await
    }
    /// [`Self::webhook`] with the acknowledgement the connector gives the platform, if any.
    pub async fn answered_webhook(
        &self,
        request: &HttpRequest,
    ) -> Result<AnsweredWebhook, CallError> {
        let channel = self.channel_info().await?.channel;
        self.runtime
            .answer_webhook(&self.plugin, &self.scope(), &channel, request)
            .await
    }
    pub async fn poll(&self, cursor: Option<&str>) -> Result<PollBatch, CallError> {
        let channel = self.channel_info().await?.channel;
        self.runtime
            .poll(&self.plugin, &self.scope(), &channel, cursor)
            .await
    }
    pub async fn deliver(&self, reply: &OutboundReply) -> Result<DeliveryReceipt, CallError> {
        self.runtime
            .deliver(&self.plugin, &self.scope(), reply)
            .await
    }
    pub async fn measure(&self, text: &str) -> Result<u32, CallError> {
        self.runtime
            .measure(&self.plugin, &self.scope(), text)
            .await
    }
}

/// A public message from `@casey` ("Casey Jones") with `text`, for classifier and suggester tests.
pub fn message(text: &str) -> Message {
    Message::example("test-tenant", text)
}

/// A webhook request as a platform would send it (header names are lower-cased).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    switchboard::ingest::request(
        method,
        url,
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body.to_vec(),
    )
}

/// The plugin's own error behind a failed call; panics naming the failure if it was anything
/// else (a trap, a deadline, malformed output…).
pub fn plugin_error(e: &CallError) -> &PluginError {
    e.plugin_error()
        .unwrap_or_else(|| panic!("expected a plugin error, got {}", e.failure))
}

/// `../shared/data/fixtures/<platform>` beside the repository: real platform payloads.
pub fn fixtures_dir(platform: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/fixtures")
        .join(platform)
}

/// The bytes of one fixture, by its path under the platform's folder.
pub fn fixture(platform: &str, relative: &str) -> Vec<u8> {
    let path = fixtures_dir(platform).join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every fixture file of `platform`, in all sub-folders, sorted.
pub fn fixture_files(platform: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixtures_dir(platform), &mut out);
    out.sort();
    out
}
