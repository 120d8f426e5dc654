//! Should a tenant's own config be pre-initialised too (a snapshot per plugin and tenant config)?
//! Issue 13, item 1. Two figures decide it:
//!
//! (a) what config handling costs per call: the plugins that read a tenant's config (keyword
//!     lists, keyword topics, reply templates), fresh instance per call, with no config and
//!     with a realistic one. The difference is an upper bound of what a per-tenant snapshot
//!     could save per message (it also contains matching the extra rules, which no snapshot
//!     saves).
//! (b) what a per-tenant snapshot costs: pre-initialising and compiling one more copy of a
//!     plugin (a distinct binary per tenant, as a per-tenant snapshot would be), and the
//!     resident memory each compiled copy keeps.
//!
//! Run: `cargo bench -p switchboard --bench tenant_snapshot` (`BENCH_MESSAGES`, default 500;
//! `BENCH_COPIES`, default 20).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::contract::{CallContext, Label, Message};
use switchboard::runtime::{Runtime, RuntimeOptions, Scope};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn texts(n: usize) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/datasets/airline_sentiment.train.csv");
    let mut reader =
        csv::Reader::from_path(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "text")
        .expect("text column");
    reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r[column].to_string())
        .take(n)
        .collect()
}

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `bytes` with a custom section naming `tenant` appended: the same plugin as a distinct
/// binary (its own digest), as a snapshot per tenant would be.
fn per_tenant_copy(bytes: &[u8], tenant: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"tenant";
    let payload = tenant.to_le_bytes();
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.extend_from_slice(&payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

fn us(d: Duration) -> String {
    format!("{:>8.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let n = env("BENCH_MESSAGES", 500);
    let copies = env("BENCH_COPIES", 20);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = Runtime::new(RuntimeOptions::default()).unwrap();
    let dir = PathBuf::from(switchboard::tenant::BUILTIN_PLUGIN_DIR);
    let messages: Vec<Message> = texts(n)
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut m = Message::example("bench", t);
            m.external_id = format!("m{i}");
            m
        })
        .collect();
    let n = messages.len();
    let ctx = CallContext {
        now: 0,
        length_rule: None,
        signature: Some("^Sam".into()),
        time_zone: "UTC".into(),
    };
    let labels = vec![Label {
        name: "sentiment:negative".into(),
        score: 0.8,
        evidence: vec![],
    }];

    println!("(a) config handling per call, fresh instance per call, {n} tweets (median of 3)\n");
    let keyword_labels = serde_json::json!({
        "topic:refund": ["refund", "money back", "reimburse", "chargeback", "compensation"],
        "topic:luggage": ["bag", "luggage", "baggage", "suitcase", "lost bag"],
        "topic:delay": ["delayed", "delay", "late", "cancelled", "missed connection"],
        "topic:staff": ["rude", "crew", "attendant", "agent", "gate staff"],
        "topic:booking": ["booking", "reservation", "rebook", "seat", "upgrade"],
        "topic:app": ["app", "website", "login", "password", "check in online"],
        "topic:food": ["food", "meal", "snack", "drinks", "vegetarian"],
        "topic:wifi": ["wifi", "wi-fi", "internet", "connection", "streaming"],
    })
    .to_string();
    let templates = serde_json::json!({
        "default": ["Hi {name}, thanks for getting in touch. Could you tell us more? {signature}"],
        "sentiment:negative": [
            "Sorry, {name}, that's not good enough. Could you DM us your booking reference? {signature}",
            "We're sorry, {name}, we got this wrong. What happened, and when? {signature}"
        ],
        "topic:luggage": ["Sorry about your bag, {name}. Could you DM us your file reference? {signature}"],
        "topic:delay": ["Sorry about the delay, {name}. We're checking your flight now. {signature}"],
        "topic:refund": ["Hi {name}, refunds take 5-7 days. DM us your booking and we'll check. {signature}"],
    })
    .to_string();
    // (shown name, plugin file, the tenant's config)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "keyword-classifier",
            "keyword-classifier",
            vec![("labels", keyword_labels.clone())],
        ),
        (
            "topic-classifier (keyword topics only)",
            "topic-classifier",
            vec![("model", "none".into()), ("topics", keyword_labels.clone())],
        ),
        (
            "canned-replies",
            "canned-replies",
            vec![("templates", templates)],
        ),
    ];
    for (shown, file, config) in &cases {
        let plugin = tokio
            .block_on(rt.load_file(&dir.join(format!("{file}.wasm"))))
            .unwrap();
        let mut figures = Vec::new();
        for with_config in [false, true] {
            let mut scope = Scope::bare("bench", file, rt.default_limits());
            if with_config {
                for (k, v) in config {
                    scope.config.values.insert(k.to_string(), v.clone());
                }
            } else if *file == "topic-classifier" {
                scope.config.values.insert("model".into(), "none".into());
            }
            let scope = Arc::new(scope);
            let mut samples: Vec<Duration> = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    tokio.block_on(async {
                        for m in &messages {
                            if plugin.kind == switchboard::contract::PluginKind::Suggester {
                                rt.suggest(&plugin, &scope, m, &labels, &ctx).await.unwrap();
                            } else {
                                rt.classify(&plugin, &scope, m, &ctx).await.unwrap();
                            }
                        }
                    });
                    t.elapsed() / n as u32
                })
                .collect();
            samples.sort();
            figures.push(samples[1]);
        }
        let (bare, configured) = (figures[0], figures[1]);
        println!(
            "{shown:<40} no config {}   tenant config {}   difference {} ({:.0}% of the configured call)",
            us(bare),
            us(configured),
            us(configured.saturating_sub(bare)),
            configured.saturating_sub(bare).as_secs_f64() / configured.as_secs_f64() * 100.0
        );
    }

    println!(
        "\n(b) one more pre-initialised copy per tenant (canned-replies, {copies} distinct copies)\n"
    );
    let cache = tempfile::tempdir().unwrap();
    // A cache folder, so that the copies are not also kept serialized in the process's memory.
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let original = std::fs::read(dir.join("canned-replies.wasm")).unwrap();
    // Warm up (engine, first-use allocations) outside the figures.
    let warm = tokio
        .block_on(rt.load_bytes(&per_tenant_copy(&original, usize::MAX), "warm-up"))
        .unwrap();
    assert!(warm.preinitialised);
    let before = rss_bytes();
    let started = Instant::now();
    let mut kept = Vec::new();
    for tenant in 0..copies {
        let bytes = per_tenant_copy(&original, tenant);
        kept.push(
            tokio
                .block_on(rt.load_bytes(&bytes, &format!("tenant-{tenant}")))
                .unwrap(),
        );
    }
    let per_copy = started.elapsed() / copies as u32;
    let rss_per_copy = rss_bytes().saturating_sub(before) / copies as u64;
    let on_disk: u64 = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>()
        / (copies as u64 + 1);
    println!(
        "pre-initialise + compile one copy        {:>8.1} ms   ({:.0} s of one core for 10,000 tenants)",
        per_copy.as_secs_f64() * 1e3,
        per_copy.as_secs_f64() * 10_000.0
    );
    println!(
        "resident memory per loaded copy          {:>8.1} MiB  ({:.1} GiB for 10,000 tenants)",
        rss_per_copy as f64 / (1 << 20) as f64,
        rss_per_copy as f64 * 10_000.0 / (1u64 << 30) as f64
    );
    println!(
        "compile cache entry per copy             {:>8.1} MiB  ({:.1} GiB for 10,000 tenants)",
        on_disk as f64 / (1 << 20) as f64,
        on_disk as f64 * 10_000.0 / (1u64 << 30) as f64
    );
    drop(kept);
}
