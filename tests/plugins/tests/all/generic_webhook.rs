//! The generic webhook connector as a built component in the real runtime: the published
//! X-Hub-Signature-256 vector, a signed batch, the handshake, and delivery to a loopback mock.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    Author, Event, OutboundReply, PluginError, Visibility, WebhookOutcome,
};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("generic-webhook", "generic-webhook");

const SECRET: &str = "acme-webhook-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", SECRET)
}

#[tokio::test]
async fn published_x_hub_signature_256_vector_is_decided_right() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "x_hub_signature_256_github_docs_example")
        .expect("vector present");
    let secret = v["secret"].as_str().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let header = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
    let plugin = this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", secret)
        .config("signature_header", "X-Hub-Signature-256");

    // The signature verifies; then the body ("Hello, World!") is refused as not JSON.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Hub-Signature-256", header)],
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("JSON")),
        "{err}"
    );

    // One byte changed, or a wrong secret: unauthorized, and the error never shows the secret.
    let mut tampered = body.to_vec();
    tampered[0] ^= 1;
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Hub-Signature-256", header)],
            &tampered,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains(secret));
    let wrong = this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", "not it")
        .config("signature_header", "X-Hub-Signature-256");
    assert!(
        wrong
            .webhook(&request(
                "POST",
                "https://h/",
                &[("X-Hub-Signature-256", header)],
                body
            ))
            .await
            .unwrap_err()
            .is_unauthorized()
    );
}

#[tokio::test]
async fn a_signed_batch_becomes_normalised_messages_stamped_by_the_host() {
    let plugin = connector().await.tenant("acme");
    let body = serde_json::json!({"events": [
        {"id": 101, "author": {"id": 7, "handle": "@casey", "name": "Casey Jones"},
         "text": "My order 1234 never arrived 😡", "created_at": "2026-11-20T10:00:00Z",
         "conversation": "thread-9", "private": true, "tenant": "someone-else"},
        {"id": "102", "type": "reaction", "author": {"id": "7"}},
        {"id": "103", "text": "no author"}
    ]})
    .to_string();
    let sig = sign(SECRET, body.as_bytes());
    let outcome = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Signature-256", &sig)],
            body.as_bytes(),
        ))
        .await
        .unwrap();
    let WebhookOutcome::Events(events) = outcome else {
        panic!("expected events")
    };
    assert_eq!(events.len(), 3);
    let Event::Message(m) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(
        m.tenant, "acme",
        "the host, not the payload, decides the tenant"
    );
    assert_eq!(m.channel, "webhook");
    assert_eq!(
        (m.external_id.as_str(), m.conversation_key.as_str()),
        ("101", "thread-9")
    );
    assert_eq!(m.author.id, "7");
    assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.received_at, 1_795_168_800_000); // 2026-11-20T10:00:00Z
    assert_eq!(m.text, "My order 1234 never arrived 😡");
    assert!(matches!(&events[1], Event::Skipped(s) if s.event_type.as_deref() == Some("reaction")));
    assert!(matches!(&events[2], Event::Skipped(s) if s.reason.contains("author")));
}

#[tokio::test]
async fn the_handshake_answers_only_the_right_token() {
    let plugin = connector().await.secret("verify-token", "tok en");
    let ok = plugin
        .webhook(&request(
            "GET",
            "https://h/hook?challenge=abc123&verify_token=tok%20en",
            &[],
            b"",
        ))
        .await
        .unwrap();
    let WebhookOutcome::Challenge(r) = ok else {
        panic!("expected a challenge answer")
    };
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abc123"[..]));
    let bad = plugin
        .webhook(&request(
            "GET",
            "https://h/hook?challenge=abc123&verify_token=guess",
            &[],
            b"",
        ))
        .await
        .unwrap_err();
    assert!(bad.is_unauthorized());
}

/// A platform API on loopback: the first delivery is rate-limited, the next accepted; a
/// recipient called `blocked` is refused permanently.
async fn mock_platform() -> PlatformMock {
    let mock = PlatformMock::start().await;
    let calls = AtomicUsize::new(0);
    mock.respond_with(move |r| {
        if (r.method.as_str(), r.path.as_str()) != ("POST", "/messages") {
            return None;
        }
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        Some(if r.json()["recipient"]["id"] == "blocked" {
            Reply::text(403, "recipient blocked the page").header("retry-after", "0")
        } else if first {
            Reply::status(429).header("retry-after", "7")
        } else {
            Reply::text(
                200,
                r#"{"id": "out-1", "url": "https://example.test/out-1"}"#,
            )
            .header("retry-after", "0")
        })
    });
    mock
}

fn reply(recipient: &str) -> OutboundReply {
    OutboundReply {
        idempotency_key: "reply-42".into(),
        conversation_key: "thread-9".into(),
        in_reply_to: Some("101".into()),
        recipient: Author {
            id: recipient.into(),
            handle: Some("@casey".into()),
            display_name: None,
        },
        text: "Sorry, Casey: I've reissued order 1234. ^Ana".into(),
        visibility: Visibility::Public,
        extra: vec![],
    }
}

#[tokio::test]
async fn delivery_speaks_the_documented_shape_and_maps_platform_errors() {
    let mock = mock_platform().await;
    let url = format!("{}/messages", mock.url());
    let plugin = connector()
        .await
        .config("deliver_url", &url)
        .allow_egress("127.0.0.1")
        .allow_private_addresses();

    let err = plugin.deliver(&reply("7")).await.unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(7)));
    let receipt = plugin.deliver(&reply("7")).await.unwrap();
    assert_eq!(receipt.external_id, "out-1");
    assert_eq!(receipt.url.as_deref(), Some("https://example.test/out-1"));
    let err = plugin.deliver(&reply("blocked")).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("403") && m.contains("blocked")),
        "{err}"
    );

    let sent = &mock.requests()[1];
    let body = sent.json();
    assert_eq!(sent.header("idempotency-key"), Some("reply-42"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(body["text"], "Sorry, Casey: I've reissued order 1234. ^Ana");
    assert_eq!(body["in_reply_to"], "101");
    assert_eq!(body["private"], false);
    // The platform side can verify the request came from this tenant's connector.
    assert_eq!(
        sent.header("x-signature-256").unwrap(),
        sign(SECRET, &sent.body)
    );
}
