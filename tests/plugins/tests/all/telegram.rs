//! The Telegram connector as a built component in the real runtime: every Telegram fixture
//! through `handle-webhook`, the secret-token cases, `getUpdates` polling and `sendMessage`
//! delivery against a loopback mock, and the length rule.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, HttpRequest, Message, MessageAction, Origin, OutboundReply,
    PluginError, Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("telegram", "telegram-connector");

const SECRET: &str = "Acme_care-2024";
const HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

fn fixture(relative: &str) -> Vec<u8> {
    switchboard_testkit::fixture("telegram", relative)
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("webhook-secret-token", SECRET)
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/telegram",
            &[(HEADER, SECRET), ("content-type", "application/json")],
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

fn only_message(outcome: WebhookOutcome) -> Message {
    match events(outcome).as_slice() {
        [Event::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

/// What each fixture must become: `message`, or `skipped:<event type or ->`.
fn expected() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "core_telegram_org_webhooks/01_message_text_postman.json",
            "message",
        ),
        ("core_telegram_org_webhooks/02_message_text.json", "message"),
        (
            "core_telegram_org_webhooks/03_forwarded_message.json",
            "message",
        ),
        (
            "core_telegram_org_webhooks/04_forwarded_channel_message.json",
            "message",
        ),
        (
            "core_telegram_org_webhooks/08_message_with_audio.json",
            "message",
        ),
        (
            "core_telegram_org_webhooks/10_message_with_document.json",
            "message",
        ),
        (
            "core_telegram_org_webhooks/11_inline_query.json",
            "skipped:inline_query",
        ),
        ("nutgram/Messages/rich_message.json", "skipped:message"),
        (
            "nutgram/Responses/ChatAdministratorRights.json",
            "skipped:-",
        ),
        (
            "nutgram/Updates/callback_query_inaccessible_message.json",
            "skipped:callback_query",
        ),
        (
            "nutgram/Updates/callback_query_without_message.json",
            "skipped:callback_query",
        ),
        (
            "nutgram/Updates/channel_chat_created.json",
            "skipped:message",
        ),
        ("nutgram/Updates/chat_boost.json", "skipped:chat_boost"),
        (
            "nutgram/Updates/chat_join_request.json",
            "skipped:chat_join_request",
        ),
        ("nutgram/Updates/chat_owner_changed.json", "skipped:message"),
        ("nutgram/Updates/chat_owner_left.json", "skipped:message"),
        ("nutgram/Updates/checklist.json", "message"),
        (
            "nutgram/Updates/checklist_tasks_done.json",
            "skipped:message",
        ),
        (
            "nutgram/Updates/chosen_inline_result.json",
            "skipped:chosen_inline_result",
        ),
        ("nutgram/Updates/command_tag_valid.json", "message"),
        ("nutgram/Updates/command_tag_wrong.json", "message"),
        ("nutgram/Updates/connected_website.json", "skipped:message"),
        (
            "nutgram/Updates/direct_message_price_changed.json",
            "skipped:message",
        ),
        ("nutgram/Updates/document.json", "message"),
        ("nutgram/Updates/food.json", "message"),
        ("nutgram/Updates/forum_topic_edited.json", "skipped:message"),
        (
            "nutgram/Updates/forum_topic_reopened.json",
            "skipped:message",
        ),
        ("nutgram/Updates/game.json", "skipped:message"),
        ("nutgram/Updates/giveaway_completed.json", "skipped:message"),
        (
            "nutgram/Updates/guest_message.json",
            "skipped:guest_message",
        ),
        ("nutgram/Updates/left_chat_member.json", "skipped:message"),
        ("nutgram/Updates/managed_bot.json", "skipped:managed_bot"),
        (
            "nutgram/Updates/message_auto_delete_timer_changed.json",
            "skipped:message",
        ),
        ("nutgram/Updates/message_different_topic.json", "message"),
        (
            "nutgram/Updates/message_general_topic_reply.json",
            "message",
        ),
        (
            "nutgram/Updates/message_reaction.json",
            "skipped:message_reaction",
        ),
        (
            "nutgram/Updates/removed_chat_boost.json",
            "skipped:removed_chat_boost",
        ),
        (
            "nutgram/Updates/shipping_query.json",
            "skipped:shipping_query",
        ),
        ("nutgram/Updates/users_shared.json", "skipped:message"),
        ("nutgram/Updates/venue.json", "message"),
    ])
}

#[tokio::test]
async fn every_fixture_is_normalised_skipped_or_refused_and_none_crashes() {
    let plugin = connector().await.config("bot_username", "foo_bot");
    let root = switchboard_testkit::fixtures_dir("telegram");
    let files = switchboard_testkit::fixture_files("telegram");
    let expected = expected();
    let (mut normalised, mut skipped, mut refused) = (0, 0, 0);
    let mut seen = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let body = std::fs::read(path).unwrap();
        let not_json = name.ends_with(".jsonc") || name.ends_with(".NOT_VALID_JSON.txt");
        match post(&plugin, &body).await {
            Ok(outcome) => {
                assert!(!not_json, "{name} is not valid JSON but was accepted");
                let evs = events(outcome);
                assert_eq!(evs.len(), 1, "{name}: {evs:?}");
                let got = match &evs[0] {
                    Event::Message(m) => {
                        normalised += 1;
                        assert_eq!(m.tenant, "test-tenant", "{name}");
                        assert_eq!(m.channel, "telegram", "{name}");
                        assert!(
                            !m.external_id.is_empty() && m.external_id.contains(':'),
                            "{name}"
                        );
                        assert!(m.received_at > 0, "{name}");
                        "message".to_string()
                    }
                    Event::Skipped(s) => {
                        skipped += 1;
                        assert!(s.reason.len() > 20, "{name}: reason too thin: {}", s.reason);
                        format!("skipped:{}", s.event_type.as_deref().unwrap_or("-"))
                    }
                };
                assert_eq!(
                    Some(got.as_str()),
                    expected.get(name.as_str()).copied(),
                    "{name}"
                );
            }
            Err(e) => {
                assert!(
                    !matches!(
                        e.failure,
                        CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
                    ),
                    "{name} crashed: {e}"
                );
                let PluginError::InvalidInput(m) = plugin_error(&e) else {
                    panic!("{name}: {e}")
                };
                assert!(not_json, "{name} refused: {m}");
                assert!(m.contains("line") && m.contains("column"), "{name}: {m}");
                refused += 1;
            }
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), expected.len(), "fixture set changed: {seen:?}");
    assert_eq!((normalised, skipped, refused), (14, 26, 0));
}

#[tokio::test]
async fn core_telegram_org_samples_normalise_with_real_values() {
    let plugin = connector().await;

    let m = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/02_message_text.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "1111111:1365");
    assert_eq!(m.conversation_key, "1111111");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(
        m.author,
        Author {
            id: "1111111".into(),
            handle: Some("@Testusername".into()),
            display_name: Some("Test Firstname Test Lastname".into()),
        }
    );
    assert_eq!(m.text, "/start");
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    assert_eq!(m.received_at, 1_441_645_532_000);
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(
        m.extra,
        vec![
            ("chat-id".to_string(), "1111111".to_string()),
            ("chat-type".to_string(), "private".to_string())
        ]
    );

    // The Postman sample has no chat type: a positive chat id is a private chat.
    let m = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/01_message_text_postman.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        (m.visibility, m.origin),
        (Visibility::Private, Origin::DirectMessage)
    );
    assert_eq!(m.author.handle.as_deref(), Some("@Test"));

    // A forward is the forwarder's message.
    let m = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/04_forwarded_channel_message.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.author.id, "1111111");
    assert_eq!(m.text, "/start");

    let m = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/08_message_with_audio.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.text, "");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.kind, AttachmentKind::Audio);
    assert_eq!(a.url, None, "Telegram gives no URL without getFile");
    assert_eq!(a.mime_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(
        a.description.as_deref(),
        Some("Test music file (file_id: AwADBAADbXXXXXXXXXXXGBdhD2l6_XX)")
    );

    let m = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/10_message_with_document.json"),
        )
        .await
        .unwrap(),
    );
    let a = &m.attachments[0];
    assert_eq!(a.kind, AttachmentKind::File);
    assert_eq!(a.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        a.description.as_deref(),
        Some("Testfile.pdf (file_id: AwADBAADbXXXXXXXXXXXGBdhD2l6_XX)")
    );

    let evs = events(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/11_inline_query.json"),
        )
        .await
        .unwrap(),
    );
    let [Event::Skipped(s)] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(s.event_type.as_deref(), Some("inline_query"));
    assert!(s.reason.contains("not a message"), "{}", s.reason);
}

#[tokio::test]
async fn nutgram_updates_normalise_with_real_values() {
    let plugin = connector().await;

    // A message in a forum topic: the topic is the conversation; the topic-creation message
    // Telegram puts in `reply_to_message` is not a reply.
    let m = only_message(
        post(
            &plugin,
            &fixture("nutgram/Updates/message_different_topic.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "-1001234567489:70");
    assert_eq!(m.conversation_key, "-1001234567489:33");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.text, "aaaa");
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.origin, Origin::Listening);
    assert_eq!(m.received_at, 1_714_837_889_000);
    assert_eq!(
        m.extra,
        vec![
            ("chat-id".to_string(), "-1001234567489".to_string()),
            ("chat-type".to_string(), "supergroup".to_string()),
            ("message-thread-id".to_string(), "33".to_string())
        ]
    );

    // A reply in the General topic: a real reply, and no topic.
    let m = only_message(
        post(
            &plugin,
            &fixture("nutgram/Updates/message_general_topic_reply.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.external_id, "-1001234567489:68");
    assert_eq!(m.conversation_key, "-1001234567489");
    assert_eq!(m.in_reply_to.as_deref(), Some("-1001234567489:66"));
    assert_eq!(m.author.display_name.as_deref(), Some("Mario Bros"));

    // The same reply, with the bot configured as its author's username, is a mention.
    let as_bot = connector().await.config("bot_username", "@MarioBros");
    let m = only_message(
        post(
            &as_bot,
            &fixture("nutgram/Updates/message_general_topic_reply.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(m.origin, Origin::Mention);

    let m = only_message(
        post(&plugin, &fixture("nutgram/Updates/food.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (m.external_id.as_str(), m.text.as_str()),
        ("456:123", "I want 12 portions of pizza")
    );
    assert_eq!(m.language, None);

    let m = only_message(
        post(&plugin, &fixture("nutgram/Updates/venue.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        m.attachments.len(),
        1,
        "the venue's location is reported once"
    );
    assert_eq!(m.attachments[0].kind, AttachmentKind::Location);
    assert_eq!(
        m.attachments[0].url.as_deref(),
        Some("geo:41.899977,12.501028")
    );
    assert_eq!(
        m.attachments[0].description.as_deref(),
        Some("McDonald's, Via Giolitti 65")
    );

    let m = only_message(
        post(&plugin, &fixture("nutgram/Updates/checklist.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        m.text,
        "Daily Tasks\n- [ ] Apples\n- [ ] Bananas\n- [ ] Oranges"
    );

    let m = only_message(
        post(&plugin, &fixture("nutgram/Updates/command_tag_valid.json"))
            .await
            .unwrap(),
    );
    assert_eq!(m.text, "/test@foo_bot");
    assert_eq!(m.author.handle.as_deref(), Some("@Lukasss93"));

    let m = only_message(
        post(&plugin, &fixture("nutgram/Updates/document.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        m.attachments[0].description.as_deref(),
        Some("document.pdf (file_id: a1b2c34d5e6f7g8h9i)")
    );

    for (file, needle) in [
        (
            "nutgram/Updates/left_chat_member.json",
            "`left_chat_member`",
        ),
        ("nutgram/Updates/game.json", "`game`"),
        ("nutgram/Updates/guest_message.json", "answerGuestQuery"),
        ("nutgram/Updates/message_reaction.json", "reactions"),
        ("nutgram/Messages/rich_message.json", "bare Message"),
        (
            "nutgram/Responses/ChatAdministratorRights.json",
            "method response",
        ),
    ] {
        let evs = events(post(&plugin, &fixture(file)).await.unwrap());
        let [Event::Skipped(s)] = evs.as_slice() else {
            panic!("{file}: {evs:?}")
        };
        assert!(s.reason.contains(needle), "{file}: {}", s.reason);
    }
}

#[tokio::test]
async fn utf16_entities_are_resolved_in_the_runtime() {
    let plugin = connector().await.config("bot_username", "AcmeCareBot");
    // "🧳" is two UTF-16 units: the link label "here" starts at unit 13, the mention at 23.
    let body = json!({"update_id": 77, "message": {
    "message_id": 5, "date": 1_700_000_000,
    "chat": {"id": -1009, "type": "supergroup", "title": "Acme fans"},
    "from": {"id": 42, "first_name": "Casey", "username": "casey"},
    "text": "🧳 lost, see here — @AcmeCareBot",
    "entities": [
        {"type": "text_link", "offset": 13, "length": 4, "url": "https://acme.example/bag/9"},
        {"type": "mention", "offset": 20, "length": 12}
    ]}});
    let m = only_message(post(&plugin, body.to_string().as_bytes()).await.unwrap());
    assert_eq!(
        m.text,
        "🧳 lost, see here (https://acme.example/bag/9) — @AcmeCareBot"
    );
    assert_eq!(m.origin, Origin::Mention);
    assert_eq!(m.visibility, Visibility::Public);
}

#[tokio::test]
async fn secret_token_cases_from_the_algorithm_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/algorithms_without_vectors.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = spec["telegram_secret_token"]["test_cases"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 3);
    let body = fixture("nutgram/Updates/food.json");

    // Case 1: a valid configured token, header identical → accepted (edge lengths too).
    let long = "A-z_9".repeat(51) + "Q";
    assert_eq!(long.len(), 256);
    for token in [SECRET, "S", long.as_str()] {
        let plugin = this_plugin!()
            .await
            .unwrap()
            .secret("webhook-secret-token", token);
        let ok = plugin
            .webhook(&request("POST", "https://h/", &[(HEADER, token)], &body))
            .await
            .unwrap();
        assert_eq!(only_message(ok).external_id, "456:123");
    }

    let plugin = connector().await;
    // Case 2: header missing → unauthorized.
    let err = plugin
        .webhook(&request("POST", "https://h/", &[], &body))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    // Case 3: different case → unauthorized.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[(HEADER, &SECRET.to_lowercase())],
            &body,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains(SECRET));
    // Case 3: trailing space. An HTTP server strips surrounding whitespace from header values
    // (and the testkit's `request` trims too), so the request is built raw here to check that
    // the plugin itself compares exact bytes.
    for raw in [
        format!("{SECRET} "),
        format!(" {SECRET}"),
        format!("{SECRET}\t"),
    ] {
        let req = HttpRequest {
            method: "POST".into(),
            url: "https://h/".into(),
            headers: vec![(HEADER.to_ascii_lowercase(), raw.clone())],
            body: body.clone(),
        };
        let err = plugin.webhook(&req).await.unwrap_err();
        assert!(err.is_unauthorized(), "{raw:?}: {err}");
    }

    // No secret configured → not configured.
    let bare = this_plugin!().await.unwrap();
    let err = bare
        .webhook(&request("POST", "https://h/", &[(HEADER, SECRET)], &body))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("webhook-secret-token")),
        "{err}"
    );
}

#[tokio::test]
async fn length_rule_counts_code_points() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "telegram");
    assert_eq!(info.length_rule.max, 4096);
    assert!(info.length_rule.description.contains("code points"));
    for (text, expected) in [
        ("", 0),
        ("Where is my bag?", 16),
        ("😡", 1),
        // A ZWJ family is one grapheme but five code points.
        ("👨‍👩‍👧", 5),
        // A flag is two regional indicators.
        ("🇵🇹", 2),
        ("東京駅で荷物を失くしました", 13),
        ("é", 1),
        ("e\u{301}", 2),
        ("https://acme.example/help/lost-baggage?ref=tg", 45),
    ] {
        assert_eq!(plugin.measure(text).await.unwrap(), expected, "{text}");
    }
    assert_eq!(plugin.measure(&"a".repeat(4096)).await.unwrap(), 4096);
    assert_eq!(plugin.measure(&"😡".repeat(4096)).await.unwrap(), 4096);
}

// ---- Loopback Bot API -------------------------------------------------------------------

/// The `getUpdates` answer served for a fresh cursor: a documented
/// `{"ok": true, "result": [Update, …]}` body built from the webhook fixtures, with update ids
/// 500.. (the fixtures all reuse one id).
fn updates_body() -> Value {
    let files = [
        "core_telegram_org_webhooks/02_message_text.json",
        "core_telegram_org_webhooks/11_inline_query.json",
        "nutgram/Updates/message_different_topic.json",
        "nutgram/Updates/food.json",
    ];
    let result: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut u: Value = serde_json::from_slice(&fixture(f)).unwrap();
            u["update_id"] = json!(500 + i);
            u
        })
        .collect();
    json!({"ok": true, "result": result})
}

/// The Bot API on loopback: `POST /{bot}/{method}`, answered by [`answer`].
async fn mock_bot_api() -> PlatformMock {
    let mock = PlatformMock::start().await;
    let count = AtomicUsize::new(0);
    mock.respond_with(move |r| {
        let count = count.fetch_add(1, Ordering::SeqCst) + 1;
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let ("POST", [bot, method]) = (r.method.as_str(), segments.as_slice()) else {
            return None;
        };
        let (status, body) = answer(bot, method, &r.json(), count);
        Some(Reply::json(status, &body))
    });
    mock
}

fn fail(code: u16, description: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if !extra.is_null() {
        body["parameters"] = extra;
    }
    (code, body)
}

/// How the mock Bot API answers.
fn answer(bot: &str, method: &str, body: &Value, count: usize) -> (u16, Value) {
    if bot != format!("bot{TOKEN}") {
        return fail(401, "Unauthorized", Value::Null);
    }
    match method {
        "getUpdates" => match body.get("offset").and_then(Value::as_i64) {
            None => (200, updates_body()),
            Some(504) => (200, json!({"ok": true, "result": []})),
            // A getUpdates-shaped call answered with another method's response fixture.
            Some(9) => (
                200,
                serde_json::from_slice(&fixture("nutgram/Responses/ChatAdministratorRights.json"))
                    .unwrap(),
            ),
            Some(_) => fail(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                Value::Null,
            ),
        },
        "sendMessage" => match body["chat_id"].as_i64() {
            Some(-1001234567489) if count == 1 => fail(
                429,
                "Too Many Requests: retry after 7",
                json!({"retry_after": 7}),
            ),
            Some(-1001234567489) => (
                200,
                json!({"ok": true, "result": {
                    "message_id": 71, "date": 1_714_837_900,
                    "chat": {"id": -1001234567489_i64, "title": "Testing", "username": "testing", "type": "supergroup"},
                    "text": body["text"]}}),
            ),
            Some(456) => fail(403, "Forbidden: bot was blocked by the user", Value::Null),
            Some(777) => fail(400, "Bad Request: chat not found", Value::Null),
            Some(1111111) => (
                200,
                json!({"ok": true, "result": {
                    "message_id": 1366, "date": 1_441_645_600,
                    "chat": {"id": 1111111, "type": "private", "username": "Testusername"}}}),
            ),
            _ => fail(500, "Internal Server Error", Value::Null),
        },
        _ => fail(404, "Not Found", Value::Null),
    }
}

async fn api_plugin(base: &str, token: &str) -> Harness {
    connector()
        .await
        .secret("bot-token", token)
        .config("api_base", base)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
}

#[tokio::test]
async fn poll_reads_get_updates_with_the_cursor_as_offset() {
    let mock = mock_bot_api().await;
    let base = mock.url().to_string();
    let plugin = api_plugin(&base, TOKEN).await;

    let batch = plugin.poll(None).await.unwrap();
    assert_eq!(batch.next_cursor.as_deref(), Some("504"));
    assert_eq!(batch.events.len(), 4);
    let Event::Message(first) = &batch.events[0] else {
        panic!("{:?}", batch.events[0])
    };
    assert_eq!(first.external_id, "1111111:1365");
    assert_eq!(first.tenant, "test-tenant");
    assert!(
        matches!(&batch.events[1], Event::Skipped(s) if s.event_type.as_deref() == Some("inline_query"))
    );
    let Event::Message(topic) = &batch.events[2] else {
        panic!()
    };
    assert_eq!(topic.conversation_key, "-1001234567489:33");
    let Event::Message(food) = &batch.events[3] else {
        panic!()
    };
    assert_eq!(food.text, "I want 12 portions of pizza");

    // The next poll confirms those updates with offset = last update_id + 1.
    let batch = plugin.poll(Some("504")).await.unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(
        batch.next_cursor, None,
        "no updates keeps the previous cursor"
    );

    {
        let seen = mock.requests();
        assert_eq!(seen[0].path, format!("/bot{TOKEN}/getUpdates"));
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
        assert_eq!(seen[0].json(), json!({"timeout": 0, "limit": 100}));
        assert_eq!(
            seen[1].json(),
            json!({"offset": 504, "timeout": 0, "limit": 100})
        );
    }

    // Not a getUpdates answer (the ChatAdministratorRights response fixture): an error, no crash.
    let err = plugin.poll(Some("9")).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Internal(m) if m.contains("not an array")),
        "{err}"
    );
    // A webhook is set: getUpdates conflicts.
    let err = plugin.poll(Some("1")).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("deleteWebhook")),
        "{err}"
    );
    let err = plugin.poll(Some("not-a-number")).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(_)),
        "{err}"
    );
}

fn reply_to(message: &Message, key: &str, text: &str, visibility: Visibility) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: message.conversation_key.clone(),
        in_reply_to: Some(message.external_id.clone()),
        recipient: message.author.clone(),
        text: text.into(),
        visibility,
        extra: message.extra.clone(),
    }
}

#[tokio::test]
async fn deliver_sends_documented_send_message_and_maps_errors() {
    let mock = mock_bot_api().await;
    let base = mock.url().to_string();
    let plugin = api_plugin(&base, TOKEN).await;

    // Reply in the forum topic the customer wrote in.
    let topic = only_message(
        post(
            &plugin,
            &fixture("nutgram/Updates/message_different_topic.json"),
        )
        .await
        .unwrap(),
    );
    let reply = reply_to(
        &topic,
        "r-topic",
        "Sorry, Mario — we're on it 🍄 ^ana",
        Visibility::Public,
    );

    let err = plugin.deliver(&reply).await.unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(7)));
    let receipt = plugin.deliver(&reply).await.unwrap();
    assert_eq!(receipt.external_id, "-1001234567489:71");
    assert_eq!(receipt.url.as_deref(), Some("https://t.me/testing/71"));
    {
        let seen = mock.requests();
        assert_eq!(seen.len(), 2);
        let sent = &seen[1];
        assert_eq!(sent.path, format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(
            sent.json(),
            json!({
                "chat_id": -1001234567489_i64,
                "text": "Sorry, Mario — we're on it 🍄 ^ana",
                "reply_parameters": {"message_id": 70, "allow_sending_without_reply": true},
                "message_thread_id": 33
            })
        );
    }
    // The same idempotency key again: the first receipt, nothing posted twice.
    let again = plugin.deliver(&reply).await.unwrap();
    assert_eq!(again, receipt);
    assert_eq!(mock.count(), 2);

    // A private chat: reply_parameters, no thread.
    let dm = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/02_message_text.json"),
        )
        .await
        .unwrap(),
    );
    let receipt = plugin
        .deliver(&reply_to(
            &dm,
            "r-dm",
            "Hi! How can we help?",
            Visibility::Private,
        ))
        .await
        .unwrap();
    assert_eq!(
        (receipt.external_id.as_str(), receipt.url.as_deref()),
        ("1111111:1366", None)
    );
    assert_eq!(
        mock.requests().last().unwrap().json(),
        json!({"chat_id": 1111111, "text": "Hi! How can we help?",
               "reply_parameters": {"message_id": 1365, "allow_sending_without_reply": true}})
    );

    // Permanent refusals: blocked bot (403), unknown chat (400), bad token (401).
    let food = only_message(
        post(&plugin, &fixture("nutgram/Updates/food.json"))
            .await
            .unwrap(),
    );
    let err = plugin
        .deliver(&reply_to(&food, "r-blocked", "hello", Visibility::Private))
        .await
        .unwrap_err();
    assert_eq!(
        plugin_error(&err),
        &PluginError::Rejected("Telegram 403: Forbidden: bot was blocked by the user".into())
    );
    let mut lost = reply_to(&food, "r-lost", "hello", Visibility::Private);
    lost.extra = vec![("chat-id".into(), "777".into())];
    lost.in_reply_to = None;
    let err = plugin.deliver(&lost).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("chat not found")),
        "{err}"
    );

    let wrong_token = "999:wrongTokenSecretPart_abcdef";
    let bad = api_plugin(&base, wrong_token).await;
    let err = bad
        .deliver(&reply_to(&dm, "r-token", "hello", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("401") && m.contains("bot-token")),
        "{err}"
    );
    assert!(!err.to_string().contains("wrongTokenSecretPart"), "{err}");

    // 5xx: unavailable (the host retries).
    let mut other = reply_to(&food, "r-5xx", "hello", Visibility::Private);
    other.extra = vec![("chat-id".into(), "31337".into())];
    let err = plugin.deliver(&other).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("500")),
        "{err}"
    );
}

#[tokio::test]
async fn transport_failures_and_missing_token_never_show_the_token() {
    // Nothing listens on port 9 of loopback: connecting fails.
    let plugin = api_plugin("http://127.0.0.1:9", TOKEN).await;
    let dm = only_message(
        post(
            &plugin,
            &fixture("core_telegram_org_webhooks/02_message_text.json"),
        )
        .await
        .unwrap(),
    );
    let err = plugin
        .deliver(&reply_to(&dm, "r-down", "hello", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(_)),
        "{err}"
    );
    assert!(!err.to_string().contains("ABC-DEF1234"), "{err}");
    let err = plugin.poll(None).await.unwrap_err();
    assert!(!err.to_string().contains("ABC-DEF1234"), "{err}");

    // The real API host is declared, but this tenant does not allow it.
    let denied = connector().await.secret("bot-token", TOKEN);
    let err = denied
        .deliver(&reply_to(&dm, "r-denied", "hello", Visibility::Private))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("ABC-DEF1234"), "{err}");
    assert!(
        !matches!(
            err.failure,
            CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
        ),
        "{err}"
    );

    let no_token = connector().await;
    let err = no_token.poll(None).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("bot-token")),
        "{err}"
    );
    let info = no_token.plugin().info.clone();
    assert_eq!(
        info.egress,
        vec!["api.telegram.org", "localhost", "127.0.0.1"]
    );
    assert_eq!(
        info.secrets,
        vec!["webhook-secret-token".to_string(), "bot-token".to_string()]
    );
}
