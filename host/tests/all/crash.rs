//! Crash safety, end to end: the real `switchboard` binary is killed with SIGKILL in the middle
//! of a stream (once while processing, once while delivering), restarted on the same SQLite
//! file, and every accepted message ends up processed exactly once with its reply delivered, and
//! no customer receives a reply twice.
//!
//! The platform is an HTTP mock on loopback that behaves as platforms with idempotency keys do
//! (Mastodon, LINE, the generic webhook's contract): a repeated key returns the first post
//! instead of posting again. It is slow on purpose, so that the kill lands mid-delivery.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac;
use switchboard::store::Store;

const MESSAGES: usize = 60;
const SECRET: &[u8] = b"crash-test-secret";

#[derive(Default)]
struct Platform {
    /// Every request, by idempotency key.
    requests: BTreeMap<String, usize>,
    /// What a customer sees: one post per key.
    posts: BTreeMap<String, String>,
}

fn start_platform(state: Arc<Mutex<Platform>>) -> String {
    use axum::http::HeaderMap;
    let app = axum::Router::new().route(
        "/messages",
        axum::routing::post(move |headers: HeaderMap| {
            let state = state.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(40)).await;
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let mut p = state.lock().unwrap();
                *p.requests.entry(key.clone()).or_default() += 1;
                let n = p.posts.len();
                p.posts.entry(key).or_insert_with(|| format!("post-{n}"));
                let id = p.posts.len();
                format!("{{\"id\":\"p{id}\"}}")
            }
        }),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/messages", rx.recv().unwrap())
}

fn write_inputs(dir: &Path, deliver_url: &str) {
    std::fs::write(
        dir.join("tenant.toml"),
        format!(
            r#"
tenant = "crashy"
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
signing-secret = {{ value = "crash-test-secret" }}
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[policy]
auto_send = true
"#
        ),
    )
    .unwrap();
    let mut lines = String::new();
    for i in 0..MESSAGES {
        let body = format!(
            r#"{{"id":"tw-{i}","author":{{"id":"u-{i}","handle":"@c{i}"}},"text":"my order {i} never arrived","created_at":"2026-11-20T09:12:00Z"}}"#
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(body.as_bytes());
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        lines.push_str(
            &serde_json::json!({ "headers": { "x-signature-256": sig }, "body": body }).to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(dir.join("requests.jsonl"), lines).unwrap();
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.current_dir(dir)
        .args([
            "--cache-dir",
            "cache",
            "run",
            "tenant.toml",
            "requests.jsonl",
            "--db",
            "store.db",
            "--deliver",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store.count(sql, "crashy").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(Mutex::new(Platform::default()));
    let url = start_platform(state.clone());
    write_inputs(dir.path(), &url);

    // Run 1: killed while processing, after 15 messages were printed.
    let mut child = command(dir.path()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("\"kind\":\"message\"") {
            seen += 1;
            if seen == 15 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    let store = Store::open_file(&dir.path().join("store.db"))
        .await
        .unwrap();
    let done_after_first = count(
        &store,
        "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'",
    )
    .await;
    assert!(
        (15..MESSAGES as i64).contains(&done_after_first),
        "the kill must land mid-stream: {done_after_first} done"
    );
    assert_eq!(
        state.lock().unwrap().requests.len(),
        0,
        "nothing delivered yet"
    );

    // Run 2: killed while delivering, once the platform has seen 5 replies.
    let mut child = command(dir.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while state.lock().unwrap().requests.len() < 5 {
        assert!(Instant::now() < deadline, "run 2 never started delivering");
        assert!(
            child.try_wait().unwrap().is_none(),
            "run 2 ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_after_second = count(
        &store,
        "SELECT COUNT(*) FROM outbox WHERE tenant = $1 AND status = 'sent'",
    )
    .await;
    assert!(
        sent_after_second < MESSAGES as i64,
        "the kill must land mid-delivery: {sent_after_second} sent"
    );

    // Run 3: to the end.
    let out = command(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Every accepted message: stored once, processed once, one reply queued and sent.
    let n = MESSAGES as i64;
    for (sql, expected) in [
        ("SELECT COUNT(*) FROM messages WHERE tenant = $1", n),
        (
            "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'",
            n,
        ),
        ("SELECT COUNT(*) FROM decisions WHERE tenant = $1", n),
        ("SELECT COUNT(*) FROM drafts WHERE tenant = $1", n),
        ("SELECT COUNT(*) FROM outbox WHERE tenant = $1", n),
        (
            "SELECT COUNT(*) FROM outbox WHERE tenant = $1 AND status = 'sent'",
            n,
        ),
        (
            "SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'message.accepted'",
            n,
        ),
    ] {
        assert_eq!(count(&store, sql).await, expected, "{sql}");
    }
    // The customer side: one post per reply. A reply caught mid-send by the kill was sent again
    // with its key (at least once), which the platform answered without posting twice.
    let p = state.lock().unwrap();
    assert_eq!(p.posts.len(), MESSAGES);
    assert_eq!(p.requests.len(), MESSAGES);
    assert!(
        p.requests.values().all(|&n| n <= 2),
        "a reply was sent more than twice: {:?}",
        p.requests
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
}
