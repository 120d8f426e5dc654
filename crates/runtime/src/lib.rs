//! The plugin runtime: one engine, components compiled once (and cached on disk), a
//! pre-instantiated form per plugin, and a fresh sandboxed instance per call with a deadline,
//! a memory cap and only the capabilities of one (tenant, plugin) scope.
//!
//! A fresh instance per call (rather than reusing instances per tenant and plugin) means no
//! state can survive from one message to the next, let alone cross tenants; with the pooling
//! allocator and `InstancePre` it costs tens of microseconds (see BENCHMARKS.md).
//!
//! Owns the engine, the compile cache, limits, calls and their errors, and the capabilities a
//! plugin may reach ([`capabilities`]): each implements its WIT interface on its own view of a
//! call's state, and [`Runtime::new`] is the one place that wires them into the linker, so the
//! dependency points one way (runtime → capabilities). It must not know about tenants' files,
//! the store, care rules or HTTP serving: a caller hands it a [`Scope`].

pub mod cache;
pub mod capabilities;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod preinit;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::Instrument;

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, HasSelf, InstancePre, Lift, Linker, Lower,
    ResourceTable,
};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::config::{ConfigCapability, ConfigView, PluginConfig};
use crate::capabilities::egress::{Denial, EgressClients, EgressHooks, EgressPolicy};
use crate::capabilities::kv::{KvCapability, KvStore, KvView, MemoryKv};
use crate::capabilities::log::LogContext;
pub use cache::{CacheOutcome, CompileCache, digest};
pub use error::{CallError, CallFailure, LoadError, Stage};
pub use limits::{Ceilings, LimitOverrides, Limits};
use switchboard_contract::{
    self as contract, AnsweredWebhook, CallContext, ChannelInfo, DeliveryReceipt, Draft,
    HttpRequest, KindMatch, Label, Message, OutboundReply, PluginError, PluginInfo, PluginKind,
    PollBatch, WebhookOutcome,
};
use validate::Checked;

/// How often the engine's epoch advances; deadlines are checked at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Extra time a call gets beyond its deadline before the host abandons it outright (covers
/// host-side waits such as HTTP, which epochs cannot interrupt).
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// How much of a recycled instance's memory is kept resident and reset in place.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;

/// Runtime-wide settings.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Limits used when neither the tenant nor the plugin config overrides them.
    pub defaults: Limits,
    /// How many plugin instances may exist at once (the pooling allocator's size).
    pub max_instances: u32,
    /// How many of them one tenant's calls may hold at once. A tenant's further calls wait for
    /// one of its own instances (until their deadline), so a tenant with slow plugins or a
    /// burst slows itself and never takes the pool from its neighbours.
    pub tenant_share: u32,
    /// What a tenant config may ask for (deadlines, memory, plugin instances).
    pub ceilings: Ceilings,
    /// Backing store of the plugins' key-value interface.
    pub kv: Arc<dyn KvStore>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            defaults: Limits::default(),
            max_instances: 128,
            tenant_share: 32,
            ceilings: Ceilings::default(),
            kv: Arc::new(MemoryKv::default()),
        }
    }
}

/// Who a call runs for: one tenant's configuration of one plugin.
#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant: String,
    /// The plugin instance's name in the tenant config (a tenant may configure a plugin twice).
    pub instance: String,
    pub config: PluginConfig,
    pub egress: Arc<EgressPolicy>,
    pub limits: Limits,
    /// A directory the tenant grants this plugin (read-only, at `/data`).
    pub granted_dir: Option<PathBuf>,
}

impl Scope {
    /// A scope with no configuration, no egress and default limits.
    pub fn bare(tenant: &str, instance: &str, limits: Limits) -> Self {
        Scope {
            tenant: tenant.into(),
            instance: instance.into(),
            config: PluginConfig::default(),
            egress: Arc::new(EgressPolicy::default()),
            limits,
            granted_dir: None,
        }
    }
}

/// Per-call store state: the capabilities of one scope, and what the call did with them.
pub struct PluginState {
    pub(crate) scope: Arc<Scope>,
    pub(crate) plugin_name: String,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) log: LogContext,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: EgressHooks,
    limiter: limits::MemoryLimiter,
    deadline: Instant,
    timed_out: bool,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl contract::switchboard::plugin::types::Host for PluginState {}

/// A loaded plugin: compiled, linked and ready to instantiate.
pub struct Plugin {
    pub kind: PluginKind,
    pub info: PluginInfo,
    /// SHA-256 of the component binary.
    pub digest: String,
    /// The contract version the plugin was built against (`0.1.0`).
    pub contract_version: String,
    /// Where it came from (a path or a label), for messages.
    pub origin: String,
    pub size_bytes: usize,
    pub cache: CacheOutcome,
    /// Whether calls start from a snapshot taken after the plugin's own `init` (contract
    /// 0.1.2's `preinit`) rather than from its binary as built.
    pub preinitialised: bool,
    /// Channel names besides the connector's own that its messages may carry (0.1.1's
    /// `extra-channels`); empty for other kinds and older connectors.
    pub extra_channels: Vec<String>,
    pre: InstancePre<PluginState>,
    funcs: HashMap<&'static str, ComponentExportIndex>,
}

/// `channel-answers.handle-webhook`, kept apart from `channel`'s function of the same name.
const ANSWER_WEBHOOK: &str = "channel-answers/handle-webhook";
/// `channel-answers.extra-channels`.
const EXTRA_CHANNELS: &str = "channel-answers/extra-channels";

impl Plugin {
    /// Whether the connector answers platforms itself (exports 0.1.1's `channel-answers`).
    pub fn answers_webhooks(&self) -> bool {
        self.funcs.contains_key(ANSWER_WEBHOOK)
    }

    /// The WIT world the plugin was built for, with its contract version.
    pub fn world(&self) -> String {
        let world = if self.answers_webhooks() {
            "answering-channel-adapter"
        } else {
            self.kind.world()
        };
        format!("switchboard:plugin/{world}@{}", self.contract_version)
    }

    /// `name@version#digest-prefix`: recorded with every result so a decision names the exact
    /// plugin build behind it (two uploads may share a version string, never a digest).
    pub fn provenance(&self) -> String {
        format!(
            "{}@{}#{}",
            self.info.name,
            self.info.version,
            &self.digest[..self.digest.len().min(12)]
        )
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("kind", &self.kind)
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("digest", &self.digest)
            .finish()
    }
}

/// Functions of each kind's interface, looked up once at load.
fn functions_of(kind: PluginKind) -> &'static [&'static str] {
    match kind {
        PluginKind::Connector => &[
            "about",
            "info",
            "handle-webhook",
            "poll",
            "deliver",
            "measure",
        ],
        PluginKind::Classifier => &["about", "classify"],
        PluginKind::Suggester => &["about", "suggest"],
    }
}

struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: CompileCache,
    defaults: Limits,
    kv: Arc<dyn KvStore>,
    egress: EgressClients,
    ceilings: Ceilings,
    /// Each tenant's share of the instance pool (see [`RuntimeOptions::tenant_share`]).
    tenant_share: u32,
    tenant_slots: TenantSlots,
    /// Plugins loaded from files, shared by every tenant that names the same unchanged file.
    files: LoadedFiles,
    _ticker: EpochTicker,
}

/// What identifies a file's contents without reading it: a replaced or rewritten file changes
/// its inode or its change time, which no tool can set back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
    changed: (i64, i64),
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            modified: m.modified().ok(),
            changed: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Plugins by the file they were loaded from. Weak: a plugin no tenant holds any more is freed,
/// and its entry pruned on the next insert.
#[derive(Default)]
struct LoadedFiles(Mutex<HashMap<PathBuf, (FileStamp, std::sync::Weak<Plugin>)>>);

impl LoadedFiles {
    fn get(&self, path: &Path, stamp: &FileStamp) -> Option<Arc<Plugin>> {
        let files = self.0.lock().unwrap_or_else(|p| p.into_inner());
        files
            .get(path)
            .filter(|(known, _)| known == stamp)
            .and_then(|(_, plugin)| plugin.upgrade())
    }

    fn put(&self, path: &Path, stamp: FileStamp, plugin: &Arc<Plugin>) {
        let mut files = self.0.lock().unwrap_or_else(|p| p.into_inner());
        files.retain(|_, (_, p)| p.strong_count() > 0);
        files.insert(path.to_path_buf(), (stamp, Arc::downgrade(plugin)));
    }
}

/// A fixed number of slots per tenant, each tenant's own: one tenant waiting for a slot never
/// waits behind another's. Used for the instance share here and the server's in-flight webhooks.
pub struct TenantSlots {
    per_tenant: usize,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl TenantSlots {
    pub fn new(per_tenant: usize) -> Self {
        TenantSlots {
            per_tenant: per_tenant.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Slots each tenant has.
    pub fn per_tenant(&self) -> usize {
        self.per_tenant
    }

    /// One of `tenant`'s slots, waiting at most `patience`; `None` when they stayed full.
    /// Callers pass only configured tenants, so the map holds one entry per tenant.
    pub async fn acquire(
        &self,
        tenant: &str,
        patience: Duration,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = {
            let mut all = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(tenant.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_tenant)))
                .clone()
        };
        // A free slot is the common case: take it without arming a timer on the hot path.
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        // Never closed; a closed semaphore would mean no slot either way.
        tokio::time::timeout(patience, slots.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// The plugin host's engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // `perf` can name the plugins' functions when asked for (`/tmp/perf-<pid>.map`).
        if std::env::var_os("SWITCHBOARD_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let n = options.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 4)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(limits::MAX_MEMORY_BYTES as usize)
            // Reset the first pages of a recycled memory with memset instead of madvise: no page
            // faults on the next instance, and no process-wide mmap lock contention between
            // threads instantiating at once (see BENCHMARKS.md).
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            // Reset only the kept pages an instance actually touched (Linux 6.7+, found with
            // the PAGEMAP_SCAN ioctl), not all of them: without it every recycled slot copied
            // and zeroed its whole kept range, a fifth of `switchboard run`'s CPU.
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("creating engine: {e}"))?;

        let mut linker = Linker::<PluginState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi:http: {e}"))?;
        // Each capability implements its interface on its own view of the call's state, so the
        // capabilities depend on nothing here and this is the one place that wires them in.
        let contract_link =
            |e: wasmtime::Error| anyhow::anyhow!("linking the Switchboard contract: {e}");
        contract::switchboard::plugin::types::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        )
        .map_err(contract_link)?;
        contract::switchboard::plugin::config::add_to_linker::<PluginState, ConfigCapability>(
            &mut linker,
            |s| ConfigView(&s.scope.config),
        )
        .map_err(contract_link)?;
        contract::switchboard::plugin::kv::add_to_linker::<PluginState, KvCapability>(
            &mut linker,
            |s| KvView {
                store: &*s.kv,
                tenant: &s.scope.tenant,
                plugin: &s.plugin_name,
            },
        )
        .map_err(contract_link)?;
        contract::switchboard::plugin::log::add_to_linker::<PluginState, HasSelf<LogContext>>(
            &mut linker,
            |s| &mut s.log,
        )
        .map_err(contract_link)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("switchboard-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })?;

        let cache = CompileCache::new(&engine, options.cache_dir);
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                defaults: options.defaults,
                kv: options.kv,
                egress: EgressClients::new()?,
                ceilings: options.ceilings,
                tenant_share: options.tenant_share.clamp(1, n),
                tenant_slots: TenantSlots::new(options.tenant_share.clamp(1, n) as usize),
                files: LoadedFiles::default(),
                _ticker: EpochTicker {
                    stop,
                    thread: Some(thread),
                },
            }),
        })
    }

    /// Default limits of this runtime.
    pub fn default_limits(&self) -> Limits {
        self.inner.defaults
    }

    /// What a tenant config may ask for.
    pub fn ceilings(&self) -> Ceilings {
        self.inner.ceilings
    }

    /// Wait, at most `patience`, for one of `tenant`'s share of instances.
    async fn tenant_slot(
        &self,
        tenant: &str,
        patience: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, CallFailure> {
        self.inner
            .tenant_slots
            .acquire(tenant, patience)
            .await
            .ok_or(CallFailure::TenantBusy {
                share: self.inner.tenant_share,
            })
    }

    /// Load a plugin file. A file already loaded and unchanged since (same inode, size,
    /// modification and change times) gives back the same [`Plugin`]: ten thousand tenants
    /// naming `keyword-classifier` share one compiled component and one `InstancePre`, and
    /// neither read nor hash the file again. Sharing code is safe: every call still gets a
    /// fresh instance with its own tenant's scope.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let origin = path.display().to_string();
        let read_error = |source| LoadError::Read {
            origin: origin.clone(),
            source,
        };
        // A plain stat, not `tokio::fs`: that hands every call to a blocking thread and back,
        // and loading ten thousand tenants at start asks for a hundred thousand stamps.
        let stamp = FileStamp::of(&std::fs::metadata(path).map_err(read_error)?);
        if let Some(plugin) = self.inner.files.get(path, &stamp) {
            return Ok(plugin);
        }
        let bytes = tokio::fs::read(path).await.map_err(read_error)?;
        let plugin = self.load_bytes(&bytes, &origin).await?;
        self.inner.files.put(path, stamp, &plugin);
        Ok(plugin)
    }

    /// Load a plugin from its bytes; `origin` names it in errors.
    pub async fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<Arc<Plugin>, LoadError> {
        let origin = origin.to_string();
        let digest = digest(bytes);
        let inner = self.inner.clone();
        let owned = bytes.to_vec();
        let digest_for_compile = digest.clone();
        let origin_for_compile = origin.clone();
        // Compiling (and pre-initialising) is CPU-heavy: keep it off the async workers.
        let compiled = tokio::task::spawn_blocking(move || {
            if preinit::wants_preinit(&owned) {
                let snapshot = || preinit::snapshot(&owned, &inner.defaults);
                return inner
                    .cache
                    .load_preinitialised(&inner.engine, &digest_for_compile, snapshot)
                    .map(|(c, outcome)| (c, outcome, true))
                    .map_err(|detail| LoadError::Preinit {
                        origin: origin_for_compile.clone(),
                        detail,
                    });
            }
            inner
                .cache
                .load(&inner.engine, &owned, &digest_for_compile)
                .map(|(c, outcome)| (c, outcome, false))
                .map_err(|e| LoadError::NotAComponent {
                    origin: origin_for_compile.clone(),
                    detail: first_line(&e),
                })
        })
        .await
        .map_err(|e| LoadError::NotAComponent {
            origin: origin.clone(),
            detail: e.to_string(),
        })?;
        let (component, cache, preinitialised) = compiled?;

        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&self.inner.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let (kind, export, contract_version) =
            match contract::match_kind(names.iter().map(String::as_str)) {
                KindMatch::Supported {
                    kind,
                    export,
                    version,
                } => (kind, export, version),
                KindMatch::Incompatible { export, version } => {
                    return Err(LoadError::IncompatibleContract {
                        origin,
                        export,
                        found: version,
                        supported: contract::VERSION.into(),
                    });
                }
                KindMatch::Unknown => {
                    return Err(LoadError::UnknownWorld {
                        origin,
                        exports: if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        },
                        supported: contract::VERSION.into(),
                    });
                }
            };

        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                origin: origin.clone(),
                detail: format!("{e:#}"),
            })?;
        let iface =
            component
                .get_export_index(None, &export)
                .ok_or_else(|| LoadError::UnknownWorld {
                    origin: origin.clone(),
                    exports: names.join(", "),
                    supported: contract::VERSION.into(),
                })?;
        let mut funcs = HashMap::new();
        for &f in functions_of(kind) {
            let idx =
                component
                    .get_export_index(Some(&iface), f)
                    .ok_or_else(|| LoadError::Link {
                        origin: origin.clone(),
                        detail: format!("`{export}` lacks the function `{f}`"),
                    })?;
            funcs.insert(f, idx);
        }
        // What 0.1.1 added, when the connector exports it: both functions or neither.
        if kind == PluginKind::Connector
            && let Some(answers) = contract::find_interface(
                names.iter().map(String::as_str),
                contract::CHANNEL_ANSWERS,
            )
        {
            let iface = component.get_export_index(None, answers);
            for (key, f) in [
                (ANSWER_WEBHOOK, "handle-webhook"),
                (EXTRA_CHANNELS, "extra-channels"),
            ] {
                let idx = iface
                    .as_ref()
                    .and_then(|i| component.get_export_index(Some(i), f))
                    .ok_or_else(|| LoadError::Link {
                        origin: origin.clone(),
                        detail: format!("`{answers}` lacks the function `{f}`"),
                    })?;
                funcs.insert(key, idx);
            }
        }

        let mut plugin = Plugin {
            kind,
            info: PluginInfo {
                name: origin.clone(),
                version: "?".into(),
                description: String::new(),
                vendor: String::new(),
                egress: vec![],
                config_keys: vec![],
                secrets: vec![],
            },
            digest,
            contract_version,
            origin: origin.clone(),
            size_bytes: bytes.len(),
            cache,
            preinitialised,
            extra_channels: Vec::new(),
            pre,
            funcs,
        };
        let scope = Arc::new(Scope::bare("", "load", self.inner.defaults));
        let info: PluginInfo = self
            .call(&plugin, &scope, Stage::About, "about", ())
            .await
            .map(|(i,): (PluginInfo,)| i)
            .map_err(|e| LoadError::About {
                origin: origin.clone(),
                detail: e.failure.to_string(),
            })?;
        info.check(&self.inner.defaults)
            .map_err(|detail| LoadError::About {
                origin: origin.clone(),
                detail,
            })?;
        plugin.info = info;
        if plugin.funcs.contains_key(EXTRA_CHANNELS) {
            let (extra,): (Vec<String>,) = self
                .call(&plugin, &scope, Stage::About, EXTRA_CHANNELS, ())
                .await
                .map_err(|e| LoadError::About {
                    origin: origin.clone(),
                    detail: e.failure.to_string(),
                })?;
            extra
                .check(&self.inner.defaults)
                .map_err(|detail| LoadError::About {
                    origin: origin.clone(),
                    detail,
                })?;
            plugin.extra_channels = extra;
        }
        tracing::debug!(plugin = %plugin.info.name, version = %plugin.info.version, kind = %plugin.kind, ?cache, "loaded plugin");
        Ok(Arc::new(plugin))
    }

    fn new_store(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
    ) -> Result<Store<PluginState>, CallFailure> {
        let limits = scope.limits;
        let log = LogContext::new(&scope.tenant, &plugin.info.name, &plugin.info.version);
        let wasi =
            crate::capabilities::wasi::context(&log, scope.granted_dir.as_ref()).map_err(|e| {
                CallFailure::Instantiate {
                    message: e.to_string(),
                }
            })?;
        let state = PluginState {
            scope: scope.clone(),
            plugin_name: plugin.info.name.clone(),
            kv: self.inner.kv.clone(),
            log,
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: EgressHooks {
                declared: plugin.info.egress.clone().into(),
                policy: scope.egress.clone(),
                clients: self.inner.egress.clone(),
                timeout: Duration::from_millis(limits.http_timeout_ms),
                max_response_bytes: limits.http_max_response_bytes,
                denials: Arc::new(Mutex::new(Vec::new())),
            },
            limiter: limits::MemoryLimiter {
                limit: limits.memory_bytes as usize,
                hit: false,
                peak: 0,
            },
            deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
            timed_out: false,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if Instant::now() >= state.deadline {
                state.timed_out = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Hand the thread back to the executor every tick so that one busy plugin
                // never starves other tenants' calls.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Instantiate `plugin` in a fresh store for `scope` and call one of its functions.
    async fn call<P, R>(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        stage: Stage,
        func: &'static str,
        params: P,
    ) -> Result<R, CallError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let span = crate::metrics::call_span(
            &scope.tenant,
            &plugin.info.name,
            &plugin.info.version,
            stage,
        );
        let started = Instant::now();
        let result = self
            .call_with_denials(plugin, scope, stage, func, params)
            .instrument(span.clone())
            .await
            .0;
        crate::metrics::record_call(&span, &result, started.elapsed());
        result
    }

    /// [`Self::call`], also returning the egress requests the policy refused during the call.
    async fn call_with_denials<P, R>(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        stage: Stage,
        func: &'static str,
        params: P,
    ) -> (Result<R, CallError>, Vec<Denial>)
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let fail = |failure: CallFailure| CallError::new(plugin, scope, stage, failure);
        let limits = scope.limits;
        // Declared before the store, so it is released after the store gives its slot back.
        let _slot = match self
            .tenant_slot(&scope.tenant, Duration::from_millis(limits.timeout_ms))
            .await
        {
            Ok(permit) => permit,
            Err(f) => {
                let metrics =
                    crate::metrics::CallMetrics::new(&scope.tenant, &plugin.info.name, stage);
                metrics.error(f.kind());
                tracing::warn!(tenant = %scope.tenant, plugin = %plugin.info.name, %stage, failure = %f, "plugin call not started");
                return (Err(fail(f)), Vec::new());
            }
        };
        let mut store = match self.new_store(plugin, scope) {
            Ok(s) => s,
            Err(f) => return (Err(fail(f)), Vec::new()),
        };
        let Some(idx) = plugin.funcs.get(func).copied() else {
            let f = CallFailure::Instantiate {
                message: format!("no export `{func}`"),
            };
            return (Err(fail(f)), Vec::new());
        };

        enum Step {
            Instantiate(wasmtime::Error),
            Call(wasmtime::Error),
        }
        let pre = &plugin.pre;
        let run = async {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(Step::Instantiate)?;
            let typed = instance
                .get_typed_func::<P, R>(&mut store, &idx)
                .map_err(Step::Instantiate)?;
            typed
                .call_async(&mut store, params)
                .await
                .map_err(Step::Call)
        };
        let hard_deadline = Duration::from_millis(limits.timeout_ms) + DEADLINE_GRACE;
        let started = Instant::now();
        let outcome = tokio::time::timeout(hard_deadline, run).await;
        let metrics = crate::metrics::CallMetrics::new(&scope.tenant, &plugin.info.name, stage);
        metrics.finished(started.elapsed(), store.data().limiter.peak);

        let state = store.data();
        let denials = std::mem::take(
            &mut *state
                .hooks
                .denials
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let failure = match outcome {
            // A `result<_, plugin-error>` carrying the plugin's own error is counted by
            // `call_checked`, which can see inside it.
            Ok(Ok(result)) => return (Ok(result), denials),
            Err(_elapsed) => CallFailure::Timeout {
                limit_ms: limits.timeout_ms,
            },
            Ok(Err(_)) if state.limiter.hit => CallFailure::MemoryExhausted {
                limit_bytes: limits.memory_bytes,
            },
            Ok(Err(Step::Instantiate(e))) => CallFailure::Instantiate {
                message: first_line(&e),
            },
            Ok(Err(Step::Call(e))) => match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => CallFailure::Timeout {
                    limit_ms: limits.timeout_ms,
                },
                _ if state.timed_out => CallFailure::Timeout {
                    limit_ms: limits.timeout_ms,
                },
                Some(Trap::StackOverflow) => CallFailure::StackOverflow,
                Some(trap) => CallFailure::Trap {
                    message: trap.to_string(),
                },
                // Not a trap: the result could not be lifted (bad UTF-8, bad discriminant,
                // out-of-bounds pointer): the plugin returned something malformed.
                None => CallFailure::MalformedOutput {
                    reason: first_line(&e),
                },
            },
        };
        metrics.error(failure.kind());
        tracing::warn!(tenant = %scope.tenant, plugin = %plugin.info.name, version = %plugin.info.version, %stage, %failure, "plugin call failed");
        (Err(fail(failure)), denials)
    }

    /// Call a function returning `result<T, plugin-error>`, check `T`, and fold the plugin's own
    /// error (or the egress denial behind it) into a [`CallError`].
    async fn call_checked<P, T>(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        stage: Stage,
        func: &'static str,
        params: P,
        check: impl FnOnce(&T, &Limits) -> Result<(), String>,
    ) -> Result<T, CallError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        T: Send + Sync + 'static,
        (Result<T, PluginError>,): ComponentNamedList + Lift,
    {
        let span = crate::metrics::call_span(
            &scope.tenant,
            &plugin.info.name,
            &plugin.info.version,
            stage,
        );
        let started = Instant::now();
        let (result, denials) = self
            .call_with_denials::<P, (Result<T, PluginError>,)>(plugin, scope, stage, func, params)
            .instrument(span.clone())
            .await;
        let result = self.checked(plugin, scope, stage, result, denials, check);
        crate::metrics::record_call(&span, &result, started.elapsed());
        result
    }

    /// [`Self::call_checked`]'s verdict on what the call returned.
    fn checked<T>(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        stage: Stage,
        result: Result<(Result<T, PluginError>,), CallError>,
        denials: Vec<Denial>,
        check: impl FnOnce(&T, &Limits) -> Result<(), String>,
    ) -> Result<T, CallError> {
        let fail = |failure| CallError::new(plugin, scope, stage, failure);
        match result?.0 {
            Ok(value) => {
                check(&value, &scope.limits)
                    .map_err(|reason| fail(CallFailure::MalformedOutput { reason }))?;
                Ok(value)
            }
            Err(_) if !denials.is_empty() => {
                let reason = denials
                    .iter()
                    .map(|d| d.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(fail(CallFailure::EgressDenied { reason }))
            }
            Err(error) => {
                let failure = CallFailure::Plugin { error };
                crate::metrics::CallMetrics::new(&scope.tenant, &plugin.info.name, stage)
                    .error(failure.kind());
                Err(fail(failure))
            }
        }
    }

    /// Instantiate `plugin` for `scope` and drop the instance: what every call pays before it
    /// runs (used to measure instantiation and as a readiness probe).
    pub async fn instantiate(&self, plugin: &Plugin, scope: &Arc<Scope>) -> Result<(), CallError> {
        let _slot = self
            .tenant_slot(
                &scope.tenant,
                Duration::from_millis(scope.limits.timeout_ms),
            )
            .await
            .map_err(|failure| CallError::new(plugin, scope, Stage::About, failure))?;
        let mut store = self
            .new_store(plugin, scope)
            .map_err(|failure| CallError::new(plugin, scope, Stage::About, failure))?;
        plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| {
                CallError::new(
                    plugin,
                    scope,
                    Stage::About,
                    CallFailure::Instantiate {
                        message: first_line(&e),
                    },
                )
            })
    }

    /// Classify several messages of one tenant in a single reused instance. The runtime never
    /// does this on its own (state could leak from one message to the next); it exists so the
    /// benchmark can measure what fresh-instance-per-call costs against reuse.
    #[doc(hidden)]
    pub async fn classify_reusing_instance(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        messages: &[Message],
        context: &CallContext,
    ) -> anyhow::Result<usize> {
        type Classify<'a> = (&'a Message, &'a CallContext);
        let mut store = self
            .new_store(plugin, scope)
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        let instance = plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let idx = plugin.funcs["classify"];
        let func = instance
            .get_typed_func::<Classify<'_>, (Result<Vec<Label>, PluginError>,)>(&mut store, &idx)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut labels = 0;
        for m in messages {
            let (r,) = func
                .call_async(&mut store, (m, context))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            labels += r
                .map_err(|e| anyhow::anyhow!("{}", error::plugin_error_text(&e)))?
                .len();
        }
        Ok(labels)
    }

    /// Ask a classifier for labels.
    pub async fn classify(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        message: &Message,
        context: &CallContext,
    ) -> Result<Vec<Label>, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Classifier, Stage::Classify)?;
        let text_len = message.text.len();
        self.call_checked(
            plugin,
            scope,
            Stage::Classify,
            "classify",
            (message, context),
            |labels: &Vec<Label>, limits| {
                labels.check(limits)?;
                validate::spans_within(labels, &message.text, text_len)
            },
        )
        .await
    }

    /// Ask a reply-suggester for drafts.
    pub async fn suggest(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        message: &Message,
        labels: &[Label],
        context: &CallContext,
    ) -> Result<Vec<Draft>, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Suggester, Stage::Suggest)?;
        self.call_checked(
            plugin,
            scope,
            Stage::Suggest,
            "suggest",
            (message, labels, context),
            |d: &Vec<Draft>, l| d.check(l),
        )
        .await
    }

    /// A connector's channel description.
    pub async fn channel_info(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
    ) -> Result<ChannelInfo, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Connector, Stage::ChannelInfo)?;
        let (info,): (ChannelInfo,) = self
            .call(plugin, scope, Stage::ChannelInfo, "info", ())
            .await?;
        info.check(&scope.limits)
            .map_err(|reason| self.malformed(plugin, scope, Stage::ChannelInfo, reason))?;
        Ok(info)
    }

    /// Verify and decode an inbound webhook request. Messages come back stamped with the
    /// scope's tenant, the connector's channel name (or one of its declared extra channels), and
    /// a receive time if the platform gave none.
    pub async fn handle_webhook(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        channel: &str,
        request: &HttpRequest,
    ) -> Result<WebhookOutcome, CallError> {
        Ok(self
            .answer_webhook(plugin, scope, channel, request)
            .await?
            .outcome)
    }

    /// [`Self::handle_webhook`] with the connector's own acknowledgement for the platform, if it
    /// gives one (contract 0.1.1's `channel-answers`; older connectors never do). The caller
    /// sends it only once the messages are durable.
    pub async fn answer_webhook(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        channel: &str,
        request: &HttpRequest,
    ) -> Result<AnsweredWebhook, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Connector, Stage::Webhook)?;
        let mut answered = if plugin.funcs.contains_key(ANSWER_WEBHOOK) {
            self.call_checked(
                plugin,
                scope,
                Stage::Webhook,
                ANSWER_WEBHOOK,
                (request,),
                |a: &AnsweredWebhook, l| a.check(l),
            )
            .await?
        } else {
            let outcome: WebhookOutcome = self
                .call_checked(
                    plugin,
                    scope,
                    Stage::Webhook,
                    "handle-webhook",
                    (request,),
                    |o: &WebhookOutcome, l| o.check(l),
                )
                .await?;
            AnsweredWebhook {
                outcome,
                acknowledgement: None,
            }
        };
        match &mut answered.outcome {
            WebhookOutcome::Events(events) => {
                stamp(events, &scope.tenant, channel, &plugin.extra_channels)
            }
            // A challenge stores nothing, so it has nothing to acknowledge.
            WebhookOutcome::Challenge(_) => answered.acknowledgement = None,
        }
        Ok(answered)
    }

    /// Fetch new messages from a polled network.
    pub async fn poll(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        channel: &str,
        cursor: Option<&str>,
    ) -> Result<PollBatch, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Connector, Stage::Poll)?;
        let mut batch: PollBatch = self
            .call_checked(
                plugin,
                scope,
                Stage::Poll,
                "poll",
                (cursor,),
                |b: &PollBatch, l| b.check(l),
            )
            .await?;
        stamp(
            &mut batch.events,
            &scope.tenant,
            channel,
            &plugin.extra_channels,
        );
        Ok(batch)
    }

    /// Send one reply through a connector.
    pub async fn deliver(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        reply: &OutboundReply,
    ) -> Result<DeliveryReceipt, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Connector, Stage::Deliver)?;
        self.call_checked(
            plugin,
            scope,
            Stage::Deliver,
            "deliver",
            (reply,),
            |r: &DeliveryReceipt, l| r.check(l),
        )
        .await
    }

    /// Length of `text` by the channel's own rule.
    pub async fn measure(
        &self,
        plugin: &Plugin,
        scope: &Arc<Scope>,
        text: &str,
    ) -> Result<u32, CallError> {
        self.expect_kind(plugin, scope, PluginKind::Connector, Stage::Measure)?;
        let (n,): (u32,) = self
            .call(plugin, scope, Stage::Measure, "measure", (text,))
            .await?;
        Ok(n)
    }

    fn malformed(&self, plugin: &Plugin, scope: &Scope, stage: Stage, reason: String) -> CallError {
        CallError::new(
            plugin,
            scope,
            stage,
            CallFailure::MalformedOutput { reason },
        )
    }

    fn expect_kind(
        &self,
        plugin: &Plugin,
        scope: &Scope,
        kind: PluginKind,
        stage: Stage,
    ) -> Result<(), CallError> {
        if plugin.kind == kind {
            return Ok(());
        }
        Err(CallError::new(
            plugin,
            scope,
            stage,
            CallFailure::Instantiate {
                message: format!("plugin is a {}, not a {kind}", plugin.kind),
            },
        ))
    }
}

impl CallError {
    fn new(plugin: &Plugin, scope: &Scope, stage: Stage, failure: CallFailure) -> CallError {
        CallError {
            tenant: scope.tenant.clone(),
            plugin: plugin.info.name.clone(),
            version: plugin.info.version.clone(),
            stage,
            failure,
        }
    }
}

/// Overwrite what a connector may not decide: the tenant, the channel name, and a missing time;
/// clip the sender's language tag (it becomes a label name; an oversized one would get a
/// classifier's whole output refused).
fn stamp(events: &mut [contract::Event], tenant: &str, channel: &str, extra_channels: &[String]) {
    let now = now_ms();
    for event in events {
        if let contract::Event::Message(m) = event {
            m.tenant = tenant.to_string();
            if !extra_channels.contains(&m.channel) {
                m.channel = channel.to_string();
            }
            m.language = m.language.as_deref().and_then(contract::language_tag);
            if m.received_at <= 0 {
                m.received_at = now;
            }
        }
    }
}

/// The host clock in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An engine error on one line (its cause chain joined), at most 300 characters.
fn first_line(e: &wasmtime::Error) -> String {
    let flat = format!("{e:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}
