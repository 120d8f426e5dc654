//! Compiled components cached on disk by content digest and engine fingerprint, so a restart
//! loads native code instead of recompiling. Pre-initialised snapshots (see [`crate::preinit`])
//! are cached beside them, and, when there is no cache folder, in memory for the process.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The hex SHA-256 of a plugin binary: its identity everywhere in Switchboard.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled pre-initialised snapshots by key (digest, marker, engine tag), for runtimes without a
/// cache folder: a process that builds many runtimes (the tests, most with no folder) makes each
/// snapshot once rather than paying wizer and a second compile on every load. One entry per
/// plugin build ever loaded; a snapshot holds code and what `init` computed without any import,
/// so it is the same for every tenant and runtime.
static SNAPSHOTS: LazyLock<Mutex<HashMap<String, Arc<[u8]>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A folder of precompiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_tag: String,
}

/// How a component was obtained, for logs and measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
}

impl CompileCache {
    /// `dir = None` disables the cache (every load compiles).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_tag = format!("wasmtime{}-{:016x}", env!("CARGO_PKG_VERSION"), h.finish());
        CompileCache { dir, engine_tag }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn path_for(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_tag)))
    }

    fn preinit_key(&self, digest: &str) -> String {
        format!("{digest}-preinit-{}", self.engine_tag)
    }

    /// The compiled pre-initialised snapshot of the plugin whose binary has `digest`: from the
    /// cache folder (or, without one, from this process's memory), else built by `snapshot` (the
    /// snapshot's bytes, or why it could not be made), compiled and stored. The key is the
    /// original binary's digest, which stays the plugin's identity. Errors are one line.
    pub fn load_preinitialised(
        &self,
        engine: &Engine,
        digest: &str,
        snapshot: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<(Component, CacheOutcome), String> {
        let key = self.preinit_key(digest);
        let path = self.dir.as_ref().map(|d| d.join(format!("{key}.cwasm")));
        match &path {
            Some(path) => {
                if let Ok(entry) = std::fs::read(path) {
                    match verified(&entry) {
                        // SAFETY: as in `load`: written by `Component::serialize` of an engine
                        // with this compatibility hash (in the name), checksum verified.
                        Some(compiled) => match unsafe { Component::deserialize(engine, compiled) }
                        {
                            Ok(c) => return Ok((c, CacheOutcome::Hit)),
                            Err(e) => {
                                tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e}")
                            }
                        },
                        None => {
                            tracing::warn!(path = %path.display(), "ignoring damaged cache entry (checksum mismatch)")
                        }
                    }
                }
            }
            None => {
                let shared = SNAPSHOTS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .cloned();
                if let Some(compiled) = shared {
                    // SAFETY: serialized by `Component::serialize` in this process, by an engine
                    // with this compatibility hash (in the key), and never written since.
                    if let Ok(c) = unsafe { Component::deserialize(engine, &*compiled) } {
                        return Ok((c, CacheOutcome::Hit));
                    }
                }
            }
        }
        let wasm = snapshot()?;
        let component = Component::from_binary(engine, &wasm)
            .map_err(|e| format!("cannot compile the snapshot: {}", crate::first_line(&e)))?;
        match &path {
            Some(path) => {
                if let Err(e) = self.store(&component, path) {
                    tracing::warn!(path = %path.display(), "could not write compile cache: {e}");
                }
            }
            None => match component.serialize() {
                Ok(compiled) => {
                    SNAPSHOTS
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, compiled.into());
                }
                Err(e) => tracing::warn!("could not keep the snapshot in memory: {e}"),
            },
        }
        Ok((component, CacheOutcome::Compiled))
    }

    /// Load the compiled form of `bytes` from the cache, or compile and store it.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        if let Some(path) = self.path_for(digest)
            && let Ok(entry) = std::fs::read(&path)
        {
            let Some(compiled) = verified(&entry) else {
                tracing::warn!(path = %path.display(), "ignoring damaged cache entry (checksum mismatch)");
                return self.compile_and_store(engine, bytes, &path);
            };
            // Read into memory rather than memory-mapping the file: a mapped cache entry that
            // someone truncates while the plugin is loaded would crash the host (SIGBUS).
            // SAFETY: the bytes were written by `Component::serialize` of an engine with the same
            // compatibility hash (it is in the file name), into a folder owned by this host, and
            // their SHA-256 (stored with them) matches, so they are not damaged.
            match unsafe { Component::deserialize(engine, compiled) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e}")
                }
            }
        }
        match self.path_for(digest) {
            Some(path) => self.compile_and_store(engine, bytes, &path),
            None => Ok((
                Component::from_binary(engine, bytes)?,
                CacheOutcome::Compiled,
            )),
        }
    }

    fn compile_and_store(
        &self,
        engine: &Engine,
        bytes: &[u8],
        path: &Path,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let component = Component::from_binary(engine, bytes)?;
        if let Err(e) = self.store(&component, path) {
            tracing::warn!(path = %path.display(), "could not write compile cache: {e}");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, component: &Component, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().expect("cache path has a parent");
        std::fs::create_dir_all(dir)?;
        let compiled = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut entry = Sha256::digest(&compiled).to_vec();
        entry.extend_from_slice(&compiled);
        let tmp = tempfile_in(dir)?;
        std::fs::write(&tmp, entry)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// The compiled bytes of a cache entry (`sha256(compiled) ‖ compiled`) if the checksum holds.
fn verified(entry: &[u8]) -> Option<&[u8]> {
    let (sum, compiled) = entry.split_at_checked(32)?;
    (Sha256::digest(compiled).as_slice() == sum).then_some(compiled)
}

/// A unique temporary file name in `dir` (written then renamed, so readers never see half a file).
fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!(".tmp-{}-{n}", std::process::id())))
}
