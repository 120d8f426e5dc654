//! The Facebook connector as a built component in the real runtime: every Messenger / Page
//! fixture, the published X-Hub-Signature-256 vector, the verify-token handshake, the length
//! rule and delivery to a loopback Graph API mock.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard_testkit::logs::Level;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError,
    Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::CallFailure;
use switchboard_testkit::{
    Harness, PlatformMock, Reply, fixture, fixture_files, plugin_error, request,
};

plugin_under_test!("facebook", "facebook-connector");

const SECRET: &str = "meta-app-secret";
const PLATFORM: &str = "meta_messenger";

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("app-secret", SECRET)
        .secret("verify-token", "v3rify me")
        .secret("page-access-token", "PAGE-TOKEN-1")
}

async fn post(
    plugin: &Harness,
    body: &[u8],
) -> Result<WebhookOutcome, switchboard_testkit::switchboard::runtime::CallError> {
    let sig = meta_graph::signature::sign(SECRET, body);
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/facebook",
            &[
                ("X-Hub-Signature-256", &sig),
                ("content-type", "application/json"),
            ],
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

fn name(path: &Path) -> String {
    path.strip_prefix(switchboard_testkit::fixtures_dir(PLATFORM))
        .unwrap()
        .display()
        .to_string()
}

fn messages(events: &[Event]) -> Vec<&Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            Event::Skipped(_) => None,
        })
        .collect()
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
    let files: Vec<PathBuf> = fixture_files(PLATFORM);
    assert_eq!(files.len(), 53, "fixture set changed");
    let (mut normalised, mut skipped, mut refused) = (0, 0, 0);
    let mut message_count = 0;
    for path in &files {
        let body = std::fs::read(path).unwrap();
        match post(&plugin, &body).await {
            Ok(WebhookOutcome::Events(events)) => {
                assert!(!events.is_empty(), "{}: no events", name(path));
                for e in &events {
                    match e {
                        Event::Message(m) => {
                            assert_eq!(m.channel, "facebook");
                            assert!(!m.external_id.is_empty() && !m.author.id.is_empty());
                        }
                        Event::Skipped(s) => assert!(!s.reason.is_empty(), "{}", name(path)),
                    }
                }
                let n = messages(&events).len();
                message_count += n;
                if n > 0 {
                    normalised += 1;
                } else {
                    skipped += 1;
                }
            }
            Ok(other) => panic!("{}: unexpected {other:?}", name(path)),
            Err(err) => {
                assert!(
                    !matches!(
                        err.failure,
                        CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
                    ),
                    "{}: crashed: {err}",
                    name(path)
                );
                assert!(
                    matches!(plugin_error(&err), PluginError::InvalidInput(_)),
                    "{}: {err}",
                    name(path)
                );
                refused += 1;
            }
        }
    }
    eprintln!("facebook fixtures: {normalised} normalised, {skipped} skipped, {refused} refused");
    assert_eq!((normalised, skipped, refused), (13, 40, 0));
    assert_eq!(message_count, 13);
}

#[tokio::test]
async fn messenger_fixtures_are_normalised_with_their_fields() {
    let plugin = connector().await;
    let get = |f: &str| fixture(PLATFORM, f);

    let e = events(
        &plugin,
        &get("restfb_webhooks/messaging-message-reply-1.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(m.external_id, "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(m.conversation_key, "12345654332:987654321432");
    assert_eq!(
        m.in_reply_to.as_deref(),
        Some("very_long_id_representing_the_original_message")
    );
    assert_eq!(m.author.id, "987654321432");
    assert_eq!(m.text, "hello, world!");
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    assert_eq!(m.received_at, 1_457_764_197_627);
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(m.tenant, "test-tenant", "the host stamps the tenant");
    assert!(m.extra.contains(&("page-id".into(), "12345654332".into())));
    assert!(m.extra.contains(&("kind".into(), "message".into())));

    let e = events(
        &plugin,
        &get("restfb_webhooks/messaging-message-isdeleted.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(
        (m.action, m.external_id.as_str(), m.text.as_str()),
        (MessageAction::Deleted, "message_id", "")
    );

    let e = events(
        &plugin,
        &get("restfb_webhooks/messaging-message-nlp-location.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(m.text, "Can we meet in Los Angeles?");
    assert_eq!(m.received_at, 1_546_989_995_572);

    let e = events(
        &plugin,
        &get("restfb_webhooks/messaging-airline-itinerary-template.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(m.text, "");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Other);
    assert_eq!(
        m.attachments[0].description.as_deref(),
        Some("airline_itinerary")
    );

    // A UTF-8 BOM in front of the JSON is tolerated (botbuilder fixtures).
    let e = events(
        &plugin,
        &get("botbuilder-dotnet_facebook_adapter_tests/PayloadWithTakeThreadControl.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("take_thread_control"));
    let e = events(
        &plugin,
        &get("botbuilder-dotnet_facebook_adapter_tests/Payload.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(
        (m.external_id.as_str(), m.text.as_str(), m.received_at),
        ("AAAA-BBBB-CCCC", "text", 2_222_222)
    );

    let e = events(
        &plugin,
        &get("restfb_webhooks/standby-message-basic-echo.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("standby"));
    let e = events(
        &plugin,
        &get("botbuilder-dotnet_facebook_adapter_tests/PayloadWithReferral.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("referral"));
    let e = events(
        &plugin,
        &get("restfb_webhooks/messaging-policy-callback-unblock.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("policy-enforcement"));
    let e = events(&plugin, &get("restfb_webhooks/user-movies-add.json")).await;
    assert_eq!(
        only_skip(&e),
        (
            Some("user"),
            "webhook object `user` is not handled by the Facebook Page connector (it expects `page`)"
        )
    );
}

#[tokio::test]
async fn documentation_fragments_are_skipped_and_normalise_once_enveloped() {
    let plugin = connector().await;
    for f in [
        "developers_facebook_com_docs/messages_message_with_attachment_entry.json",
        "developers_facebook_com_docs/messages_text_message.json",
    ] {
        let e = events(&plugin, &fixture(PLATFORM, f)).await;
        assert!(only_skip(&e).1.contains("documentation fragment"), "{f}");
    }
    // The same documented shapes inside a real envelope.
    let entry: Value = serde_json::from_slice(&fixture(
        PLATFORM,
        "developers_facebook_com_docs/messages_message_with_attachment_entry.json",
    ))
    .unwrap();
    let body = json!({"object": "page", "entry": [entry]}).to_string();
    let e = events(&plugin, body.as_bytes()).await;
    let m = only_message(&e);
    assert_eq!(m.external_id, "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c");
    assert_eq!(m.conversation_key, "682498302938465:<PSID>");
    assert_eq!(m.received_at, 1_518_479_195_308);
    assert_eq!(m.attachments[0].url.as_deref(), Some("<ATTACHMENT_URL>"));
    let event: Value = serde_json::from_slice(&fixture(
        PLATFORM,
        "developers_facebook_com_docs/messages_text_message.json",
    ))
    .unwrap();
    let body =
        json!({"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": [event]}]})
            .to_string();
    let e = events(&plugin, body.as_bytes()).await;
    let m = only_message(&e);
    assert_eq!(m.text, "hello, world!");
    assert!(m.extra.contains(&(
        "quick-reply-payload".into(),
        "<DEVELOPER_DEFINED_PAYLOAD>".into()
    )));
}

/// Replace the page's own author id with a customer's, so the page-authored feed fixtures show
/// how a customer's comment or post is normalised.
fn as_customer(file: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(PLATFORM, file)).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    if value.get("sender_id").is_some() {
        value["sender_id"] = json!(705955836155788u64);
    }
    if value.get("from").is_some() {
        value["from"]["id"] = json!("705955836155788");
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn page_comments_and_visitor_posts() {
    let plugin = connector().await;
    // As delivered, these were written by the page itself: skipped, never answered.
    for f in [
        "restfb_webhooks/feed-comment-add-with-photo.json",
        "restfb_webhooks/feed-status-add-25.json",
        "restfb_webhooks/feed-comment-remove-25.json",
    ] {
        let e = events(&plugin, &fixture(PLATFORM, f)).await;
        assert!(only_skip(&e).1.contains("page itself"), "{f}");
    }
    let e = events(
        &plugin,
        &as_customer("restfb_webhooks/feed-comment-add-with-photo.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(m.external_id, "901097836652708_903438993085259");
    assert_eq!(m.conversation_key, "1234567890321_901097836652708");
    assert_eq!(
        m.in_reply_to.as_deref(),
        Some("1234567890321_901097836652708")
    );
    assert_eq!(m.author.id, "705955836155788");
    assert_eq!(m.author.display_name.as_deref(), Some("Tester"));
    assert_eq!(m.text, "and the next one");
    assert_eq!(
        (m.visibility, m.origin, m.action),
        (Visibility::Public, Origin::Comment, MessageAction::Created)
    );
    assert_eq!(m.received_at, 1_449_135_003_000);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert!(
        m.attachments[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://scontent-fra3-1.xx.fbcdn.net/")
    );
    assert!(m.extra.contains(&(
        "comment-id".into(),
        "901097836652708_903438993085259".into()
    )));

    let e = events(
        &plugin,
        &as_customer("restfb_webhooks/feed-comment-edited-25.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(
        (m.action, m.text.as_str()),
        (MessageAction::Edited, "Let's see the Webhooks in action :D")
    );
    let e = events(
        &plugin,
        &as_customer("restfb_webhooks/feed-comment-remove-25.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(
        (m.action, m.external_id.as_str()),
        (MessageAction::Deleted, "905578656204626_905579239537901")
    );
    assert_eq!(
        m.received_at, 1_452_107_182_000,
        "entry time when created_time is missing"
    );
    let e = events(
        &plugin,
        &as_customer("restfb_webhooks/feed-status-edited-photos.json"),
    )
    .await;
    let m = only_message(&e);
    assert_eq!(
        (m.external_id.as_str(), m.origin, m.action),
        (
            "1234567890321_949560725137650",
            Origin::Mention,
            MessageAction::Edited
        )
    );
    assert_eq!(m.attachments.len(), 3);

    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb_webhooks/feed-comment-hide.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("feed.comment.hide"));
    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb_webhooks/feed-reaction-add-comment.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("feed.reaction.add"));
    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb_webhooks/mention-comment-add.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("mention"));
    let e = events(
        &plugin,
        &fixture(PLATFORM, "restfb_webhooks/unknown-change-value.json"),
    )
    .await;
    assert_eq!(only_skip(&e).0, Some("foo"));
}

#[tokio::test]
async fn a_batch_with_many_entries_keeps_every_event() {
    let plugin = connector().await;
    let body = json!({"object": "page", "entry": [
        {"id": "111", "time": 1700000000000i64, "messaging": [
            {"sender": {"id": "7"}, "recipient": {"id": "111"}, "timestamp": 1700000000001i64, "message": {"mid": "m.1", "text": "first"}},
            {"sender": {"id": "7"}, "recipient": {"id": "111"}, "timestamp": 1700000000002i64, "message_edit": {"mid": "m.1", "text": "first!", "num_edit": 1}},
            {"sender": {"id": "7"}, "recipient": {"id": "111"}, "reaction": {"mid": "m.0", "action": "react", "reaction": "love"}}]},
        {"id": "111", "time": 1700000100, "changes": [
            {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "5_6", "post_id": "111_5", "parent_id": "111_5", "from": {"id": "9", "name": "Dana"}, "message": "Still broken", "created_time": 1700000100}}]}
    ]}).to_string();
    let e = events(&plugin, body.as_bytes()).await;
    assert_eq!(e.len(), 4);
    let ms = messages(&e);
    assert_eq!(ms.len(), 3);
    assert_eq!(
        (ms[0].action, ms[1].action),
        (MessageAction::Created, MessageAction::Edited)
    );
    assert_eq!(ms[1].external_id, ms[0].external_id);
    assert_eq!(ms[2].visibility, Visibility::Public);
    assert!(matches!(&e[2], Event::Skipped(s) if s.event_type.as_deref() == Some("reaction")));
}

#[tokio::test]
async fn signatures_are_checked_on_the_raw_body() {
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
    // Valid signature; then the body ("Hello, World!") is not JSON: invalid input with position.
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
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("line 1, column 1")),
        "{err}"
    );
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
    let err = plugin
        .webhook(&request("POST", "https://h/", &[], body))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized());

    // A real fixture re-serialised (whitespace changed) no longer matches its signature.
    let raw = fixture(PLATFORM, "restfb_webhooks/messaging-message-reply-1.json");
    let sig = meta_graph::signature::sign(SECRET, &raw);
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&raw).unwrap()).unwrap();
    let plugin = connector().await;
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("x-hub-signature-256", &sig)],
            &compact,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized());

    // Commented JSON (as in documentation examples) is refused with its position.
    let jsonc = b"{\n  \"object\": \"page\", // the page\n  \"entry\": []\n}";
    let err = post(&plugin, jsonc).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("line 2, column 21")),
        "{err}"
    );
}

#[tokio::test]
async fn the_verify_token_handshake() {
    let plugin = connector().await;
    let ok = plugin.webhook(&request("GET", "https://sb.example/hooks/facebook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=v3rify+me", &[], b"")).await.unwrap();
    let WebhookOutcome::Challenge(r) = ok else {
        panic!("expected the challenge")
    };
    assert_eq!((r.status, r.body.as_slice()), (200, &b"1158201444"[..]));
    let bad = plugin.webhook(&request("GET", "https://sb.example/hooks/facebook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess", &[], b"")).await.unwrap_err();
    assert!(bad.is_unauthorized());
    assert!(!bad.to_string().contains("v3rify"));
}

#[tokio::test]
async fn length_rule_counts_characters() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(
        (info.channel.as_str(), info.length_rule.max),
        ("facebook", 2000)
    );
    assert_eq!(plugin.measure("Hello").await.unwrap(), 5);
    assert_eq!(plugin.measure("日本語のテキスト").await.unwrap(), 8);
    // A family emoji is 5 scalar values joined by ZWJ; a flag is 2.
    assert_eq!(plugin.measure("👨‍👩‍👧").await.unwrap(), 5);
    assert_eq!(plugin.measure("🇵🇹").await.unwrap(), 2);
    // Links count as their full length.
    assert_eq!(
        plugin
            .measure("see https://help.example.com/a/b?c=d")
            .await
            .unwrap(),
        36
    );
    assert_eq!(plugin.measure(&"é".repeat(2000)).await.unwrap(), 2000);
}

fn graph_error(status: u16, code: i64, subcode: Option<i64>) -> Reply {
    let mut error = json!({"message": "(#x) refused", "type": "OAuthException", "code": code, "fbtrace_id": "AbC"});
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    Reply::json(status, &json!({"error": error}))
}

/// A Graph API on loopback. Messenger recipients pick the answer: `flood` → HTTP 429,
/// `expired` → code 190, `late` → code 10/2018278, `down` → HTTP 500; anything else succeeds.
async fn mock_graph() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        if r.path.ends_with("/comments") {
            return Some(Reply::json(200, &json!({"id": "1234567890321_reply_1"})));
        }
        Some(match r.json()["recipient"]["id"].as_str().unwrap_or("") {
            "flood" => Reply::status(429).header("retry-after", "30"),
            "expired" => graph_error(400, 190, Some(463)),
            "late" => graph_error(400, 10, Some(2018278)),
            "down" => Reply::text(500, "oops"),
            _ => Reply::json(
                200,
                &json!({"recipient_id": "987654321432", "message_id": "m_sent_1"}),
            ),
        })
    });
    mock
}

fn reply(
    key: &str,
    psid: &str,
    visibility: Visibility,
    extra: &[(&str, &str)],
    in_reply_to: &str,
) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: format!("12345654332:{psid}"),
        in_reply_to: Some(in_reply_to.into()),
        recipient: Author {
            id: psid.into(),
            handle: None,
            display_name: None,
        },
        text: "Sorry for the wait: your refund is on its way. ^Ana".into(),
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
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress();
    let dm = [("kind", "message"), ("page-id", "12345654332")];

    let receipt = plugin
        .deliver(&reply(
            "k-1",
            "987654321432",
            Visibility::Private,
            &dm,
            "mid.1",
        ))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "m_sent_1");
    {
        let seen = mock.requests();
        let sent = &seen[0];
        assert_eq!(
            (sent.method.as_str(), sent.path_and_query().as_str()),
            ("POST", "/v21.0/me/messages")
        );
        assert_eq!(sent.header("authorization"), Some("Bearer PAGE-TOKEN-1"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(
            sent.json(),
            json!({"recipient": {"id": "987654321432"}, "messaging_type": "RESPONSE",
            "message": {"text": "Sorry for the wait: your refund is on its way. ^Ana"}})
        );
    }
    // The same idempotency key again: the first receipt, nothing posted twice.
    let again = plugin
        .deliver(&reply(
            "k-1",
            "987654321432",
            Visibility::Private,
            &dm,
            "mid.1",
        ))
        .await
        .unwrap();
    assert_eq!(again.external_id, "m_sent_1");
    assert_eq!(mock.count(), 1);

    // Public reply to a comment, and a private reply to it.
    let comment = [
        ("kind", "comment"),
        ("comment-id", "901097836652708_903438993085259"),
    ];
    let r = plugin
        .deliver(&reply(
            "k-2",
            "705955836155788",
            Visibility::Public,
            &comment,
            "901097836652708_903438993085259",
        ))
        .await
        .unwrap();
    assert_eq!(r.external_id, "1234567890321_reply_1");
    let r = plugin
        .deliver(&reply(
            "k-3",
            "705955836155788",
            Visibility::Private,
            &comment,
            "901097836652708_903438993085259",
        ))
        .await
        .unwrap();
    assert_eq!(r.external_id, "m_sent_1");
    {
        let seen = mock.requests();
        assert_eq!(
            seen[1].path_and_query(),
            "/v21.0/901097836652708_903438993085259/comments"
        );
        assert_eq!(
            seen[1].json(),
            json!({"message": "Sorry for the wait: your refund is on its way. ^Ana"})
        );
        assert_eq!(seen[2].path_and_query(), "/v21.0/me/messages");
        assert_eq!(
            seen[2].json()["recipient"],
            json!({"comment_id": "901097836652708_903438993085259"})
        );
    }

    let err = plugin
        .deliver(&reply("k-4", "flood", Visibility::Private, &dm, "m"))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(30)));
    let err = plugin
        .deliver(&reply("k-5", "expired", Visibility::Private, &dm, "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.starts_with("access token") && !m.contains("PAGE-TOKEN")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("k-6", "late", Visibility::Private, &dm, "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.starts_with("outside the 24-hour messaging window")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("k-7", "down", Visibility::Private, &dm, "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("500")),
        "{err}"
    );
    // A Messenger thread cannot be answered in public; nothing is sent.
    let before = mock.count();
    let err = plugin
        .deliver(&reply(
            "k-8",
            "987654321432",
            Visibility::Public,
            &dm,
            "mid.1",
        ))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::InvalidInput(_)));
    assert_eq!(mock.count(), before);
}

#[tokio::test]
async fn delivery_without_a_token_is_not_configured() {
    let plugin = this_plugin!().await.unwrap().secret("app-secret", SECRET);
    let err = plugin
        .deliver(&reply("k", "1", Visibility::Private, &[], "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("page-access-token"))
    );
}

/// A tenant file written before secret names were kebab-case keeps working, and the plugin's log
/// tells the tenant what to rename; the kebab-case names log nothing.
#[tokio::test]
async fn former_snake_case_secret_names_still_work_with_a_warning() {
    let body = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m.1","text":"hi"}}]}]}"#;
    let handshake = request(
        "GET",
        "https://sb.example/hooks/facebook?hub.mode=subscribe&hub.challenge=77&hub.verify_token=v3rify+me",
        &[],
        b"",
    );
    let old = this_plugin!()
        .await
        .unwrap()
        .tenant("old-secret-names")
        .secret("app_secret", SECRET)
        .secret("verify_token", "v3rify me");
    let m = only_message(&events(&old, body).await).clone();
    assert_eq!(m.text, "hi");
    let WebhookOutcome::Challenge(r) = old.webhook(&handshake).await.unwrap() else {
        panic!("expected the challenge")
    };
    assert_eq!((r.status, r.body.as_slice()), (200, &b"77"[..]));
    let warnings: Vec<String> = old
        .logs()
        .into_iter()
        .filter(|l| l.level == Level::WARN)
        .map(|l| l.message)
        .collect();
    for (former, name) in [
        ("app_secret", "app-secret"),
        ("verify_token", "verify-token"),
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("`{former}`")) && w.contains(&format!("`{name}`"))),
            "no warning about {former}: {warnings:?}"
        );
    }
    assert!(warnings.iter().all(|w| !w.contains(SECRET)), "{warnings:?}");

    let new = connector().await.tenant("new-secret-names");
    assert_eq!(only_message(&events(&new, body).await).text, "hi");
    assert!(new.webhook(&handshake).await.is_ok());
    assert!(
        new.logs().iter().all(|l| l.level != Level::WARN),
        "{:?}",
        new.logs()
    );
}
