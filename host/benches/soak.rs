//! Soak: the real `switchboard serve` binary under mixed valid and hostile traffic from several
//! tenants for a while, reporting over time what an operator would watch: the server's RSS and
//! open files, each tenant's acknowledged webhooks with p50/p99 latency, and every answer that
//! was not a 200, by kind of traffic and status. At the end, traffic stops and the report shows
//! the memory the server gives back once idle, and whether every acknowledged message was
//! processed and its reply delivered once.
//!
//! Run: `cargo bench -p switchboard --bench soak`. `SOAK_SECONDS` (default 120), `SOAK_TENANTS`
//! (default 3), `SOAK_REPORT_SECONDS` (default 10), `SOAK_FLOOD_SENDERS` (default 8) and
//! `SOAK_FLOOD_KIB` (default 512, at most 1024) size it. Traffic, all at once:
//! - every tenant: two senders of signed webhooks with real tweets, each reply delivered to a
//!   platform mock on loopback that counts idempotency keys;
//! - tenant 0: a flood of large unsigned bodies (512 KiB from eight senders by default);
//! - tenant 1: forged signatures (another secret) from two senders;
//! - strangers: random `/hooks/{tenant}/{connector}` paths, and declared lengths of 10 MB;
//! - slow clients: twenty connections at a time sending half a request and going silent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac;
use tokio::io::AsyncWriteExt;

const SECRET: &str = "soak-secret";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tenant_config(name: &str, deliver_url: &str) -> String {
    format!(
        r#"
tenant = "{name}"
[ingress]
requests_per_second = 100000
burst = 100000
[egress]
allow = ["127.0.0.1"]
allow_private = true
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "x"
max_length = 280
deliver_url = "{deliver_url}"
[connectors.secrets]
signing-secret = {{ value = "{SECRET}" }}
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:late" = ["late", "delayed", "delay"]
"topic:bags" = ["bag", "luggage"]
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[policy]
auto_send = true
"#
    )
}

fn tweets() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/datasets/airline_sentiment.train.csv");
    let mut rows = csv::Reader::from_path(&path).expect("airline dataset");
    rows.records()
        .map(|r| r.expect("csv row")[10].to_string())
        .collect()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one interval saw: latencies of acknowledged valid webhooks per tenant, and counts of
/// answers by (traffic, status).
#[derive(Default)]
struct Interval {
    latencies: BTreeMap<String, Vec<Duration>>,
    answers: BTreeMap<(String, String), u64>,
}

#[derive(Clone, Default)]
struct Stats(Arc<Mutex<Interval>>);

impl Stats {
    fn latency(&self, tenant: &str, took: Duration) {
        let mut i = self.0.lock().unwrap();
        i.latencies.entry(tenant.into()).or_default().push(took);
    }
    fn answer(&self, traffic: &str, status: String) {
        let mut i = self.0.lock().unwrap();
        *i.answers.entry((traffic.into(), status)).or_default() += 1;
    }
    fn take(&self) -> Interval {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn status_of(r: &Result<reqwest::Response, reqwest::Error>) -> String {
    match r {
        Ok(r) => r.status().as_u16().to_string(),
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "error".into(),
    }
}

/// Platform mock: counts every reply by idempotency key.
async fn platform(counts: Arc<Mutex<BTreeMap<String, u32>>>) -> String {
    let app = axum::Router::new().route(
        "/messages",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let counts = counts.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let mut c = counts.lock().unwrap();
                *c.entry(key).or_default() += 1;
                format!("{{\"id\":\"p{}\"}}", c.len())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/messages", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn serve(data: &Path, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--no-watch", "--data"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SWITCHBOARD_ADMIN_TOKEN", "soak-operator")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting switchboard serve")
}

/// (RSS in MiB, open files) of process `pid`.
fn footprint(pid: u32) -> (f64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss_kb / 1024.0, files)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Print one interval; returns the RSS it saw.
fn report(at: Duration, pid: u32, interval: Interval, tenants: &[String]) -> f64 {
    let (rss, files) = footprint(pid);
    println!(
        "t={:>4}s  rss {rss:>7.1} MiB  open files {files:>4}",
        at.as_secs()
    );
    for t in tenants {
        let mut l = interval.latencies.get(t).cloned().unwrap_or_default();
        l.sort();
        println!(
            "  {t:<8} acknowledged {:>6}  p50 {:>9.2?}  p99 {:>9.2?}",
            l.len(),
            percentile(&l, 0.50),
            percentile(&l, 0.99)
        );
    }
    let answers: Vec<String> = interval
        .answers
        .iter()
        .map(|((traffic, status), n)| format!("{traffic} {status}: {n}"))
        .collect();
    println!("  answers  {}", answers.join(", "));
    rss
}

fn main() {
    let seconds = env_u64("SOAK_SECONDS", 120);
    let tenant_count = env_u64("SOAK_TENANTS", 3).max(2) as usize;
    let every = Duration::from_secs(env_u64("SOAK_REPORT_SECONDS", 10).max(1));
    let flood_senders = env_u64("SOAK_FLOOD_SENDERS", 8);
    let flood_kib = env_u64("SOAK_FLOOD_KIB", 512).min(1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tenants")).unwrap();
        let deliveries = Arc::new(Mutex::new(BTreeMap::new()));
        let deliver_url = platform(deliveries.clone()).await;
        let tenants: Vec<String> = (0..tenant_count).map(|i| format!("soak-{i}")).collect();
        for t in &tenants {
            std::fs::write(
                data.join(format!("tenants/{t}.toml")),
                tenant_config(t, &deliver_url),
            )
            .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = serve(&data, port);
        let pid = server.id();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let started = Instant::now();
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (rss_at_start, files_at_start) = footprint(pid);
        println!(
            "soak: {seconds} s, {tenant_count} tenants, switchboard serve pid {pid}: \
             {rss_at_start:.1} MiB, {files_at_start} open files at start"
        );

        let stats = Stats::default();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let acknowledged = Arc::new(Mutex::new(0u64));
        let texts = Arc::new(tweets());
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();

        // Valid traffic: every tenant, two senders.
        for t in &tenants {
            for _ in 0..2 {
                let (http, stats, texts, next_id, acknowledged) = (
                    http.clone(),
                    stats.clone(),
                    texts.clone(),
                    next_id.clone(),
                    acknowledged.clone(),
                );
                let (tenant, url) = (t.clone(), format!("{base}/hooks/{t}/webhook"));
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let i = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let body = serde_json::json!({
                            "id": format!("soak-{i}"),
                            "author": { "id": format!("u-{}", i % 997), "handle": format!("@u{}", i % 997) },
                            "text": texts[i as usize % texts.len()],
                        })
                        .to_string();
                        let t0 = Instant::now();
                        let r = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-signature-256", sign(SECRET, body.as_bytes()))
                            .body(body)
                            .send()
                            .await;
                        let status = status_of(&r);
                        if status == "200" {
                            stats.latency(&tenant, t0.elapsed());
                            *acknowledged.lock().unwrap() += 1;
                        } else {
                            stats.answer(&format!("valid {tenant}"), status);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }));
            }
        }
        // Hostile traffic.
        let flood_label = format!("unsigned {flood_kib}KiB");
        let big = Arc::new("x".repeat((flood_kib as usize) << 10));
        let flood_url = format!("{base}/hooks/{}/webhook", tenants[0]);
        for _ in 0..flood_senders {
            let flood_label = flood_label.clone();
            let (http, stats, big, url) = (http.clone(), stats.clone(), big.clone(), flood_url.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = http.post(&url).body(big.as_str().to_owned()).send().await;
                    stats.answer(&flood_label, status_of(&r));
                }
            }));
        }
        let forged_url = format!("{base}/hooks/{}/webhook", tenants[1]);
        for _ in 0..2 {
            let (http, stats, url) = (http.clone(), stats.clone(), forged_url.clone());
            tasks.push(tokio::spawn(async move {
                let body = r#"{"id":"forged","author":{"id":"u"},"text":"hello"}"#;
                while Instant::now() < deadline {
                    let r = http
                        .post(&url)
                        .header("x-signature-256", sign("not-the-secret", body.as_bytes()))
                        .body(body)
                        .send()
                        .await;
                    stats.answer("forged", status_of(&r));
                }
            }));
        }
        for _ in 0..2 {
            let (http, stats, base) = (http.clone(), stats.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let path = format!("/hooks/t{:x}/c{:x}", fastrand::u64(..), fastrand::u64(..));
                    let r = http.post(format!("{base}{path}")).body("{}").send().await;
                    stats.answer("stranger path", status_of(&r));
                }
            }));
        }
        {
            let (stats, addr, tenant) = (stats.clone(), format!("127.0.0.1:{port}"), tenants[2 % tenant_count].clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let head = format!(
                        "POST /hooks/{tenant}/webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n"
                    );
                    let status = match tokio::net::TcpStream::connect(&addr).await {
                        Ok(mut s) => {
                            let _ = s.write_all(head.as_bytes()).await;
                            let mut buf = [0u8; 64];
                            match tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await {
                                Ok(Ok(n)) if n >= 12 => String::from_utf8_lossy(&buf[9..12]).into_owned(),
                                Ok(_) => "closed".into(),
                                Err(_) => "timeout".into(),
                            }
                        }
                        Err(_) => "error".into(),
                    };
                    stats.answer("declared 10MB", status);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        for _ in 0..20 {
            let (stats, addr) = (stats.clone(), format!("127.0.0.1:{port}"));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                        stats.answer("slow headers", "error".into());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let _ = s.write_all(b"POST /hooks/x/y HTTP/1.1\r\nHost: a\r\n").await;
                    let mut buf = [0u8; 64];
                    let left = deadline.saturating_duration_since(Instant::now());
                    let outcome = tokio::time::timeout(left, tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await;
                    if outcome.is_ok() {
                        stats.answer("slow headers", "closed by server".into());
                    }
                }
            }));
        }

        // Report while it runs.
        let mut next_report = Instant::now() + every;
        let mut peak_rss = rss_at_start;
        while Instant::now() < deadline {
            tokio::time::sleep_until(next_report.min(deadline).into()).await;
            peak_rss = peak_rss.max(report(started.elapsed(), pid, stats.take(), &tenants));
            next_report += every;
        }
        for t in tasks {
            let _ = t.await;
        }
        // The senders' kept-alive connections close with the client, as a platform's would.
        drop(http);
        let acknowledged = *acknowledged.lock().unwrap();
        // Idle: let the workers finish what was taken, and the allocator give memory back.
        let store = switchboard::store::Store::open_file(&data.join("switchboard.db"))
            .await
            .unwrap();
        let totals = |sql: &'static str| {
            let (store, tenants) = (store.clone(), tenants.clone());
            async move {
                let mut n = 0;
                for t in &tenants {
                    n += store.count(sql, t).await.unwrap_or(0);
                }
                n
            }
        };
        let settle = Instant::now();
        loop {
            let open = totals("SELECT (SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status <> 'done') \
                               + (SELECT COUNT(*) FROM outbox WHERE tenant = $1 AND status NOT IN ('sent', 'dead'))").await;
            if open == 0 || settle.elapsed() > Duration::from_secs(300) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let caught_up = settle.elapsed();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (rss_idle, files_idle) = footprint(pid);
        // Past the server's idle timeout (30 s), every connection the soak opened has closed.
        tokio::time::sleep(Duration::from_secs(25)).await;
        let (rss_later, files_later) = footprint(pid);
        let stored = totals("SELECT COUNT(*) FROM messages WHERE tenant = $1").await;
        let done = totals("SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'").await;
        let queued = totals("SELECT COUNT(*) FROM outbox WHERE tenant = $1").await;
        let sent = totals("SELECT COUNT(*) FROM outbox WHERE tenant = $1 AND status = 'sent'").await;
        let (delivered, repeated) = {
            let d = deliveries.lock().unwrap();
            (d.len(), d.values().filter(|&&n| n > 1).count())
        };
        let _ = server.kill();
        let _ = server.wait();
        println!(
            "end: {acknowledged} valid webhooks acknowledged, {stored} stored, {done} processed; \
             {queued} replies queued, {sent} sent, {delivered} received by the platform \
             ({repeated} keys more than once); caught up {:.1} s after the traffic stopped",
            caught_up.as_secs_f64()
        );
        println!(
            "idle 10 s later: rss {rss_idle:.1} MiB (start {rss_at_start:.1}, peak seen in the \
             reports {peak_rss:.1}), open files {files_idle} (start {files_at_start}); \
             35 s later: rss {rss_later:.1} MiB, open files {files_later}"
        );
    });
}
