//! The Slack connector as a built component in the real runtime: every Slack fixture in the
//! shared data folder, the published v0 signature vector, redeliveries, the length rule, and
//! delivery to a loopback mock of the Web API.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Capability, Event, LengthUnit, Message, MessageAction, Origin,
    OutboundReply, PluginError, Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("slack", "slack-connector");

const SECRET: &str = "slack-signing-secret-for-tests";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", SECRET)
}

/// POST `body` signed now, as Slack would, with extra headers.
async fn post(
    plugin: &Harness,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Result<WebhookOutcome, CallError> {
    let ts = now().to_string();
    let sig = sign(SECRET, &ts, body);
    let mut headers = vec![
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("X-Slack-Signature", sig.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/slack",
            &headers,
            body,
        ))
        .await
}

fn fixture(relative: &str) -> Vec<u8> {
    switchboard_testkit::fixture("slack", relative)
}

fn events(outcome: WebhookOutcome) -> Vec<Event> {
    match outcome {
        WebhookOutcome::Events(e) => e,
        WebhookOutcome::Challenge(r) => panic!("unexpected challenge {r:?}"),
    }
}

fn only_message(outcome: WebhookOutcome) -> Message {
    match events(outcome).as_slice() {
        [Event::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

fn only_skip(outcome: WebhookOutcome) -> (Option<String>, String) {
    match events(outcome).as_slice() {
        [Event::Skipped(s)] => (s.event_type.clone(), s.reason.clone()),
        other => panic!("expected one skipped event, got {other:?}"),
    }
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_fixture_is_normalised_skipped_or_refused_and_none_crashes() {
    let plugin = connector().await;
    let files = switchboard_testkit::fixture_files("slack");
    assert_eq!(files.len(), 15, "{files:?}");
    let (mut normalised, mut skipped, mut challenges, mut refused) = (0, 0, 0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(path).unwrap();
        match post(&plugin, &body, &[]).await {
            Ok(WebhookOutcome::Challenge(_)) => challenges += 1,
            Ok(WebhookOutcome::Events(events)) => {
                assert!(!events.is_empty(), "{name}: no events");
                for e in events {
                    match e {
                        Event::Message(m) => {
                            assert_eq!(m.channel, "slack", "{name}");
                            normalised += 1;
                        }
                        Event::Skipped(s) => {
                            assert!(!s.reason.is_empty(), "{name}: skipped without a reason");
                            skipped += 1;
                        }
                    }
                }
            }
            Err(e) => {
                assert!(
                    !matches!(
                        e.failure,
                        CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
                    ),
                    "{name} crashed the plugin: {e}"
                );
                let error = plugin_error(&e);
                assert!(
                    name.ends_with(".jsonc") || name.ends_with(".NOT_VALID_JSON.txt"),
                    "{name} was refused: {error:?}"
                );
                assert!(
                    matches!(error, PluginError::InvalidInput(m) if m.contains("not valid JSON") && m.contains(" line ") && m.contains(" column ")),
                    "{name}: {error:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(
        (normalised, skipped, challenges, refused),
        (2, 10, 1, 2),
        "normalised, skipped, challenges, refused"
    );
}

#[tokio::test]
async fn url_verification_fixture_gets_its_challenge_back() {
    let plugin = connector().await;
    let outcome = post(
        &plugin,
        &fixture("docs_slack_dev/url_verification.json"),
        &[],
    )
    .await
    .unwrap();
    let WebhookOutcome::Challenge(r) = outcome else {
        panic!("expected a challenge answer")
    };
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    // The handshake is only answered when the request is signed by Slack.
    let unsigned = plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/slack",
            &[],
            &fixture("docs_slack_dev/url_verification.json"),
        ))
        .await
        .unwrap_err();
    assert!(unsigned.is_unauthorized(), "{unsigned}");
}

#[tokio::test]
async fn golden_messages_are_normalised_with_markup_resolved() {
    let plugin = connector().await.tenant("acme");
    let m = only_message(
        post(
            &plugin,
            &fixture("slack-web_golden/message_rich_text.json"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.tenant, "acme");
    assert_eq!(m.channel, "slack");
    assert_eq!(m.external_id, "C045V0VJT16:1670625739.704049");
    assert_eq!(m.conversation_key, "C045V0VJT16:1670625739.704049");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.author.id, "U043H11ES4V");
    assert_eq!(
        m.text,
        "#general :cat: @U043H11ES4V https://google.com text text text"
    );
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.origin, Origin::Other);
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(m.received_at, 1_670_625_739_704);
    assert_eq!(m.language, None);
    assert!(m.attachments.is_empty());
    assert_eq!(extra(&m, "channel"), Some("C045V0VJT16"));
    assert_eq!(extra(&m, "team"), Some("T043DB835ML"));
    assert_eq!(extra(&m, "channel-type"), Some("channel"));
    assert_eq!(extra(&m, "thread-ts"), None);
    assert_eq!(extra(&m, "retry-num"), None);

    // A shared message: no text of its own, the shared message as a link attachment.
    let m = only_message(
        post(
            &plugin,
            &fixture("slack-web_golden/shared_message_no_content.json"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "C043YJGBY49:1668537593.598469");
    assert_eq!(m.text, "");
    assert_eq!(m.received_at, 1_668_537_593_598);
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.kind, AttachmentKind::Link);
    assert_eq!(
        a.url.as_deref(),
        Some("https://jadeapptesting.slack.com/archives/C043KSKGJUB/p1665615886364019")
    );
    assert_eq!(
        a.description.as_deref(),
        Some("[October 12th, 2022 4:04 PM] jadel: blahblahblahblahblah")
    );
}

#[tokio::test]
async fn golden_non_customer_events_are_skipped_with_reasons() {
    let plugin = connector().await;
    let cases = [
        (
            "slack-web_golden/app_home_opened_home.json",
            "app_home_opened",
            "`app_home_opened` events are not customer messages",
        ),
        (
            "slack-web_golden/app_home_opened_messages.json",
            "app_home_opened",
            "`app_home_opened` events are not customer messages",
        ),
        (
            "slack-web_golden/channel_unshared.json",
            "channel_unshared",
            "`channel_unshared` events are not customer messages",
        ),
        (
            "slack-web_golden/circleci.json",
            "message",
            "messages from bots are not customer messages",
        ),
        (
            "slack-web_golden/github_notification.json",
            "message",
            "messages from bots are not customer messages",
        ),
        (
            "slack-web_golden/slackbotIm.json",
            "message",
            "messages from bots are not customer messages",
        ),
        (
            "slack-web_golden/joinChannel.json",
            "channel_join",
            "message subtype `channel_join` is not a customer message",
        ),
    ];
    for (file, event_type, reason) in cases {
        let (t, r) = only_skip(post(&plugin, &fixture(file), &[]).await.unwrap());
        assert_eq!(t.as_deref(), Some(event_type), "{file}");
        assert_eq!(r, reason, "{file}");
    }
    // The scrubbed SDK samples have an empty envelope `type`: not deliveries.
    for file in [
        "java-slack-sdk_samples_scrubbed/MessagePayload.json",
        "java-slack-sdk_samples_scrubbed/MessageBotPayload.json",
        "java-slack-sdk_samples_scrubbed/MessageRepliedPayload.json",
    ] {
        let (t, r) = only_skip(post(&plugin, &fixture(file), &[]).await.unwrap());
        assert_eq!(t, None, "{file}");
        assert!(
            r.contains("envelope `type` is missing or empty"),
            "{file}: {r}"
        );
    }
}

/// A scrubbed SDK sample with the blanks a real delivery would have filled in.
fn filled_in(file: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(file)).unwrap();
    v["type"] = "event_callback".into();
    v["team_id"] = "T1".into();
    v["authorizations"][0]["user_id"] = "UAPP".into();
    v["authorizations"][0]["is_bot"] = true.into();
    let e = &mut v["event"];
    e["channel"] = "C777".into();
    e["ts"] = "1700000050.000200".into();
    e["thread_ts"] = "1700000000.000100".into();
    e["event_ts"] = "1700000050.000200".into();
    e["channel_type"] = "channel".into();
    if e.get("user").is_some() {
        e["user"] = "U123".into();
    }
    if let Some(inner) = e.get_mut("message") {
        inner["user"] = "U123".into();
        inner["ts"] = "1700000000.000100".into();
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn filled_in_sdk_samples_exercise_the_large_payloads() {
    let plugin = connector().await;
    // MessagePayload: a user message with an empty `bot_id` (no bot), blocks, attachments,
    // metadata and an `edited` stamp; a reply in a thread.
    let m = only_message(
        post(
            &plugin,
            &filled_in("java-slack-sdk_samples_scrubbed/MessagePayload.json"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "C777:1700000050.000200");
    assert_eq!(m.conversation_key, "C777:1700000000.000100");
    assert_eq!(m.in_reply_to.as_deref(), Some("C777:1700000000.000100"));
    assert_eq!(m.author.id, "U123");
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(extra(&m, "thread-ts"), Some("1700000000.000100"));
    assert_eq!(extra(&m, "team"), Some("T1"));

    let (t, r) = only_skip(
        post(
            &plugin,
            &filled_in("java-slack-sdk_samples_scrubbed/MessageBotPayload.json"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("bot_message"));
    assert_eq!(r, "messages from bots are not customer messages");

    let (t, r) = only_skip(
        post(
            &plugin,
            &filled_in("java-slack-sdk_samples_scrubbed/MessageRepliedPayload.json"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("message_replied"));
    assert_eq!(
        r,
        "message subtype `message_replied` is not a customer message"
    );
}

/// The documentation's `.jsonc` examples with their trailing commas removed.
fn repaired(file: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(file)).unwrap();
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(*c);
    }
    out.into_bytes()
}

#[tokio::test]
async fn app_mentions_from_the_docs_are_refused_as_published_and_read_once_repaired() {
    let plugin = connector().await;
    for file in [
        "docs_slack_dev/app_mention_usage_example.jsonc",
        "docs_slack_dev/app_mention_already_in_channel.jsonc",
    ] {
        let err = post(&plugin, &fixture(file), &[]).await.unwrap_err();
        let PluginError::InvalidInput(message) = plugin_error(&err) else {
            panic!("{file}: {err}")
        };
        assert!(message.contains("trailing comma"), "{file}: {message}");
        assert!(
            message.contains(" line ") && message.contains(" column "),
            "{file}: {message}"
        );
    }

    let m = only_message(
        post(
            &plugin,
            &repaired("docs_slack_dev/app_mention_usage_example.jsonc"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "C123ABC456:1515449522.000016");
    assert_eq!(m.conversation_key, "C123ABC456:1515449522.000016");
    assert_eq!(m.author.id, "U061F7AUR");
    assert_eq!(m.text, "@U0LAN0Z89 is it everything a river should be?");
    assert_eq!(m.origin, Origin::Mention);
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.received_at, 1_515_449_522_000);
    assert_eq!(extra(&m, "team"), Some("T123ABC456"));
    assert_eq!(extra(&m, "event-id"), Some("Ev123ABC456"));

    let m = only_message(
        post(
            &plugin,
            &repaired("docs_slack_dev/app_mention_already_in_channel.jsonc"),
            &[],
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.text, "What is the hour of the pearl, @U0LAN0Z89?");
    assert_eq!(m.author.id, "U123ABC456");
}

#[tokio::test]
async fn a_redelivery_has_the_same_id_and_carries_the_retry_number() {
    let plugin = connector().await;
    let body = fixture("slack-web_golden/message_rich_text.json");
    let first = only_message(post(&plugin, &body, &[]).await.unwrap());
    // Slack redelivers the same envelope; a rebuilt one (new event_id) must not matter either.
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["event_id"] = "Ev-redelivered".into();
    let again = serde_json::to_vec(&v).unwrap();
    let second = only_message(
        post(
            &plugin,
            &again,
            &[
                ("X-Slack-Retry-Num", "1"),
                ("X-Slack-Retry-Reason", "http_timeout"),
            ],
        )
        .await
        .unwrap(),
    );
    assert_eq!(first.external_id, second.external_id);
    assert_eq!(first.conversation_key, second.conversation_key);
    assert_eq!(extra(&second, "retry-num"), Some("1"));
    assert_eq!(extra(&second, "retry-reason"), Some("http_timeout"));
    assert_eq!(extra(&first, "retry-num"), None);
}

#[tokio::test]
async fn the_published_v0_vector_verifies_and_tampering_or_staleness_fails() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "slack_v0_docs_worked_example")
        .expect("Slack vector present");
    let secret = v["secret"].as_str().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let ts = v["headers"]["X-Slack-Request-Timestamp"].as_str().unwrap();
    let sig = v["headers"]["X-Slack-Signature"].as_str().unwrap();
    let content_type = v["headers"]["Content-Type"].as_str().unwrap();
    let headers = [
        ("X-Slack-Request-Timestamp", ts),
        ("X-Slack-Signature", sig),
        ("Content-Type", content_type),
    ];
    // The vector was signed in 2018 (clock_now_for_test = its timestamp). The component reads
    // the real clock from the host, so the replay window must be widened to cover the years
    // since, plus a day; the unit tests check the vector at its own clock with the default
    // 300 s window.
    let age = now() - ts.parse::<i64>().unwrap();
    let window = (age + 86_400).to_string();
    let plugin = this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", secret)
        .config("max_skew_seconds", &window);

    // The signature verifies; the body is a slash command (form-encoded), which this
    // Events API connector refuses as input it does not handle.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/slack",
            &headers,
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("form-encoded")),
        "{err}"
    );

    // One byte changed: unauthorized, and the error shows neither secret nor signature.
    let mut tampered = body.to_vec();
    tampered[0] ^= 1;
    let err = plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/slack",
            &headers,
            &tampered,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains(secret));
    assert!(!err.to_string().contains(&sig[3..]));

    // With the default 300 s window the same, correctly signed request is stale: a replay.
    let strict = this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", secret);
    let err = strict
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/slack",
            &headers,
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unauthorized(m) if m.contains("replay window")),
        "{err}"
    );

    // A fresh request signed with the wrong secret is refused too.
    let wrong = this_plugin!()
        .await
        .unwrap()
        .secret("signing-secret", "not-the-secret");
    let err = post(
        &wrong,
        &fixture("docs_slack_dev/url_verification.json"),
        &[],
    )
    .await
    .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
}

#[tokio::test]
async fn length_rule_and_measure() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "slack");
    assert_eq!(info.length_rule.max, 40_000);
    assert_eq!(info.length_rule.unit, LengthUnit::Characters);
    assert!(!info.capabilities.contains(&Capability::Polling));
    assert!(info.capabilities.contains(&Capability::Threading));
    for (text, expected) in [
        ("hello", 5),
        ("您好，世界", 5),
        ("👨‍👩‍👧", 5),
        ("🇵🇹", 2),
        ("e\u{301}", 2), // e + combining acute: two scalar values
        ("see https://example.com/help/articles/12345", 43),
        ("R&D <3", 13),
    ] {
        assert_eq!(plugin.measure(text).await.unwrap(), expected, "{text}");
    }
    assert_eq!(plugin.measure(&"字".repeat(40_000)).await.unwrap(), 40_000);
}

/// Slack's Web API on loopback. By channel: `CRATE` is rate-limited with HTTP 429 once,
/// `CLIMIT` answers `ratelimited` in a 200, `CGONE` is `channel_not_found`, `CREVOKED` is
/// `token_revoked`, `CBROKE` is `internal_error`; anything else is posted.
async fn mock_slack() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.route(
        "POST",
        "/api/conversations.open",
        Reply::json(
            200,
            &serde_json::json!({"ok": true, "channel": {"id": "D0PRIVATE"}}),
        ),
    );
    let rate_limited_before = AtomicBool::new(false);
    mock.respond_with(move |r| {
        if (r.method.as_str(), r.path.as_str()) != ("POST", "/api/chat.postMessage") {
            return None;
        }
        let json = r.json();
        let channel = json["channel"].as_str().unwrap_or("").to_string();
        let fail = |code: &str| {
            Reply::text(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#))
                .header("retry-after", "3")
        };
        Some(match channel.as_str() {
            "CRATE" if !rate_limited_before.swap(true, Ordering::SeqCst) => {
                Reply::status(429).header("retry-after", "7")
            }
            "CLIMIT" => fail("ratelimited"),
            "CGONE" => fail("channel_not_found"),
            "CREVOKED" => fail("token_revoked"),
            "CBROKE" => fail("internal_error"),
            _ => Reply::json(
                200,
                &serde_json::json!({"ok": true, "channel": channel,
                    "ts": "1700000999.000900",
                    "message": {"text": json["text"], "type": "message"}}),
            )
            .header("retry-after", "0"),
        })
    });
    mock
}

fn reply(key: &str, channel: &str, visibility: Visibility) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: format!("{channel}:1700000000.000100"),
        in_reply_to: Some(format!("{channel}:1700000050.000200")),
        recipient: Author {
            id: "U043H11ES4V".into(),
            handle: None,
            display_name: None,
        },
        text: "Sorry about that <3 — R&D has a fix. ^Ana".into(),
        visibility,
        extra: vec![
            ("channel".into(), channel.into()),
            ("channel-type".into(), "channel".into()),
            ("thread-ts".into(), "1700000000.000100".into()),
        ],
    }
}

#[tokio::test]
async fn delivery_posts_the_documented_request_and_maps_slack_errors() {
    let mock = mock_slack().await;
    let base = format!("{}/api", mock.url());
    let plugin = connector()
        .await
        .secret("bot-token", "xoxb-test-token")
        .config("api_base", &base)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        // The mock stands in for slack.com, the only host the connector declares.
        .trust_undeclared_egress();

    // A public reply, threaded under the customer's thread.
    let receipt = plugin
        .deliver(&reply("r-1", "C045V0VJT16", Visibility::Public))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "C045V0VJT16:1700000999.000900");
    assert_eq!(receipt.url, None);
    {
        let seen = mock.requests();
        let sent = &seen[0];
        assert_eq!(sent.path, "/api/chat.postMessage");
        assert_eq!(sent.header("authorization"), Some("Bearer xoxb-test-token"));
        assert_eq!(
            sent.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            sent.json(),
            serde_json::json!({"channel": "C045V0VJT16",
                "text": "Sorry about that &lt;3 — R&amp;D has a fix. ^Ana",
                "thread_ts": "1700000000.000100"})
        );
    }
    // The same reply again (a host retry after a crash): no second post.
    let again = plugin
        .deliver(&reply("r-1", "C045V0VJT16", Visibility::Public))
        .await
        .unwrap();
    assert_eq!(again.external_id, receipt.external_id);
    assert_eq!(mock.count(), 1);

    // A private reply to a channel message: open a DM with the customer, post there unthreaded.
    let receipt = plugin
        .deliver(&reply("r-2", "C045V0VJT16", Visibility::Private))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "D0PRIVATE:1700000999.000900");
    {
        let seen = mock.requests();
        assert_eq!(seen[1].path, "/api/conversations.open");
        assert_eq!(seen[1].json(), serde_json::json!({"users": "U043H11ES4V"}));
        assert_eq!(
            seen[1].header("authorization"),
            Some("Bearer xoxb-test-token")
        );
        assert_eq!(seen[2].path, "/api/chat.postMessage");
        assert_eq!(seen[2].json()["channel"], "D0PRIVATE");
        assert!(seen[2].json().get("thread_ts").is_none());
    }

    // HTTP 429 with Retry-After, then accepted on the retry.
    let err = plugin
        .deliver(&reply("r-3", "CRATE", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(7)));
    let ok = plugin
        .deliver(&reply("r-3", "CRATE", Visibility::Public))
        .await
        .unwrap();
    assert_eq!(ok.external_id, "CRATE:1700000999.000900");

    // `ok: false` answers.
    let err = plugin
        .deliver(&reply("r-4", "CLIMIT", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(3)));
    for (channel, code) in [
        ("CGONE", "channel_not_found"),
        ("CREVOKED", "token_revoked"),
    ] {
        let err = plugin
            .deliver(&reply("r-5", channel, Visibility::Public))
            .await
            .unwrap_err();
        assert_eq!(
            plugin_error(&err),
            &PluginError::Rejected(format!(
                "chat.postMessage: Slack refused the request: {code}"
            ))
        );
    }
    let err = plugin
        .deliver(&reply("r-6", "CBROKE", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("internal_error")),
        "{err}"
    );

    // Without a bot token: not configured, and nothing is sent.
    let before = mock.count();
    let unconfigured = connector()
        .await
        .config("api_base", &base)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        // The mock stands in for slack.com, the only host the connector declares.
        .trust_undeclared_egress();
    let err = unconfigured
        .deliver(&reply("r-7", "C1", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("bot-token")),
        "{err}"
    );
    assert_eq!(mock.count(), before);
}

#[tokio::test]
async fn plugin_info_declares_slack_egress_and_secrets() {
    let plugin = connector().await;
    let info = &plugin.plugin().info;
    assert_eq!(info.name, "slack-connector");
    assert_eq!(info.egress, vec!["slack.com"]);
    assert_eq!(
        info.secrets,
        vec!["signing-secret".to_string(), "bot-token".to_string()]
    );
}
