//! A classifier that attacks its host in the way its config `mode` names. The host's tests run
//! each mode and check that it is stopped with the right typed error, or that what it tried to
//! reach stayed out of reach.
//!
//! Modes: `loop`, `memory-bomb`, `recurse`, `recurse-shadow`, `trap`, `oversized`, `bad-score`, `bad-span`,
//! `egress` (GET config `url`), `secret` (config `name`), `kv-write` / `kv-read` (config `key`,
//! `value`), `read-file` (config `path`), `env`, `slow-then-ok` (config `spin_ms`), and anything
//! else answers a healthy `ok` label.

use std::hint::black_box;
use switchboard_sdk::prelude::*;

struct Hostile;

fn cfg(key: &str) -> String {
    config::get(key).unwrap_or_default()
}

/// Recursion whose frames live only in wasm locals: exhausts the engine's wasm stack.
#[inline(never)]
fn deep(n: u64) -> u64 {
    if n == u64::MAX {
        return 1;
    }
    let r = deep(n + 1);
    r.rotate_left((n % 7) as u32) ^ n
}

/// Recursion with an address-taken array per frame: exhausts the guest's shadow stack in linear
/// memory first (what a real Rust plugin overflowing its stack does).
#[inline(never)]
fn recurse(depth: u64, pad: [u64; 16]) -> u64 {
    let mut local = pad;
    local[(depth % 16) as usize] = depth;
    black_box(&mut local);
    if depth == u64::MAX {
        0
    } else {
        recurse(depth + 1, local) + local[0]
    }
}

fn found(label: &str, note: &str) -> Result<Vec<Label>, PluginError> {
    Ok(vec![Label::new(label, 1.0).because(note)])
}

impl Classifier for Hostile {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "hostile-plugin",
            env!("CARGO_PKG_VERSION"),
            "Misbehaves on purpose",
        )
        .vendor("switchboard-tests")
        .egress("127.0.0.1")
        .egress("localhost")
        .egress("api.allowed.test")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        match cfg("mode").as_str() {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = 1;
                    hoard.push(black_box(chunk));
                }
            }
            "recurse" => found("depth", &deep(black_box(0)).to_string()),
            "recurse-shadow" => found("depth", &recurse(0, [1; 16]).to_string()),
            "trap" => panic!("deliberate panic in a plugin"),
            "oversized" => found("big", &"x".repeat(8 * 1024 * 1024)),
            "many-labels" => Ok((0..10_000)
                .map(|i| Label::new(&format!("l{i}"), 0.5))
                .collect()),
            "bad-score" => Ok(vec![Label {
                name: "nan".into(),
                score: f32::NAN,
                evidence: vec![],
            }]),
            "bad-span" => Ok(vec![Label::new("span", 0.5).at(
                "past the end",
                0,
                message.text.len() + 10,
            )]),
            "egress" => {
                let response = http::send(&http::Request::get(&cfg("url")))?;
                found(
                    "egress-ok",
                    &format!("{} {}", response.status, response.text()),
                )
            }
            "secret" => match config::secret(&cfg("name")) {
                Some(value) => found("secret-seen", &value),
                None => found("secret-absent", ""),
            },
            "kv-write" => {
                kv::set(&cfg("key"), cfg("value").as_bytes())
                    .map_err(|e| PluginError::Internal(format!("{e:?}")))?;
                found("kv-written", "")
            }
            "kv-read" => match kv::get_string(&cfg("key")) {
                Some(v) => found("kv-value", &v),
                None => found("kv-absent", ""),
            },
            "read-file" => match std::fs::read_to_string(cfg("path")) {
                Ok(content) => found("file-read", &content),
                Err(e) => found("file-denied", &e.to_string()),
            },
            "env" => found(
                "env",
                &format!(
                    "{} vars, {} args",
                    std::env::vars().count(),
                    std::env::args().count()
                ),
            ),
            "print" => {
                for i in 0..5_000 {
                    println!("line {i} of a very chatty plugin");
                }
                found("printed", "")
            }
            _ => found("ok", &message.text),
        }
    }
}

switchboard_sdk::export_classifier!(Hostile);
