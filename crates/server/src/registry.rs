//! The live tenants and the plugin store, swapped atomically.
//!
//! Every request and every message takes a snapshot (`Arc<Tenant>`) of its tenant when it
//! starts and keeps it to the end, so a message in flight finishes on the plugin versions it
//! started with while new ones use the new versions. A reload that fails leaves the old
//! version serving and records the error for `/readyz` and the admin API.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use switchboard_care::tenant::{BUILTIN_PLUGIN_DIR, SecretSource, Tenant, TenantFile};
use switchboard_runtime::Runtime;
use switchboard_store::Store;

/// Where the server keeps its files.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn tenants(&self) -> PathBuf {
        self.root.join("tenants")
    }
    /// Current plugin per name (`<name>.wasm`): what unpinned tenants load. An upload never
    /// writes a built-in's name here (see [`Registry::upload`]).
    pub fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }
    /// Every uploaded version, by name and digest: what a pin names.
    pub fn versions(&self) -> PathBuf {
        self.root.join("plugins").join("versions")
    }
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.tenants())?;
        std::fs::create_dir_all(self.versions())
    }
}

/// One tenant as currently served.
#[derive(Debug)]
pub struct LiveTenant {
    pub tenant: Arc<Tenant>,
    /// The config file it was loaded from (and that the admin API writes).
    pub path: PathBuf,
    pub disabled: bool,
    /// Bumped by every successful (re)load.
    pub generation: u64,
    pub limiter: Arc<RateLimiter>,
}

pub type RateLimiter = governor::DefaultDirectRateLimiter;

/// A plugin version in the plugin store.
#[derive(Debug, Clone, Serialize)]
pub struct PluginVersion {
    pub name: String,
    pub version: String,
    pub kind: String,
    pub digest: String,
    pub size_bytes: usize,
    pub description: String,
    /// Who ships it, as shown: `unknown` when the upload names none or claims the built-ins'
    /// own vendor (`switchboard`), since an upload is never first party.
    pub vendor: String,
    /// The vendor as the component itself declares it.
    pub declared_vendor: String,
    pub egress: Vec<String>,
    /// The version unpinned tenants load.
    pub current: bool,
    /// Named like a built-in plugin: never current, it runs only where a tenant pins its digest.
    pub builtin_name: bool,
}

/// Why an admin change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

/// Tenants by id, hot-swappable.
pub struct Registry {
    rt: Runtime,
    store: Store,
    pub dirs: DataDir,
    /// Config files given on the command line, besides `<data>/tenants/*.toml`.
    extra: Vec<PathBuf>,
    live: ArcSwap<BTreeMap<String, Arc<LiveTenant>>>,
    /// The last load error per config file (cleared by a successful load).
    errors: Mutex<BTreeMap<String, String>>,
    /// Serialises reloads so two admin changes cannot interleave.
    reload: tokio::sync::Mutex<()>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Wakes the supervisor when the set of tenants changes.
    pub changed: Notify,
    generation: std::sync::atomic::AtomicU64,
}

impl Registry {
    pub fn new(rt: Runtime, store: Store, dirs: DataDir, extra: Vec<PathBuf>) -> Registry {
        Registry {
            rt,
            store,
            dirs,
            extra,
            live: ArcSwap::from_pointee(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            reload: tokio::sync::Mutex::new(()),
            wakers: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The tenant as served right now.
    pub fn get(&self, name: &str) -> Option<Arc<LiveTenant>> {
        self.live.load().get(name).cloned()
    }

    pub fn all(&self) -> Arc<BTreeMap<String, Arc<LiveTenant>>> {
        self.live.load_full()
    }

    /// Load errors by config file, for readiness and the admin API.
    pub fn errors(&self) -> BTreeMap<String, String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The notifier that wakes `tenant`'s workers (new message, new reply queued).
    pub fn waker(&self, tenant: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_string())
            .or_default()
            .clone()
    }

    /// The notifier that wakes `tenant`'s deliverer (a reply queued or due).
    pub fn deliver_waker(&self, tenant: &str) -> Arc<Notify> {
        self.waker(&deliver_key(tenant))
    }

    fn config_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dirs.tenants())
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.extend(self.extra.iter().cloned());
        files
    }

    /// (Re)load every tenant config. A file that fails keeps its tenant's old version serving.
    /// Returns the errors of this pass.
    pub async fn reload_all(&self) -> BTreeMap<String, String> {
        let _guard = self.reload.lock().await;
        let mut failed = BTreeMap::new();
        let mut loaded = Vec::new();
        // Two queries for every tenant instead of two per tenant (ten thousand tenants made
        // twenty thousand round trips to the store at start).
        let stored = match StoredState::read(&self.store).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "reading tenants' stored state at once failed; reading it per tenant");
                None
            }
        };
        for path in self.config_files() {
            match self.load_path(&path, None, stored.as_ref()).await {
                Ok(t) => {
                    let disabled = stored.as_ref().map(|s| s.disabled.contains(&t.name));
                    loaded.push((self.live_tenant(t, &path, disabled).await, path));
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "tenant config not loaded; the previous version (if any) keeps serving");
                    failed.insert(path.display().to_string(), e.clone());
                    self.record_error(&path, Some(e));
                }
            }
        }
        self.publish(loaded);
        failed
    }

    /// Reload one tenant from its file.
    pub async fn reload_tenant(&self, name: &str) -> Result<(), RegistryError> {
        let _guard = self.reload.lock().await;
        let live = self
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(format!("no tenant `{name}`")))?;
        let t = self
            .load_path(&live.path, None, None)
            .await
            .map_err(RegistryError::Invalid)?;
        self.install(t, &live.path).await;
        Ok(())
    }

    /// Replace (or create) a tenant's config with `text`. The new config is loaded first; only
    /// if it loads is it written (atomically) and swapped in.
    pub async fn put_config(&self, name: &str, text: &str) -> Result<u64, RegistryError> {
        let _guard = self.reload.lock().await;
        let path = match self.get(name) {
            Some(live) => live.path.clone(),
            None => self.dirs.tenants().join(format!("{name}.toml")),
        };
        let t = self
            .load_path(&path, Some(text), None)
            .await
            .map_err(RegistryError::Invalid)?;
        if t.name != name {
            return Err(RegistryError::Invalid(format!(
                "the config is for tenant `{}`, not `{name}`",
                t.name
            )));
        }
        write_atomically(&path, text.as_bytes()).map_err(RegistryError::Io)?;
        Ok(self.install(t, &path).await)
    }

    /// Pin the plugin instance `instance` of `tenant` to a plugin (by name) and digest from
    /// the plugin store, or unpin it (`digest = None`).
    pub async fn pin(
        &self,
        tenant: &str,
        instance: &str,
        plugin: Option<&str>,
        digest: Option<&str>,
    ) -> Result<u64, RegistryError> {
        let text = self.pinned_config(tenant, instance, plugin, digest)?;
        self.put_config(tenant, &text).await
    }

    /// The tenant `pin` would install, loaded but not installed: what a replay runs the stored
    /// traffic through before anyone promotes the swap.
    pub async fn candidate(
        &self,
        tenant: &str,
        instance: &str,
        plugin: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Tenant, RegistryError> {
        let text = self.pinned_config(tenant, instance, plugin, digest)?;
        let live = self
            .get(tenant)
            .ok_or_else(|| RegistryError::NotFound(format!("no tenant `{tenant}`")))?;
        self.load_path(&live.path, Some(&text), None)
            .await
            .map_err(RegistryError::Invalid)
    }

    /// `tenant`'s config file with `instance` pinned to `plugin` and `digest` (or unpinned).
    fn pinned_config(
        &self,
        tenant: &str,
        instance: &str,
        plugin: Option<&str>,
        digest: Option<&str>,
    ) -> Result<String, RegistryError> {
        let live = self
            .get(tenant)
            .ok_or_else(|| RegistryError::NotFound(format!("no tenant `{tenant}`")))?;
        let text = std::fs::read_to_string(&live.path)
            .map_err(|e| RegistryError::Io(format!("{}: {e}", live.path.display())))?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| RegistryError::Invalid(format!("{}: {e}", live.path.display())))?;
        let mut found = false;
        for section in [
            "connectors",
            "classifiers",
            "suggesters",
            "shadow_classifiers",
        ] {
            let Some(entries) = doc
                .get_mut(section)
                .and_then(|s| s.as_array_of_tables_mut())
            else {
                continue;
            };
            for entry in entries.iter_mut() {
                if entry.get("name").and_then(|n| n.as_str()) != Some(instance) {
                    continue;
                }
                found = true;
                if let Some(p) = plugin {
                    entry["plugin"] = toml_edit::value(p);
                }
                match digest {
                    Some(d) => entry["digest"] = toml_edit::value(d.to_ascii_lowercase()),
                    None => {
                        entry.remove("digest");
                    }
                }
            }
        }
        if !found {
            return Err(RegistryError::NotFound(format!(
                "tenant `{tenant}` has no plugin instance `{instance}`"
            )));
        }
        Ok(doc.to_string())
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), RegistryError> {
        let _guard = self.reload.lock().await;
        let live = self
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(format!("no tenant `{name}`")))?;
        self.store
            .set_disabled(name, disabled)
            .await
            .map_err(|e| RegistryError::Io(e.to_string()))?;
        let updated = Arc::new(LiveTenant {
            tenant: live.tenant.clone(),
            path: live.path.clone(),
            disabled,
            generation: live.generation,
            limiter: live.limiter.clone(),
        });
        self.live.rcu(|map| {
            let mut map = (**map).clone();
            map.insert(name.to_string(), updated.clone());
            map
        });
        self.changed.notify_waiters();
        self.waker(name).notify_waiters();
        Ok(())
    }

    async fn install(&self, tenant: Tenant, path: &Path) -> u64 {
        let live = self.live_tenant(tenant, path, None).await;
        let generation = live.generation;
        self.publish(vec![(live, path.to_path_buf())]);
        generation
    }

    /// Make loaded tenants the live ones, in one swap of the map: installing ten thousand at
    /// start one by one copied the growing map for each (quadratic).
    fn publish(&self, tenants: Vec<(Arc<LiveTenant>, PathBuf)>) {
        if tenants.is_empty() {
            return;
        }
        for (live, path) in &tenants {
            self.record_error(path, None);
            tracing::info!(tenant = %live.tenant.name, generation = live.generation, "tenant loaded");
        }
        self.live.rcu(|map| {
            let mut map = (**map).clone();
            for (live, _) in &tenants {
                map.insert(live.tenant.name.clone(), live.clone());
            }
            map
        });
        self.changed.notify_waiters();
    }

    /// `tenant` as it will serve: its disabled flag, generation and rate limiter.
    /// `disabled`, when known, saves asking the store.
    async fn live_tenant(
        &self,
        tenant: Tenant,
        path: &Path,
        disabled: Option<bool>,
    ) -> Arc<LiveTenant> {
        let disabled = match disabled {
            Some(d) => d,
            None => self.store.is_disabled(&tenant.name).await.unwrap_or(false),
        };
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let quota = governor::Quota::per_second(
            std::num::NonZeroU32::new(tenant.ingress.requests_per_second).unwrap_or(nonzero(1)),
        )
        .allow_burst(std::num::NonZeroU32::new(tenant.ingress.burst).unwrap_or(nonzero(1)));
        Arc::new(LiveTenant {
            tenant: Arc::new(tenant),
            path: path.to_path_buf(),
            disabled,
            generation,
            limiter: Arc::new(governor::RateLimiter::direct(quota)),
        })
    }

    fn record_error(&self, path: &Path, error: Option<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let key = path.display().to_string();
        match error {
            Some(e) => errors.insert(key, e),
            None => errors.remove(&key),
        };
    }

    /// Parse and load a config (from `text`, or the file at `path`), with the API-written
    /// secrets, the plugin store and pinned versions applied. `stored`, when given, holds the
    /// secrets already read for every tenant.
    async fn load_path(
        &self,
        path: &Path,
        text: Option<&str>,
        stored: Option<&StoredState>,
    ) -> Result<Tenant, String> {
        let text = match text {
            Some(t) => t.to_string(),
            None => std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?,
        };
        let mut file = TenantFile::parse(&text, path).map_err(|e| e.to_string())?;
        let store_dir = std::path::absolute(self.dirs.plugins()).map_err(|e| e.to_string())?;
        file.plugin_dirs.push(store_dir);
        let secrets = match stored {
            Some(s) => s.secrets.get(&file.tenant).cloned().unwrap_or_default(),
            None => self
                .store
                .secrets(&file.tenant)
                .await
                .map_err(|e| e.to_string())?,
        };
        let versions = std::path::absolute(self.dirs.versions()).map_err(|e| e.to_string())?;
        for entry in file.entries_mut() {
            for (instance, name, value) in &secrets {
                if *instance == entry.name {
                    entry
                        .secrets
                        .insert(name.clone(), SecretSource::Value(value.clone()));
                }
            }
            // A pinned plugin by name loads the stored version with that digest.
            if let Some(d) = &entry.digest
                && !entry.plugin.contains('/')
                && !entry.plugin.ends_with(".wasm")
            {
                let pinned = versions
                    .join(&entry.plugin)
                    .join(format!("{}.wasm", d.to_ascii_lowercase()));
                if pinned.is_file() {
                    entry.plugin = pinned.display().to_string();
                }
            }
        }
        Tenant::from_file(file, path, &self.rt)
            .await
            .map_err(|e| e.to_string())
    }

    /// Check and store an uploaded plugin. `expected` (hex SHA-256), when given, must match
    /// the bytes. The plugin is compiled and asked to describe itself before it is kept.
    pub async fn upload(
        &self,
        bytes: &[u8],
        expected: Option<&str>,
    ) -> Result<PluginVersion, RegistryError> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(e) = expected
            && !e.eq_ignore_ascii_case(&digest)
        {
            return Err(RegistryError::Invalid(format!(
                "digest mismatch: expected {e}, the upload has {digest}"
            )));
        }
        let plugin = self
            .rt
            .load_bytes(bytes, "upload")
            .await
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let name = &plugin.info.name;
        if !valid_name(name) {
            return Err(RegistryError::Invalid(format!(
                "plugin name `{name}` must be lowercase letters, digits and `-`"
            )));
        }
        let dir = self.dirs.versions().join(name);
        std::fs::create_dir_all(&dir).map_err(|e| RegistryError::Io(e.to_string()))?;
        write_atomically(&dir.join(format!("{digest}.wasm")), bytes).map_err(RegistryError::Io)?;
        // An upload must not change what any tenant runs. The first version of a new name
        // becomes its current one (no tenant could be running a name that resolved to
        // nothing); a built-in's name never does, or one upload would replace that built-in for
        // every tenant: such a version runs only where a tenant pins its digest.
        let current = self.dirs.plugins().join(format!("{name}.wasm"));
        if !is_builtin(name) && !current.exists() {
            write_atomically(&current, bytes).map_err(RegistryError::Io)?;
        }
        tracing::info!(plugin = %name, version = %plugin.info.version, %digest, builtin_name = is_builtin(name), "plugin uploaded");
        Ok(self.describe(&plugin, &current))
    }

    fn describe(&self, plugin: &switchboard_runtime::Plugin, current: &Path) -> PluginVersion {
        let is_current = std::fs::read(current)
            .map(|b| hex::encode(Sha256::digest(&b)) == plugin.digest)
            .unwrap_or(false);
        PluginVersion {
            name: plugin.info.name.clone(),
            version: plugin.info.version.clone(),
            kind: plugin.kind.to_string(),
            digest: plugin.digest.clone(),
            size_bytes: plugin.size_bytes,
            description: plugin.info.description.clone(),
            vendor: shown_vendor(&plugin.info.vendor),
            declared_vendor: plugin.info.vendor.clone(),
            egress: plugin.info.egress.clone(),
            current: is_current,
            builtin_name: is_builtin(&plugin.info.name),
        }
    }

    /// Every stored version (name filter optional), current ones marked.
    pub async fn plugins(&self, name: Option<&str>) -> Result<Vec<PluginVersion>, RegistryError> {
        let mut out = Vec::new();
        let names: Vec<String> = std::fs::read_dir(self.dirs.versions())
            .map_err(|e| RegistryError::Io(e.to_string()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| name.is_none_or(|want| want == n))
            .collect();
        for n in names {
            let current = self.dirs.plugins().join(format!("{n}.wasm"));
            let Ok(rd) = std::fs::read_dir(self.dirs.versions().join(&n)) else {
                continue;
            };
            for e in rd.filter_map(|e| e.ok()) {
                if e.path().extension().is_none_or(|x| x != "wasm") {
                    continue;
                }
                match self.rt.load_file(&e.path()).await {
                    Ok(p) => out.push(self.describe(&p, &current)),
                    Err(err) => {
                        tracing::warn!(file = %e.path().display(), error = %err, "stored plugin does not load")
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.name, &a.version, &a.digest).cmp(&(&b.name, &b.version, &b.digest)));
        if let Some(n) = name
            && out.is_empty()
        {
            return Err(RegistryError::NotFound(format!(
                "no plugin `{n}` in the store"
            )));
        }
        Ok(out)
    }

    /// Make a stored version the current one of its name, and reload the tenants (unpinned
    /// instances of that plugin switch to it; pinned ones stay). A built-in's name is refused:
    /// that would replace the built-in for every tenant that did not choose the upload.
    pub async fn enable(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        if !valid_name(name) || digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(RegistryError::Invalid(
                "a plugin name and a 64-hex-digit digest are needed".into(),
            ));
        }
        if is_builtin(name) {
            return Err(RegistryError::Invalid(format!(
                "`{name}` is a built-in plugin, which an upload cannot replace for every tenant; \
                 a tenant runs a stored version of it only by pinning its digest"
            )));
        }
        let stored = self
            .dirs
            .versions()
            .join(name)
            .join(format!("{}.wasm", digest.to_ascii_lowercase()));
        let bytes = std::fs::read(&stored).map_err(|_| {
            RegistryError::NotFound(format!(
                "no version {digest} of plugin `{name}` in the store"
            ))
        })?;
        write_atomically(&self.dirs.plugins().join(format!("{name}.wasm")), &bytes)
            .map_err(RegistryError::Io)?;
        Ok(self.reload_all().await)
    }
}

/// What the store says about tenants' configs: their API-written secrets, and which are
/// disabled.
struct StoredState {
    secrets: HashMap<String, Vec<(String, String, String)>>,
    disabled: std::collections::HashSet<String>,
}

impl StoredState {
    async fn read(store: &Store) -> Result<StoredState, switchboard_store::StoreError> {
        Ok(StoredState {
            secrets: store.all_secrets().await?,
            disabled: store.disabled_tenants().await?,
        })
    }
}

/// The key of `tenant`'s deliverer among the wakers.
pub(crate) fn deliver_key(tenant: &str) -> String {
    format!("{tenant}#deliver")
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n.max(1)).unwrap_or(std::num::NonZeroU32::MIN)
}

/// Whether `name` is a built-in (first-party) plugin's name.
fn is_builtin(name: &str) -> bool {
    valid_name(name)
        && Path::new(BUILTIN_PLUGIN_DIR)
            .join(format!("{name}.wasm"))
            .is_file()
}

/// An upload's declared vendor as shown: it cannot prove it, and none is first party, so an
/// empty vendor or the built-ins' own is `unknown`.
fn shown_vendor(declared: &str) -> String {
    let v = declared.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("switchboard") {
        "unknown".into()
    } else {
        v.to_string()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Write a file so that readers see the old or the new content, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}
