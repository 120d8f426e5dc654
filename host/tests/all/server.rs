//! The real server on loopback, driven by a real HTTP client: signed and badly signed webhooks,
//! platform challenges, duplicates, oversized and malformed bodies, rate limits, cross-tenant
//! access on every route, delivery against a platform mock that fails, rate-limits and
//! recovers, polling with a durable cursor across a restart, and a hot swap while messages flow.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::Mac;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::server::{ServeOptions, Server};
use switchboard::store::Store;

use crate::common::{Platform, fixture_path, platform, plugin_path, runtime, shared_data};

/// Strangers and hostile tenants against the real server (issue 14).
#[path = "server_strangers.rs"]
mod strangers;

const OPERATOR: &str = "operator-test-token";

/// A tenant with every connector whose handshake the server must pass through, a classifier,
/// a suggester and a policy; `DELIVER_URL` and `SENDING` are filled in per test.
const ACME: &str = r#"
tenant = "acme"
signature = "^Ana"

[egress]
allow = ["127.0.0.1"]
allow_private = true

[ingress]
requests_per_second = 1000
burst = 1000

[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
max_length = 280
deliver_url = "DELIVER_URL"
[connectors.secrets]
signing-secret = { value = "acme-signing" }
verify-token = { value = "acme-verify" }

[[connectors]]
name = "slack"
plugin = "slack-connector"
[connectors.secrets]
signing-secret = { value = "slack-signing" }
bot-token = { value = "xoxb-test" }

[[connectors]]
name = "x"
plugin = "x-connector"
[connectors.secrets]
consumer-secret = { value = "x-consumer" }
access-token = { value = "x-access" }

[[connectors]]
name = "facebook"
plugin = "facebook-connector"
[connectors.config]
page_id = "100"
[connectors.secrets]
app-secret = { value = "fb-app" }
verify-token = { value = "fb-verify" }
page-access-token = { value = "fb-page" }

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:refund" = ["refund"]
"topic:delivery" = ["parcel", "order"]

[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"default" = "Hi {name}, sorry about this. We're on it and will update you here shortly. {signature}"

[policy]
SENDING

[[policy.rules]]
name = "refund"
when = "score('topic:refund') >= 0.5"
then = ["escalate", "route", "respond"]
team = "billing"

[[policy.rules]]
name = "care"
when = "true"
then = ["route", "respond"]
team = "care"
"#;

const GLOBEX: &str = r#"
tenant = "globex"

[ingress]
requests_per_second = 1
burst = 2

[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
[connectors.secrets]
signing-secret = { value = "globex-signing" }
# Globex's platform reads the acknowledgement (as Twilio does): answer with what it expects.
[connectors.ack]
content_type = "text/xml"
body = "<Response/>"

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:refund" = ["refund"]
"#;

struct TestServer {
    server: Option<Server>,
    base: String,
    http: reqwest::Client,
    data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    async fn start(tenants: &[(&str, String)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tenants")).unwrap();
        for (name, text) in tenants {
            std::fs::write(data.join("tenants").join(format!("{name}.toml")), text).unwrap();
        }
        let mut s = Self::start_in(&data, true).await;
        s._dir = Some(dir);
        s
    }

    async fn start_in(data: &Path, watch: bool) -> TestServer {
        let server = Server::start(
            runtime(),
            ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: data.to_path_buf(),
                admin_token: Some(OPERATOR.into()),
                public_url: "https://care.example".into(),
                watch,
                drain: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // Config errors are listed for the operator only.
        let ready: Value = reqwest::Client::new()
            .get(format!("http://{}/readyz", server.addr))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            ready["config_errors"],
            json!({}),
            "tenant configs must load"
        );
        TestServer {
            base: format!("http://{}", server.addr),
            server: Some(server),
            http: reqwest::Client::new(),
            data: data.to_path_buf(),
            _dir: None,
        }
    }

    async fn stop(&mut self) {
        self.server.take().unwrap().shutdown().await.unwrap();
    }

    async fn store(&self) -> Store {
        Store::open_file(&self.data.join("switchboard.db"))
            .await
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A generic-webhook post signed with `secret`.
    async fn post_signed(&self, tenant: &str, secret: &str, body: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(&format!("/hooks/{tenant}/webhook")))
            .header("content-type", "application/json")
            .header("x-signature-256", sign(secret, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.api(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.api(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    async fn token(&self, tenant: &str, role: &str, name: &str) -> String {
        let (s, v) = self
            .post(
                &format!("/api/tenants/{tenant}/tokens"),
                OPERATOR,
                json!({ "role": role, "name": name }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn message(id: &str, author: &str, text: &str) -> String {
    json!({
        "id": id,
        "author": { "id": author, "handle": format!("@{author}") },
        "text": text,
    })
    .to_string()
}

/// A real complaint from the airline dataset, by its opening words.
fn airline(opening: &str) -> String {
    let mut rows =
        csv::Reader::from_path(shared_data().join("datasets/airline_sentiment.train.csv")).unwrap();
    rows.records()
        .map(|r| r.unwrap()[10].to_string())
        .find(|t| t.starts_with(opening))
        .unwrap_or_else(|| panic!("no airline tweet starts with {opening:?}"))
}

fn acme(deliver_url: &str, auto_send: bool) -> String {
    ACME.replace("DELIVER_URL", deliver_url)
        .replace("SENDING", if auto_send { "auto_send = true" } else { "" })
}

/// Wait until `check` is true, up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn count(store: &Store, sql: &'static str, tenant: &str) -> i64 {
    store.count(sql, tenant).await.unwrap()
}

const MESSAGES: &str = "SELECT COUNT(*) FROM messages WHERE tenant = $1";
const DONE: &str = "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_stored_once_and_acknowledged_after_acceptance() {
    let s = TestServer::start(&[
        ("acme", acme("http://127.0.0.1:9/none", false)),
        ("globex", GLOBEX.into()),
    ])
    .await;
    let body = message(
        "m-1",
        "u-1",
        &airline("@VirginAmerica everything was fine until you lost my bag"),
    );

    let (status, v) = s.post_signed("acme", "acme-signing", &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "accepted": 1, "duplicates": 0, "skipped": 0 }));
    // Acknowledged means stored: the row is there the moment the 200 arrives.
    let store = s.store().await;
    assert_eq!(count(&store, MESSAGES, "acme").await, 1);

    // The platform's redelivery is a duplicate, acknowledged and not stored again.
    let (status, v) = s.post_signed("acme", "acme-signing", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["duplicates"], 1);

    // Badly signed: 401, nothing stored — with another tenant's secret, too.
    let other = message("m-2", "u-2", "refund please");
    let (status, v) = s.post_signed("acme", "wrong-secret", &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("signature"), "{v}");
    let (status, _) = s.post_signed("acme", "globex-signing", &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unsigned = s
        .http
        .post(s.url("/hooks/acme/webhook"))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);

    // Signed but malformed: 400, nothing stored.
    let (status, v) = s.post_signed("acme", "acme-signing", "{\"id\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // Oversized: refused before any plugin sees it, and the connection is not offered for
    // reuse (the rest of the body was never read; a client that pooled it would send its next
    // request down a closed socket).
    let huge = message("m-3", "u-3", &"a".repeat(2 << 20));
    let r = s
        .http
        .post(s.url("/hooks/acme/webhook"))
        .header("content-type", "application/json")
        .header("x-signature-256", sign("acme-signing", huge.as_bytes()))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );

    // Unknown tenant or connector: a clear 404.
    let (status, v) = s.post_signed("initech", "x", &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("initech"), "{v}");
    let r = s
        .http
        .post(s.url("/hooks/acme/telegram"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no connector `telegram`"),
        "{v}"
    );

    assert_eq!(
        count(&store, MESSAGES, "acme").await,
        1,
        "only the good request stored"
    );
    assert_eq!(count(&store, MESSAGES, "globex").await, 0);

    // The stored message is processed in the background.
    eventually(20, "the message is processed", || async {
        count(&store, DONE, "acme").await == 1
    })
    .await;

    // A disabled tenant takes nothing.
    let (status, _) = s
        .post("/admin/tenants/acme/disable", OPERATOR, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post_signed("acme", "acme-signing", &message("m-4", "u-4", "hello"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.post("/admin/tenants/acme/enable", OPERATOR, json!({}))
        .await;
    let (status, _) = s
        .post_signed("acme", "acme-signing", &message("m-4", "u-4", "hello"))
        .await;
    assert_eq!(status, StatusCode::OK);

    // A connector's configured acknowledgement replaces the JSON count.
    let body = message("g-ack", "u", "hi");
    let r = s
        .http
        .post(s.url("/hooks/globex/webhook"))
        .header("x-signature-256", sign("globex-signing", body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/xml");
    assert_eq!(r.text().await.unwrap(), "<Response/>");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // Per-tenant rate limit: globex allows a burst of 2, acme is unaffected.
    let mut codes = Vec::new();
    for i in 0..4 {
        let (status, _) = s
            .post_signed(
                "globex",
                "globex-signing",
                &message(&format!("g-{i}"), "u", "hi"),
            )
            .await;
        codes.push(status);
    }
    assert!(codes[..2].iter().all(|c| *c == StatusCode::OK), "{codes:?}");
    assert_eq!(codes[3], StatusCode::TOO_MANY_REQUESTS, "{codes:?}");
    let (status, _) = s
        .post_signed(
            "acme",
            "acme-signing",
            &message("m-5", "u-5", "hello again"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_challenges_are_answered_and_store_nothing() {
    let s = TestServer::start(&[("acme", acme("http://127.0.0.1:9/none", false))]).await;
    let get = |path: &str| s.http.get(s.url(path)).send();

    // Meta's verify token.
    let r = get("/hooks/acme/facebook?hub.mode=subscribe&hub.verify_token=fb-verify&hub.challenge=1158201444")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = get("/hooks/acme/facebook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_ne!(r.text().await.unwrap(), "1");

    // X's CRC: base64 HMAC-SHA256 of the token with the consumer secret.
    let r = get("/hooks/acme/x?crc_token=challenge-123").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"x-consumer").unwrap();
    mac.update(b"challenge-123");
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(v["response_token"], format!("sha256={expected}"));

    // Slack's url_verification, signed the Slack way.
    let body = r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"slack-signing").unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let r = s
        .http
        .post(s.url("/hooks/acme/slack"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", &sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // The same body with a forged signature is refused.
    let r = s
        .http
        .post(s.url("/hooks/acme/slack"))
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", "v0=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The generic webhook's own handshake.
    let r = get("/hooks/acme/webhook?challenge=abc&verify_token=acme-verify")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "abc");

    assert_eq!(count(&s.store().await, MESSAGES, "acme").await, 0);
}

/// A tenant whose SMS and WhatsApp come through Twilio.
const TWILIO_TENANT: &str = r#"
tenant = "fly"

[[connectors]]
name = "twilio"
plugin = "twilio-sms-connector"
[connectors.secrets]
auth-token = { value = "twilio-token" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectors_own_acknowledgement_reaches_the_platform_after_the_message_is_stored() {
    let s = TestServer::start(&[("fly", TWILIO_TENANT.into())]).await;
    // The URL Twilio signs is the one configured on its side: the server's public URL.
    let signed_url = "https://care.example/hooks/fly/twilio";
    let post = |from: &str, sid: &str, forged: bool| {
        let params: Vec<(String, String)> = [
            ("MessageSid", sid),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("From", from),
            ("To", "+15005550006"),
            ("Body", "Where is my bag?"),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('+', "%2B").replace(':', "%3A").replace(' ', "+")
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let key = if forged { "guess" } else { "twilio-token" };
        let signature = twilio_sms_connector::signature::sign(key, signed_url, &params);
        s.http
            .post(s.url("/hooks/fly/twilio"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body)
            .send()
    };

    let r = post("+14155550100", "SM0001", false).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml"),
        "{:?}",
        r.headers()
    );
    // The body is the plugin's: on the console's origin it may never run as a page.
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("sandbox;") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // Twilio would text a plain "ok" to the customer; empty TwiML sends nothing.
    assert!(r.text().await.unwrap().ends_with("<Response/>"));
    // Answered only once stored.
    let store = s.store().await;
    assert_eq!(count(&store, MESSAGES, "fly").await, 1);

    // WhatsApp through Twilio is stored on its own channel.
    let r = post("whatsapp:+14155550100", "SM0002", false)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().ends_with("<Response/>"));
    let on = |channel| {
        count(
            &store,
            match channel {
                "sms" => "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND channel = 'sms'",
                _ => "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND channel = 'whatsapp'",
            },
            "fly",
        )
    };
    assert_eq!((on("sms").await, on("whatsapp").await), (1, 1));

    // A forged request gets no acknowledgement and stores nothing.
    let r = post("+14155550100", "SM0003", true).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.text().await.unwrap().contains("<Response"));
    assert_eq!(count(&store, MESSAGES, "fly").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_failures_and_rate_limits_sends_once_and_dead_letters_refusals() {
    let state = Arc::new(Mutex::new(Platform {
        failing: 1,
        rate_limited: 1,
        ..Default::default()
    }));
    let url = platform(state.clone()).await;
    let tenant = acme(&url, true).replace(
        "[[policy.rules]]\nname = \"care\"",
        "[[policy.rules]]\nname = \"blocked-recipient\"\nwhen = \"text.contains('blocked me')\"\nthen = \"respond\"\n\n[[policy.rules]]\nname = \"care\"",
    );
    let s = TestServer::start(&[("acme", tenant.clone())]).await;
    let (status, _) = s
        .post_signed(
            "acme",
            "acme-signing",
            &message(
                "d-1",
                "u-1",
                &airline("@VirginAmerica everything was fine until you lost my bag"),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let store = s.store().await;
    // 503 → retry after back-off; 429 → retry after Retry-After; then sent, exactly once.
    eventually(30, "the reply is sent", || async {
        store
            .outbox("acme")
            .await
            .unwrap()
            .iter()
            .any(|r| r.status == "sent")
    })
    .await;
    {
        let p = state.lock().unwrap();
        assert_eq!(p.requests.len(), 3, "one failure, one rate limit, one post");
        let keys: BTreeSet<&String> = p.requests.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys.len(),
            1,
            "every attempt carries the same idempotency key"
        );
        assert_eq!(p.posted.len(), 1);
    }
    let sent = store.outbox("acme").await.unwrap();
    assert_eq!(sent[0].attempts, 3);

    // A permanent refusal is dead-lettered with its reason and shown to agents.
    let reject = tenant.replace(
        "We're on it and will update you here shortly.",
        "REJECT this.",
    );
    std::fs::write(s.data.join("tenants/acme.toml"), &reject).unwrap();
    let (status, v) = s
        .post("/api/tenants/acme/reload", OPERATOR, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    s.post_signed(
        "acme",
        "acme-signing",
        &message("d-2", "u-2", "my parcel never came"),
    )
    .await;
    let agent = s.token("acme", "agent", "ana").await;
    eventually(30, "the refusal is dead-lettered", || async {
        let (_, v) = s.get("/api/tenants/acme/dead-letters", &agent).await;
        v["replies"].as_array().is_some_and(|r| r.len() == 1)
    })
    .await;
    let (_, v) = s.get("/api/tenants/acme/dead-letters", &agent).await;
    let reason = v["replies"][0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("rejected") && reason.contains("403"),
        "{reason}"
    );
    assert_eq!(state.lock().unwrap().posted.len(), 1, "nothing more posted");
    let (_, inbox) = s.get("/api/tenants/acme/inbox", &agent).await;
    assert!(
        inbox["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["dead_replies"] == 1),
        "{inbox}"
    );
}

/// Every API route, with its method; `{tenant}` is filled in, other parameters get dummies.
/// Checked against the OpenAPI description so a new route cannot skip the access test.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/tenants"),
    ("POST", "/admin/tenants/{tenant}/disable"),
    ("POST", "/admin/tenants/{tenant}/enable"),
    ("POST", "/admin/reload"),
    ("GET", "/admin/plugins"),
    ("POST", "/admin/plugins"),
    ("GET", "/admin/plugins/{name}"),
    ("POST", "/admin/plugins/{name}/enable"),
    ("GET", "/metrics"),
    ("GET", "/api/tenants/{tenant}/config"),
    ("PUT", "/api/tenants/{tenant}/config"),
    ("POST", "/api/tenants/{tenant}/reload"),
    ("GET", "/api/tenants/{tenant}/plugins"),
    ("PUT", "/api/tenants/{tenant}/plugins/{instance}"),
    ("POST", "/api/tenants/{tenant}/plugins/{instance}/replay"),
    ("GET", "/api/tenants/{tenant}/secrets"),
    ("PUT", "/api/tenants/{tenant}/secrets/{instance}/{name}"),
    ("GET", "/api/tenants/{tenant}/tokens"),
    ("POST", "/api/tenants/{tenant}/tokens"),
    ("DELETE", "/api/tenants/{tenant}/tokens/{id}"),
    ("GET", "/api/tenants/{tenant}/audit"),
    ("GET", "/api/tenants/{tenant}/inbox"),
    ("GET", "/api/tenants/{tenant}/dead-letters"),
    ("GET", "/api/tenants/{tenant}/conversations/{id}"),
    ("POST", "/api/tenants/{tenant}/conversations/{id}/assign"),
    ("POST", "/api/tenants/{tenant}/conversations/{id}/resolve"),
    ("GET", "/api/tenants/{tenant}/service-levels"),
    ("GET", "/api/tenants/{tenant}/report"),
    ("GET", "/api/tenants/{tenant}/shadow-report"),
    ("GET", "/api/tenants/{tenant}/signoff-queue"),
    (
        "POST",
        "/api/tenants/{tenant}/conversations/{id}/participants",
    ),
    (
        "POST",
        "/api/tenants/{tenant}/conversations/{id}/expert-requests",
    ),
    ("GET", "/api/tenants/{tenant}/expert-requests"),
    ("POST", "/api/tenants/{tenant}/expert-requests/{id}/answer"),
    ("GET", "/api/tenants/{tenant}/customers/{id}"),
    ("POST", "/api/tenants/{tenant}/customers/{id}/merge"),
    ("POST", "/api/tenants/{tenant}/merges/{id}/undo"),
    ("GET", "/api/tenants/{tenant}/incidents"),
    ("POST", "/api/tenants/{tenant}/incidents"),
    ("GET", "/api/tenants/{tenant}/incidents/{id}"),
    ("POST", "/api/tenants/{tenant}/incidents/{id}/attach"),
    ("POST", "/api/tenants/{tenant}/incidents/{id}/merge"),
    ("POST", "/api/tenants/{tenant}/incidents/{id}/close"),
    ("POST", "/api/tenants/{tenant}/conversations/{id}/escalate"),
    (
        "POST",
        "/api/tenants/{tenant}/conversations/{id}/take-private",
    ),
    ("POST", "/api/tenants/{tenant}/drafts/{id}/edit"),
    ("POST", "/api/tenants/{tenant}/drafts/{id}/check"),
    ("POST", "/api/tenants/{tenant}/drafts/{id}/approve"),
    ("POST", "/api/tenants/{tenant}/drafts/{id}/reject"),
    ("POST", "/api/tenants/{tenant}/drafts/{id}/send"),
    (
        "POST",
        "/api/tenants/{tenant}/authors/{channel}/{author}/block",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_one_tenant_reaches_nothing_of_another_on_any_route() {
    let s = TestServer::start(&[
        ("acme", acme("http://127.0.0.1:9/none", false)),
        ("globex", GLOBEX.into()),
    ])
    .await;
    // Globex has a conversation with a draft-less message, a token and a known author.
    s.post_signed(
        "globex",
        "globex-signing",
        &message("g-1", "victim", "refund now"),
    )
    .await;
    let store = s.store().await;
    eventually(20, "globex's message is processed", || async {
        count(&store, DONE, "globex").await == 1
    })
    .await;
    let (_, inbox) = s.get("/api/tenants/globex/inbox", OPERATOR).await;
    let conversation = inbox["conversations"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex_admin = s.token("globex", "admin", "gadmin").await;
    let (_, before_config) = s.get("/api/tenants/globex/config", OPERATOR).await;
    let (_, before_tokens) = s.get("/api/tenants/globex/tokens", OPERATOR).await;
    let before_audit = count(
        &store,
        "SELECT COUNT(*) FROM audit WHERE tenant = $1",
        "globex",
    )
    .await;

    // Every route is in the OpenAPI description and vice versa.
    let doc: Value = serde_json::from_str(switchboard::server::OPENAPI).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .filter(|(_, p)| {
            !["/healthz", "/readyz", "/openapi.json"].contains(&p.as_str())
                && !p.starts_with("/hooks/")
        })
        .collect();
    let tested: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, tested,
        "the access test covers exactly the documented routes"
    );

    let acme_admin = s.token("acme", "admin", "aadmin").await;
    let acme_agent = s.token("acme", "agent", "aagent").await;
    for (method, template) in ROUTES {
        let path = template
            .replace("{tenant}", "globex")
            .replace("{instance}", "keywords")
            .replace("{name}", "signing-secret")
            .replace("{id}", &conversation)
            .replace("{channel}", "webhook")
            .replace("{author}", "victim");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = Some(
            json!({ "role": "admin", "name": "x", "text": "t", "reason": "r", "agent": "a", "digest": "0".repeat(64) }),
        );
        for (who, token) in [
            ("acme admin", Some(&acme_admin)),
            ("acme agent", Some(&acme_agent)),
            ("nobody", None),
        ] {
            let (status, v) = s
                .api(
                    method.clone(),
                    &path,
                    token.map(|t| t.as_str()),
                    body.clone(),
                )
                .await;
            let expected = if token.is_some() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(status, expected, "{who} on {method} {path}: {v}");
            // Nothing of globex leaks into the refusal.
            let text = v.to_string();
            assert!(
                !text.contains("victim") && !text.contains("refund"),
                "{who} on {path}: {text}"
            );
        }
    }
    // Nothing of globex changed through acme's attempts.
    let (_, after_config) = s.get("/api/tenants/globex/config", OPERATOR).await;
    let (_, after_tokens) = s.get("/api/tenants/globex/tokens", OPERATOR).await;
    assert_eq!(before_config["config"], after_config["config"]);
    assert_eq!(before_tokens, after_tokens);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM tenant_secrets WHERE tenant = $1",
            "globex"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM customers WHERE tenant = $1 AND blocked_at IS NOT NULL",
            "globex"
        )
        .await,
        0
    );
    let after_audit = count(
        &store,
        "SELECT COUNT(*) FROM audit WHERE tenant = $1",
        "globex",
    )
    .await;
    assert_eq!(
        before_audit, after_audit,
        "no action was recorded on globex"
    );

    // The refusals above are about the tenant, not the route: globex's own admin gets past the
    // tenant check on every tenant route (never on the operator's).
    for (method, template) in ROUTES {
        let path = template
            .replace("{tenant}", "globex")
            .replace("{instance}", "keywords")
            .replace("{name}", "signing-secret")
            .replace("{id}", &conversation)
            .replace("{channel}", "webhook")
            .replace("{author}", "victim");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _) = s
            .api(method.clone(), &path, Some(&globex_admin), None)
            .await;
        if template.starts_with("/admin") || *template == "/metrics" {
            assert_eq!(status, StatusCode::FORBIDDEN, "tenant admin on {path}");
        } else {
            assert!(
                status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                "globex admin on its own {method} {path}: {status}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_work_a_conversation_and_secrets_stay_write_only() {
    let state = Arc::new(Mutex::new(Platform::default()));
    let url = platform(state.clone()).await;
    let s = TestServer::start(&[("acme", acme(&url, false))]).await;
    let agent = s.token("acme", "agent", "ana").await;
    let supervisor = s.token("acme", "supervisor", "sam").await;
    let admin = s.token("acme", "admin", "ada").await;
    s.post_signed(
        "acme",
        "acme-signing",
        &message("c-1", "casey", "my parcel never arrived"),
    )
    .await;
    s.post_signed(
        "acme",
        "acme-signing",
        &message("c-2", "riley", "I want a refund for order 7"),
    )
    .await;
    let store = s.store().await;
    eventually(20, "both messages are processed", || async {
        count(&store, DONE, "acme").await == 2
    })
    .await;

    let (status, inbox) = s.get("/api/tenants/acme/inbox", &agent).await;
    assert_eq!(status, StatusCode::OK);
    let items = inbox["conversations"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let parcel = items
        .iter()
        .find(|c| c["conversation_key"] == "c-1")
        .unwrap();
    let refund = items
        .iter()
        .find(|c| c["conversation_key"] == "c-2")
        .unwrap();
    assert_eq!(parcel["proposed_drafts"], 1);
    assert_eq!(refund["escalated"], true);
    let (_, team) = s.get("/api/tenants/acme/inbox?team=billing", &agent).await;
    assert_eq!(team["conversations"].as_array().unwrap().len(), 1);

    // The conversation with labels, the decision and why, drafts with findings, the clock.
    let (status, view) = s
        .get(
            &format!(
                "/api/tenants/acme/conversations/{}",
                parcel["id"].as_str().unwrap()
            ),
            &agent,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let m = &view["messages"][0];
    assert_eq!(m["labels"][0]["name"], "topic:delivery");
    assert!(
        m["labels"][0]["plugin"]
            .as_str()
            .unwrap()
            .starts_with("keyword-classifier@")
    );
    assert_eq!(m["decision"]["fired"][0]["rule"], "care");
    let draft = m["drafts"][0]["id"].as_str().unwrap().to_string();
    assert!(view["sla"]["waiting_since"].is_i64(), "{view}");

    // An edit that deflects to a phone line is blocked by the guards and cannot be sent.
    let (status, v) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/edit"),
            &agent,
            json!({ "text": "Please call our support line on 1-800-555-0199." }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["blocked"], true, "{v}");
    let (status, v) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    // A good edit goes out once; sending again is refused.
    let good = "Hi @casey, sorry your parcel is late: that's on us. I've chased the courier and will update you here today. ^Ana";
    let (_, v) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/edit"),
            &agent,
            json!({ "text": good }),
        )
        .await;
    assert_eq!(v["blocked"], false, "{v}");
    let (status, v) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    eventually(20, "the agent's reply is posted", || async {
        state.lock().unwrap().posted.len() == 1
    })
    .await;
    assert!(
        state.lock().unwrap().requests[0]
            .1
            .contains("chased the courier")
    );

    // An escalated conversation's draft needs a supervisor: the agent cannot approve or send.
    let (_, view) = s
        .get(
            &format!(
                "/api/tenants/acme/conversations/{}",
                refund["id"].as_str().unwrap()
            ),
            &agent,
        )
        .await;
    let refund_draft = view["messages"][0]["drafts"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/drafts/{refund_draft}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/drafts/{refund_draft}/approve"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/drafts/{refund_draft}/approve"),
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/drafts/{refund_draft}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Assign, reject needs a reason, block needs a supervisor.
    let (status, _) = s
        .post(
            &format!(
                "/api/tenants/acme/conversations/{}/assign",
                parcel["id"].as_str().unwrap()
            ),
            &agent,
            json!({ "agent": "ana" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, mine) = s.get("/api/tenants/acme/inbox?assignee=ana", &agent).await;
    assert_eq!(mine["conversations"].as_array().unwrap().len(), 1);
    let (status, _) = s
        .post(
            "/api/tenants/acme/authors/webhook/riley/block",
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            "/api/tenants/acme/authors/webhook/riley/block",
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(
            "/api/tenants/acme/authors/webhook/nobody/block",
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The audit log names who did what.
    let (_, audit) = s.get("/api/tenants/acme/audit", &supervisor).await;
    let actions: Vec<(String, String)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap().into(),
                a["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("agent:ana", "draft.edited"),
        ("agent:ana", "reply.queued"),
        ("supervisor:sam", "draft.approved"),
        ("agent:ana", "conversation.assigned"),
        ("supervisor:sam", "customer.blocked"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {actions:?}"
        );
    }

    // Secrets: written through the API, used by the plugin, never shown.
    let secret = "rotated-signing-secret-value";
    let r = s
        .http
        .put(s.url("/api/tenants/acme/secrets/webhook/signing-secret"))
        .bearer_auth(&admin)
        .body(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = s
        .post_signed("acme", secret, &message("c-3", "casey", "thanks!"))
        .await;
    assert_eq!(status, StatusCode::OK, "the new secret is in use");
    let (status, _) = s
        .post_signed("acme", "acme-signing", &message("c-4", "casey", "thanks!"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old one is not");
    for path in [
        "/api/tenants/acme/config",
        "/api/tenants/acme/secrets",
        "/api/tenants/acme/plugins",
        "/api/tenants/acme/audit",
    ] {
        let (_, v) = s.get(path, &admin).await;
        let text = v.to_string();
        for value in [secret, "acme-signing", "xoxb-test", "fb-page"] {
            assert!(!text.contains(value), "{path} shows a secret: {text}");
        }
    }
    let (_, v) = s.get("/api/tenants/acme/secrets", &admin).await;
    assert!(
        v["secrets"]
            .as_array()
            .unwrap()
            .contains(&json!({ "instance": "webhook", "name": "signing-secret" }))
    );
    // Agents cannot touch secrets or config.
    let r = s
        .http
        .put(s.url("/api/tenants/acme/secrets/webhook/signing-secret"))
        .bearer_auth(&agent)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_each_tenants_api_secrets_and_disabled_flag() {
    // At start the server reads every tenant's stored secrets and flags in one pass; each
    // must still reach its own tenant, and only it.
    let mut s = TestServer::start(&[
        ("acme", acme("http://127.0.0.1:9/none", false)),
        ("globex", GLOBEX.into()),
    ])
    .await;
    let admin = s.token("acme", "admin", "ada").await;
    let rotated = "acme-rotated-before-restart";
    let r = s
        .http
        .put(s.url("/api/tenants/acme/secrets/webhook/signing-secret"))
        .bearer_auth(&admin)
        .body(rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = s
        .post("/admin/tenants/globex/disable", OPERATOR, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    s.stop().await;
    let data = s.data.clone();
    let s = TestServer::start_in(&data, false).await;
    let (status, _) = s
        .post_signed("acme", rotated, &message("r-1", "u-1", "hello"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "acme's API-written secret is in use"
    );
    let (status, _) = s
        .post_signed("acme", "acme-signing", &message("r-2", "u-1", "hello"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not the file's secret");
    let (status, _) = s
        .post_signed("globex", "globex-signing", &message("r-3", "u-1", "hi"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "globex is still disabled");
    s.post("/admin/tenants/globex/enable", OPERATOR, json!({}))
        .await;
    let (status, _) = s
        .post_signed("globex", "globex-signing", &message("r-4", "u-1", "hi"))
        .await;
    assert_eq!(status, StatusCode::OK, "globex keeps its own secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_while_messages_flow_loses_nothing_and_processes_nothing_twice() {
    let s = TestServer::start(&[("acme", acme("http://127.0.0.1:9/none", false))]).await;
    let store = s.store().await;

    // A bad upload changes nothing: wrong digest, not a component.
    let shouting = std::fs::read(fixture_path("shouting-classifier")).unwrap();
    let r = s
        .http
        .post(s.url(&format!("/admin/plugins?digest={}", "0".repeat(64))))
        .bearer_auth(OPERATOR)
        .body(shouting.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .http
        .post(s.url("/admin/plugins"))
        .bearer_auth(OPERATOR)
        .body(b"\0asm not really".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&shouting))
    };
    let r = s
        .http
        .post(s.url(&format!("/admin/plugins?digest={digest}")))
        .bearer_auth(OPERATOR)
        .body(shouting.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let uploaded: Value = r.json().await.unwrap();
    assert_eq!(uploaded["name"], "shouting-classifier");
    assert_eq!(uploaded["kind"], "classifier");
    // A connector cannot take a classifier's place: the old version keeps serving.
    let connector_bytes = std::fs::read(plugin_path("generic-webhook")).unwrap();
    let r = s
        .http
        .post(s.url("/admin/plugins"))
        .bearer_auth(OPERATOR)
        .body(connector_bytes.clone())
        .send()
        .await
        .unwrap();
    let conn: Value = r.json().await.unwrap();
    let (_, before) = s.get("/api/tenants/acme/plugins", OPERATOR).await;
    let (status, v) = s
        .api(
            reqwest::Method::PUT,
            "/api/tenants/acme/plugins/keywords",
            Some(OPERATOR),
            Some(json!({ "plugin": conn["name"], "digest": conn["digest"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("not a classifier"),
        "{v}"
    );
    let (_, after) = s.get("/api/tenants/acme/plugins", OPERATOR).await;
    assert_eq!(
        before["instances"], after["instances"],
        "a failed swap leaves the old version serving"
    );

    // Messages flow while the classifier is swapped.
    // The sender keeps posting until 30 messages have gone in after the swap finished, so
    // the swap happens mid-stream however long it takes on this machine.
    let swapped_at = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let sender = {
        let (http, url) = (s.http.clone(), s.url("/hooks/acme/webhook"));
        let swapped_at = swapped_at.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while i < swapped_at
                .load(std::sync::atomic::Ordering::SeqCst)
                .saturating_add(30)
            {
                let body = message(
                    &format!("h-{i}"),
                    &format!("u-{i}"),
                    &format!("WHERE IS MY PARCEL NUMBER {i}"),
                );
                let r = http
                    .post(&url)
                    .header("x-signature-256", sign("acme-signing", body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                i += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            i
        })
    };
    eventually(30, "the first messages are in", || async {
        count(&store, MESSAGES, "acme").await >= 30
    })
    .await;
    let (status, v) = s
        .api(
            reqwest::Method::PUT,
            "/api/tenants/acme/plugins/keywords",
            Some(OPERATOR),
            Some(json!({ "plugin": "shouting-classifier", "digest": digest })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    swapped_at.store(
        count(&store, MESSAGES, "acme").await as usize,
        std::sync::atomic::Ordering::SeqCst,
    );
    assert!(
        v["plugin"]
            .as_str()
            .unwrap()
            .starts_with("shouting-classifier@"),
        "{v}"
    );
    let n = sender.await.unwrap();
    eventually(60, "every message is processed", || async {
        count(&store, DONE, "acme").await == n as i64
    })
    .await;

    // None lost, none twice: one message row, one decision and one set of labels from
    // exactly one plugin version each; the old version before the swap, the new one after.
    assert_eq!(count(&store, MESSAGES, "acme").await, n as i64);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM decisions WHERE tenant = $1",
            "acme"
        )
        .await,
        n as i64
    );
    let mut old = Vec::new();
    let mut new = Vec::new();
    for i in 0..n {
        let (_, view) = s
            .get(&format!("/api/tenants/acme/conversations/h-{i}"), OPERATOR)
            .await;
        let labels = view["messages"][0]["labels"].as_array().unwrap().clone();
        let plugins: BTreeSet<&str> = labels
            .iter()
            .map(|l| l["plugin"].as_str().unwrap())
            .collect();
        assert_eq!(
            plugins.len(),
            1,
            "message {i} labelled by exactly one version: {labels:?}"
        );
        let p = *plugins.iter().next().unwrap();
        if p.starts_with("keyword-classifier@") {
            assert_eq!(labels[0]["name"], "topic:delivery");
            old.push(i);
        } else {
            assert!(p.starts_with("shouting-classifier@"), "{p}");
            assert_eq!(labels[0]["name"], "shouting");
            new.push(i);
        }
        assert_eq!(view["messages"][0]["drafts"].as_array().unwrap().len(), 1);
    }
    assert!(
        !old.is_empty() && !new.is_empty(),
        "old {old:?} new {new:?}"
    );
    assert!(
        old.iter().max() < new.iter().min(),
        "the swap is a clean cut: old {old:?} new {new:?}"
    );

    // The pin is in the tenant file: a restart serves the same version.
    let text = std::fs::read_to_string(s.data.join("tenants/acme.toml")).unwrap();
    assert!(text.contains(&digest), "{text}");
}

/// Issue 14, finding 3: an upload that calls itself `keyword-classifier` 9.9.9 (vendor left to
/// the SDK's `switchboard`) once became current at once, and every tenant's `keywords` ran it.
/// Now no tenant runs it unless that tenant pins it, and the operator cannot make it current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_named_like_a_built_in_runs_only_where_a_tenant_pins_it() {
    let s = TestServer::start(&[
        ("acme", acme("http://127.0.0.1:9/none", false)),
        ("globex", GLOBEX.into()),
    ])
    .await;
    let store = s.store().await;
    let builtin = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(plugin_path("keyword-classifier")).unwrap(),
        ))
    };
    let keywords = |v: &Value| {
        v["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instance"] == "keywords")
            .cloned()
            .unwrap()
    };
    let (_, before) = s.get("/api/tenants/acme/plugins", OPERATOR).await;
    assert_eq!(keywords(&before)["digest"], builtin.as_str());

    let r = s
        .http
        .post(s.url("/admin/plugins"))
        .bearer_auth(OPERATOR)
        .body(std::fs::read(fixture_path("impostor-plugin")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    assert_eq!(
        (&up["name"], &up["version"]),
        (&json!("keyword-classifier"), &json!("9.9.9"))
    );
    assert_eq!(up["current"], false, "{up}");
    assert_eq!(up["builtin_name"], true, "{up}");
    assert_eq!(up["vendor"], "unknown", "{up}");
    assert!(!s.data.join("plugins/keyword-classifier.wasm").exists());
    // The operator cannot make it current either.
    let (status, v) = s
        .post(
            "/admin/plugins/keyword-classifier/enable",
            OPERATOR,
            json!({ "digest": up["digest"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("built-in"), "{v}");

    // After a reload of everything, both tenants still run the built-in, and a message is
    // labelled by it.
    let (status, _) = s.post("/admin/reload", OPERATOR, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    for tenant in ["acme", "globex"] {
        let (_, v) = s
            .get(&format!("/api/tenants/{tenant}/plugins"), OPERATOR)
            .await;
        assert_eq!(keywords(&v)["digest"], builtin.as_str(), "{tenant}: {v}");
    }
    let (status, _) = s
        .post_signed(
            "acme",
            "acme-signing",
            &message("b-1", "u-1", "where is my parcel"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(30, "the message is processed", || async {
        count(&store, DONE, "acme").await == 1
    })
    .await;
    let (_, view) = s.get("/api/tenants/acme/conversations/b-1", OPERATOR).await;
    let labels = view["messages"][0]["labels"].as_array().unwrap();
    assert!(!labels.is_empty(), "{view}");
    for l in labels {
        let p = l["plugin"].as_str().unwrap();
        assert!(
            p.starts_with("keyword-classifier@") && p.ends_with(&format!("#{}", &builtin[..12])),
            "{l}"
        );
        assert_ne!(l["name"], "impostor", "{l}");
    }

    // A tenant that chooses it, by pinning its digest, runs it; the other does not.
    let (status, v) = s
        .api(
            reqwest::Method::PUT,
            "/api/tenants/globex/plugins/keywords",
            Some(OPERATOR),
            Some(json!({ "plugin": "keyword-classifier", "digest": up["digest"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["plugin"]
            .as_str()
            .unwrap()
            .starts_with("keyword-classifier@9.9.9#"),
        "{v}"
    );
    let (_, v) = s.get("/api/tenants/acme/plugins", OPERATOR).await;
    assert_eq!(keywords(&v)["digest"], builtin.as_str(), "{v}");

    // Before acme promotes it, a replay of its stored traffic shows what would change, and
    // pins nothing.
    let (status, v) = s
        .post(
            "/api/tenants/acme/plugins/keywords/replay",
            OPERATOR,
            json!({ "plugin": "keyword-classifier", "digest": up["digest"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let replay = &v["replay"];
    assert_eq!(replay["messages"], 1, "{v}");
    assert_eq!(replay["labels_changed"], 1, "{v}");
    let diff = &replay["diffs"][0];
    assert_eq!(diff["text"], "where is my parcel", "{v}");
    assert_eq!(diff["candidate"]["labels"]["impostor"], 1.0, "{v}");
    assert!(diff["current"]["labels"].get("impostor").is_none(), "{v}");
    let (_, after) = s.get("/api/tenants/acme/plugins", OPERATOR).await;
    assert_eq!(keywords(&after)["digest"], builtin.as_str(), "{after}");
    // An unknown instance or version is a clear error.
    let (status, v) = s
        .post(
            "/api/tenants/acme/plugins/nope/replay",
            OPERATOR,
            json!({ "digest": up["digest"] }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_in_the_data_folder_is_reloaded_and_a_broken_one_is_not() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    let (_, before) = s.get("/api/tenants/globex/plugins", OPERATOR).await;
    let generation = before["generation"].as_u64().unwrap();

    // A deploy drops a new build of the classifier into the plugin folder.
    std::fs::copy(
        fixture_path("shouting-classifier"),
        s.data.join("plugins/keyword-classifier.wasm"),
    )
    .unwrap();
    eventually(
        20,
        "the tenant reloads with the dropped-in plugin",
        || async {
            let (_, v) = s.get("/api/tenants/globex/plugins", OPERATOR).await;
            v["instances"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["plugin"] == "shouting-classifier")
        },
    )
    .await;
    let (_, after) = s.get("/api/tenants/globex/plugins", OPERATOR).await;
    assert!(after["generation"].as_u64().unwrap() > generation);

    // A broken edit of the tenant file: the old config keeps serving, and readiness says why.
    std::fs::write(
        s.data.join("tenants/globex.toml"),
        "tenant = \"globex\"\n[[connectors]]\nname = 1\n",
    )
    .unwrap();
    eventually(20, "the broken file is reported", || async {
        let (_, v) = s.get("/readyz", OPERATOR).await;
        v["config_errors"]
            .as_object()
            .is_some_and(|e| !e.is_empty())
    })
    .await;
    let (status, _) = s
        .post_signed(
            "globex",
            "globex-signing",
            &message("w-1", "u", "still here"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the old version still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_keeps_its_cursor_across_a_restart_and_backs_off_on_errors() {
    // A Mastodon instance on loopback: the first call fails, then it serves one mention (a
    // real captured notification) unless asked for newer ones.
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let fail_first = Arc::new(Mutex::new(true));
    let fixture = std::fs::read_to_string(
        shared_data()
            .join("fixtures/mastodon/mastodon_py_cassettes/notifications_list_mentions_only.json"),
    )
    .unwrap();
    let app = {
        let calls = calls.clone();
        axum::Router::new().route(
            "/api/v1/notifications",
            axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
                let (calls, fail_first, fixture) =
                    (calls.clone(), fail_first.clone(), fixture.clone());
                async move {
                    let q = q.unwrap_or_default();
                    calls.lock().unwrap().push(q.clone());
                    let mut fail = fail_first.lock().unwrap();
                    if *fail {
                        *fail = false;
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                    }
                    let body = if q.contains("min_id") {
                        "[]".to_string()
                    } else {
                        fixture
                    };
                    (axum::http::StatusCode::OK, body)
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tenant = format!(
        r#"
tenant = "toots"
[egress]
allow = ["127.0.0.1"]
allow_private = true
[[connectors]]
name = "mastodon"
plugin = "mastodon-connector"
poll_every_s = 1
[connectors.config]
instance = "{instance}"
account = "mastodonpy_test"
[connectors.secrets]
access-token = {{ value = "tok" }}
"#
    );
    let mut s = TestServer::start(&[("toots", tenant)]).await;
    let store = s.store().await;
    eventually(30, "the mention is polled after the failure", || async {
        count(&store, MESSAGES, "toots").await == 1
    })
    .await;
    eventually(10, "the cursor moves on", || async {
        calls.lock().unwrap().iter().any(|q| q.contains("min_id"))
    })
    .await;
    let failures_seen = calls.lock().unwrap().len();
    assert!(
        failures_seen >= 3,
        "a failed poll, a good one, one with the cursor"
    );

    // Restart on the same data folder: the first poll already carries the stored cursor.
    s.stop().await;
    let before_restart = calls.lock().unwrap().len();
    let data = s.data.clone();
    let s2 = TestServer::start_in(&data, false).await;
    eventually(10, "the restarted server polls", || async {
        calls.lock().unwrap().len() > before_restart
    })
    .await;
    let first_after = calls.lock().unwrap()[before_restart].clone();
    assert!(
        first_after.contains("min_id"),
        "the cursor survived the restart: {first_after}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count(&s2.store().await, MESSAGES, "toots").await,
        1,
        "no duplicate after restart"
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_report_health_metrics_and_the_api() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tenants"], 1);
    s.post_signed("globex", "globex-signing", &message("o-1", "u", "refund"))
        .await;
    s.post_signed("globex", "nope", &message("o-2", "u", "refund"))
        .await;
    let store = s.store().await;
    eventually(20, "processed", || async {
        count(&store, DONE, "globex").await == 1
    })
    .await;
    let (status, _) = s.api(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "metrics name tenants: operator only"
    );
    let text = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"switchboard_webhook_requests_total{tenant="globex",connector="webhook",status="200"}"#,
        r#"switchboard_webhook_requests_total{tenant="globex",connector="webhook",status="401"}"#,
        r#"switchboard_plugin_calls_total{tenant="globex",plugin="keyword-classifier",stage="classify"}"#,
        r#"switchboard_plugin_errors_total{tenant="globex",plugin="generic-webhook",stage="webhook",kind="plugin-unauthorized"}"#,
        r#"switchboard_plugin_call_seconds_bucket{tenant="globex",plugin="keyword-classifier",stage="classify""#,
        r#"switchboard_plugin_memory_bytes_bucket{tenant="globex""#,
        r#"switchboard_messages_processed_total{tenant="globex",result="done"}"#,
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let r = s.http.get(s.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_creates_tenants_and_tenant_admins_cannot_reach_the_server() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    let put = |path: String, token: &str, body: String| {
        s.http
            .put(s.url(&path))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    let initech = GLOBEX.replace("globex", "initech");
    // A tenant admin cannot create a tenant; a broken config creates nothing.
    let globex_admin = s.token("globex", "admin", "g").await;
    let r = put(
        "/api/tenants/initech/config".into(),
        &globex_admin,
        initech.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(
        "/api/tenants/initech/config".into(),
        OPERATOR,
        "tenant = \"initech\"\n[[classifiers]]\nname = \"k\"\nplugin = \"no-such-plugin\"\n".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("no-such-plugin"),
        "{v}"
    );
    assert!(!s.data.join("tenants/initech.toml").exists());
    // A config for another tenant id under this name is refused.
    let r = put(
        "/api/tenants/initech/config".into(),
        OPERATOR,
        GLOBEX.into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = put(
        "/api/tenants/initech/config".into(),
        OPERATOR,
        initech.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = s
        .post_signed("initech", "initech-signing", &message("i-1", "u", "refund"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the new tenant takes webhooks at once"
    );

    // A tenant admin may change its own config, but not reach the server's files, environment
    // or private network through it.
    for (what, config) in [
        (
            "secret from env",
            GLOBEX.replace("{ value = \"globex-signing\" }", "{ env = \"HOME\" }"),
        ),
        (
            "secret from a file",
            GLOBEX.replace(
                "{ value = \"globex-signing\" }",
                "{ file = \"/etc/hostname\" }",
            ),
        ),
        (
            "plugin path",
            GLOBEX.replace(
                "plugin = \"keyword-classifier\"",
                "plugin = \"/tmp/evil.wasm\"",
            ),
        ),
        (
            "private egress",
            GLOBEX.replace("[ingress]", "[egress]\nallow_private = true\n[ingress]"),
        ),
        (
            "granted dir",
            GLOBEX.replace(
                "[classifiers.config.labels]",
                "granted_dir = \"/\"\n[classifiers.config.labels]",
            ),
        ),
    ] {
        let r = put("/api/tenants/globex/config".into(), &globex_admin, config)
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("only the operator"),
            "{what}: {v}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(s.data.join("tenants/globex.toml")).unwrap(),
        GLOBEX,
        "refused configs change nothing"
    );
    let edited = GLOBEX.replace("\"refund\"]", "\"refund\", \"money back\"]");
    let r = put(
        "/api/tenants/globex/config".into(),
        &globex_admin,
        edited.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        std::fs::read_to_string(s.data.join("tenants/globex.toml")).unwrap(),
        edited
    );

    // The plugin store: an upload is listed and inspectable, and enabling a version makes it
    // the current `plugins/<name>.wasm` (what unpinned tenants load; the file-watch test shows
    // a tenant switching when that file changes); an unknown digest is a 404.
    let shouting = std::fs::read(fixture_path("shouting-classifier")).unwrap();
    let r = s
        .http
        .post(s.url("/admin/plugins"))
        .bearer_auth(OPERATOR)
        .body(shouting)
        .send()
        .await
        .unwrap();
    let up: Value = r.json().await.unwrap();
    let (status, v) = s.get("/admin/plugins/shouting-classifier", OPERATOR).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["versions"][0]["digest"], up["digest"]);
    assert_eq!(v["versions"][0]["current"], true);
    let (status, v) = s
        .post(
            "/admin/plugins/shouting-classifier/enable",
            OPERATOR,
            json!({ "digest": up["digest"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        std::fs::read(s.data.join("plugins/shouting-classifier.wasm")).unwrap(),
        std::fs::read(fixture_path("shouting-classifier")).unwrap()
    );
    let (status, _) = s
        .post(
            "/admin/plugins/shouting-classifier/enable",
            OPERATOR,
            json!({ "digest": "f".repeat(64) }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The acme tenant with service levels, a satisfaction survey, a team and sign-off of expert
/// answers.
fn acme_with_care(deliver_url: &str) -> String {
    acme(deliver_url, false)
        + r#"
[service_levels]
counting = "around-the-clock"
first_response = { internal_min = 30, published_min = 60 }

[satisfaction]
question = "How did we do? Reply 1 (poor) to 5 (great)."

[[agents]]
name = "ana"
teams = ["care", "billing"]

[[agents]]
name = "eve"
teams = ["experts"]
expert_in = ["topic:delivery"]

[signoff]
expert_answer = ["supervisor"]
"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_care_workflow_is_worked_through_the_api() {
    let state = Arc::new(Mutex::new(Platform::default()));
    let url = platform(state.clone()).await;
    let s = TestServer::start(&[("acme", acme_with_care(&url))]).await;
    let ana = s.token("acme", "agent", "ana").await;
    let eve = s.token("acme", "agent", "eve").await;
    let sam = s.token("acme", "supervisor", "sam").await;
    s.post_signed(
        "acme",
        "acme-signing",
        &message("c-1", "casey", "my parcel never arrived"),
    )
    .await;
    s.post_signed(
        "acme",
        "acme-signing",
        &message("c-2", "riley", "I want a refund for order 7"),
    )
    .await;
    let store = s.store().await;
    eventually(20, "both messages are processed", || async {
        count(&store, DONE, "acme").await == 2
    })
    .await;

    // Both customers are on the clock; ana got both conversations by round robin.
    let (status, levels) = s.get("/api/tenants/acme/service-levels", &ana).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(levels["clocks"].as_array().unwrap().len(), 2, "{levels}");
    assert_eq!(levels["clocks"][0]["state"], "running");
    let (_, inbox) = s.get("/api/tenants/acme/inbox?assignee=ana", &ana).await;
    let parcel = inbox["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation_key"] == "c-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, view) = s
        .get(&format!("/api/tenants/acme/conversations/{parcel}"), &ana)
        .await;
    assert_eq!(view["sla"]["clocks"][0]["kind"], "first");
    assert_eq!(view["conversation"]["participants"][0]["agent"], "ana");
    let casey = view["conversation"]["customer_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Ana asks the delivery expert; only eve answers; the answer needs a supervisor.
    let (status, asked) = s
        .post(
            &format!("/api/tenants/acme/conversations/{parcel}/expert-requests"),
            &ana,
            json!({ "question": "Lost parcels: what do we offer?", "topic": "topic:delivery" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    assert_eq!(asked["expert"], "eve");
    let request = asked["request"].as_str().unwrap();
    let (_, queue) = s
        .get("/api/tenants/acme/expert-requests?expert=eve", &eve)
        .await;
    assert_eq!(queue["requests"].as_array().unwrap().len(), 1);
    let answer =
        json!({ "answer": "Hi Casey, we've sent a replacement today by tracked post. ^Ana" });
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/expert-requests/{request}/answer"),
            &ana,
            answer.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answered) = s
        .post(
            &format!("/api/tenants/acme/expert-requests/{request}/answer"),
            &eve,
            answer,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    let draft = answered["draft"].as_str().unwrap();
    let (status, refused) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/send"),
            &ana,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, approved) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/approve"),
            &sam,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (status, sent) = s
        .post(
            &format!("/api/tenants/acme/drafts/{draft}/send"),
            &ana,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["counts_as"], "response");
    // Delivered: casey's clock stops; riley's keeps running.
    eventually(20, "the answer stops casey's clock", || async {
        let (_, l) = s.get("/api/tenants/acme/service-levels", &ana).await;
        l["clocks"].as_array().unwrap().len() == 1
    })
    .await;

    // Resolve: the survey goes out in the channel, once; casey answers with a number.
    let (status, resolved) = s
        .post(
            &format!("/api/tenants/acme/conversations/{parcel}/resolve"),
            &ana,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert!(resolved["survey"].is_string());
    let (status, _) = s
        .post(
            &format!("/api/tenants/acme/conversations/{parcel}/resolve"),
            &ana,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    eventually(20, "the survey is delivered", || async {
        state
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|(_, body)| body.contains("How did we do?"))
    })
    .await;
    let answer = json!({ "id": "c-1-answer", "conversation": "c-1", "author": { "id": "casey" }, "text": "5 ⭐" });
    s.post_signed("acme", "acme-signing", &answer.to_string())
        .await;
    eventually(20, "the answer is recorded", || async {
        count(
            &store,
            "SELECT COUNT(*) FROM surveys WHERE tenant = $1 AND score = 5",
            "acme",
        )
        .await
            == 1
    })
    .await;

    // The report is for supervisors.
    let (status, _) = s.get("/api/tenants/acme/report", &ana).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, report) = s.get("/api/tenants/acme/report", &sam).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["volumes"]["webhook"], 3, "{report}");
    assert_eq!(report["satisfaction"]["answered"], 1);
    assert_eq!(report["satisfaction"]["by_agent"]["ana"]["average"], 5.0);
    assert_eq!(report["service_levels"]["answered"], 1);
    let (status, _) = s
        .get("/api/tenants/acme/report?since=10&until=5", &sam)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // One customer: an agent's merge (supervisor only), undone exactly.
    let riley = {
        let (_, all) = s.get("/api/tenants/acme/inbox", &ana).await;
        let id = all["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["conversation_key"] == "c-2")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, v) = s
            .get(&format!("/api/tenants/acme/conversations/{id}"), &ana)
            .await;
        v["conversation"]["customer_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let merge_path = format!("/api/tenants/acme/customers/{riley}/merge");
    let (status, _) = s.post(&merge_path, &ana, json!({ "into": casey })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, merged) = s.post(&merge_path, &sam, json!({ "into": casey })).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    let (_, one) = s
        .get(&format!("/api/tenants/acme/customers/{casey}"), &ana)
        .await;
    assert_eq!(one["conversations"].as_array().unwrap().len(), 2);
    let undo = format!(
        "/api/tenants/acme/merges/{}/undo",
        merged["merge"].as_str().unwrap()
    );
    assert_eq!(s.post(&undo, &sam, json!({})).await.0, StatusCode::OK);
    assert_eq!(s.post(&undo, &sam, json!({})).await.0, StatusCode::CONFLICT);
    let (_, one) = s
        .get(&format!("/api/tenants/acme/customers/{casey}"), &ana)
        .await;
    assert_eq!(one["conversations"].as_array().unwrap().len(), 1);
}
