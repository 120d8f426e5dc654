//! Load on the webhook ingress of the real server on loopback: signed requests with real tweets,
//! each acknowledged only after the message is durably stored (SQLite file, WAL, full sync),
//! while the server's background workers process what arrives. Reports accepted messages per
//! second and p50/p99 latency, against a baseline measured in the same run: an axum endpoint
//! on the same loopback that reads the body and answers 200 without verifying or storing
//! anything (the HTTP floor of this machine).
//!
//! Run: `cargo bench -p switchboard --bench ingress_load`. `BENCH_REQUESTS` (default 3000) and
//! `BENCH_CONCURRENCY` (default 16) size the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::Mac;
use switchboard::runtime::{Runtime, RuntimeOptions};
use switchboard::server::{ServeOptions, Server};

const TENANT: &str = r#"
tenant = "bench"
[ingress]
requests_per_second = 1000000
burst = 1000000
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "x"
max_length = 280
[connectors.secrets]
signing-secret = { value = "bench-secret" }
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:late" = ["late", "delayed", "delay"]
"topic:bags" = ["bag", "luggage"]
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"default" = "Hi {name}, sorry about this. We're on it. {signature}"
[[policy.rules]]
name = "care"
when = "true"
then = ["route", "respond"]
team = "care"
"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tweets(n: usize) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/datasets/airline_sentiment.train.csv");
    let mut rows = csv::Reader::from_path(&path).expect("airline dataset");
    let all: Vec<String> = rows
        .records()
        .map(|r| r.expect("csv row")[10].to_string())
        .collect();
    all.iter().cycle().take(n).cloned().collect()
}

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
}

async fn load(url: String, bodies: Vec<(String, String)>, concurrency: usize) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let queue = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, queue) = (http.clone(), url.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            loop {
                let Some((body, sig)) = queue.lock().await.next() else {
                    break;
                };
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => latencies.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Run {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        failed,
    }
}

fn main() {
    let requests = env_usize("BENCH_REQUESTS", 3000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let texts = tweets(requests);
        let bodies: Vec<(String, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let body = serde_json::json!({
                    "id": format!("load-{i}"),
                    "author": { "id": format!("u-{}", i % 500), "handle": format!("@u{}", i % 500) },
                    "text": text,
                })
                .to_string();
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"bench-secret").unwrap();
                mac.update(body.as_bytes());
                let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                (body, sig)
            })
            .collect();

        // Baseline: the HTTP floor on this loopback.
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(|body: axum::body::Bytes| async move {
                std::hint::black_box(body.len());
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let floor_url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let floor = load(floor_url, bodies.clone(), concurrency).await;

        // The real server.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tenants")).unwrap();
        std::fs::write(data.join("tenants/bench.toml"), TENANT).unwrap();
        let server = Server::start(
            Runtime::new(RuntimeOptions::default()).unwrap(),
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
        let url = format!("http://{}/hooks/bench/webhook", server.addr);
        let real = load(url, bodies, concurrency).await;
        let store = switchboard::store::Store::open_file(&data.join("switchboard.db"))
            .await
            .unwrap();
        let stored = store
            .count("SELECT COUNT(*) FROM messages WHERE tenant = $1", "bench")
            .await
            .unwrap();
        let done = store
            .count("SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'", "bench")
            .await
            .unwrap();
        server.shutdown().await.unwrap();

        println!("webhook ingress on loopback, {requests} requests, {concurrency} concurrent (2-core machine)");
        println!(
            "{:<44} {:>10} {:>10} {:>10} {:>7}",
            "", "req/s", "p50", "p99", "failed"
        );
        for (name, r) in [
            ("HTTP floor (axum, no verify, no store)", &floor),
            ("switchboard: verify + durable accept", &real),
        ] {
            println!(
                "{:<44} {:>10.0} {:>10.2?} {:>10.2?} {:>7}",
                name, r.per_second, r.p50, r.p99, r.failed
            );
        }
        println!(
            "ratio: {:.2}x the floor's throughput; {stored} stored (must be {requests}), {done} already processed by the workers when the load ended",
            real.per_second / floor.per_second
        );
        assert_eq!(stored as usize, requests, "every acknowledged message is stored");
    });
}
