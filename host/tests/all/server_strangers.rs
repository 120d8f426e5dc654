//! Strangers and hostile tenants against the real server: what they send must not grow the
//! server's memory, flood its log, learn its layout or tie up its connections.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::ops::LogLimiter;
use switchboard::server::{ServeOptions, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{GLOBEX, OPERATOR, TestServer};
use crate::common::runtime;

/// Metrics text as the operator scrapes it.
async fn scrape(s: &TestServer) -> String {
    s.http
        .get(s.url("/metrics"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_paths_of_strangers_do_not_become_metric_labels() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    // Unique per run: the metrics recorder is shared by every server in this process.
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    for i in 0..200 {
        // Unknown tenants, and unknown connectors of a known tenant.
        let (tenant, connector) = if i % 2 == 0 {
            (format!("stranger{run}t{i}"), format!("stranger{run}c{i}"))
        } else {
            ("globex".to_string(), format!("stranger{run}c{i}"))
        };
        let r = s
            .http
            .post(s.url(&format!("/hooks/{tenant}/{connector}")))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let text = scrape(&s).await;
    assert!(
        !text.contains(&format!("stranger{run}")),
        "a caller's path became a metric label"
    );
    let series = text
        .lines()
        .filter(|l| l.starts_with("switchboard_webhook_requests_total{"))
        .count();
    // Every server in this test binary shares the recorder: a few tenants and connectors of
    // the other tests, never one per request.
    assert!(series < 60, "{series} webhook series:\n{text}");
    assert!(
        text.contains(r#"switchboard_webhook_requests_total{tenant="unknown",connector="unknown",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"switchboard_webhook_requests_total{tenant="globex",connector="unknown",status="404"}"#),
        "{text}"
    );
}

#[test]
fn the_log_limiter_lets_one_line_per_key_and_interval_through_and_counts_the_rest() {
    let limiter = LogLimiter::new(Duration::from_secs(60));
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    assert_eq!(limiter.admit("acme/webhook", at(0)), Some(0));
    for s in 1..=50 {
        assert_eq!(limiter.admit("acme/webhook", at(s)), None, "second {s}");
    }
    // Another key has its own allowance.
    assert_eq!(limiter.admit("acme/slack", at(10)), Some(0));
    // After the interval: one line again, saying how many were held back.
    assert_eq!(limiter.admit("acme/webhook", at(61)), Some(50));
    assert_eq!(limiter.admit("acme/webhook", at(62)), None);
    assert_eq!(limiter.admit("acme/webhook", at(200)), Some(1));
}

#[test]
fn api_errors_keep_file_names_and_drop_server_folders() {
    use switchboard::server::api::without_server_paths as scrub;
    assert_eq!(
        scrub(
            "/srv/sb/tenants/acme.toml: tenant `acme`, classifiers `k`: no plugin named `x` in /srv/sb/plugins, /opt/sb/builtin"
        ),
        "acme.toml: tenant `acme`, classifiers `k`: no plugin named `x` in plugins, builtin"
    );
    assert_eq!(scrub("data/tenants/acme.toml: bad"), "acme.toml: bad");
    assert_eq!(
        scrub("no plugin file at ../evil.wasm"),
        "no plugin file at evil.wasm"
    );
    // Not paths: content types, URLs, plain words.
    for kept in [
        "content type text/xml is fine",
        "deliver_url https://api.example/v1/a.toml is unreachable",
        "no tenant `acme`",
    ] {
        assert_eq!(scrub(kept), kept);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_tells_strangers_counts_and_the_operator_the_details() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    std::fs::write(
        s.data.join("tenants/hush-hush.toml"),
        "tenant = \"hush-hush\"\n[[connectors]]\nname = 1\n",
    )
    .unwrap();
    let (status, v) = s.post("/admin/reload", OPERATOR, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the other tenants serve");
    let text = r.text().await.unwrap();
    let data = s.data.display().to_string();
    assert!(!text.contains("hush-hush"), "a tenant name: {text}");
    assert!(!text.contains(&data), "a server path: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["config_errors"], 1, "{v}");

    let (status, v) = s.get("/readyz", OPERATOR).await;
    assert_eq!(status, StatusCode::OK);
    let errors = v["config_errors"].as_object().unwrap();
    assert!(
        errors.keys().any(|k| k.ends_with("hush-hush.toml")),
        "the operator sees which file: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_learns_nothing_of_the_servers_folders_from_errors() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    let admin = s.token("globex", "admin", "g").await;
    let broken = GLOBEX.replace(
        "plugin = \"keyword-classifier\"",
        "plugin = \"no-such-plugin\"",
    );
    let r = s
        .http
        .put(s.url("/api/tenants/globex/config"))
        .bearer_auth(&admin)
        .body(broken)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("no-such-plugin"),
        "still says what is wrong: {error}"
    );
    assert!(error.contains("globex.toml"), "and in which file: {error}");
    for folder in [
        s.data.display().to_string(),
        switchboard::tenant::BUILTIN_PLUGIN_DIR.to_string(),
    ] {
        assert!(!error.contains(&folder), "{folder} in: {error}");
    }
}

/// A server with no tenants and the connection limits `limits` sets.
async fn start_with(limits: impl FnOnce(&mut ServeOptions)) -> TestServer {
    start_serving(&[], limits).await
}

/// A server with `tenants` and the limits `limits` sets.
async fn start_serving(
    tenants: &[(&str, String)],
    limits: impl FnOnce(&mut ServeOptions),
) -> TestServer {
    start_on(runtime(), tenants, limits).await
}

/// A server on `rt` with `tenants` and the limits `limits` sets.
async fn start_on(
    rt: switchboard::runtime::Runtime,
    tenants: &[(&str, String)],
    limits: impl FnOnce(&mut ServeOptions),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("tenants")).unwrap();
    for (name, text) in tenants {
        std::fs::write(data.join("tenants").join(format!("{name}.toml")), text).unwrap();
    }
    let mut options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        admin_token: Some(OPERATOR.into()),
        watch: false,
        drain: Duration::from_secs(10),
        ..Default::default()
    };
    limits(&mut options);
    let server = Server::start(rt, options).await.unwrap();
    TestServer {
        base: format!("http://{}", server.addr),
        server: Some(server),
        http: reqwest::Client::new(),
        data,
        _dir: Some(dir),
    }
}

/// Whether the server closes `stream` within `secs` seconds (whatever it says first).
async fn closed_within(stream: &mut TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_stalled_bodies_are_cut_off() {
    let s = start_with(|o| {
        o.header_timeout = Duration::from_secs(1);
        o.body_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();

    // Half a request line, then silence.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, 10).await,
        "a slow-header client is still connected"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the timeout"
    );

    // Headers promising a body that never comes.
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /hooks/acme/webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    assert!(
        closed_within(&mut stalled, 10).await,
        "a stalled body holds its connection"
    );

    // A client that took a request and then idles on its kept-alive connection.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut idle, 10).await,
        "an idle kept-alive connection stays open"
    );

    // The server itself is fine.
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_past_the_connection_cap_do_not_stop_the_server_answering() {
    let s = start_with(|o| {
        o.header_timeout = Duration::from_secs(1);
        o.max_connections = 4;
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A fresh client, with no pooled connection: it queues behind the idle sockets and is
    // answered once the server has shed them.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = fresh.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (i, socket) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(socket, 10).await,
            "idle socket {i} is still open"
        );
    }
    let r = fresh.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A connection that has sent `head` (a request's line and headers) and none of its body.
async fn send_head(addr: &str, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status line the server answers on `stream`, or `None` when none came within `secs`.
async fn status_line(mut stream: TcpStream, secs: u64) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(Duration::from_secs(secs), async {
        while !got.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    let text = String::from_utf8_lossy(&got);
    text.lines().next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_that_cannot_be_taken_are_answered_before_their_body_is_read() {
    // A body may stall for a minute: any answer that comes sooner came without it.
    let s = start_serving(&[("globex", GLOBEX.into())], |o| {
        o.body_timeout = Duration::from_secs(60);
        o.max_body_bytes = 1 << 20;
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let head = |path: &str, length: u64| {
        format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n")
    };
    let cases = [
        ("/hooks/nobody/webhook", 1000, "404"),
        ("/hooks/globex/nothing", 1000, "404"),
        // Declares more than the limit: refused on the header alone.
        ("/hooks/globex/webhook", 50_000_000, "413"),
    ];
    for (path, length, status) in cases {
        let line = status_line(send_head(&addr, &head(path, length)).await, 10).await;
        assert!(
            line.as_deref().is_some_and(|l| l.contains(status)),
            "{path} with {length} bytes declared: {line:?}"
        );
    }
    // Globex allows a burst of 2 a second: past it, 429 without reading the body either.
    // (The first two wait for their bodies until the test ends.)
    let mut waiting = Vec::new();
    for _ in 0..4 {
        waiting.push(send_head(&addr, &head("/hooks/globex/webhook", 10)).await);
    }
    let mut statuses = Vec::new();
    for stream in waiting {
        statuses.push(status_line(stream, 3).await.unwrap_or_default());
    }
    assert!(
        statuses.iter().any(|l| l.contains("429")),
        "over the rate limit: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_flood_at_one_tenant_waits_for_that_tenants_slots_only() {
    let slow = format!(
        r#"
tenant = "slowco"
[ingress]
requests_per_second = 1000
burst = 1000
[limits]
timeout_ms = 10000
[[connectors]]
name = "webhook"
plugin = "{}"
[connectors.config]
delay-ms = "2000"
"#,
        crate::common::fixture_path("slow-connector").display()
    );
    let s = start_serving(&[("slowco", slow), ("globex", GLOBEX.into())], |o| {
        o.tenant_ingress_concurrency = 2;
        o.ingress_wait = Duration::from_millis(200);
    })
    .await;
    let post = |tenant: &'static str| {
        let http = s.http.clone();
        let url = s.url(&format!("/hooks/{tenant}/webhook"));
        tokio::spawn(async move {
            let r = http.post(url).body("{}").send().await.unwrap();
            (r.status(), r.headers().get("retry-after").cloned())
        })
    };
    // Two take slowco's slots for two seconds; the next ones are turned away at once.
    let held = [post("slowco"), post("slowco")];
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, retry_after) = post("slowco").await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.unwrap(), "1");
    // Another tenant's webhook meanwhile is taken as usual.
    let (status, _) = s
        .post_signed(
            "globex",
            "globex-signing",
            r#"{"id": "g-1", "author": {"id": "u"}, "text": "refund"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for h in held {
        assert_eq!(
            h.await.unwrap().0,
            StatusCode::OK,
            "the held webhooks finish"
        );
    }
    // With its slots free again, slowco is served.
    let (status, _) = post("slowco").await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_slow_plugin_storm_leaves_other_tenants_webhooks_and_messages_alone() {
    // A pool of 32 instances, a quarter per tenant. The stormy tenant runs 40 classifiers that
    // spin until their deadline: with the whole pool open to it, one of its messages would
    // hold every instance and the calm tenant's connector could not run at all.
    let rt = switchboard::runtime::Runtime::new(switchboard::runtime::RuntimeOptions {
        max_instances: 32,
        tenant_share: 8,
        ..Default::default()
    })
    .unwrap();
    let hostile = crate::common::fixture_path("hostile-plugin");
    let mut stormy = String::from(
        r#"
tenant = "stormy"
[ingress]
requests_per_second = 1000
burst = 1000
[limits]
timeout_ms = 2000
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
[connectors.secrets]
signing-secret = { value = "stormy-signing" }
"#,
    );
    for i in 0..40 {
        stormy.push_str(&format!(
            "[[classifiers]]\nname = \"spin{i}\"\nplugin = \"{}\"\n[classifiers.config]\nmode = \"loop\"\n",
            hostile.display()
        ));
    }
    let calm = GLOBEX
        .replace("tenant = \"globex\"", "tenant = \"calm\"")
        .replace(
            "requests_per_second = 1\nburst = 2",
            "requests_per_second = 1000\nburst = 1000",
        );
    let s = start_on(rt, &[("stormy", stormy), ("calm", calm)], |_| {}).await;
    let message = |id: &str| {
        format!(r#"{{"id": "{id}", "author": {{"id": "u-{id}"}}, "text": "I want a refund"}}"#)
    };
    for i in 0..3 {
        let (status, v) = s
            .post_signed("stormy", "stormy-signing", &message(&format!("storm-{i}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let store = switchboard::store::Store::open_file(&s.data.join("switchboard.db"))
        .await
        .unwrap();
    // The storm is on once the stormy tenant's first message is being worked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..5 {
        let (status, v) = s
            .post_signed("calm", "globex-signing", &message(&format!("calm-{i}")))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "calm webhook {i} during the storm: {v}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = store
            .count(
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done' AND degraded = '[]'",
                "calm",
            )
            .await
            .unwrap();
        if done == 5 {
            break;
        }
        if Instant::now() >= deadline {
            let mut seen = Vec::new();
            for sql in [
                "SELECT COUNT(*) FROM messages WHERE tenant = $1",
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'",
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'held'",
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND degraded <> '[]'",
            ] {
                seen.push((sql, store.count(sql, "calm").await.unwrap()));
            }
            panic!("the calm tenant's messages were not processed whole: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the storm was real: the stormy tenant's own messages came out degraded.
    let stormy_degraded = store
        .count(
            "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND degraded <> '[]'",
            "stormy",
        )
        .await
        .unwrap();
    let stormy_left = store
        .count(
            "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status <> 'done'",
            "stormy",
        )
        .await
        .unwrap();
    assert!(
        stormy_degraded + stormy_left >= 1,
        "the stormy tenant's plugins never got in the way"
    );
}
