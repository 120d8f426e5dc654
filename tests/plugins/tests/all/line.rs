//! The LINE connector as a built component in the real runtime: every LINE fixture, the
//! published x-line-signature vector, the length rule, and reply/push delivery to a loopback mock.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError,
    Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("line", "line-connector");

const SECRET: &str = "line-channel-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("channel-secret", SECRET)
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    let sig = sign(SECRET, body);
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/line",
            &[
                ("x-line-signature", &sig),
                ("content-type", "application/json"),
            ],
            body,
        ))
        .await
}

fn events(outcome: WebhookOutcome) -> Vec<Event> {
    match outcome {
        WebhookOutcome::Events(e) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn messages(events: &[Event]) -> Vec<&Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_fixture_is_normalised_or_skipped_and_none_crashes() {
    let plugin = connector().await;
    let files = switchboard_testkit::fixture_files("line");
    assert_eq!(files.len(), 2, "fixture set changed: {files:?}");
    let mut totals = (0, 0); // (messages, skipped)
    for file in &files {
        let body = std::fs::read(file).unwrap();
        match post(&plugin, &body).await {
            Ok(outcome) => {
                let ev = events(outcome);
                let m = messages(&ev).len();
                totals.0 += m;
                totals.1 += ev.len() - m;
                for e in &ev {
                    if let Event::Skipped(s) = e {
                        assert!(!s.reason.is_empty(), "{}: empty reason", file.display());
                    }
                }
            }
            Err(e) => {
                assert!(
                    !matches!(
                        e.failure,
                        CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
                    ),
                    "{}: {e}",
                    file.display()
                );
                panic!("{}: refused: {e}", file.display());
            }
        }
    }
    // Python SDK body: 12 messages + 15 skipped; Go SDK body: 16 messages + 16 skipped.
    assert_eq!(totals, (28, 31));
}

#[tokio::test]
async fn python_sdk_body_in_detail() {
    let plugin = connector().await.tenant("acme");
    let body = switchboard_testkit::fixture("line", "line-bot-sdk-python/tests_text_webhook.json");
    let ev = events(post(&plugin, &body).await.unwrap());
    assert_eq!(ev.len(), 27);
    let ms = messages(&ev);
    let text = ms[0];
    assert_eq!(text.tenant, "acme");
    assert_eq!(text.channel, "line");
    assert_eq!(text.external_id, "325708");
    assert_eq!(text.conversation_key, "U206d25c2ea6bd87c17655609a1c37cb8");
    assert_eq!(text.author.id, "U206d25c2ea6bd87c17655609a1c37cb8");
    assert_eq!(text.text, "Hello, world");
    assert_eq!(text.visibility, Visibility::Private);
    assert_eq!(text.origin, Origin::DirectMessage);
    assert_eq!(text.received_at, 1_462_629_479_859);
    assert_eq!(text.action, MessageAction::Created);
    assert_eq!(
        extra(text, "line-reply-token"),
        Some("nHuyWiB7yP5Zw52FIkcQobQuGDXCTA")
    );
    assert_eq!(
        extra(text, "line-to"),
        Some("U206d25c2ea6bd87c17655609a1c37cb8")
    );

    let video = ms
        .iter()
        .find(|m| extra(m, "line-message-type") == Some("video"))
        .unwrap();
    assert_eq!(video.attachments[0].kind, AttachmentKind::Video);
    assert_eq!(video.text, "");
    let file = ms
        .iter()
        .find(|m| extra(m, "line-message-type") == Some("file"))
        .unwrap();
    assert_eq!(file.attachments[0].kind, AttachmentKind::File);
    assert_eq!(file.attachments[0].description.as_deref(), Some("file.txt"));
    let group = ms
        .iter()
        .find(|m| {
            m.conversation_key == "Ca56f94637cc4347f90a25382909b24b9"
                && m.action == MessageAction::Created
        })
        .unwrap();
    assert_eq!(group.author.id, "U206d25c2ea6bd87c17655609a1c37cb8");
    // Group members other than the customer see it: public, as Telegram says of groups.
    assert_eq!(group.visibility, Visibility::Public);
    assert_eq!(group.origin, Origin::Other);

    let unsend = ms
        .iter()
        .find(|m| m.action == MessageAction::Deleted)
        .unwrap();
    assert_eq!(unsend.external_id, "325708");
    assert_eq!(unsend.text, "");

    // A redelivery keeps the external id: the host stores it once.
    let redelivered = ms.last().unwrap();
    assert_eq!(redelivered.external_id, "325708");
    assert_eq!(extra(redelivered, "line-redelivery"), Some("true"));

    let postback = ev
        .iter()
        .find_map(|e| match e {
            Event::Skipped(s) if s.event_type.as_deref() == Some("postback") => Some(s),
            _ => None,
        })
        .unwrap();
    assert!(postback.reason.contains("postback"));
    assert!(
        matches!(ev.last().unwrap(), Event::Skipped(s) if s.event_type.as_deref() == Some("undefined") && s.reason.contains("unknown"))
    );
}

#[tokio::test]
async fn go_sdk_body_mentions_emoji_and_standby() {
    let plugin = connector().await;
    let body = switchboard_testkit::fixture(
        "line",
        "line-bot-sdk-go_webhook_test_literals/webhookTestRequestBody.json",
    );
    let ev = events(post(&plugin, &body).await.unwrap());
    let ms = messages(&ev);
    let mention = ms
        .iter()
        .find(|m| m.text.starts_with("@openProfileUser"))
        .unwrap();
    assert_eq!(
        mention.conversation_key,
        "u206d25c2ea6bd87c17655609a1c37cb8"
    );
    assert_eq!(
        extra(mention, "line-mentions"),
        // The Go literal says length 16 for the 19-character `@notOpenProfileUser`: what it
        // points at is reported as is.
        Some("@openProfileUser @notOpenProfileU")
    );
    let emoji = ms
        .iter()
        .find(|m| m.text == "Hello, world! (love)")
        .unwrap();
    assert_eq!(extra(emoji, "line-emoji-count"), Some("1"));
    let standby = ms.iter().find(|m| m.text == "Stand by me").unwrap();
    assert_eq!(extra(standby, "line-mode"), Some("standby"));
    assert_eq!(extra(standby, "line-reply-token"), None);
    let sticker = ms.iter().find(|m| m.external_id == "3257088").unwrap();
    assert_eq!(sticker.attachments[0].kind, AttachmentKind::Sticker);
    assert!(
        sticker.attachments[0]
            .description
            .as_deref()
            .unwrap()
            .starts_with("LINE sticker 20/3 (cony, sally")
    );
    let location = ms
        .iter()
        .find(|m| extra(m, "line-message-type") == Some("location"))
        .unwrap();
    assert_eq!(location.attachments[0].kind, AttachmentKind::Location);
}

#[tokio::test]
async fn a_mention_of_the_account_after_an_emoji_and_a_quote() {
    let plugin = connector().await;
    let body = r#"{"destination":"Ubrand","events":[{"type":"message","mode":"active","timestamp":1700000000000,
        "replyToken":"rt","webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
        "source":{"type":"group","groupId":"Cfam","userId":"Ucasey"},
        "message":{"id":"555","type":"text","text":"🍎🍎 @Brand my order is late","quoteToken":"qt-1","quotedMessageId":"554",
        "mention":{"mentionees":[{"index":5,"length":6,"type":"user","userId":"Ubrand","isSelf":true}]}}}]}"#;
    let ev = events(post(&plugin, body.as_bytes()).await.unwrap());
    let [Event::Message(m)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(m.origin, Origin::Mention);
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.in_reply_to.as_deref(), Some("554"));
    assert_eq!(extra(m, "line-mentions"), Some("@Brand"));
    assert_eq!(extra(m, "line-webhook-event-id"), Some("01H"));
}

#[tokio::test]
async fn published_signature_vector_and_refusals() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "line_x_line_signature_sdk_vector")
        .unwrap();
    let plugin = this_plugin!()
        .await
        .unwrap()
        .secret("channel-secret", v["secret"].as_str().unwrap());
    let sig = v["headers"]["x-line-signature"].as_str().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    // Verified, then refused as not JSON, with the position.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/line",
            &[("x-line-signature", sig)],
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("line 1 column 1")),
        "{err}"
    );
    // Tampered body, wrong secret, no header: unauthorized, and the secret never shows.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/line",
            &[("x-line-signature", sig)],
            b"bodybodybodybodY",
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains("channel_secret"));
    let wrong = connector().await;
    assert!(
        wrong
            .webhook(&request(
                "POST",
                "https://h/line",
                &[("x-line-signature", sig)],
                body
            ))
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    assert!(
        plugin
            .webhook(&request("POST", "https://h/line", &[], body))
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    // The console's "Verify" request: an empty batch.
    let verify = br#"{"destination":"U1","events":[]}"#;
    let ok = connector().await;
    assert!(events(post(&ok, verify).await.unwrap()).is_empty());
    // A BOM is tolerated.
    let bom = [&b"\xEF\xBB\xBF"[..], verify].concat();
    assert!(events(post(&ok, &bom).await.unwrap()).is_empty());
}

#[tokio::test]
async fn length_rule_counts_utf16_code_units() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.length_rule.max, 5000);
    assert_eq!(plugin.measure("hello").await.unwrap(), 5);
    assert_eq!(plugin.measure("🍎").await.unwrap(), 2);
    assert_eq!(plugin.measure("👨‍👩‍👧").await.unwrap(), 8);
    assert_eq!(plugin.measure("ご注文は明日届きます").await.unwrap(), 10);
    assert_eq!(plugin.measure("𠮷野家").await.unwrap(), 4);
    assert_eq!(
        plugin.measure("https://example.com/help").await.unwrap(),
        24
    );
}

/// The Messaging API on loopback. Push to `Ulimited` is rate-limited, to `Ublocked` refused;
/// reply token `expired` is refused; a second push with the same retry key gets 409.
async fn mock_line() -> PlatformMock {
    let mock = PlatformMock::start().await;
    let retry_keys = Mutex::new(HashSet::new());
    mock.respond_with(move |r| {
        let json = r.json();
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v2/bot/message/reply") => Some(if json["replyToken"] == "expired" {
                Reply::text(400, r#"{"message":"Invalid reply token"}"#)
            } else {
                Reply::text(
                    200,
                    r#"{"sentMessages":[{"id":"900001","quoteToken":"q"}]}"#,
                )
            }),
            ("POST", "/v2/bot/message/push") => {
                let key = r.header("x-line-retry-key").unwrap_or("").to_string();
                let repeated = !retry_keys.lock().unwrap().insert(key);
                let answer = |status: u16, header: (&str, &str), body: &str| {
                    Some(Reply::text(status, body).header(header.0, header.1))
                };
                if json["to"] == "Ulimited" {
                    return answer(
                        429,
                        ("retry-after", "9"),
                        r#"{"message":"Too many requests"}"#,
                    );
                }
                if json["to"] == "Ublocked" {
                    return answer(
                        403,
                        ("retry-after", "0"),
                        r#"{"message":"Access to this API is not available for your account"}"#,
                    );
                }
                if json["to"] == "Udown" {
                    return answer(500, ("retry-after", "0"), r#"{"message":"Internal error"}"#);
                }
                if repeated {
                    return answer(
                        409,
                        ("x-line-accepted-request-id", "acc-1"),
                        r#"{"message":"The retry key is already accepted"}"#,
                    );
                }
                answer(
                    200,
                    ("retry-after", "0"),
                    r#"{"sentMessages":[{"id":"900002","quoteToken":"q"}]}"#,
                )
            }
            _ => None,
        }
    });
    mock
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn reply(key: &str, to: &str, extra: &[(&str, &str)]) -> OutboundReply {
    let mut all: Vec<(String, String)> = vec![("line-to".into(), to.into())];
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: to.into(),
        in_reply_to: Some("325708".into()),
        recipient: Author {
            id: to.into(),
            handle: None,
            display_name: None,
        },
        text: "ご不便をおかけしました。Your refund is on its way 🙏 ^Ana".into(),
        visibility: Visibility::Private,
        extra: all,
    }
}

async fn delivering(url: &str) -> Harness {
    connector()
        .await
        .secret("channel-access-token", "ACCESS-TOKEN")
        .config("api_base", url)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress()
}

#[tokio::test]
async fn fresh_token_replies_old_token_pushes_with_a_retry_key() {
    let mock = mock_line().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await;

    let fresh = now_ms().to_string();
    let r = reply(
        "k-fresh",
        "Ucasey",
        &[
            ("line-reply-token", "rt-1"),
            ("line-event-timestamp", &fresh),
            ("line-quote-token", "qt-9"),
        ],
    );
    let receipt = plugin.deliver(&r).await.unwrap();
    assert_eq!(receipt.external_id, "900001");
    // The same idempotency key again: the remembered receipt, no second call.
    assert_eq!(plugin.deliver(&r).await.unwrap().external_id, "900001");

    let old = (now_ms() - 120_000).to_string();
    let r = reply(
        "k-old",
        "Ucasey",
        &[("line-reply-token", "rt-2"), ("line-event-timestamp", &old)],
    );
    assert_eq!(plugin.deliver(&r).await.unwrap().external_id, "900002");

    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    let sent = &seen[0];
    assert_eq!(sent.path, "/v2/bot/message/reply");
    assert_eq!(sent.header("authorization"), Some("Bearer ACCESS-TOKEN"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(sent.header("x-line-retry-key").is_none());
    assert_eq!(
        sent.json(),
        serde_json::json!({"replyToken": "rt-1", "messages": [{"type": "text", "text": "ご不便をおかけしました。Your refund is on its way 🙏 ^Ana", "quoteToken": "qt-9"}]})
    );
    let sent = &seen[1];
    assert_eq!(sent.path, "/v2/bot/message/push");
    assert_eq!(sent.json()["to"], "Ucasey");
    assert_eq!(sent.json()["messages"][0]["type"], "text");
    let key = sent.header("x-line-retry-key").unwrap();
    assert_eq!(key.len(), 36);
    assert_eq!(key.matches('-').count(), 4);
}

#[tokio::test]
async fn refused_reply_token_falls_back_to_push_and_a_retried_push_is_not_sent_twice() {
    let mock = mock_line().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await;
    let fresh = now_ms().to_string();
    let r = reply(
        "k-expired",
        "Cfamily",
        &[
            ("line-reply-token", "expired"),
            ("line-event-timestamp", &fresh),
        ],
    );
    assert_eq!(plugin.deliver(&r).await.unwrap().external_id, "900002");
    {
        let seen = mock.requests();
        assert_eq!(
            seen.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["/v2/bot/message/reply", "/v2/bot/message/push"]
        );
        assert_eq!(seen[1].json()["to"], "Cfamily");
    }
    // A fresh plugin instance (no remembered receipt) retrying the same push: LINE answers 409,
    // which means the message already went out.
    let again = delivering(&url).await;
    let r = reply("k-expired", "Cfamily", &[]);
    let receipt = again.deliver(&r).await.unwrap();
    assert_eq!(receipt.external_id, "request:acc-1");
}

#[tokio::test]
async fn errors_map_to_rate_limits_refusals_and_outages() {
    let mock = mock_line().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await;
    let err = plugin
        .deliver(&reply("k-1", "Ulimited", &[]))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(9)));
    let err = plugin
        .deliver(&reply("k-2", "Ublocked", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("403") && m.contains("not available")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("k-3", "Udown", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("500")),
        "{err}"
    );
    // No access token: not configured, and nothing is sent.
    let before = mock.count();
    let bare = connector()
        .await
        .config("api_base", &url)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress();
    let err = bare
        .deliver(&reply("k-4", "Ucasey", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("channel-access-token"))
    );
    assert_eq!(mock.count(), before);
}
