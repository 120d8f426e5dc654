//! The Instagram connector as a built component in the real runtime: every Instagram fixture,
//! documented webhook shapes, the X-Hub-Signature-256 vector, the handshake, the length rule
//! and delivery to a loopback Graph API mock.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchboard_testkit::switchboard::contract::{
    Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError, Visibility,
    WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{
    Harness, PlatformMock, Reply, fixture, fixture_files, plugin_error, request,
};

plugin_under_test!("instagram", "instagram-connector");

const SECRET: &str = "meta-app-secret";
const PLATFORM: &str = "instagram";
const ACCOUNT: &str = "17841405309211844";

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("app-secret", SECRET)
        .secret("verify-token", "ig-verify")
        .secret("access-token", "IG-TOKEN-1")
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    let sig = meta_graph::signature::sign(SECRET, body);
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/instagram",
            &[("X-Hub-Signature-256", &sig)],
            body,
        ))
        .await
}

async fn events(plugin: &Harness, body: &[u8]) -> Vec<Event> {
    match post(plugin, body).await.unwrap() {
        WebhookOutcome::Events(e) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn only_message(events: &[Event]) -> &Message {
    match events {
        [Event::Message(m)] => m,
        other => panic!("expected one message, got {other:?}"),
    }
}

fn only_skip(events: &[Event]) -> (Option<&str>, &str) {
    match events {
        [Event::Skipped(s)] => (s.event_type.as_deref(), s.reason.as_str()),
        other => panic!("expected one skipped event, got {other:?}"),
    }
}

#[tokio::test]
async fn every_fixture_is_normalised_skipped_or_refused_and_none_crashes() {
    let plugin = connector().await;
    let files = fixture_files(PLATFORM);
    assert_eq!(files.len(), 3, "fixture set changed");
    let (mut normalised, mut skipped, mut refused) = (0, 0, 0);
    for path in &files {
        let body = std::fs::read(path).unwrap();
        match post(&plugin, &body).await {
            Ok(WebhookOutcome::Events(events)) => {
                assert!(!events.is_empty());
                if events.iter().any(|e| matches!(e, Event::Message(_))) {
                    normalised += 1;
                } else {
                    skipped += 1;
                }
            }
            Ok(other) => panic!("{}: unexpected {other:?}", path.display()),
            Err(err) => {
                assert!(
                    !matches!(
                        err.failure,
                        CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
                    ),
                    "{}: crashed: {err}",
                    path.display()
                );
                assert!(matches!(plugin_error(&err), PluginError::InvalidInput(_)));
                refused += 1;
            }
        }
    }
    eprintln!("instagram fixtures: {normalised} normalised, {skipped} skipped, {refused} refused");
    assert_eq!((normalised, skipped, refused), (0, 3, 0));

    // What each one is, and why it is not a message.
    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb/v10_0_instagram-conversation.json"),
    )
    .await;
    assert!(
        only_skip(&e)
            .1
            .starts_with("a Graph API conversation object")
    );
    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb/v10_0_instagram-message.json"),
    )
    .await;
    assert!(only_skip(&e).1.starts_with("a Graph API message object"));
    let e = events(&plugin, &fixture(PLATFORM, "restfb/wh-livecomments.json")).await;
    assert_eq!(
        only_skip(&e),
        (
            Some("live_comments"),
            "the comment has no author (`from.id`)"
        )
    );
}

#[tokio::test]
async fn live_comment_fixture_with_its_author_is_a_public_comment() {
    let plugin = connector().await;
    let mut v: Value =
        serde_json::from_slice(&fixture(PLATFORM, "restfb/wh-livecomments.json")).unwrap();
    v["entry"][0]["changes"][0]["value"]["from"] =
        json!({"id": "1217981644879628", "username": "casey.j"});
    v["entry"][0]["changes"][0]["value"]["media"] =
        json!({"id": "17887498072083520", "media_product_type": "LIVE"});
    let e = events(&plugin, &serde_json::to_vec(&v).unwrap()).await;
    let m = only_message(&e);
    assert_eq!(m.channel, "instagram");
    assert_eq!(m.external_id, "123456789");
    assert_eq!(m.conversation_key, "17887498072083520");
    assert_eq!(m.text, "This is an example.");
    assert_eq!(m.author.handle.as_deref(), Some("@casey.j"));
    assert_eq!(
        (m.visibility, m.origin),
        (Visibility::Public, Origin::Comment)
    );
    assert_eq!(m.received_at, 1_519_399_307_000);
    assert!(m.extra.contains(&("live".into(), "true".into())));
    assert!(
        m.extra
            .contains(&("media-product-type".into(), "LIVE".into()))
    );
}

#[tokio::test]
async fn documented_dm_and_comment_deliveries() {
    let plugin = connector().await;
    let body = json!({"object": "instagram", "entry": [
        {"id": ACCOUNT, "time": 1569262486134i64, "messaging": [
            {"sender": {"id": "IGSID-1"}, "recipient": {"id": ACCOUNT}, "timestamp": 1569262485349i64,
             "message": {"mid": "aWdfZAG1faXRlbTpJR01lc3NhZA", "text": "My order never arrived 😡",
                         "attachments": [{"type": "image", "payload": {"url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"}}]}},
            {"sender": {"id": "IGSID-1"}, "recipient": {"id": ACCOUNT}, "timestamp": 1569262489000i64,
             "message": {"mid": "aWdfZAG1faXRlbTpJR01lc3NhZA", "is_deleted": true}},
            {"sender": {"id": ACCOUNT}, "recipient": {"id": "IGSID-1"}, "timestamp": 1569262490000i64,
             "message": {"mid": "aWdf-echo", "text": "We're looking into it", "is_echo": true}},
            {"sender": {"id": "IGSID-1"}, "recipient": {"id": ACCOUNT}, "timestamp": 1569262491000i64,
             "reaction": {"mid": "aWdf-echo", "action": "react", "reaction": "love", "emoji": "❤️"}}]},
        {"id": ACCOUNT, "time": 1569262500, "changes": [
            {"field": "comments", "value": {"from": {"id": "232323232", "username": "dana"},
             "media": {"id": "123123123", "media_product_type": "FEED"}, "id": "17865799348089039",
             "parent_id": "17865799348089000", "text": "Still waiting for my refund"}},
            {"field": "mentions", "value": {"media_id": "17887498072083520", "comment_id": "17887498072083521"}}]}
    ]}).to_string();
    let e = events(&plugin, body.as_bytes()).await;
    assert_eq!(e.len(), 6);
    let Event::Message(dm) = &e[0] else {
        panic!("{:?}", e[0])
    };
    assert_eq!(dm.external_id, "aWdfZAG1faXRlbTpJR01lc3NhZA");
    assert_eq!(dm.conversation_key, format!("{ACCOUNT}:IGSID-1"));
    assert_eq!(dm.text, "My order never arrived 😡");
    assert_eq!(
        (dm.visibility, dm.origin),
        (Visibility::Private, Origin::DirectMessage)
    );
    assert_eq!(dm.received_at, 1_569_262_485_349);
    assert_eq!(dm.attachments.len(), 1);
    assert!(dm.extra.contains(&("ig-user-id".into(), ACCOUNT.into())));
    let Event::Message(deleted) = &e[1] else {
        panic!()
    };
    assert_eq!(
        (deleted.action, deleted.external_id.as_str()),
        (MessageAction::Deleted, dm.external_id.as_str())
    );
    assert!(matches!(&e[2], Event::Skipped(s) if s.reason.contains("echo")));
    assert!(matches!(&e[3], Event::Skipped(s) if s.event_type.as_deref() == Some("reaction")));
    let Event::Message(c) = &e[4] else { panic!() };
    assert_eq!(
        (c.external_id.as_str(), c.conversation_key.as_str()),
        ("17865799348089039", "123123123")
    );
    assert_eq!(c.in_reply_to.as_deref(), Some("17865799348089000"));
    assert_eq!(c.author.handle.as_deref(), Some("@dana"));
    assert_eq!(c.received_at, 1_569_262_500_000);
    assert!(matches!(&e[5], Event::Skipped(s) if s.event_type.as_deref() == Some("mentions")));
}

#[tokio::test]
async fn signatures_handshake_and_bad_json() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "x_hub_signature_256_github_docs_example")
        .unwrap();
    let secret = v["secret"].as_str().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let header = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
    let plugin = this_plugin!().await.unwrap().secret("app-secret", secret);
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
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("not valid JSON")),
        "{err}"
    );
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Hub-Signature-256", header)],
            b"Hello, World?",
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized());
    let wrong = this_plugin!()
        .await
        .unwrap()
        .secret("app-secret", "not the secret");
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
    let unset = this_plugin!().await.unwrap();
    let err = unset
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Hub-Signature-256", header)],
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("app-secret"))
    );

    let plugin = connector().await;
    let WebhookOutcome::Challenge(r) = plugin
        .webhook(&request(
            "GET",
            "https://h/ig?hub.mode=subscribe&hub.verify_token=ig-verify&hub.challenge=CH4LL",
            &[],
            b"",
        ))
        .await
        .unwrap()
    else {
        panic!("expected the challenge")
    };
    assert_eq!((r.status, r.body.as_slice()), (200, &b"CH4LL"[..]));
    assert!(
        plugin
            .webhook(&request(
                "GET",
                "https://h/ig?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=CH4LL",
                &[],
                b""
            ))
            .await
            .unwrap_err()
            .is_unauthorized()
    );

    let err = post(
        &plugin,
        b"\xEF\xBB\xBF{\"object\": \"instagram\", \"entry\": [}",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("line 1, column 35")),
        "{err}"
    );
}

#[tokio::test]
async fn length_rule_is_utf8_bytes() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(
        (info.channel.as_str(), info.length_rule.max),
        ("instagram", 1000)
    );
    assert_eq!(plugin.measure("Hello").await.unwrap(), 5);
    assert_eq!(plugin.measure("日本語").await.unwrap(), 9);
    assert_eq!(plugin.measure("👨‍👩‍👧").await.unwrap(), 18);
    assert_eq!(
        plugin.measure("https://help.example.com/x").await.unwrap(),
        26
    );
    assert_eq!(plugin.measure(&"a".repeat(1000)).await.unwrap(), 1000);
}

/// A Graph API on loopback. Recipients pick the answer: `busy` → code 80002 with
/// `X-Business-Use-Case-Usage`, `flood` → HTTP 429, `gone` → code 551, `late` → subcode 2018108;
/// anything else succeeds.
async fn mock_graph() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        if r.path.ends_with("/replies") {
            return Some(Reply::json(200, &json!({"id": "17870913679156914"})));
        }
        let error = |code: i64, sub: Option<i64>| {
            let mut e = json!({"message": "refused", "type": "OAuthException", "code": code});
            if let Some(s) = sub {
                e["error_subcode"] = json!(s);
            }
            Reply::json(400, &json!({"error": e}))
        };
        Some(match r.json()["recipient"]["id"].as_str().unwrap_or("") {
            "busy" => Reply::json(400, &json!({"error": {"message": "limit", "code": 80002}}))
                .header(
                    "x-business-use-case-usage",
                    r#"{"178414":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":2}]}"#,
                ),
            "flood" => Reply::status(429),
            "gone" => error(551, None),
            "late" => error(100, Some(2018108)),
            _ => Reply::json(200, &json!({"recipient_id": "IGSID-1", "message_id": "aWdf_sent"})),
        })
    });
    mock
}

fn reply(
    key: &str,
    recipient: &str,
    visibility: Visibility,
    extra: &[(&str, &str)],
) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: "c".into(),
        in_reply_to: Some("17865799348089039".into()),
        recipient: Author {
            id: recipient.into(),
            handle: Some("@dana".into()),
            display_name: None,
        },
        text: "So sorry, Dana — refund sent today. ^Ana".into(),
        visibility,
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn delivery_speaks_graph_and_maps_its_errors() {
    let mock = mock_graph().await;
    let plugin = connector()
        .await
        .config("api_base", mock.url())
        .config("ig_user_id", ACCOUNT)
        .config("graph_version", "v22.0")
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress();
    let dm = [("kind", "message")];
    let comment = [("kind", "comment"), ("comment-id", "17865799348089039")];

    let r = plugin
        .deliver(&reply("k-1", "IGSID-1", Visibility::Private, &dm))
        .await
        .unwrap();
    assert_eq!(r.external_id, "aWdf_sent");
    let r = plugin
        .deliver(&reply("k-2", "232323232", Visibility::Public, &comment))
        .await
        .unwrap();
    assert_eq!(r.external_id, "17870913679156914");
    let r = plugin
        .deliver(&reply("k-3", "232323232", Visibility::Private, &comment))
        .await
        .unwrap();
    assert_eq!(r.external_id, "aWdf_sent");
    {
        let seen = mock.requests();
        assert_eq!(
            seen[0].path_and_query(),
            format!("/v22.0/{ACCOUNT}/messages")
        );
        assert_eq!(seen[0].header("authorization"), Some("Bearer IG-TOKEN-1"));
        assert_eq!(
            seen[0].json(),
            json!({"recipient": {"id": "IGSID-1"}, "messaging_type": "RESPONSE", "message": {"text": "So sorry, Dana — refund sent today. ^Ana"}})
        );
        assert_eq!(seen[1].path_and_query(), "/v22.0/17865799348089039/replies");
        assert_eq!(
            seen[1].json(),
            json!({"message": "So sorry, Dana — refund sent today. ^Ana"})
        );
        assert_eq!(
            seen[2].json()["recipient"],
            json!({"comment_id": "17865799348089039"})
        );
    }
    let err = plugin
        .deliver(&reply("k-4", "busy", Visibility::Private, &dm))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(120)));
    let err = plugin
        .deliver(&reply("k-5", "flood", Visibility::Private, &dm))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(None));
    let err = plugin
        .deliver(&reply("k-6", "gone", Visibility::Private, &dm))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("not available")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("k-7", "late", Visibility::Private, &dm))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.starts_with("outside the 24-hour messaging window")),
        "{err}"
    );
    // Over the DM byte limit: refused before anything is sent.
    let before = mock.count();
    let mut long = reply("k-8", "IGSID-1", Visibility::Private, &dm);
    long.text = "日".repeat(334);
    let err = plugin.deliver(&long).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("1002 UTF-8 bytes"))
    );
    assert_eq!(mock.count(), before);
}
