//! The X connector as a built component in the real runtime: every twitter_x fixture, the CRC
//! and signature checks, polling against a loopback mock serving the recorded API v2 responses,
//! the length rule, and delivery to a loopback mock.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError, Visibility,
    WebhookOutcome,
};
use switchboard_testkit::{
    Harness, PlatformMock, Recorded, Reply, fixture, fixture_files, fixtures_dir, plugin_error,
    request,
};

plugin_under_test!("x", "x-connector");

const SECRET: &str = "x-consumer-secret";
const PLATFORM: &str = "twitter_x";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("consumer-secret", SECRET)
}

async fn signed_events(plugin: &Harness, body: &[u8]) -> Vec<Event> {
    let sig = sign(SECRET, body);
    let outcome = plugin
        .webhook(&request(
            "POST",
            "https://switchboard.example/hooks/x",
            &[("X-Twitter-Webhooks-Signature", &sig)],
            body,
        ))
        .await
        .unwrap_or_else(|e| panic!("webhook failed: {e}"));
    let WebhookOutcome::Events(events) = outcome else {
        panic!("expected events")
    };
    events
}

fn only_message(events: &[Event]) -> &Message {
    match events {
        [Event::Message(m)] => m,
        other => panic!("expected one message, got {other:?}"),
    }
}

fn only_skip(events: &[Event]) -> (Option<String>, String) {
    match events {
        [Event::Skipped(s)] => (s.event_type.clone(), s.reason.clone()),
        other => panic!("expected one skipped event, got {other:?}"),
    }
}

#[tokio::test]
async fn every_fixture_is_normalised_or_skipped_and_none_crashes() {
    let plugin = connector().await.tenant("acme");
    let files = fixture_files(PLATFORM);
    assert_eq!(files.len(), 5, "{files:?}");
    let (mut normalised, mut skipped) = (0, 0);
    for path in &files {
        let body = std::fs::read(path).unwrap();
        let name = path
            .strip_prefix(fixtures_dir(PLATFORM))
            .unwrap()
            .display()
            .to_string();
        let events = signed_events(&plugin, &body).await;
        assert!(!events.is_empty(), "{name}: no events");
        for e in &events {
            match e {
                Event::Message(m) => {
                    normalised += 1;
                    assert_eq!((m.tenant.as_str(), m.channel.as_str()), ("acme", "x"));
                }
                Event::Skipped(s) => {
                    skipped += 1;
                    assert!(s.reason.len() > 20, "{name}: vague reason {:?}", s.reason);
                }
            }
        }
    }
    assert_eq!((normalised, skipped), (1, 4));
}

#[tokio::test]
async fn account_activity_dm_delivery_is_a_private_message_with_the_users_map() {
    let plugin = connector().await;
    let body = fixture(
        PLATFORM,
        "developer_x_com_account_activity_docs/direct_message_events.json",
    );
    let events = signed_events(&plugin, &body).await;
    let m = only_message(&events);
    assert_eq!(m.external_id, "dm:954491830116155396");
    assert_eq!(m.conversation_key, "dm:3001969357-4337869213");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.author.id, "3001969357");
    // X's documentation example nests the users inside `apps`; they are still found.
    assert_eq!(m.author.handle.as_deref(), Some("@furiouscamper"));
    assert_eq!(m.author.display_name.as_deref(), Some("Jordan Brinks"));
    assert_eq!(m.text, "Hello World!");
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(m.received_at, 1_516_403_560_557);
    assert!(
        m.extra
            .contains(&("recipient-id".into(), "3001969357".into()))
    );

    // The same delivery seen from the sender's side is the account's own DM: skipped.
    let mine = String::from_utf8(body).unwrap().replace(
        "\"for_user_id\": \"4337869213\"",
        "\"for_user_id\": \"3001969357\"",
    );
    let (_, reason) = only_skip(&signed_events(&plugin, mine.as_bytes()).await);
    assert!(reason.contains("sent by the account itself"), "{reason}");
}

#[tokio::test]
async fn other_fixtures_are_skipped_with_their_reasons() {
    let plugin = connector().await;
    let typing = fixture(
        PLATFORM,
        "developer_x_com_account_activity_docs/direct_message_indicate_typing_events.json",
    );
    let (kind, reason) = only_skip(&signed_events(&plugin, &typing).await);
    assert_eq!(
        kind.as_deref(),
        Some("direct_message_indicate_typing_events")
    );
    assert!(reason.contains("typing indicator"));

    let sent = fixture(
        PLATFORM,
        "tweepy_cassettes_v1_1/v1_1_direct_messages_events_new_response_message_create.json",
    );
    let (kind, reason) = only_skip(&signed_events(&plugin, &sent).await);
    assert_eq!(kind.as_deref(), Some("message_create"));
    assert!(reason.contains("to itself"), "{reason}");

    let mentions = fixture(
        PLATFORM,
        "tweepy_cassettes_v2/v2_users_mentions_783214.json",
    );
    let (kind, reason) = only_skip(&signed_events(&plugin, &mentions).await);
    assert_eq!(kind.as_deref(), Some("api-v2-response"));
    assert!(
        reason.contains("10 results") && reason.contains("poll"),
        "{reason}"
    );

    let empty = fixture(PLATFORM, "tweepy_cassettes_v2/v2_dm_events_empty.json");
    let (_, reason) = only_skip(&signed_events(&plugin, &empty).await);
    assert!(reason.contains("0 results"), "{reason}");
}

#[tokio::test]
async fn crc_and_signatures() {
    let plugin = connector().await;
    // The CRC answer: sha256= + base64 HMAC-SHA256(consumer secret, crc_token).
    let outcome = plugin
        .webhook(&request(
            "GET",
            "https://h/x?crc_token=9b4507b3-9b2c-4a5c-a3e8",
            &[],
            b"",
        ))
        .await
        .unwrap();
    let WebhookOutcome::Challenge(r) = outcome else {
        panic!("expected a challenge")
    };
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["response_token"],
        sign(SECRET, b"9b4507b3-9b2c-4a5c-a3e8")
    );
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );

    let body = fixture(
        PLATFORM,
        "developer_x_com_account_activity_docs/direct_message_events.json",
    );
    let good = sign(SECRET, &body);
    // A one-byte change, a wrong secret, a hex digest, no header: all unauthorized.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    for (headers, bytes) in [
        (
            vec![("x-twitter-webhooks-signature", good.clone())],
            tampered.clone(),
        ),
        (
            vec![("x-twitter-webhooks-signature", sign("wrong", &body))],
            body.clone(),
        ),
        (
            vec![(
                "x-twitter-webhooks-signature",
                format!("sha256={}", "0f".repeat(32)),
            )],
            body.clone(),
        ),
        (vec![], body.clone()),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let err = plugin
            .webhook(&request("POST", "https://h/x", &headers, &bytes))
            .await
            .unwrap_err();
        assert!(err.is_unauthorized(), "{err}");
        assert!(!err.to_string().contains(SECRET));
        assert!(!err.to_string().contains(&good[7..]));
    }
    // Without the secret, nothing is accepted.
    let bare = this_plugin!().await.unwrap();
    let err = bare
        .webhook(&request(
            "POST",
            "https://h/x",
            &[("x-twitter-webhooks-signature", &good)],
            &body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("consumer-secret"))
    );
    // Signed but not JSON: the parser's position.
    let bad = b"{\"for_user_id\": }";
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/x",
            &[("x-twitter-webhooks-signature", &sign(SECRET, bad))],
            bad,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("line 1 column 17")),
        "{err}"
    );
}

#[tokio::test]
async fn a_tweet_create_batch_with_replies_deletes_and_likes() {
    let plugin = connector().await;
    let body = serde_json::json!({
        "for_user_id": "2244994945",
        "tweet_create_events": [
            {"created_at": "Wed Oct 10 20:19:24 +0000 2018", "id_str": "1050118621198921728",
             "text": "@AcmeAir Q&amp;A: where is my bag? https://t.co/abc",
             "in_reply_to_status_id_str": "1050000000000000000", "in_reply_to_user_id_str": "2244994945",
             "user": {"id_str": "6253282", "screen_name": "casey", "name": "Casey Jones"},
             "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://acme.example/claim"}],
                          "user_mentions": [{"id_str": "2244994945"}]},
             "lang": "en"},
            {"id_str": "1050118621198921729", "text": "our answer", "user": {"id_str": "2244994945"}}
        ],
        "favorite_events": [{"id": "f1"}],
        "tweet_delete_events": [{"status": {"id": "1050118621198921728", "user_id": "6253282"}, "timestamp_ms": "1539202800000"}]
    })
    .to_string();
    let events = signed_events(&plugin, body.as_bytes()).await;
    assert_eq!(events.len(), 4);
    let messages: Vec<&Message> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(messages.len(), 2);
    let m = messages[0];
    assert_eq!(m.external_id, "1050118621198921728");
    assert_eq!(
        m.text,
        "@AcmeAir Q&A: where is my bag? https://acme.example/claim"
    );
    assert_eq!(m.in_reply_to.as_deref(), Some("1050000000000000000"));
    assert_eq!(m.conversation_key, "1050000000000000000");
    assert_eq!(m.origin, Origin::Mention);
    assert_eq!(m.received_at, 1_539_202_764_000);
    assert_eq!(m.language.as_deref(), Some("en"));
    let d = messages[1];
    assert_eq!(
        (d.external_id.as_str(), d.action),
        ("1050118621198921728", MessageAction::Deleted)
    );
    assert_eq!(
        d.conversation_key, "1050000000000000000",
        "remembered in the kv store"
    );
}

/// A search answer in the documented v2 shape, with `includes.users`.
const SEARCH: &str = r#"{"data":[{"id":"1578900353814519810","text":"the @AcmeAir app logs me out every day &amp; support is silent https://t.co/xyz","author_id":"2244994945","conversation_id":"1578900353814519810","created_at":"2022-10-09T00:01:02.000Z","lang":"en","entities":{"urls":[{"start":64,"end":87,"url":"https://t.co/xyz","expanded_url":"https://acme.example/bug","display_url":"acme.example/bug"}]},"edit_history_tweet_ids":["1578900353814519810"]}],"includes":{"users":[{"id":"2244994945","name":"Dana","username":"dana_k"}]},"meta":{"newest_id":"1578900353814519810","oldest_id":"1578900353814519810","result_count":1}}"#;

/// How these tests name a call to the API: its endpoint and query.
fn call(r: &Recorded) -> String {
    let q = r.query.clone().unwrap_or_default();
    let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["2", "users", id, "mentions"]) => format!("mentions {id} {q}"),
        ("GET", ["2", "tweets", "search", "recent"]) => format!("search {q}"),
        ("GET", ["2", "dm_events"]) => format!("dm {q}"),
        ("POST", ["2", "tweets"]) => "tweet".into(),
        ("POST", ["2", "dm_conversations", "with", id, "messages"]) => format!("dm-with {id}"),
        _ => format!("{} {}", r.method, r.path_and_query()),
    }
}

/// API v2 on loopback: the recorded mentions (then an empty page), [`SEARCH`], no DMs; the first
/// tweet posted is rate-limited and a duplicate refused; a DM to `666` is refused.
async fn mock_api() -> PlatformMock {
    let mock = PlatformMock::start().await;
    let posts = AtomicUsize::new(0);
    mock.respond_with(move |r| {
        let call = call(r);
        let text = |body: String| Some(Reply::text(200, &body));
        if call.starts_with("mentions ") {
            if call.contains("pagination_token=") {
                return text(r#"{"meta":{"result_count":0}}"#.to_string());
            }
            return text(String::from_utf8(fixture(PLATFORM, "tweepy_cassettes_v2/v2_users_mentions_783214.json")).unwrap());
        }
        if call.starts_with("search ") {
            return text(SEARCH.to_string());
        }
        if call.starts_with("dm ") {
            return text(String::from_utf8(fixture(PLATFORM, "tweepy_cassettes_v2/v2_dm_events_empty.json")).unwrap());
        }
        if call == "tweet" {
            if posts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Some(Reply::status(429).header("retry-after", "7"));
            }
            if r.text().contains("duplicate") {
                return Some(Reply::text(403, r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#).header("retry-after", "0"));
            }
            return Some(Reply::text(201, r#"{"data":{"id":"1445880548472328192","edit_history_tweet_ids":["1445880548472328192"],"text":"Sorry"}}"#).header("retry-after", "0"));
        }
        if call == "dm-with 666" {
            return Some(Reply::text(403, r#"{"detail":"You cannot send messages to this user.","title":"Forbidden","status":403}"#));
        }
        if call.starts_with("dm-with ") {
            return Some(Reply::text(201, r#"{"data":{"dm_conversation_id":"3001969357-4337869213","dm_event_id":"1582838213082800132"}}"#));
        }
        None
    });
    mock
}

async fn against(mock: &PlatformMock) -> Harness {
    connector()
        .await
        .secret("access-token", "user-token-1")
        .config("api_base", mock.url())
        .config("user_id", "783214")
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress()
}

#[tokio::test]
async fn poll_reads_the_recorded_v2_responses() {
    let mock = mock_api().await;
    let plugin = against(&mock)
        .await
        .config("listen_keywords", r#"["acme app"]"#)
        .config("poll_direct_messages", "true");
    let batch = plugin.poll(None).await.unwrap();

    // The recorded mentions carry no author_id (tweepy did not ask for it): all 10 skipped,
    // each naming its tweet; the search hit is normalised; the empty DM page adds nothing.
    assert_eq!(batch.events.len(), 11);
    let skipped: Vec<&str> = batch
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Skipped(s) => Some(s.reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 10);
    assert!(skipped.iter().all(|r| r.contains("author_id")));
    assert!(skipped.iter().any(|r| r.contains("1578516295611748353")));
    let m = batch
        .events
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .unwrap();
    assert_eq!(m.external_id, "1578900353814519810");
    assert_eq!(
        m.text,
        "the @AcmeAir app logs me out every day & support is silent https://acme.example/bug"
    );
    assert_eq!(m.author.handle.as_deref(), Some("@dana_k"));
    assert_eq!(m.author.display_name.as_deref(), Some("Dana"));
    assert_eq!(m.origin, Origin::Listening);
    assert_eq!(m.conversation_key, "1578900353814519810");
    assert_eq!(m.received_at, 1_665_273_662_000);

    let cursor: serde_json::Value =
        serde_json::from_str(batch.next_cursor.as_deref().unwrap()).unwrap();
    assert_eq!(cursor["mentions"], "1578516295611748353");
    assert_eq!(cursor["search"], "1578900353814519810");

    {
        let seen = mock.requests();
        let calls: Vec<String> = seen.iter().map(call).collect();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert!(calls[0].starts_with("mentions 783214 tweet.fields=author_id,"));
        assert!(
            calls[1].contains("pagination_token=7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j")
        );
        assert!(calls[2].starts_with("search query=%28%22acme%20app%22%29%20-is%3Aretweet&"));
        assert!(calls[3].starts_with("dm event_types=MessageCreate"));
        assert_eq!(seen[0].header("authorization"), Some("Bearer user-token-1"));
    }

    // The next poll asks from the cursor.
    let again = plugin.poll(batch.next_cursor.as_deref()).await.unwrap();
    let fifth = call(&mock.requests()[4]);
    assert!(fifth.ends_with("since_id=1578516295611748353"), "{fifth}");
    assert!(again.events.iter().all(|e| matches!(e, Event::Skipped(_))
        || matches!(e, Event::Message(m) if m.external_id == "1578900353814519810")));
}

fn reply(visibility: Visibility, key: &str, text: &str, extra: &[(&str, &str)]) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: "1578900353814519810".into(),
        in_reply_to: Some("1578900353814519810".into()),
        recipient: Author {
            id: "2244994945".into(),
            handle: Some("@dana_k".into()),
            display_name: None,
        },
        text: text.into(),
        visibility,
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn delivery_speaks_api_v2_and_maps_errors() {
    let mock = mock_api().await;
    let plugin = against(&mock).await;

    let first = reply(
        Visibility::Public,
        "r-1",
        "Sorry, Dana: fixed in 4.2. ^ana",
        &[],
    );
    let err = plugin.deliver(&first).await.unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(7)));
    let receipt = plugin.deliver(&first).await.unwrap();
    assert_eq!(receipt.external_id, "1445880548472328192");
    assert_eq!(
        receipt.url.as_deref(),
        Some("https://x.com/i/web/status/1445880548472328192")
    );
    // A retry of a delivered reply does not post twice.
    let again = plugin.deliver(&first).await.unwrap();
    assert_eq!(again.external_id, "1445880548472328192");

    let dup = plugin
        .deliver(&reply(Visibility::Public, "r-2", "duplicate", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&dup), PluginError::Rejected(m) if m.contains("duplicate content")),
        "{dup}"
    );

    let dm = plugin
        .deliver(&reply(
            Visibility::Private,
            "r-3",
            "Please send your booking code here.",
            &[("recipient-id", "3001969357")],
        ))
        .await
        .unwrap();
    assert_eq!(dm.external_id, "dm:1582838213082800132");
    let blocked = plugin
        .deliver(&reply(
            Visibility::Private,
            "r-4",
            "hi",
            &[("recipient-id", "666")],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&blocked), PluginError::Rejected(m) if m.contains("cannot send messages")),
        "{blocked}"
    );

    let seen = mock.requests();
    let kinds: Vec<String> = seen.iter().map(call).collect();
    assert_eq!(
        kinds,
        vec![
            "tweet",
            "tweet",
            "tweet",
            "dm-with 3001969357",
            "dm-with 666"
        ]
    );
    assert_eq!(seen[1].header("authorization"), Some("Bearer user-token-1"));
    assert_eq!(seen[1].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"text": "Sorry, Dana: fixed in 4.2. ^ana", "reply": {"in_reply_to_tweet_id": "1578900353814519810"}})
    );
    let dm_body: serde_json::Value = serde_json::from_slice(&seen[3].body).unwrap();
    assert_eq!(
        dm_body,
        serde_json::json!({"text": "Please send your booking code here."})
    );
}

#[tokio::test]
async fn missing_token_or_user_id_is_not_configured() {
    let plugin = connector().await;
    let err = plugin
        .deliver(&reply(Visibility::Public, "k", "hi", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("access-token"))
    );
    let err = plugin.poll(None).await.unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("user_id")));
}

#[tokio::test]
async fn length_rule_in_the_runtime() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!((info.channel.as_str(), info.length_rule.max), ("x", 280));
    for (text, expected) in [
        ("hello", 5),
        ("こんにちは世界", 14),
        ("👨‍👩‍👧‍👦", 2),
        ("🇵🇹🇯🇵", 4),
        ("👍🏿 ok", 5),
        ("e\u{301}", 1),
        (
            "https://help.acme.example/articles/12345-lost-luggage-claims",
            23,
        ),
        ("see acme.com/help now", 4 + 23 + 4),
        ("mail me@acme.com", 16),
        (
            "Sorry 😞 — see https://acme.example/x ^ana",
            6 + 2 + 1 + 1 + 1 + 4 + 23 + 5,
        ),
    ] {
        assert_eq!(plugin.measure(text).await.unwrap(), expected, "{text}");
    }
    assert_eq!(plugin.measure(&"a".repeat(280)).await.unwrap(), 280);
    assert_eq!(plugin.measure(&"字".repeat(141)).await.unwrap(), 282);
}
