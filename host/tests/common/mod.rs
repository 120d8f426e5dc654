//! Helpers shared by the integration tests: real plugins built by `host/build.rs`, loaded by path.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use switchboard::contract::{CallContext, Message};
use switchboard::runtime::{Plugin, Runtime, RuntimeOptions};

/// Path of a plugin built by the host's build script.
pub fn plugin_path(name: &str) -> PathBuf {
    PathBuf::from(env!("SWITCHBOARD_BUILTIN_PLUGIN_DIR")).join(format!("{name}.wasm"))
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
