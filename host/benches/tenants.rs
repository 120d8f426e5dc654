//! Many tenants in one server: `BENCH_TENANTS` copies of the bundled acme tenant (7 classifiers,
//! 2 suggesters, CEL policy, guards, the care workflow), each under its own name, loaded by the
//! real `Server::start` on an SQLite file. Reports the time until the server is ready, the
//! process's resident memory before and after (from `/proc/self/status`), and a cold tenant's
//! first message: a signed webhook to a tenant that has seen nothing yet, timed to its 200 and
//! to its message being fully processed. The baseline in the same run is one tenant.
//!
//! Run: `cargo bench -p switchboard --bench tenants` (`BENCH_TENANTS`, default 1000).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hmac::Mac;
use switchboard::runtime::{Runtime, RuntimeOptions};
use switchboard::server::{ServeOptions, Server};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn acme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/acme/tenant.toml");
    std::fs::read_to_string(path).expect("examples/acme/tenant.toml")
}

fn write_tenants(data: &Path, n: usize) {
    let acme = acme();
    std::fs::create_dir_all(data.join("tenants")).unwrap();
    for i in 0..n {
        let name = format!("acme-{i}");
        std::fs::write(
            data.join(format!("tenants/{name}.toml")),
            acme.replacen("tenant = \"acme\"", &format!("tenant = \"{name}\""), 1),
        )
        .unwrap();
    }
}

struct Figures {
    ready: Duration,
    rss_before: f64,
    rss_after: f64,
    accepted: Duration,
    processed: Duration,
}

async fn run(n: usize, cold: usize, cache: &Path) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_tenants(&data, n);
    let rss_before = rss_mib();
    let started = Instant::now();
    let server = Server::start(
        // Compiled (and pre-initialised) plugins from the warm-up's cache, as after a restart:
        // the figures are the tenants', not the compiler's.
        Runtime::new(RuntimeOptions {
            cache_dir: Some(cache.to_path_buf()),
            ..Default::default()
        })
        .unwrap(),
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.clone(),
            admin_token: Some("bench".into()),
            watch: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ready = started.elapsed();
    // Let the workers' first sweep pass before measuring memory and the cold message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_mib();

    let body = serde_json::json!({
        "id": "cold-1",
        "author": { "id": "u-1", "handle": "@u1" },
        "text": "@acme my parcel never arrived and nobody answers, order 12345",
    })
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"acme-demo-signing-secret").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let tenant = format!("acme-{cold}");
    let http = reqwest::Client::new();
    // The connection is opened first, so the figure is the tenant's, not TCP's.
    let _ = http
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    let sent = Instant::now();
    let answer = http
        .post(format!("http://{}/hooks/{tenant}/webhook", server.addr))
        .header("content-type", "application/json")
        .header("x-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let accepted = sent.elapsed();
    assert!(answer.status().is_success(), "{}", answer.status());
    let store = switchboard::store::Store::open_file(&data.join("switchboard.db"))
        .await
        .unwrap();
    loop {
        let done = store
            .count(
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status <> 'accepted'",
                &tenant,
            )
            .await
            .unwrap();
        if done > 0 {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(600),
            "the cold tenant's message was not processed in 10 minutes"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let processed = sent.elapsed();
    server.shutdown().await.unwrap();
    Figures {
        ready,
        rss_before,
        rss_after,
        accepted,
        processed,
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    // Warm-up: fills the compile cache; its figures are not used.
    rt.block_on(run(1, 0, cache.path()));
    let one = rt.block_on(run(1, 0, cache.path()));
    let many = rt.block_on(run(n, n / 2, cache.path()));
    println!("tenants in one server: copies of examples/acme (2-core machine)");
    println!(
        "{:<12} {:>10} {:>12} {:>14} {:>16} {:>18}",
        "tenants", "ready", "RSS added", "RSS/tenant", "cold 200", "cold processed"
    );
    let many_label = n.to_string();
    for (label, count, f) in [("1", 1usize, &one), (many_label.as_str(), n, &many)] {
        let added = f.rss_after - f.rss_before;
        println!(
            "{:<12} {:>8.2} s {:>8.1} MiB {:>10.3} MiB {:>13.2} ms {:>15.2} ms",
            label,
            f.ready.as_secs_f64(),
            added,
            added / count as f64,
            f.accepted.as_secs_f64() * 1e3,
            f.processed.as_secs_f64() * 1e3,
        );
    }
    println!(
        "per tenant beyond the first: {:.2} ms to load; goals for 10,000: RSS <= 1 GiB, ready <= 5 s, cold first message <= 5 ms",
        (many.ready.as_secs_f64() - one.ready.as_secs_f64()) * 1e3 / (n.max(2) - 1) as f64
    );
}
