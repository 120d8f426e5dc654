//! Loading: the compile cache across restarts, and tenant configs that must be refused.

use std::path::Path;

use crate::common::*;
use switchboard::runtime::{CacheOutcome, Runtime, RuntimeOptions};
use switchboard::tenant::{Tenant, TenantFile};

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_restart_loads_compiled_plugins_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime_with_cache(cache.path());
    let p = first
        .load_file(&plugin_path("keyword-classifier"))
        .await
        .unwrap();
    assert_eq!(p.cache, CacheOutcome::Compiled);
    drop(first);

    let restarted = runtime_with_cache(cache.path());
    let p = restarted
        .load_file(&plugin_path("keyword-classifier"))
        .await
        .unwrap();
    assert_eq!(p.cache, CacheOutcome::Hit, "a restart must not recompile");
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .file_name()
            .to_string_lossy()
            .starts_with(&p.digest)
    );

    // A damaged cache entry is ignored and replaced, never trusted: here one flipped byte in
    // the middle of the compiled code, which deserialization's own header checks cannot see.
    let mut entry = std::fs::read(entries[0].path()).unwrap();
    let middle = entry.len() / 2;
    entry[middle] ^= 0xff;
    std::fs::write(entries[0].path(), entry).unwrap();
    let again = runtime_with_cache(cache.path());
    let p = again
        .load_file(&plugin_path("keyword-classifier"))
        .await
        .unwrap();
    assert_eq!(p.cache, CacheOutcome::Compiled);
    let scope = std::sync::Arc::new(switchboard::runtime::Scope::bare(
        "t",
        "k",
        again.default_limits(),
    ));
    let labels = again
        .classify(
            &p,
            &scope,
            &message("t", "click here to claim now"),
            &context(),
        )
        .await
        .unwrap();
    assert_eq!(labels[0].name, "spam");
}

async fn load_tenant(toml: &str) -> Result<Tenant, String> {
    let rt = runtime();
    let path = repo_root().join("examples/acme/inline.toml");
    let file = TenantFile::parse(toml, &path).map_err(|e| e.to_string())?;
    Tenant::from_file(file, &path, &rt)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tenant_configs_that_cannot_run_are_refused_with_the_entry_named() {
    let wrong_kind =
        "tenant = \"t\"\n[[connectors]]\nname = \"w\"\nplugin = \"keyword-classifier\"\n";
    let err = load_tenant(wrong_kind).await.unwrap_err();
    assert!(
        err.contains("connector `w`") && err.contains("is a classifier, not a connector"),
        "{err}"
    );

    let pinned = format!(
        "tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"keyword-classifier\"\ndigest = \"{}\"\n",
        "0".repeat(64)
    );
    let err = load_tenant(&pinned).await.unwrap_err();
    assert!(err.contains("digest mismatch"), "{err}");

    let missing_env = "tenant = \"t\"\n[[connectors]]\nname = \"w\"\nplugin = \"generic-webhook\"\nsecrets = { signing-secret = { env = \"SWITCHBOARD_TEST_UNSET_VAR\" } }\n";
    let err = load_tenant(missing_env).await.unwrap_err();
    assert!(
        err.contains("`SWITCHBOARD_TEST_UNSET_VAR` is not set"),
        "{err}"
    );

    let unknown = "tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"sentiment-9000\"\n";
    let err = load_tenant(unknown).await.unwrap_err();
    assert!(err.contains("no plugin named `sentiment-9000`"), "{err}");

    let incompatible = format!(
        "tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"{}\"\n",
        fixture_path("future-contract-plugin").display()
    );
    let err = load_tenant(&incompatible).await.unwrap_err();
    assert!(
        err.contains("classifier `k`") && err.contains("0.2.0"),
        "{err}"
    );

    let digest =
        switchboard::runtime::digest(&std::fs::read(plugin_path("keyword-classifier")).unwrap());
    let ok = format!(
        "tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"keyword-classifier\"\ndigest = \"{digest}\"\n"
    );
    assert_eq!(load_tenant(&ok).await.unwrap().classifiers.len(), 1);
}

/// Issue 14, finding 2: the test fixtures (a hostile plugin, a stranger component, a future
/// contract) and the third-party example are not plugins a tenant can name; tests load them by
/// path.
#[tokio::test]
async fn a_tenant_cannot_name_a_test_fixture() {
    for fixture in [
        "hostile-plugin",
        "stranger-plugin",
        "future-contract-plugin",
        "shouting-classifier",
    ] {
        assert!(fixture_path(fixture).is_file(), "{fixture} is built");
        let toml =
            format!("tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"{fixture}\"\n");
        let err = load_tenant(&toml).await.unwrap_err();
        assert!(
            err.contains("classifier `k`")
                && err.contains(&format!("no plugin named `{fixture}`"))
                && err.contains("test fixture"),
            "{err}"
        );
        assert!(!err.contains(switchboard_builtin_plugins::DIR), "{err}");
    }
    // By path (as the tests load it, and as only the operator may write), it still loads.
    let by_path = format!(
        "tenant = \"t\"\n[[classifiers]]\nname = \"k\"\nplugin = \"{}\"\n",
        fixture_path("hostile-plugin").display()
    );
    assert_eq!(load_tenant(&by_path).await.unwrap().classifiers.len(), 1);
}

#[tokio::test]
async fn a_vendor_plugin_from_examples_loads_and_runs_with_its_own_version() {
    let rt = runtime();
    let p = load_fixture(&rt, "shouting-classifier").await;
    assert_eq!(
        (p.info.version.as_str(), p.info.vendor.as_str()),
        ("1.2.0", "Example Vendor Ltd")
    );
    let scope = std::sync::Arc::new(switchboard::runtime::Scope::bare(
        "t",
        "shout",
        rt.default_limits(),
    ));
    let labels = rt
        .classify(&p, &scope, &message("t", "WHERE IS MY REFUND"), &context())
        .await
        .unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].name, "shouting");
    assert!(
        rt.classify(&p, &scope, &message("t", "Where is my refund?"), &context())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The contract's promise: a connector built against 0.1.0 (a frozen copy of that WIT) loads
/// and runs on this 0.1.x host, without what 0.1.1 added.
#[tokio::test]
async fn a_connector_built_against_contract_0_1_0_still_runs() {
    let rt = runtime();
    let old = rt.load_file(&fixture_path("contract-0-1-0")).await.unwrap();
    assert_eq!(old.contract_version, "0.1.0");
    assert!(!old.answers_webhooks());
    assert!(old.extra_channels.is_empty());
    assert_eq!(old.world(), "switchboard:plugin/channel-adapter@0.1.0");
    let scope = std::sync::Arc::new(switchboard::runtime::Scope::bare(
        "t",
        "old",
        rt.default_limits(),
    ));
    let request = switchboard::contract::HttpRequest {
        method: "POST".into(),
        url: "https://care.example/hooks/t/old".into(),
        headers: vec![],
        body: b"hello from 0.1.0".to_vec(),
    };
    let answered = rt
        .answer_webhook(&old, &scope, "old", &request)
        .await
        .unwrap();
    assert_eq!(answered.acknowledgement, None);
    let switchboard::contract::WebhookOutcome::Events(events) = answered.outcome else {
        panic!("events expected");
    };
    let [switchboard::contract::Event::Message(m)] = &events[..] else {
        panic!("one message expected: {events:?}");
    };
    assert_eq!(m.text, "hello from 0.1.0");
    assert_eq!(m.tenant, "t");
    // It claimed `whatsapp`, which it cannot declare: the host stamps its own channel.
    assert_eq!(m.channel, "old");

    // A current connector declares its extra channel and keeps it.
    let twilio = rt
        .load_file(&plugin_path("twilio-sms-connector"))
        .await
        .unwrap();
    assert!(twilio.answers_webhooks());
    assert_eq!(twilio.extra_channels, ["whatsapp"]);
    assert_eq!(twilio.contract_version, "0.1.2");
}

/// Tenants naming the same plugin file share one loaded plugin (one compiled component, one
/// `InstancePre`); a file replaced on disk is loaded again, never served from the old one.
#[tokio::test]
async fn tenants_share_a_loaded_plugin_until_its_file_changes() {
    let rt = Runtime::new(RuntimeOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(plugin_path("keyword-classifier"), &path).unwrap();
    let a = rt.load_file(&path).await.unwrap();
    let b = rt.load_file(&path).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "the second load compiled again"
    );

    // Replaced, as an operator's deploy does it: another plugin under the same name.
    let staged = dir.path().join("staged.wasm");
    std::fs::copy(plugin_path("spam-classifier"), &staged).unwrap();
    std::fs::rename(&staged, &path).unwrap();
    let c = rt.load_file(&path).await.unwrap();
    assert_eq!(c.info.name, "spam-classifier");
    assert_ne!(c.digest, a.digest);

    // Rewritten in place, same length: the change time moves.
    let bytes = std::fs::read(plugin_path("keyword-classifier")).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let d = rt.load_file(&path).await.unwrap();
    assert_eq!(d.digest, a.digest);
}
