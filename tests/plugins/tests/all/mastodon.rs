//! The Mastodon connector as a built component in the real runtime: every fixture through
//! `handle-webhook` (captured entities) and the recorded API responses served from a loopback
//! mock to `poll`, delivery to a loopback mock, and the length rule.
//!
//! The `mastodon_py_cassettes` files hold the recorded response bodies themselves (Mastodon.py's
//! recorded API answers, one JSON body per file, not wrapped in a VCR interaction).

use std::collections::HashMap;

use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError,
    Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::CallError;
use switchboard_testkit::{Harness, PlatformMock, Recorded, Reply, plugin_error, request};

plugin_under_test!("mastodon", "mastodon-connector");

fn fixture(name: &str) -> Vec<u8> {
    switchboard_testkit::fixture("mastodon", name)
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn captured() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .config("instance", "http://localhost:3000")
        .config("account", "acmecare")
        .config("decode_captured", "true")
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/mastodon",
            &[("content-type", "application/json")],
            body,
        ))
        .await
}

async fn only_message(plugin: &Harness, name: &str) -> Message {
    match post(plugin, &fixture(name)).await.unwrap() {
        WebhookOutcome::Events(events) => match <[Event; 1]>::try_from(events) {
            Ok([Event::Message(m)]) => m,
            other => panic!("{name}: expected one message, got {other:?}"),
        },
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn every_fixture_is_normalised_skipped_or_refused_without_crashing() {
    let plugin = captured().await;
    let mut seen = 0;
    let (mut messages, mut skipped, mut refused) = (0, 0, 0);
    for path in switchboard_testkit::fixture_files("mastodon") {
        seen += 1;
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(&path).unwrap();
        match post(&plugin, &body).await {
            Ok(WebhookOutcome::Events(events)) => {
                assert!(!events.is_empty(), "{name}: no events");
                for e in events {
                    match e {
                        Event::Message(m) => {
                            assert_eq!(m.channel, "mastodon");
                            assert!(!m.external_id.is_empty() && !m.author.id.is_empty());
                            messages += 1;
                        }
                        Event::Skipped(s) => {
                            assert!(!s.reason.is_empty());
                            skipped += 1;
                        }
                    }
                }
            }
            Ok(other) => panic!("{name}: unexpected {other:?}"),
            Err(e) => {
                // A typed refusal, never a trap or malformed output.
                let PluginError::InvalidInput(m) = plugin_error(&e) else {
                    panic!("{name}: {e}")
                };
                assert!(
                    name.ends_with(".NOT_VALID_JSON.txt") || name.ends_with(".jsonc"),
                    "{name} refused: {m}"
                );
                assert!(m.contains("line ") && m.contains("column "), "{m}");
                refused += 1;
            }
        }
    }

    assert_eq!(seen, 8);
    // 4 statuses (one in the notification list) are messages; Account and 2 MediaAttachments
    // are skipped; the documentation's commented Notification is refused.
    assert_eq!((messages, skipped, refused), (4, 3, 1));
}

#[tokio::test]
async fn the_commented_documentation_example_is_refused_with_its_position() {
    let plugin = captured().await;
    let err = post(
        &plugin,
        &fixture("mastodon_documentation/Notification_0_Mention.NOT_VALID_JSON.txt"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("not valid JSON") && m.contains("line 10 column 7")),
        "{err}"
    );
    // A UTF-8 byte-order mark in front of a captured entity is tolerated.
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(fixture("mastodon_py_cassettes/status_with_poll.json"));
    assert!(
        matches!(post(&plugin, &with_bom).await.unwrap(), WebhookOutcome::Events(e) if e.len() == 1)
    );
}

#[tokio::test]
async fn without_decode_captured_the_webhook_says_it_is_polled() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .config("instance", "http://localhost:3000");
    let err = post(
        &plugin,
        &fixture("mastodon_py_cassettes/status_with_poll.json"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.starts_with("Mastodon is polled; configure polling")),
        "{err}"
    );
}

#[tokio::test]
async fn captured_entities_are_normalised() {
    let plugin = captured().await.tenant("acme");

    let m = only_message(
        &plugin,
        "mastodon_py_cassettes/notifications_list_mentions_only.json",
    )
    .await;
    assert_eq!(m.tenant, "acme");
    assert_eq!(m.channel, "mastodon");
    assert_eq!(
        m.external_id,
        "http://localhost:3000/ap/users/117020565693913441/statuses/117020577157693549"
    );
    assert_eq!(m.conversation_key, "117020577157693549");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.author.id, "117020565693913441@localhost");
    assert_eq!(m.author.handle.as_deref(), Some("@admin"));
    assert_eq!(
        m.author.display_name, None,
        "an empty display name is absent"
    );
    assert_eq!(m.text, "@mastodonpy_test hello!");
    assert_eq!(m.language.as_deref(), Some("en"));
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.origin, Origin::Mention);
    assert_eq!(m.received_at, 1_785_592_302_823); // 2026-08-01T13:51:42.823Z
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(extra(&m, "notification-id"), Some("21"));
    assert_eq!(extra(&m, "status-id"), Some("117020577157693549"));
    assert_eq!(
        extra(&m, "status-url"),
        Some("http://localhost:3000/@admin/117020577157693549")
    );

    let m = only_message(
        &plugin,
        "mastodon_py_cassettes/status_post_content_warning_public.json",
    )
    .await;
    assert_eq!(m.text, "CW: Content warning\n\nToot!");
    assert_eq!(m.author.handle.as_deref(), Some("@mastodonpy_test"));
    assert_eq!(m.author.display_name.as_deref(), Some("John Lennon"));
    assert_eq!(extra(&m, "sensitive"), Some("true"));
    // A status that does not mention the brand was found by listening.
    assert_eq!(m.origin, Origin::Listening);

    let m = only_message(
        &plugin,
        "mastodon_py_cassettes/status_reply_with_quote.json",
    )
    .await;
    // The "RE: <link>" quote fallback is dropped; the quote is in extra.
    assert_eq!(m.text, "@mastodonpy_test yoooo check this out");
    assert_eq!(m.in_reply_to.as_deref(), Some("117020583129611179"));
    assert_eq!(m.conversation_key, "117020583129611179");
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(extra(&m, "mastodon-visibility"), Some("unlisted"));
    assert_eq!(
        extra(&m, "in-reply-to-account-id"),
        Some("117020565966271181")
    );
    assert_eq!(extra(&m, "quote-status-id"), Some("117020583121982310"));
    assert_eq!(extra(&m, "quote-state"), Some("accepted"));

    let m = only_message(&plugin, "mastodon_py_cassettes/status_with_poll.json").await;
    assert_eq!(m.text, "nice");
    assert_eq!(extra(&m, "poll-options"), Some("four twenty | sixty-nine"));
    assert_eq!(extra(&m, "poll-multiple"), Some("true"));

    // Entities that are not messages are skipped with their type.
    for (name, kind) in [
        ("mastodon_documentation/Account_0_Example.json", "account"),
        (
            "mastodon_documentation/MediaAttachment_1_Video.json",
            "media-attachment",
        ),
        (
            "mastodon_documentation/MediaAttachment_2_GIFV.json",
            "media-attachment",
        ),
    ] {
        let WebhookOutcome::Events(events) = post(&plugin, &fixture(name)).await.unwrap() else {
            panic!("{name}")
        };
        assert!(
            matches!(&events[..], [Event::Skipped(s)] if s.event_type.as_deref() == Some(kind)),
            "{name}: {events:?}"
        );
    }
}

#[tokio::test]
async fn documentation_media_and_a_direct_message_are_read_from_a_status() {
    // The documentation's MediaAttachment examples, attached to the documentation's mention
    // (with its comments filled in) sent as a direct message with a content warning.
    let video: serde_json::Value = serde_json::from_slice(&fixture(
        "mastodon_documentation/MediaAttachment_1_Video.json",
    ))
    .unwrap();
    let gifv: serde_json::Value = serde_json::from_slice(&fixture(
        "mastodon_documentation/MediaAttachment_2_GIFV.json",
    ))
    .unwrap();
    let notification = serde_json::json!({
        "id": "34975861", "type": "mention", "created_at": "2019-11-23T07:49:02.064Z",
        "account": {"id": "971724", "username": "zsc", "acct": "zsc"},
        "status": {
            "id": "103186126728896492", "created_at": "2019-11-23T07:49:01.940Z",
            "in_reply_to_id": "103186038209478945", "in_reply_to_account_id": "14715",
            "visibility": "direct", "spoiler_text": "card number", "language": null,
            "uri": "https://mastodon.social/users/zsc/statuses/103186126728896492",
            "content": "<p><span class=\"h-card\"><a href=\"https://mastodon.social/@acmecare\" class=\"u-url mention\">@<span>acmecare</span></a></span> see video<br>and &lt;this&gt; <a href=\"https://acme.example/orders/1?x=1&amp;y=2\"><span class=\"invisible\">https://</span><span class=\"ellipsis\">acme.example/orders/</span><span class=\"invisible\">1?x=1&amp;y=2</span></a></p>",
            "account": {"id": "971724", "username": "zsc", "acct": "zsc", "display_name": "Z"},
            "media_attachments": [video, gifv], "mentions": [{"acct": "acmecare"}],
            "edited_at": "2019-11-23T08:00:00.000Z"
        }
    });
    let plugin = captured().await;
    let WebhookOutcome::Events(events) = post(&plugin, notification.to_string().as_bytes())
        .await
        .unwrap()
    else {
        panic!()
    };
    let [Event::Message(m)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    assert_eq!(
        m.text,
        "CW: card number\n\n@acmecare see video\nand <this> https://acme.example/orders/1?x=1&y=2"
    );
    assert_eq!(m.action, MessageAction::Edited);
    assert_eq!(m.language, None);
    assert_eq!(m.in_reply_to.as_deref(), Some("103186038209478945"));
    assert_eq!(m.author.id, "971724@localhost");
    let kinds: Vec<_> = m.attachments.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AttachmentKind::Video, AttachmentKind::Video]);
    assert_eq!(
        m.attachments[0].url.as_deref(),
        Some(
            "https://files.mastodon.social/media_attachments/files/022/546/306/original/dab9a597f68b9745.mp4"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// A Mastodon instance on loopback, serving the recorded responses.

/// (method, path, query, authorization, idempotency key, body) of one request.
type Seen = (String, String, String, String, String, String);

/// What the tests read of one request.
fn seen(r: &Recorded) -> Seen {
    let h = |n: &str| r.header(n).unwrap_or("").to_string();
    (
        r.method.clone(),
        r.path.clone(),
        r.query.clone().unwrap_or_default(),
        h("authorization"),
        h("idempotency-key"),
        r.text(),
    )
}

/// Answers by the Bearer token: `slow` is rate-limited, `expired` refused, anything else served.
fn refusal(r: &Recorded) -> Option<Reply> {
    match r.header("authorization") {
        Some("Bearer slow") => Some(
            Reply::text(429, r#"{"error":"Too many requests"}"#)
                .header("x-ratelimit-reset", "2000-01-01T00:00:00.000Z"),
        ),
        Some("Bearer expired") => Some(Reply::text(
            401,
            r#"{"error":"The access token is invalid"}"#,
        )),
        _ => None,
    }
}

fn json(body: Vec<u8>) -> Reply {
    Reply::status(200)
        .header("content-type", "application/json")
        .body(body)
}

async fn instance() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        let q = r.query.clone().unwrap_or_default();
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        Some(match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v1", "notifications"]) => {
                if let Some(refused) = refusal(r) {
                    return Some(refused);
                }
                if q.contains("min_id=") {
                    return Some(json(b"[]".to_vec()));
                }
                json(fixture(
                    "mastodon_py_cassettes/notifications_list_mentions_only.json",
                ))
            }
            ("GET", ["api", "v1", "timelines", "tag", _]) => {
                if q.contains("min_id=") {
                    return Some(json(b"[]".to_vec()));
                }
                // The recorded statuses as a tag timeline lists them: newest first.
                let mut body = b"[".to_vec();
                for (i, name) in [
                    "status_post_content_warning_public.json",
                    "status_reply_with_quote.json",
                    "status_with_poll.json",
                ]
                .iter()
                .enumerate()
                {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend(fixture(&format!("mastodon_py_cassettes/{name}")));
                }
                body.push(b']');
                json(body)
            }
            ("GET", ["api", "v2", "search"]) => {
                json(br#"{"accounts":[],"statuses":[],"hashtags":[]}"#.to_vec())
            }
            ("POST", ["api", "v1", "statuses"]) => {
                if let Some(refused) = refusal(r) {
                    return Some(refused);
                }
                if r.json()["status"]
                    .as_str()
                    .unwrap_or("")
                    .contains("duplicate")
                {
                    return Some(Reply::text(
                        422,
                        r#"{"error":"Validation failed: Text has already been posted"}"#,
                    ));
                }
                // The recorded answer to posting a reply.
                json(fixture(
                    "mastodon_py_cassettes/status_reply_with_quote.json",
                ))
            }
            _ => return None,
        })
    });
    mock
}

async fn polled(base: &str, token: &str) -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .config("instance", base)
        .config("account", "mastodonpy_test")
        .config("hashtags", r##"["#Python"]"##)
        .config("keywords", "toot")
        .secret("access-token", token)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
}

#[tokio::test]
async fn poll_reads_mentions_and_listening_feeds_from_the_recorded_responses() {
    let state = instance().await;
    let base = state.url().to_string();
    let plugin = polled(&base, "t0ken").await;

    let batch = plugin.poll(None).await.unwrap();
    let mut messages = Vec::new();
    let mut skipped = Vec::new();
    for e in &batch.events {
        match e {
            Event::Message(m) => messages.push(m.clone()),
            Event::Skipped(s) => skipped.push(s.reason.clone()),
        }
    }
    assert_eq!(messages.len(), 2, "{:?}", batch.events);
    let mention = &messages[0];
    assert_eq!(mention.origin, Origin::Mention);
    assert_eq!(mention.text, "@mastodonpy_test hello!");
    assert_eq!(mention.author.id, "117020565693913441@127.0.0.1");
    assert_eq!(
        mention.external_id,
        "http://localhost:3000/ap/users/117020565693913441/statuses/117020577157693549"
    );
    let listened = &messages[1];
    assert_eq!(listened.origin, Origin::Listening);
    assert_eq!(listened.text, "nice");
    assert_eq!(extra(listened, "listening-source"), Some("#python"));
    // The brand's (mastodonpy_test's) own two posts on the tag are dropped, oldest first.
    assert_eq!(
        skipped,
        vec![
            "status 117020583142008690 was written by the brand's own account @mastodonpy_test",
            "status 117020586000687987 was written by the brand's own account @mastodonpy_test",
        ]
    );
    let cursor: serde_json::Value =
        serde_json::from_str(batch.next_cursor.as_deref().unwrap()).unwrap();
    assert_eq!(
        cursor,
        serde_json::json!({"mentions": "21", "tag:python": "117020586000687987"})
    );

    // The next poll continues from the cursor; nothing new keeps it.
    let again = plugin.poll(batch.next_cursor.as_deref()).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.next_cursor, None);

    let seen: Vec<Seen> = state.requests().iter().map(seen).collect();
    let queries: Vec<(String, String)> = seen.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
    assert_eq!(
        queries,
        vec![
            (
                "/api/v1/notifications".into(),
                "types%5B%5D=mention&limit=40".into()
            ),
            ("/api/v1/timelines/tag/python".into(), "limit=40".into()),
            (
                "/api/v2/search".into(),
                "q=toot&type=statuses&resolve=false&limit=40".into()
            ),
            (
                "/api/v1/notifications".into(),
                "types%5B%5D=mention&limit=40&min_id=21".into()
            ),
            (
                "/api/v1/timelines/tag/python".into(),
                "limit=40&min_id=117020586000687987".into()
            ),
            (
                "/api/v2/search".into(),
                "q=toot&type=statuses&resolve=false&limit=40".into()
            ),
        ]
    );
    assert!(seen.iter().all(|r| r.3 == "Bearer t0ken"));
}

#[tokio::test]
async fn poll_errors_are_typed() {
    let mock = instance().await;
    let base = mock.url().to_string();
    let err = polled(&base, "slow").await.poll(None).await.unwrap_err();
    // The reset time is in the past: retry after the minimum of one second.
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(1)));
    let err = polled(&base, "expired").await.poll(None).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("HTTP 401") && m.contains("access-token")),
        "{err}"
    );
    let no_token = this_plugin!().await.unwrap().config("instance", &base);
    let err = no_token.poll(None).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("access-token"))
    );
}

fn reply(text: &str, visibility: Visibility) -> OutboundReply {
    OutboundReply {
        idempotency_key: "reply-42".into(),
        conversation_key: "thread-root-1".into(),
        in_reply_to: Some(
            "http://localhost:3000/ap/users/117020565693913441/statuses/117020582690282017".into(),
        ),
        recipient: Author {
            id: "117020565693913441@127.0.0.1".into(),
            handle: Some("@admin".into()),
            display_name: None,
        },
        text: text.into(),
        visibility,
        extra: vec![("status-id".into(), "117020582690282017".into())],
    }
}

#[tokio::test]
async fn delivery_posts_a_status_and_maps_refusals() {
    let state = instance().await;
    let base = state.url().to_string();
    let plugin = polled(&base, "t0ken")
        .await
        .config("decode_captured", "true");

    let receipt = plugin
        .deliver(&reply("Thanks for the poll! ^ana", Visibility::Public))
        .await
        .unwrap();
    assert_eq!(
        receipt.external_id,
        "http://localhost:3000/ap/users/117020565966271181/statuses/117020583142008690"
    );
    assert_eq!(
        receipt.url.as_deref(),
        Some("http://localhost:3000/@mastodonpy_test/117020583142008690")
    );
    plugin
        .deliver(&reply(
            "@admin please DM us your order number",
            Visibility::Private,
        ))
        .await
        .unwrap();

    let posts: Vec<Seen> = state
        .requests()
        .iter()
        .map(seen)
        .filter(|r| r.0 == "POST")
        .collect();
    let (_, path, _, auth, key, body) = &posts[0];
    assert_eq!(path, "/api/v1/statuses");
    assert_eq!(auth, "Bearer t0ken");
    assert_eq!(key, "reply-42");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "@admin Thanks for the poll! ^ana",
                           "in_reply_to_id": "117020582690282017", "visibility": "public"})
    );
    let private: serde_json::Value = serde_json::from_str(&posts[1].5).unwrap();
    assert_eq!(private["status"], "@admin please DM us your order number");
    assert_eq!(private["visibility"], "direct");

    // A customer answering the brand's reply (status 117020583142008690) lands in the
    // conversation of the reply, remembered by the connector.
    let answer = serde_json::json!({
        "id": "117020590000000000", "uri": "http://localhost:3000/ap/users/1/statuses/117020590000000000",
        "created_at": "2026-08-01T14:00:00.000Z", "in_reply_to_id": "117020583142008690",
        "visibility": "public", "content": "<p>thanks!</p>",
        "account": {"id": "117020565693913441", "acct": "admin"}
    });
    let WebhookOutcome::Events(events) =
        post(&plugin, answer.to_string().as_bytes()).await.unwrap()
    else {
        panic!()
    };
    assert!(
        matches!(&events[..], [Event::Message(m)] if m.conversation_key == "thread-root-1"),
        "{events:?}"
    );

    // Refusals.
    let err = plugin
        .deliver(&reply("a duplicate", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.starts_with("HTTP 422") && m.contains("already been posted")),
        "{err}"
    );
    let err = polled(&base, "expired")
        .await
        .deliver(&reply("hi", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("HTTP 401") && m.contains("token is invalid")),
        "{err}"
    );
    let err = polled(&base, "slow")
        .await
        .deliver(&reply("hi", Visibility::Public))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(1)));
    // An instance that cannot be reached is transient.
    let err = polled("http://127.0.0.1:9", "t0ken")
        .await
        .deliver(&reply("hi", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(_)),
        "{err}"
    );
}

#[tokio::test]
async fn the_length_rule_counts_like_mastodon() {
    let plugin = this_plugin!().await.unwrap();
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "mastodon");
    assert_eq!(info.length_rule.max, 500);
    let cases: HashMap<String, u32> = [
        ("hello".to_string(), 5),
        // CJK: one character each.
        ("你好，世界".to_string(), 5),
        // A ZWJ family is 5 scalar values; a flag 2.
        ("👨‍👩‍👧🇵🇹".to_string(), 7),
        // Any URL is 23.
        (
            format!("https://help.acme.example/articles/{}", "x".repeat(200)),
            23,
        ),
        // A remote mention counts its local part.
        ("@user@remote.example".to_string(), 5),
        (
            "@casey@mastodon.social 抱歉 🙇 https://acme.example/a/very/long/path/to/help"
                .to_string(),
            6 + 1 + 2 + 1 + 1 + 1 + 23,
        ),
    ]
    .into_iter()
    .collect();
    for (text, expected) in cases {
        assert_eq!(plugin.measure(&text).await.unwrap(), expected, "{text}");
    }
}
