//! Hostile plugins, each a real component built from `host/test-plugins/hostile`: every attack
//! is stopped with the right typed error (or finds nothing to reach), and a healthy plugin in the
//! same host keeps answering correctly before and after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use switchboard::capabilities::config::{PluginConfig, Secret};
use switchboard::capabilities::egress::EgressPolicy;
use switchboard::runtime::{CallError, CallFailure, Limits, Plugin, Runtime, Scope, Stage};

struct Host {
    rt: Runtime,
    hostile: Arc<Plugin>,
    healthy: Arc<Plugin>,
}

async fn host() -> Host {
    let rt = runtime();
    let hostile = load_fixture(&rt, "hostile-plugin").await;
    let healthy = load(&rt, "keyword-classifier").await;
    Host {
        rt,
        hostile,
        healthy,
    }
}

fn limits() -> Limits {
    Limits {
        timeout_ms: 500,
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    }
}

fn scope(tenant: &str, pairs: &[(&str, &str)]) -> Arc<Scope> {
    let values: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(Scope {
        config: PluginConfig {
            values,
            secrets: BTreeMap::new(),
        },
        ..Scope::bare(tenant, "hostile", limits())
    })
}

impl Host {
    /// The healthy classifier still labels spam correctly for another tenant.
    async fn assert_healthy(&self) {
        let scope = Arc::new(Scope::bare("bystander", "keywords", limits()));
        let labels = self
            .rt
            .classify(
                &self.healthy,
                &scope,
                &message("bystander", "You have WON a cash prize! Click here"),
                &context(),
            )
            .await
            .expect("healthy plugin answers");
        let spam = labels
            .iter()
            .find(|l| l.name == "spam")
            .expect("spam label");
        assert!(spam.score > 0.8, "{labels:?}");
    }

    async fn attack(
        &self,
        scope: &Arc<Scope>,
    ) -> Result<Vec<switchboard::contract::Label>, CallError> {
        self.assert_healthy().await;
        // A safety net so a broken sandbox fails the test instead of hanging it.
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            self.rt.classify(
                &self.hostile,
                scope,
                &message(&scope.tenant, "hello"),
                &context(),
            ),
        )
        .await
        .expect("the host stopped the plugin");
        self.assert_healthy().await;
        result
    }

    async fn failure(&self, mode: &str) -> CallError {
        self.attack(&scope("mallory", &[("mode", mode)]))
            .await
            .expect_err("attack must fail")
    }

    async fn label(&self, scope: &Arc<Scope>) -> (String, String) {
        let labels = self.attack(scope).await.expect("call succeeds");
        assert_eq!(labels.len(), 1, "{labels:?}");
        let note = labels[0]
            .evidence
            .first()
            .map(|e| e.note.clone())
            .unwrap_or_default();
        (labels[0].name.clone(), note)
    }
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let h = host().await;
    let err = h.failure("loop").await;
    assert_eq!(err.failure, CallFailure::Timeout { limit_ms: 500 });
    let text = err.to_string();
    for part in ["mallory", "hostile-plugin", "0.1.0", "classify", "500 ms"] {
        assert!(text.contains(part), "`{text}` lacks `{part}`");
    }
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let h = host().await;
    let err = h.failure("memory-bomb").await;
    assert_eq!(
        err.failure,
        CallFailure::MemoryExhausted {
            limit_bytes: 32 * 1024 * 1024
        }
    );
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow() {
    let h = host().await;
    assert_eq!(
        h.failure("recurse").await.failure,
        CallFailure::StackOverflow
    );
    // A Rust guest's own stack lives in linear memory; overflowing it is an out-of-bounds trap.
    let err = h.failure("recurse-shadow").await;
    assert!(
        matches!(&err.failure, CallFailure::Trap { message } if message.contains("out of bounds")),
        "{err}"
    );
}

#[tokio::test]
async fn a_panic_is_a_trap_for_that_call_only() {
    let h = host().await;
    let err = h.failure("trap").await;
    assert!(
        matches!(&err.failure, CallFailure::Trap { message } if message.contains("unreachable")),
        "{err}"
    );
    assert_eq!(err.stage, Stage::Classify);
}

#[tokio::test]
async fn oversized_and_malformed_outputs_are_refused() {
    let h = host().await;
    for mode in ["oversized", "many-labels", "bad-score", "bad-span"] {
        let err = h.failure(mode).await;
        assert!(
            matches!(err.failure, CallFailure::MalformedOutput { .. }),
            "{mode}: {err}"
        );
    }
}

#[tokio::test]
async fn a_busy_plugin_does_not_starve_other_calls_even_on_one_thread() {
    let h = host().await;
    let looping = scope("mallory", &[("mode", "loop")]);
    let order = std::sync::Mutex::new(Vec::new());
    let slow = async {
        let r =
            h.rt.classify(&h.hostile, &looping, &message("mallory", "x"), &context())
                .await;
        order.lock().unwrap().push("loop");
        r
    };
    let quick = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r =
            h.rt.classify(
                &h.healthy,
                &Arc::new(Scope::bare("bystander", "k", limits())),
                &message("bystander", "call us now"),
                &context(),
            )
            .await;
        order.lock().unwrap().push("healthy");
        r
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert!(matches!(
        slow.unwrap_err().failure,
        CallFailure::Timeout { .. }
    ));
    assert!(quick.unwrap().iter().any(|l| l.name == "deflection"));
    assert_eq!(*order.lock().unwrap(), vec!["healthy", "loop"]);
}

#[tokio::test]
async fn a_tenant_with_slow_plugins_holds_only_its_share_of_instances() {
    // A pool of 8 instances; each tenant may hold 2 of them.
    let rt = Runtime::new(switchboard::runtime::RuntimeOptions {
        max_instances: 8,
        tenant_share: 2,
        ..Default::default()
    })
    .unwrap();
    let hostile = load_fixture(&rt, "hostile-plugin").await;
    let healthy = load(&rt, "keyword-classifier").await;
    // Twelve calls that spin until their 2 s deadline, more than the whole pool holds.
    let looping = Arc::new(Scope {
        limits: Limits {
            timeout_ms: 2_000,
            ..limits()
        },
        ..(*scope("mallory", &[("mode", "loop")])).clone()
    });
    let storm: Vec<_> = (0..12)
        .map(|_| {
            let (rt, hostile, looping) = (rt.clone(), hostile.clone(), looping.clone());
            tokio::spawn(async move {
                rt.classify(&hostile, &looping, &message("mallory", "x"), &context())
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile another tenant's call gets an instance and answers.
    let labels = rt
        .classify(
            &healthy,
            &Arc::new(Scope::bare("bystander", "k", limits())),
            &message("bystander", "call us now"),
            &context(),
        )
        .await
        .expect("the bystander's call runs while mallory's storm is on");
    assert!(labels.iter().any(|l| l.name == "deflection"), "{labels:?}");
    // Mallory's calls all fail, by deadline or by waiting on mallory's own share.
    let mut busy = 0;
    for call in storm {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.tenant, "mallory");
        match err.failure {
            CallFailure::Timeout { .. } => {}
            CallFailure::TenantBusy { share } => {
                assert_eq!(share, 2);
                busy += 1;
            }
            other => panic!("unexpected failure: {other}"),
        }
    }
    assert!(busy > 0, "no call waited on mallory's share");
}

#[tokio::test]
async fn secrets_of_another_tenant_are_out_of_reach() {
    let h = host().await;
    let with_secret = |tenant: &str, secrets: &[(&str, &str)]| {
        let mut s = (*scope(tenant, &[("mode", "secret"), ("name", "api-token")])).clone();
        s.config.secrets = secrets
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(*v)))
            .collect();
        Arc::new(s)
    };
    let owner = with_secret("alice", &[("api-token", "alice-secret-value")]);
    assert_eq!(
        h.label(&owner).await,
        ("secret-seen".into(), "alice-secret-value".into())
    );
    let thief = with_secret("mallory", &[]);
    assert_eq!(
        h.label(&thief).await,
        ("secret-absent".into(), String::new())
    );
}

#[tokio::test]
async fn kv_keys_of_another_tenant_are_out_of_reach() {
    let h = host().await;
    let write = scope(
        "alice",
        &[
            ("mode", "kv-write"),
            ("key", "cursor"),
            ("value", "alice-data"),
        ],
    );
    assert_eq!(h.label(&write).await.0, "kv-written");
    let read_own = scope("alice", &[("mode", "kv-read"), ("key", "cursor")]);
    assert_eq!(
        h.label(&read_own).await,
        ("kv-value".into(), "alice-data".into())
    );
    for key in ["cursor", "alice/cursor", "../alice/cursor"] {
        let steal = scope("mallory", &[("mode", "kv-read"), ("key", key)]);
        assert_eq!(h.label(&steal).await.0, "kv-absent", "key {key}");
    }
}

#[tokio::test]
async fn files_outside_the_granted_directory_are_out_of_reach() {
    let h = host().await;
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("allowed.txt"), "help articles").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "other tenant's data").unwrap();
    let reading = |path: &str, grant: bool| {
        let mut s = (*scope("alice", &[("mode", "read-file"), ("path", path)])).clone();
        s.granted_dir = grant.then(|| granted.clone());
        Arc::new(s)
    };
    assert_eq!(
        h.label(&reading("/data/allowed.txt", true)).await,
        ("file-read".into(), "help articles".into())
    );
    let outside = dir.path().join("outside.txt").display().to_string();
    for (path, grant) in [
        ("/data/../outside.txt", true),
        (outside.as_str(), true),
        ("/data/allowed.txt", false),
        ("/etc/passwd", true),
    ] {
        let (label, note) = h.label(&reading(path, grant)).await;
        assert_eq!(label, "file-denied", "{path}: {note}");
        assert!(!note.contains("other tenant"));
    }
}

#[tokio::test]
async fn no_environment_or_arguments_leak_in() {
    let h = host().await;
    // The host process has an environment (PATH, HOME, cargo's variables); none of it may reach
    // the plugin. (No variable is set here: this binary runs many tests on parallel threads.)
    assert!(std::env::vars_os().next().is_some());
    assert_eq!(
        h.label(&scope("alice", &[("mode", "env")])).await.1,
        "0 vars, 0 args"
    );
}

#[tokio::test]
async fn a_chatty_plugin_is_not_fatal() {
    let h = host().await;
    assert_eq!(
        h.label(&scope("alice", &[("mode", "print")])).await.0,
        "printed"
    );
}

/// A one-route HTTP server on loopback that counts its hits.
async fn loopback_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    loopback_server_on("127.0.0.1").await
}

/// The same server on another loopback address (Linux routes all of 127.0.0.0/8 to lo).
async fn loopback_server_on(ip: &str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new()
        .route(
            "/status",
            axum::routing::get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "all systems go" }
            }),
        )
        .route(
            "/huge",
            axum::routing::get(|| async { "x".repeat(5 * 1024 * 1024) }),
        )
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            }),
        );
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("{port}"), hits)
}

fn egress_scope(url: &str, allow: &[&str], allow_private: bool) -> Arc<Scope> {
    let mut s = (*scope("alice", &[("mode", "egress"), ("url", url)])).clone();
    s.egress = Arc::new(EgressPolicy {
        allow: allow.iter().map(|a| a.to_string()).collect(),
        allow_private,
        ..Default::default()
    });
    Arc::new(s)
}

#[tokio::test]
async fn egress_reaches_only_declared_allowed_hosts() {
    let h = host().await;
    let (port, hits) = loopback_server().await;
    let url = format!("http://127.0.0.1:{port}/status");

    // Allowed by the tenant, private addresses explicitly allowed: the request goes through.
    let ok = h.label(&egress_scope(&url, &["127.0.0.1"], true)).await;
    assert_eq!(ok, ("egress-ok".into(), "200 all systems go".into()));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Declared by the plugin but not allowed by the tenant.
    let err = h
        .attack(&egress_scope(&url, &["api.allowed.test"], true))
        .await
        .unwrap_err();
    assert!(
        matches!(&err.failure, CallFailure::EgressDenied { reason } if reason.contains("not allowed by the tenant")),
        "{err}"
    );

    // Allowed by the tenant but never declared by the plugin.
    let undeclared = format!("http://127.0.0.2:{port}/status");
    let err = h
        .attack(&egress_scope(&undeclared, &["127.0.0.2"], true))
        .await
        .unwrap_err();
    assert!(
        matches!(&err.failure, CallFailure::EgressDenied { reason } if reason.contains("not declared")),
        "{err}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "denied requests never connected"
    );
}

#[tokio::test]
async fn trusting_undeclared_hosts_still_needs_the_tenants_allow_list() {
    let h = host().await;
    let (port, hits) = loopback_server_on("127.0.0.2").await;
    let url = format!("http://127.0.0.2:{port}/status");
    let mut trusted = (*egress_scope(&url, &["127.0.0.2"], true)).clone();
    trusted.egress = Arc::new(EgressPolicy {
        trust_undeclared: true,
        ..(*trusted.egress).clone()
    });
    assert_eq!(h.label(&Arc::new(trusted.clone())).await.0, "egress-ok");
    trusted.egress = Arc::new(EgressPolicy {
        allow: vec!["api.allowed.test".into()],
        ..(*trusted.egress).clone()
    });
    let err = h.attack(&Arc::new(trusted)).await.unwrap_err();
    assert!(
        matches!(&err.failure, CallFailure::EgressDenied { reason } if reason.contains("not allowed by the tenant")),
        "{err}"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // And a tenant config cannot switch it on.
    let err =
        toml::from_str::<EgressPolicy>("allow = [\"x\"]\ntrust_undeclared = true").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[tokio::test]
async fn egress_to_private_addresses_is_refused_after_resolution() {
    let h = host().await;
    let (port, hits) = loopback_server().await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("http://{host}:{port}/status");
        let err = h
            .attack(&egress_scope(&url, &[host], false))
            .await
            .unwrap_err();
        assert!(
            matches!(&err.failure, CallFailure::EgressDenied { reason } if reason.contains("non-public address")),
            "{host}: {err}"
        );
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
}

#[tokio::test]
async fn incompatible_contract_versions_are_refused_by_name() {
    let rt = runtime();
    let err = rt
        .load_file(&fixture_path("future-contract-plugin"))
        .await
        .unwrap_err()
        .to_string();
    for part in [
        "future-contract-plugin.wasm",
        "switchboard:plugin/classify@0.2.0",
        "0.2.0",
        "supports switchboard:plugin@0.1.2",
    ] {
        assert!(err.contains(part), "`{err}` lacks `{part}`");
    }
}

#[tokio::test]
async fn components_of_other_worlds_and_non_components_are_refused() {
    let rt = runtime();
    let err = rt
        .load_file(&fixture_path("stranger-plugin"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a Switchboard plugin") && err.contains("greet"),
        "{err}"
    );

    let core_module = b"\0asm\x01\0\0\0";
    let err = rt
        .load_bytes(core_module, "core.wasm")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("core.wasm: not a WebAssembly component"),
        "{err}"
    );
    let err = rt
        .load_bytes(b"#!/bin/sh\nrm -rf /", "script.wasm")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("script.wasm: not a WebAssembly component"),
        "{err}"
    );
}

#[tokio::test]
async fn egress_responses_are_size_capped_and_time_limited() {
    let h = host().await;
    let (port, _) = loopback_server().await;
    let with_limits = |path: &str, limits: Limits| {
        let mut s = (*egress_scope(
            &format!("http://127.0.0.1:{port}{path}"),
            &["127.0.0.1"],
            true,
        ))
        .clone();
        s.limits = limits;
        Arc::new(s)
    };
    let capped = Limits {
        http_max_response_bytes: 64 * 1024,
        ..limits()
    };
    let err = h.attack(&with_limits("/huge", capped)).await.unwrap_err();
    assert!(
        matches!(&err.failure, CallFailure::Plugin { .. }) && err.to_string().contains("BodySize"),
        "{err}"
    );

    let impatient = Limits {
        http_timeout_ms: 200,
        timeout_ms: 2_000,
        ..limits()
    };
    let err = h
        .attack(&with_limits("/slow", impatient))
        .await
        .unwrap_err();
    assert!(
        matches!(&err.failure, CallFailure::Plugin { .. }) && err.to_string().contains("Timeout"),
        "{err}"
    );

    // The whole call's deadline also covers time spent waiting on the network.
    let short_call = Limits {
        http_timeout_ms: 10_000,
        timeout_ms: 300,
        ..limits()
    };
    let err = h
        .attack(&with_limits("/slow", short_call))
        .await
        .unwrap_err();
    assert_eq!(err.failure, CallFailure::Timeout { limit_ms: 300 });
}
