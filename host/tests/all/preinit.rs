//! Pre-initialisation (contract 0.1.2's `preinit`): state built once at load, every call from a
//! fresh instance of the snapshot, and a plugin whose init misbehaves refused at load.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use switchboard::runtime::{CacheOutcome, LoadError, Runtime, RuntimeOptions, Scope};

async fn classify_once(rt: &Runtime, plugin: &switchboard::runtime::Plugin) -> Vec<String> {
    let scope = Arc::new(Scope::bare("t", "p", rt.default_limits()));
    rt.classify(plugin, &scope, &message("t", "hello"), &context())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

#[tokio::test]
async fn init_runs_once_at_load_and_no_call_sees_another_calls_changes() {
    let rt = runtime();
    let p = load_fixture(&rt, "preinit-counter").await;
    assert!(p.preinitialised);
    // `count-0` would mean init never ran; `count-2` that the first call's increment survived.
    assert_eq!(classify_once(&rt, &p).await, ["count-1"]);
    assert_eq!(classify_once(&rt, &p).await, ["count-1"]);
    // The plugin keeps the identity of the binary it was built as, not of the snapshot.
    let bytes = std::fs::read(fixture_path("preinit-counter")).unwrap();
    assert_eq!(p.digest, switchboard::runtime::digest(&bytes));
}

#[tokio::test]
async fn a_plugin_without_init_is_not_preinitialised() {
    let rt = runtime();
    let p = load(&rt, "keyword-classifier").await;
    assert!(!p.preinitialised);
}

#[tokio::test]
async fn first_party_rule_plugins_are_preinitialised_and_still_classify() {
    let rt = runtime();
    for name in [
        "abuse-classifier",
        "advocate-classifier",
        "brand-care-classifier",
        "urgency-classifier",
        "canned-replies",
    ] {
        assert!(load(&rt, name).await.preinitialised, "{name}");
    }
    let p = load(&rt, "private-data-classifier").await;
    assert!(p.preinitialised);
    let scope = Arc::new(Scope::bare("t", "p", rt.default_limits()));
    let labels = rt
        .classify(
            &p,
            &scope,
            &message(
                "t",
                "my card is 4111 1111 1111 1111, mail me at casey@example.com",
            ),
            &context(),
        )
        .await
        .unwrap();
    assert!(!labels.is_empty(), "{labels:?}");
}

async fn refused(name: &str) -> String {
    let rt = runtime();
    match rt.load_file(&fixture_path(name)).await {
        Ok(_) => panic!("{name} loaded"),
        Err(e @ LoadError::Preinit { .. }) => e.to_string(),
        Err(e) => panic!("{name}: expected a pre-initialisation failure, got: {e}"),
    }
}

#[tokio::test]
async fn an_init_that_never_returns_is_refused_at_its_deadline() {
    let e = refused("preinit-spin").await;
    assert!(e.contains("preinit-spin"), "{e}");
    assert!(e.contains("pre-initialisation failed"), "{e}");
    assert!(e.contains("deadline"), "{e}");
}

#[tokio::test]
async fn an_init_that_calls_an_import_is_refused() {
    let e = refused("preinit-import").await;
    assert!(e.contains("preinit-import"), "{e}");
    assert!(e.contains("pre-initialisation failed"), "{e}");
    assert!(e.contains("import"), "{e}");
    assert!(e.contains("config"), "names the import: {e}");
}

#[tokio::test]
async fn an_init_that_takes_too_much_memory_is_refused() {
    let e = refused("preinit-hog").await;
    assert!(e.contains("preinit-hog"), "{e}");
    assert!(e.contains("memory limit"), "{e}");
}

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn the_snapshot_is_cached_on_disk_beside_compiled_code() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime_with_cache(cache.path());
    let p = first
        .load_file(&fixture_path("preinit-counter"))
        .await
        .unwrap();
    assert_eq!(p.cache, CacheOutcome::Compiled);
    drop(first);
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with(&format!("{}-preinit-", p.digest)),
        "{names:?}"
    );

    let restarted = runtime_with_cache(cache.path());
    let p = restarted
        .load_file(&fixture_path("preinit-counter"))
        .await
        .unwrap();
    assert_eq!(
        p.cache,
        CacheOutcome::Hit,
        "a restart must not pre-initialise again"
    );
    assert!(p.preinitialised);
    assert_eq!(classify_once(&restarted, &p).await, ["count-1"]);
}
