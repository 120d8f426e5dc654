//! Helpers shared by the integration tests: real plugins built by `crates/builtin-plugins/build.rs`, loaded by path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use switchboard::contract::{CallContext, Message};
use switchboard::runtime::{Plugin, Runtime, RuntimeOptions};

/// Path of a plugin built by the host's build script.
pub fn plugin_path(name: &str) -> PathBuf {
    PathBuf::from(switchboard::tenant::BUILTIN_PLUGIN_DIR).join(format!("{name}.wasm"))
}

/// Path of a test fixture or third-party example (`host/test-plugins/`, `examples/`), built
/// apart from the first-party plugins so that no tenant can name it.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(switchboard_builtin_plugins::FIXTURES_DIR).join(format!("{name}.wasm"))
}

/// Repository root (for `examples/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `../shared/data` next to the repository.
pub fn shared_data() -> PathBuf {
    repo_root().parent().unwrap().join("shared").join("data")
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions {
        max_instances: 32,
        ..Default::default()
    })
    .expect("runtime")
}

pub async fn load(rt: &Runtime, name: &str) -> Arc<Plugin> {
    rt.load_file(&plugin_path(name))
        .await
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub async fn load_fixture(rt: &Runtime, name: &str) -> Arc<Plugin> {
    rt.load_file(&fixture_path(name))
        .await
        .unwrap_or_else(|e| panic!("loading fixture {name}: {e}"))
}

pub fn message(tenant: &str, text: &str) -> Message {
    let mut m = Message::example(tenant, text);
    m.external_id = format!("m-{}", text.len());
    m
}

pub fn context() -> CallContext {
    CallContext {
        now: 1_700_000_000_000,
        length_rule: None,
        signature: Some("^Ana".into()),
        time_zone: "UTC".into(),
    }
}

/// A platform's API on loopback: 503 for the first `failing` posts, then 429 (Retry-After 1)
/// for the next `rate_limited`, refuses texts containing "REJECT" with 403, and otherwise
/// posts once per idempotency key.
#[derive(Default)]
pub struct Platform {
    pub failing: usize,
    pub rate_limited: usize,
    pub requests: Vec<(String, String)>,
    pub posted: std::collections::BTreeMap<String, String>,
}

pub async fn platform(state: Arc<Mutex<Platform>>) -> String {
    use axum::http::{HeaderMap, StatusCode as S};
    let app = axum::Router::new().route(
        "/messages",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let mut p = state.lock().unwrap();
                p.requests.push((key.clone(), body.clone()));
                if p.failing > 0 {
                    p.failing -= 1;
                    return (
                        S::SERVICE_UNAVAILABLE,
                        [("retry-after", "0")],
                        String::new(),
                    );
                }
                if p.rate_limited > 0 {
                    p.rate_limited -= 1;
                    return (S::TOO_MANY_REQUESTS, [("retry-after", "1")], String::new());
                }
                if body.contains("REJECT") {
                    return (
                        S::FORBIDDEN,
                        [("retry-after", "0")],
                        "{\"error\":\"recipient blocks the brand\"}".into(),
                    );
                }
                let n = p.posted.len();
                let id = p
                    .posted
                    .entry(key)
                    .or_insert_with(|| format!("p-{n}"))
                    .clone();
                (
                    S::OK,
                    [("retry-after", "0")],
                    format!("{{\"id\":\"{id}\"}}"),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/messages")
}
