//! Reload when a file in the plugin or tenant folders changes (a plugin dropped in by a deploy,
//! a config edited by hand). Changes are debounced: a copy in progress triggers one reload
//! after it settles, and a file that does not load leaves the old version serving.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch;

use super::registry::Registry;

/// Quiet time after the last change before reloading.
const SETTLE: Duration = Duration::from_millis(300);

/// Start watching; the returned watcher must be kept alive.
pub fn watch(
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && (e.kind.is_create() || e.kind.is_modify() || e.kind.is_remove())
            // Our own atomic writes go through dot-files; react to the rename, not the temp.
            && e.paths.iter().any(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && (n.ends_with(".wasm") || n.ends_with(".toml")))
            })
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&registry.dirs.plugins(), RecursiveMode::NonRecursive)?;
    watcher.watch(&registry.dirs.tenants(), RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = rx.recv() => if got.is_none() { return },
                _ = shutdown.changed() => return,
            }
            // Debounce: wait until nothing changed for SETTLE.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(SETTLE) => break,
                    got = rx.recv() => if got.is_none() { return },
                }
            }
            let errors = registry.reload_all().await;
            tracing::info!(errors = errors.len(), "reloaded after a file change");
        }
    });
    Ok(watcher)
}
