//! The Bluesky connector as a built component in the real runtime: every fixture through
//! `handle-webhook`, the relay secret (with the published X-Hub-Signature-256 vector), polling
//! and delivery against a loopback XRPC mock (session, notifications, search, chat, errors),
//! and the grapheme length rule.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, MessageAction, Origin, OutboundReply, PluginError,
    Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Recorded, Reply, plugin_error, request};

plugin_under_test!("bluesky", "bluesky-connector");

fn fixture(name: &str) -> Vec<u8> {
    switchboard_testkit::fixture("bluesky", name)
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn plugin() -> Harness {
    this_plugin!().await.unwrap()
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/bluesky",
            &[("content-type", "application/json")],
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

async fn only_message(plugin: &Harness, body: &[u8]) -> Message {
    match <[Event; 1]>::try_from(events(post(plugin, body).await.unwrap())) {
        Ok([Event::Message(m)]) => m,
        other => panic!("expected one message, got {other:?}"),
    }
}

#[tokio::test]
async fn every_fixture_is_normalised_skipped_or_refused_without_crashing() {
    let plugin = plugin().await;
    let (mut messages, mut skipped, mut refused) = (0, 0, 0);
    let files = switchboard_testkit::fixture_files("bluesky");
    assert_eq!(files.len(), 9);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(path).unwrap();
        match post(&plugin, &body).await {
            Ok(outcome) => {
                let events = events(outcome);
                assert!(!events.is_empty(), "{name}: no events");
                for e in events {
                    match e {
                        Event::Message(m) => {
                            assert_eq!(m.channel, "bluesky");
                            assert!(m.external_id.starts_with("at://"), "{name}");
                            assert!(m.author.id.starts_with("did:"), "{name}");
                            messages += 1;
                        }
                        Event::Skipped(s) => {
                            assert!(!s.reason.is_empty(), "{name}");
                            if path.parent().unwrap().ends_with("lexicons_schema_only") {
                                assert!(s.reason.contains("lexicon schema"), "{name}: {s:?}");
                            }
                            if path.parent().unwrap().ends_with("bsky-docs_posts_guide") {
                                assert!(s.reason.contains("bare app.bsky.feed.post"), "{name}");
                            }
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
                    "{name}: {e}"
                );
                assert!(
                    matches!(plugin_error(&e), PluginError::InvalidInput(m) if m.contains("line")),
                    "{name}: {e}"
                );
                refused += 1;
            }
        }
    }
    // 3 records/views normalised; 3 lexicon schemas and 3 bare docs records skipped.
    assert_eq!((messages, skipped, refused), (3, 6, 0));
}

#[tokio::test]
async fn a_thread_view_with_media_and_a_quote_is_normalised() {
    let plugin = plugin().await;
    let m = only_message(
        &plugin,
        &fixture("marshalx_atproto_test_data/thread_view_post_with_embed_media.json"),
    )
    .await;
    assert_eq!(
        m.external_id,
        "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kaheyt6vpc22"
    );
    assert_eq!(m.conversation_key, m.external_id);
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.author.id, "did:plc:kvwvcn5iqfooopmyzvb4qzba");
    assert_eq!(m.author.handle.as_deref(), Some("test.marshal.dev"));
    assert_eq!(m.author.display_name.as_deref(), Some("Python SDK"));
    assert_eq!(m.text, "");
    assert_eq!(m.language.as_deref(), Some("en"));
    assert_eq!(m.received_at, 1_695_905_376_735); // 2023-09-28T12:49:36.735Z
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.origin, Origin::Other);
    assert_eq!(m.action, MessageAction::Created);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(
        m.attachments[0].url.as_deref(),
        Some(
            "https://cdn.bsky.app/img/feed_fullsize/plain/did:plc:kvwvcn5iqfooopmyzvb4qzba/bafkreic3cp5ky525vsukjvrzxsc2h3jka2gud74l2hgeatw2rhj2qycnmq@jpeg"
        )
    );
    // Empty alt text is no description.
    assert_eq!(m.attachments[0].description, None);
    assert_eq!(
        extra(&m, "quote-uri"),
        Some("at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kahesw26il2z")
    );
    assert_eq!(
        extra(&m, "cid"),
        Some("bafyreigb666sdjyyaczcahxmf5tzh7dec6bwr3nhdab7llebn7vhsxzgr4")
    );
    assert_eq!(extra(&m, "root-uri"), Some(m.external_id.as_str()));
    assert_eq!(
        extra(&m, "post-url"),
        Some("https://bsky.app/profile/did:plc:kvwvcn5iqfooopmyzvb4qzba/post/3kaheyt6vpc22")
    );
}

#[tokio::test]
async fn repository_records_are_normalised_including_a_datetime_without_offset() {
    let plugin = plugin().await;
    let m = only_message(
        &plugin,
        &fixture("marshalx_atproto_test_data/post_record.json"),
    )
    .await;
    assert_eq!(
        m.external_id,
        "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3k2yihcrp6f2c"
    );
    assert_eq!(m.text, "new text114");
    assert_eq!(m.author.id, "did:plc:kvwvcn5iqfooopmyzvb4qzba");
    assert_eq!(m.author.handle, None);
    assert_eq!(m.language, None);
    assert_eq!(m.received_at, 1_708_631_893_903); // 2024-02-22T19:58:13.903293+00:00

    let m = only_message(
        &plugin,
        &fixture("marshalx_atproto_test_data/extended_post_record.json"),
    )
    .await;
    assert_eq!(m.text, "regress test");
    assert_eq!(m.language.as_deref(), Some("en"));
    // "2023-07-21T01:33:51.481951" has no offset: read as UTC.
    assert_eq!(m.received_at, 1_689_903_231_481);
}

/// The docs' bare records wrapped the way `com.atproto.repo.getRecord` answers.
fn wrapped(name: &str, rkey: &str) -> Vec<u8> {
    let bytes = fixture(name);
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    json!({"uri": format!("at://did:plc:docs/app.bsky.feed.post/{rkey}"), "cid": "bafydocs", "value": value})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn the_docs_records_normalise_once_they_have_an_identity() {
    let plugin = plugin().await;
    let m = only_message(
        &plugin,
        &wrapped("bsky-docs_posts_guide/02_post_langs_thai_en.json", "th"),
    )
    .await;
    // The docs' JSON holds a literal backslash-n (`\\n`), kept as published.
    assert_eq!(m.text, "สวัสดีชาวโลก!\\nHello World!");
    assert_eq!(m.language.as_deref(), Some("th"));
    assert_eq!(extra(&m, "langs"), Some("th,en-US"));
    assert_eq!(m.received_at, 1_691_387_044_395);

    let m = only_message(
        &plugin,
        &wrapped("bsky-docs_posts_guide/08_post_external_embed.json", "ext"),
    )
    .await;
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Link);
    assert_eq!(m.attachments[0].url.as_deref(), Some("https://bsky.app"));
    assert_eq!(
        m.attachments[0].description.as_deref(),
        Some("Bluesky Social")
    );

    let m = only_message(
        &plugin,
        &wrapped("bsky-docs_posts_guide/00_post_hello_world.json", "hw"),
    )
    .await;
    assert_eq!(m.text, "Hello World!");
    assert_eq!(
        m.conversation_key,
        "at://did:plc:docs/app.bsky.feed.post/hw"
    );
}

#[tokio::test]
async fn facets_resolve_by_utf8_bytes_and_bad_ones_do_not_crash() {
    let plugin = plugin().await;
    let text = "🚀 @acme.bsky.social lost bag, see acme.example/bag… #AcmeAir";
    let m0 = text.find('@').unwrap();
    let l0 = text.find("acme.example").unwrap();
    let l1 = l0 + "acme.example/bag…".len();
    let t0 = text.find('#').unwrap();
    let body = json!({
        "uri": "at://did:plc:casey/app.bsky.feed.post/3f", "cid": "bafyf",
        "author": {"did": "did:plc:casey", "handle": "casey.bsky.social", "displayName": ""},
        "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T10:00:00Z",
            "facets": [
                {"index": {"byteStart": m0, "byteEnd": m0 + 18}, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:brand"}]},
                {"index": {"byteStart": l0, "byteEnd": l1}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://acme.example/bag/claim?id=1"}]},
                {"index": {"byteStart": t0, "byteEnd": text.len()}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "AcmeAir"}]},
                {"index": {"byteStart": 1, "byteEnd": 3}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://inside.emoji"}]},
                {"index": {"byteStart": 0, "byteEnd": 100000}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://too.far"}]}
            ]},
        "indexedAt": "2024-05-01T10:00:01Z"
    });
    let m = only_message(&plugin, body.to_string().as_bytes()).await;
    assert_eq!(
        m.text,
        "🚀 @acme.bsky.social lost bag, see https://acme.example/bag/claim?id=1 #AcmeAir"
    );
    assert_eq!(
        extra(&m, "mentions"),
        Some(r#"{"acme.bsky.social":"did:plc:brand"}"#)
    );
    assert_eq!(extra(&m, "tags"), Some("AcmeAir"));
    assert_eq!(extra(&m, "ignored-facets"), Some("2"));
    assert_eq!(m.author.display_name, None);
}

#[tokio::test]
async fn a_relay_secret_requires_the_bearer_or_the_hmac_header() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let v = vectors
        .iter()
        .find(|v| v["id"] == "x_hub_signature_256_github_docs_example")
        .unwrap();
    let secret = v["secret"].as_str().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let header = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
    let plugin = plugin().await.secret("relay-secret", secret);

    // The published vector verifies; then its body ("Hello, World!") is refused as not JSON.
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Signature-256", header)],
            body,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("not valid JSON")),
        "{err}"
    );
    let mut tampered = body.to_vec();
    tampered[0] ^= 1;
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Signature-256", header)],
            &tampered,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains(secret));

    // Unsigned: refused. Bearer: accepted.
    let view = fixture("marshalx_atproto_test_data/post_record.json");
    assert!(post(&plugin, &view).await.unwrap_err().is_unauthorized());
    let bearer = format!("Bearer {secret}");
    let ok = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("Authorization", &bearer)],
            &view,
        ))
        .await
        .unwrap();
    assert_eq!(events(ok).len(), 1);
    let err = plugin
        .webhook(&request(
            "POST",
            "https://h/",
            &[("Authorization", "Bearer guess")],
            &view,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unauthorized());
}

#[tokio::test]
async fn the_length_rule_counts_graphemes() {
    let plugin = plugin().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "bluesky");
    assert_eq!(info.length_rule.max, 300);
    for (text, expected) in [
        ("", 0),
        ("Hello World!", 12),
        ("👨‍👩‍👧‍👦", 1),
        ("🇯🇵🇧🇷", 2),
        ("e\u{301}", 1),
        ("👍🏿", 1),
        ("日本語のテキスト", 8),
        ("สวัสดีชาวโลก", 10),
        ("https://example.com/a/very/long/path?q=1", 40),
    ] {
        assert_eq!(plugin.measure(text).await.unwrap(), expected, "{text:?}");
    }
    assert_eq!(plugin.measure(&"🏳️‍🌈".repeat(300)).await.unwrap(), 300);
}

// ---------------------------------------------------------------------------------------------
// A loopback XRPC server.

/// The XRPC service on loopback: answers scripted per NSID, whatever the method (queued, the
/// last repeating); an NSID without a script is `MethodNotImplemented`.
struct Mock(PlatformMock);

impl Mock {
    async fn start() -> Mock {
        let mock = PlatformMock::start().await;
        mock.respond_with(|_| Some(Reply::json(404, &json!({"error": "MethodNotImplemented"}))));
        Mock(mock)
    }
    fn on(&self, nsid: &str, status: u16, body: Value) -> &Self {
        self.on_with(nsid, status, vec![], body)
    }
    fn on_with(
        &self,
        nsid: &str,
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    ) -> &Self {
        let reply = headers
            .iter()
            .fold(Reply::json(status, &body), |r, (k, v)| r.header(k, v));
        self.0.then("*", &format!("/xrpc/{nsid}"), reply);
        self
    }
    fn seen(&self, nsid: &str) -> Vec<Recorded> {
        self.0.requests_to(&format!("/xrpc/{nsid}"))
    }
}

/// A request's query parameters by name.
fn query(r: &Recorded) -> HashMap<String, String> {
    r.query_pairs().into_iter().collect()
}

/// A JWT-shaped token whose payload has `exp` (seconds).
fn jwt(name: &str, exp_s: i64) -> String {
    use base64::Engine as _;
    let b64 = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.{name}",
        b64(json!({"typ": "at+jwt"})),
        b64(json!({"exp": exp_s}))
    )
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn session(access: &str) -> Value {
    json!({"accessJwt": access, "refreshJwt": jwt("refresh", now_s() + 86_400),
           "did": "did:plc:brand", "handle": "acme.bsky.social"})
}

async fn connected(mock: &Mock) -> Harness {
    plugin()
        .await
        .config("api_base", mock.0.url())
        .config("handle", "acme.bsky.social")
        .secret("app-password", "abcd-efgh-ijkl-mnop")
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
}

fn bearer(s: &Recorded) -> String {
    s.header("authorization").unwrap_or_default().to_string()
}

#[tokio::test]
async fn poll_reads_notifications_search_and_dms_and_keeps_a_cursor() {
    let mock = Mock::start().await;
    let access = jwt("access-1", now_s() + 7200);
    mock.on("com.atproto.server.createSession", 200, session(&access));
    // The fixture's post view, as a mention notification and as a search hit.
    let thread: Value = serde_json::from_slice(&fixture(
        "marshalx_atproto_test_data/thread_view_post_with_embed_media.json",
    ))
    .unwrap();
    let view = thread["thread"]["post"].clone();
    let mut mention = view.clone();
    mention["reason"] = json!("mention");
    mention["indexedAt"] = json!("2024-05-01T10:02:00.000Z");
    let reply = json!({
        "uri": "at://did:plc:casey/app.bsky.feed.post/r1", "cid": "bafyr1", "reason": "reply",
        "author": {"did": "did:plc:casey", "handle": "casey.bsky.social", "displayName": "Casey"},
        "record": {"$type": "app.bsky.feed.post", "text": "still waiting", "createdAt": "2024-05-01T10:01:00.000Z",
                   "langs": ["en"],
                   "reply": {"root": {"uri": "at://did:plc:brand/app.bsky.feed.post/root", "cid": "bafyroot"},
                             "parent": {"uri": "at://did:plc:brand/app.bsky.feed.post/p", "cid": "bafyp"}}},
        "indexedAt": "2024-05-01T10:01:00.000Z"});
    mock.on(
        "app.bsky.notification.listNotifications",
        200,
        json!({"notifications": [
            {"reason": "like", "uri": "at://did:plc:x/app.bsky.feed.like/l1", "indexedAt": "2024-05-01T10:03:00.000Z",
             "author": {"did": "did:plc:x"}, "record": {"$type": "app.bsky.feed.like"}},
            mention, reply]}),
    );
    let other = json!({"uri": "at://did:plc:dana/app.bsky.feed.post/s1", "cid": "bafys1",
        "author": {"did": "did:plc:dana", "handle": "dana.example"},
        "record": {"$type": "app.bsky.feed.post", "text": "#acmeair lost my bag", "createdAt": "2024-05-01T09:00:00.000Z"},
        "indexedAt": "2024-05-01T09:00:00.000Z"});
    mock.on(
        "app.bsky.feed.searchPosts",
        200,
        json!({"posts": [view, other]}),
    );
    mock.on(
        "chat.bsky.convo.listConvos",
        200,
        json!({"convos": [{"id": "convo-1", "unreadCount": 1,
            "members": [{"did": "did:plc:casey", "handle": "casey.bsky.social", "displayName": "Casey"}],
            "lastMessage": {"sentAt": "2024-05-01T10:04:00.000Z"}}]}),
    );
    mock.on(
        "chat.bsky.convo.getMessages",
        200,
        json!({"messages": [{"$type": "chat.bsky.convo.defs#messageView", "id": "msg-1", "rev": "1",
            "text": "my booking ref is ABC123", "sender": {"did": "did:plc:casey"},
            "sentAt": "2024-05-01T10:04:00.000Z"}]}),
    );
    let plugin = connected(&mock).await.config("hashtags", "#AcmeAir");

    let batch = plugin.poll(None).await.unwrap();
    let summary: Vec<String> = batch
        .events
        .iter()
        .map(|e| match e {
            Event::Message(m) => format!("{:?} {:?} {}", m.origin, m.visibility, m.external_id)
                .replace("Origin::", "")
                .replace("Visibility::", ""),
            Event::Skipped(s) => format!("skipped {:?}", s.event_type),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "Comment Public at://did:plc:casey/app.bsky.feed.post/r1",
            "Mention Public at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kaheyt6vpc22",
            "skipped Some(\"like\")",
            // The search found the mention again (reported once) and one new post.
            "Listening Public at://did:plc:dana/app.bsky.feed.post/s1",
            "DirectMessage Private chat:convo-1:msg-1",
        ]
    );
    let Event::Message(r) = &batch.events[0] else {
        panic!()
    };
    assert_eq!(r.tenant, "test-tenant");
    assert_eq!(
        r.conversation_key,
        "at://did:plc:brand/app.bsky.feed.post/root"
    );
    assert_eq!(
        r.in_reply_to.as_deref(),
        Some("at://did:plc:brand/app.bsky.feed.post/p")
    );
    assert_eq!(r.author.display_name.as_deref(), Some("Casey"));
    assert_eq!(r.received_at, 1_714_557_660_000);
    assert_eq!(extra(r, "root-cid"), Some("bafyroot"));
    let Event::Message(s) = &batch.events[3] else {
        panic!()
    };
    assert_eq!(extra(s, "listening-term"), Some("#acmeair"));
    let Event::Message(dm) = &batch.events[4] else {
        panic!()
    };
    assert_eq!(dm.conversation_key, "chat:convo-1");
    assert_eq!(extra(dm, "convo-id"), Some("convo-1"));
    assert_eq!(dm.text, "my booking ref is ABC123");

    let cursor: Value = serde_json::from_str(batch.next_cursor.as_deref().unwrap()).unwrap();
    assert_eq!(
        cursor,
        json!({"notifications": {"since": "2024-05-01T10:03:00.000Z"},
               "search:#acmeair": {"since": "2024-05-01T09:00:00.000Z"},
               "dms": {"since": "2024-05-01T10:04:00.000Z"}})
    );

    // Request shapes: one login, bearer on every call, the chat proxy on chat calls.
    let login = mock.seen("com.atproto.server.createSession");
    assert_eq!(login.len(), 1);
    assert_eq!(login[0].method, "POST");
    let body: Value = serde_json::from_slice(&login[0].body).unwrap();
    assert_eq!(
        body,
        json!({"identifier": "acme.bsky.social", "password": "abcd-efgh-ijkl-mnop"})
    );
    let search = mock.seen("app.bsky.feed.searchPosts");
    assert_eq!(query(&search[0])["q"], "#acmeair");
    assert_eq!(query(&search[0])["sort"], "latest");
    assert_eq!(bearer(&search[0]), format!("Bearer {access}"));
    let chat = mock.seen("chat.bsky.convo.getMessages");
    assert_eq!(query(&chat[0])["convoId"], "convo-1");
    assert_eq!(
        chat[0].header("atproto-proxy").unwrap(),
        "did:web:api.bsky.chat#bsky_chat"
    );

    // Second poll from the cursor: nothing newer, no new cursor, no second login.
    let again = plugin.poll(batch.next_cursor.as_deref()).await.unwrap();
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.next_cursor, None);
    assert_eq!(mock.seen("com.atproto.server.createSession").len(), 1);
}

#[tokio::test]
async fn poll_errors_are_typed() {
    let mock = Mock::start().await;
    mock.on(
        "com.atproto.server.createSession",
        401,
        json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
    );
    let plugin = connected(&mock).await;
    let err = plugin.poll(None).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("Invalid identifier or password") && !m.contains("abcd-efgh")),
        "{err}"
    );

    let mock = Mock::start().await;
    mock.on(
        "com.atproto.server.createSession",
        200,
        session(&jwt("a", now_s() + 7200)),
    );
    mock.on_with(
        "app.bsky.notification.listNotifications",
        429,
        vec![("ratelimit-reset", (now_s() + 120).to_string())],
        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
    );
    let plugin = connected(&mock).await;
    let err = plugin.poll(None).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::RateLimited(Some(s)) if (30..=121).contains(s)),
        "{err}"
    );

    // Not configured: no handle.
    let err = this_plugin!().await.unwrap().poll(None).await.unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("`handle`")));
}

fn reply(visibility: Visibility) -> OutboundReply {
    OutboundReply {
        idempotency_key: format!("reply-{visibility:?}"),
        conversation_key: "at://did:plc:brand/app.bsky.feed.post/root".into(),
        in_reply_to: Some("at://did:plc:casey/app.bsky.feed.post/r1".into()),
        recipient: Author {
            id: "did:plc:casey".into(),
            handle: Some("casey.bsky.social".into()),
            display_name: Some("Casey".into()),
        },
        text: "@casey.bsky.social So sorry 😔 — your claim is here: https://help.acme.example/claims ^Ana"
            .into(),
        visibility,
        extra: vec![
            ("uri".into(), "at://did:plc:casey/app.bsky.feed.post/r1".into()),
            ("cid".into(), "bafyr1".into()),
            ("root-uri".into(), "at://did:plc:brand/app.bsky.feed.post/root".into()),
            ("root-cid".into(), "bafyroot".into()),
        ],
    }
}

#[tokio::test]
async fn a_public_reply_is_created_as_a_threaded_post_and_an_expired_token_is_renewed() {
    let mock = Mock::start().await;
    let old = jwt("old", now_s() + 7200);
    let new = jwt("new", now_s() + 7200);
    mock.on("com.atproto.server.createSession", 200, session(&old));
    mock.on("com.atproto.server.refreshSession", 200, session(&new));
    mock.on(
        "com.atproto.repo.createRecord",
        400,
        json!({"error": "ExpiredToken", "message": "Token has expired"}),
    )
    .on(
        "com.atproto.repo.createRecord",
        200,
        json!({"uri": "at://did:plc:brand/app.bsky.feed.post/3out", "cid": "bafyout",
               "validationStatus": "valid"}),
    );
    let plugin = connected(&mock).await;
    let r = reply(Visibility::Public);
    let receipt = plugin.deliver(&r).await.unwrap();
    assert_eq!(
        receipt.external_id,
        "at://did:plc:brand/app.bsky.feed.post/3out"
    );
    assert_eq!(
        receipt.url.as_deref(),
        Some("https://bsky.app/profile/did:plc:brand/post/3out")
    );

    let creates = mock.seen("com.atproto.repo.createRecord");
    assert_eq!(creates.len(), 2);
    assert_eq!(bearer(&creates[0]), format!("Bearer {old}"));
    assert_eq!(bearer(&creates[1]), format!("Bearer {new}"));
    let refresh = mock.seen("com.atproto.server.refreshSession");
    assert_eq!(refresh.len(), 1);
    assert!(
        bearer(&refresh[0]).starts_with("Bearer ") && bearer(&refresh[0]).ends_with(".refresh")
    );
    let c = &creates[1];
    assert_eq!(c.method, "POST");
    assert_eq!(c.header("content-type").unwrap(), "application/json");
    let body: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(body["repo"], "did:plc:brand");
    assert_eq!(body["collection"], "app.bsky.feed.post");
    let record = &body["record"];
    assert_eq!(record["$type"], "app.bsky.feed.post");
    assert_eq!(record["text"], r.text);
    assert!(record["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        record["reply"],
        json!({"root": {"uri": "at://did:plc:brand/app.bsky.feed.post/root", "cid": "bafyroot"},
               "parent": {"uri": "at://did:plc:casey/app.bsky.feed.post/r1", "cid": "bafyr1"}})
    );
    // Facets with UTF-8 byte offsets: the mention (DID known) and the link after "😔 —".
    let facets = record["facets"].as_array().unwrap();
    assert_eq!(facets.len(), 2);
    assert_eq!(facets[0]["index"], json!({"byteStart": 0, "byteEnd": 18}));
    assert_eq!(
        facets[0]["features"][0]["$type"],
        "app.bsky.richtext.facet#mention"
    );
    assert_eq!(facets[0]["features"][0]["did"], "did:plc:casey");
    let start = r.text.find("https://").unwrap();
    assert_eq!(
        facets[1]["index"],
        json!({"byteStart": start, "byteEnd": start + "https://help.acme.example/claims".len()})
    );
    assert_eq!(
        facets[1]["features"][0]["uri"],
        "https://help.acme.example/claims"
    );

    // A retry with the same idempotency key does not post twice.
    let again = plugin.deliver(&r).await.unwrap();
    assert_eq!(
        (again.external_id, again.url),
        (receipt.external_id, receipt.url)
    );
    assert_eq!(mock.seen("com.atproto.repo.createRecord").len(), 2);
}

#[tokio::test]
async fn delivery_errors_map_to_rate_limited_rejected_and_unavailable() {
    let mock = Mock::start().await;
    mock.on(
        "com.atproto.server.createSession",
        200,
        session(&jwt("a", now_s() + 7200)),
    );
    mock.on_with(
        "com.atproto.repo.createRecord",
        429,
        vec![("retry-after", "42".into())],
        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
    )
    .on(
        "com.atproto.repo.createRecord",
        400,
        json!({"error": "InvalidRequest", "message": "Reply not allowed: thread is locked"}),
    )
    .on(
        "com.atproto.repo.createRecord",
        502,
        json!({"error": "UpstreamFailure"}),
    );
    let plugin = connected(&mock).await;
    let mut r = reply(Visibility::Public);
    r.idempotency_key = "e1".into();
    let err = plugin.deliver(&r).await.unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(42)));
    r.idempotency_key = "e2".into();
    let err = plugin.deliver(&r).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("InvalidRequest") && m.contains("thread is locked")),
        "{err}"
    );
    r.idempotency_key = "e3".into();
    let err = plugin.deliver(&r).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("502")),
        "{err}"
    );
    // Too long for a post: refused before any request.
    r.idempotency_key = "e4".into();
    r.text = "🇵🇹".repeat(301);
    let before = mock.seen("com.atproto.repo.createRecord").len();
    let err = plugin.deliver(&r).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("301 graphemes"))
    );
    assert_eq!(mock.seen("com.atproto.repo.createRecord").len(), before);
}

#[tokio::test]
async fn a_private_reply_goes_through_the_chat_proxy_and_a_closed_inbox_is_rejected() {
    let mock = Mock::start().await;
    mock.on(
        "com.atproto.server.createSession",
        200,
        session(&jwt("a", now_s() + 7200)),
    );
    mock.on(
        "chat.bsky.convo.getConvoForMembers",
        200,
        json!({"convo": {"id": "convo-9", "rev": "1", "members": [], "muted": false, "unreadCount": 0}}),
    );
    mock.on(
        "chat.bsky.convo.sendMessage",
        200,
        json!({"id": "msg-77", "rev": "2", "text": "…", "sender": {"did": "did:plc:brand"},
               "sentAt": "2024-05-01T10:10:00.000Z"}),
    )
    .on(
        "chat.bsky.convo.sendMessage",
        400,
        json!({"error": "InvalidRequest", "message": "recipient has disabled incoming messages"}),
    );
    let plugin = connected(&mock).await;
    let mut r = reply(Visibility::Private);
    r.text = "Hi Casey, could you DM me your booking reference? ^Ana".into();
    let receipt = plugin.deliver(&r).await.unwrap();
    assert_eq!(receipt.external_id, "chat:convo-9:msg-77");
    assert_eq!(receipt.url, None);
    let convo = mock.seen("chat.bsky.convo.getConvoForMembers");
    assert_eq!(convo[0].method, "GET");
    assert_eq!(query(&convo[0])["members"], "did:plc:casey");
    assert_eq!(
        convo[0].header("atproto-proxy").unwrap(),
        "did:web:api.bsky.chat#bsky_chat"
    );
    let send = mock.seen("chat.bsky.convo.sendMessage");
    assert_eq!(
        send[0].header("atproto-proxy").unwrap(),
        "did:web:api.bsky.chat#bsky_chat"
    );
    let body: Value = serde_json::from_slice(&send[0].body).unwrap();
    assert_eq!(
        body,
        json!({"convoId": "convo-9", "message": {"text": r.text}})
    );

    r.idempotency_key = "dm-2".into();
    let err = plugin.deliver(&r).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("disabled incoming messages")),
        "{err}"
    );
}
