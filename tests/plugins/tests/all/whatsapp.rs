//! The WhatsApp connector as a built component in the real runtime: every WhatsApp fixture
//! (each named payload of pywa's collection files as its own delivery), the X-Hub-Signature-256
//! vector, the verification request, the length rule, and delivery to a loopback Graph mock.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Capability, Event, Message, MessageAction, Origin, OutboundReply,
    PluginError, Visibility, WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, fixture_files, plugin_error, request};

plugin_under_test!("whatsapp", "whatsapp-connector");

const APP_SECRET: &str = "test-app-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn connector() -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .secret("app-secret", APP_SECRET)
        .secret("verify-token", "meatyhamhock")
}

async fn post(plugin: &Harness, body: &[u8]) -> Result<WebhookOutcome, CallError> {
    let sig = sign(APP_SECRET, body);
    plugin
        .webhook(&request(
            "POST",
            "https://sb.example/hooks/acme/whatsapp",
            &[
                ("X-Hub-Signature-256", &sig),
                ("content-type", "application/json"),
            ],
            body,
        ))
        .await
}

/// A failed call must be the plugin's own typed error, never a trap or malformed output.
fn no_crash(what: &str, err: &CallError) {
    assert!(
        !matches!(
            err.failure,
            CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
        ),
        "{what}: {err}"
    );
}

fn events(what: &str, outcome: WebhookOutcome) -> Vec<Event> {
    match outcome {
        WebhookOutcome::Events(e) => e,
        WebhookOutcome::Challenge(_) => panic!("{what}: unexpected challenge"),
    }
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every delivery a fixture file stands for: the file itself for restfb's single payloads, and
/// each named payload for pywa's collection files.
fn deliveries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    if !path.to_string_lossy().contains("pywa") {
        return vec![(name, bytes)];
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    json.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (format!("{name}#{k}"), serde_json::to_vec(v).unwrap()))
        .collect()
}

#[tokio::test]
async fn every_fixture_is_normalised_or_skipped_with_a_reason() {
    let plugin = connector().await.tenant("acme");
    let files = fixture_files("whatsapp");
    assert_eq!(files.len(), 16, "fixture set changed: {files:?}");
    let (mut normalised, mut skipped, mut refused) = (0, 0, 0);
    let mut messages: Vec<(String, Message)> = Vec::new();

    for path in &files {
        let name = path.display().to_string();
        // A pywa collection file as a whole is not a webhook body: refused, naming why.
        if name.contains("pywa") {
            let err = post(&plugin, &std::fs::read(path).unwrap())
                .await
                .unwrap_err();
            no_crash(&name, &err);
            assert!(
                matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("`object` and `entry`")),
                "{name}: {err}"
            );
            refused += 1;
        }
        for (what, body) in deliveries(path) {
            let outcome = match post(&plugin, &body).await {
                Ok(o) => o,
                Err(e) => {
                    no_crash(&what, &e);
                    panic!("{what}: {e}");
                }
            };
            let evs = events(&what, outcome);
            assert!(!evs.is_empty(), "{what}: no events");
            for e in evs {
                match e {
                    Event::Message(m) => {
                        assert_eq!(m.tenant, "acme", "{what}");
                        assert_eq!(m.channel, "whatsapp", "{what}");
                        assert!(m.external_id.starts_with("wamid."), "{what}");
                        assert_eq!(m.visibility, Visibility::Private, "{what}");
                        assert_eq!(m.origin, Origin::DirectMessage, "{what}");
                        assert!(m.received_at > 1_600_000_000_000, "{what}");
                        normalised += 1;
                        messages.push((what.clone(), m));
                    }
                    Event::Skipped(s) => {
                        assert!(s.reason.len() > 10, "{what}: {s:?}");
                        skipped += 1;
                    }
                }
            }
        }
    }
    println!("whatsapp fixtures: {normalised} normalised, {skipped} skipped, {refused} refused");
    assert_eq!((normalised, skipped, refused), (9, 16, 4));

    let find = |needle: &str| -> &Message {
        &messages
            .iter()
            .find(|(w, _)| w.contains(needle))
            .unwrap_or_else(|| panic!("no message from {needle}"))
            .1
    };

    // A list reply: the chosen title is the text, quoting the business's list message.
    let m = find("callback_selection.json#description");
    assert_eq!(m.external_id, "wamid.zyzxyz");
    assert_eq!(m.conversation_key, "1122334455667:972987654321");
    assert_eq!(m.in_reply_to.as_deref(), Some("wamid.xyzxyz"));
    assert_eq!(m.text, "title");
    assert_eq!(m.author.id, "972987654321");
    assert_eq!(m.author.display_name.as_deref(), Some("Test Name"));
    assert_eq!(m.received_at, 1_698_266_905_000);
    assert_eq!(extra(m, "reply-id"), Some("callback_data"));
    assert_eq!(extra(m, "reply-description"), Some("description"));
    assert_eq!(extra(m, "user-id"), Some("US.13491208655302741918"));

    // An edit reuses the original message's id and carries the edited content.
    let m = find("edited_message.json#image");
    assert_eq!(
        m.external_id,
        "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    );
    assert_eq!(m.action, MessageAction::Edited);
    assert_eq!(m.text, "Updated image caption");
    assert_eq!(m.in_reply_to.as_deref(), Some("M0"));
    assert_eq!(m.author.id, "16505551234");
    // The only contact in the payload is someone else: no name is guessed.
    assert_eq!(m.author.display_name, None);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(
        m.attachments[0].url.as_deref(),
        Some("https://media.example.com/updated-image.jpg")
    );
    assert_eq!(
        extra(m, "event-id"),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=")
    );

    // Voice note: audio attachment, MIME type with restfb's `\/` undone.
    let m = find("message-audio");
    assert_eq!(m.text, "");
    assert_eq!(m.attachments[0].kind, AttachmentKind::Audio);
    assert_eq!(
        m.attachments[0].mime_type.as_deref(),
        Some("audio/ogg; codecs=opus")
    );
    assert_eq!(extra(m, "media-id"), Some("1113842206146232"));
    assert_eq!(extra(m, "voice"), Some("true"));
    assert_eq!(m.conversation_key, "10634295353625:491234567890");
    assert_eq!(m.author.display_name.as_deref(), Some("TestUser"));

    let m = find("message-document");
    assert_eq!(m.text, "RESTFB ANNIVERSARY");
    assert_eq!(m.attachments[0].kind, AttachmentKind::File);
    assert_eq!(
        m.attachments[0].description.as_deref(),
        Some("RESTFB ANNIVERSARY.zip")
    );
    assert_eq!(
        m.attachments[0].mime_type.as_deref(),
        Some("application/zip")
    );

    let m = find("message-video");
    assert_eq!(
        (m.text.as_str(), m.attachments[0].kind),
        ("Video", AttachmentKind::Video)
    );
    assert_eq!(m.received_at, 1_653_253_313_000);

    // A template quick-reply button.
    let m = find("message-button");
    assert_eq!(m.text, "No");
    assert_eq!(m.in_reply_to.as_deref(), Some("wamid.ID"));
    assert_eq!(extra(m, "button-payload"), Some("No-Button-Payload"));

    let m = find("message-contacts2");
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(
        m.attachments[1].description.as_deref(),
        Some("REDACTED: +39 349 REDACTED")
    );

    // A username user in a group: business-scoped id, handle and the group as conversation.
    let m = find("message-text-bsuid");
    assert_eq!(m.text, "Does it come in another color?");
    assert_eq!(m.author.id, "US.13491208655302741918");
    assert_eq!(m.author.handle.as_deref(), Some("@realsheenanelson"));
    assert_eq!(m.author.display_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(
        m.conversation_key,
        "106540352242922:120363418770915618@g.us"
    );
    assert_eq!(extra(m, "group-id"), Some("120363418770915618@g.us"));
    assert_eq!(extra(m, "wa-id"), None);
    assert_eq!(extra(m, "verified-phone"), None);
}

#[tokio::test]
async fn skipped_fixtures_say_why() {
    let plugin = connector().await;
    let reason = |outcome: WebhookOutcome| match &events("", outcome)[..] {
        [Event::Skipped(s)] => (s.event_type.clone(), s.reason.clone()),
        other => panic!("{other:?}"),
    };
    let dir = fixture_files("whatsapp");
    let file = |n: &str| std::fs::read(dir.iter().find(|p| p.ends_with(n)).unwrap()).unwrap();

    let (t, r) = reason(
        post(
            &plugin,
            &file("restfb/webhook-incoming-message-unsupported.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("unsupported"));
    assert!(
        r.contains("131051") && r.contains("Messagetypeunknown"),
        "{r}"
    );
    let (t, r) = reason(
        post(
            &plugin,
            &file("restfb/webhook-incoming-message-status-bsuid.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("status:delivered"));
    assert!(r.contains("not customer messages"), "{r}");
    let (t, r) = reason(
        post(
            &plugin,
            &file("restfb/webhook-incoming-message-system-bsuid.json"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("system"));
    assert!(r.contains("user_changed_user_id"), "{r}");
    let (t, _) = reason(
        post(&plugin, &file("restfb/webhook-accountUpdate-banned.json"))
            .await
            .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("account_update"));

    let statuses: serde_json::Value =
        serde_json::from_slice(&file("pywa_tests_data_updates/message_status.json")).unwrap();
    let failed = serde_json::to_vec(&statuses["failed"]).unwrap();
    let (t, r) = reason(post(&plugin, &failed).await.unwrap());
    assert_eq!(t.as_deref(), Some("status:failed"));
    assert!(r.contains("130472"), "{r}");
    let echoes: serde_json::Value =
        serde_json::from_slice(&file("pywa_tests_data_updates/outgoing_message.json")).unwrap();
    let (t, r) = reason(
        post(&plugin, &serde_json::to_vec(&echoes["delete"]).unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(t.as_deref(), Some("smb_message_echoes"));
    assert!(r.contains("business itself sent"), "{r}");
}

#[tokio::test]
async fn a_batch_carries_many_events_and_deletions() {
    let plugin = connector().await;
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [
        {"id": "waba", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106"},
            "contacts": [{"profile": {"name": "Casey"}, "wa_id": "4915"}],
            "messages": [
                {"from": "4915", "id": "wamid.1", "timestamp": "1700000000", "type": "text",
                 "text": {"body": "My bag never arrived 😡"}},
                {"from": "4915", "id": "wamid.2", "timestamp": "1700000005", "type": "reaction",
                 "reaction": {"message_id": "wamid.OUT", "emoji": "👎"}},
                {"from": "4915", "id": "wamid.3", "timestamp": "1700000009", "type": "revoke",
                 "revoke": {"original_message_id": "wamid.1"}},
                {"from": "4915", "id": "wamid.4", "timestamp": "1700000010", "type": "location",
                 "location": {"latitude": 38.77, "longitude": -9.13, "name": "LIS T1"}}
            ]}}]},
        {"id": "waba", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "106"},
            "statuses": [{"id": "wamid.OUT", "status": "read", "timestamp": "1700000001"}]}}]}
    ]})
    .to_string();
    let evs = events("batch", post(&plugin, body.as_bytes()).await.unwrap());
    assert_eq!(evs.len(), 5);
    let Event::Message(first) = &evs[0] else {
        panic!("{:?}", evs[0])
    };
    assert_eq!(first.text, "My bag never arrived 😡");
    assert_eq!(first.received_at, 1_700_000_000_000);
    assert!(matches!(&evs[1], Event::Skipped(s) if s.reason.contains("reaction 👎")));
    let Event::Message(deleted) = &evs[2] else {
        panic!("{:?}", evs[2])
    };
    assert_eq!(
        (deleted.external_id.as_str(), deleted.action),
        ("wamid.1", MessageAction::Deleted)
    );
    let Event::Message(loc) = &evs[3] else {
        panic!("{:?}", evs[3])
    };
    assert_eq!(loc.attachments[0].kind, AttachmentKind::Location);
    assert_eq!(
        loc.attachments[0].description.as_deref(),
        Some("LIS T1, (38.77, -9.13)")
    );
    assert!(matches!(&evs[4], Event::Skipped(s) if s.event_type.as_deref() == Some("status:read")));
}

#[tokio::test]
async fn x_hub_signature_256_is_checked_on_the_raw_body() {
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
    assert_eq!(sign(secret, body), header);
    let plugin = this_plugin!().await.unwrap().secret("app-secret", secret);
    let call = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let plugin = &plugin;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            plugin
                .webhook(&request("POST", "https://h/", &h, &body))
                .await
        }
    };

    // The published signature verifies; then "Hello, World!" is refused as not JSON.
    let err = call(vec![("X-Hub-Signature-256", header.into())], body.to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("not valid JSON") && m.contains("line 1")),
        "{err}"
    );
    // One byte changed, no header, or a digest for another secret: unauthorized, no leak.
    let mut tampered = body.to_vec();
    tampered[0] ^= 1;
    for (headers, body) in [
        (vec![("X-Hub-Signature-256", header.to_string())], tampered),
        (vec![], body.to_vec()),
        (
            vec![("X-Hub-Signature-256", sign("other", body))],
            body.to_vec(),
        ),
        (
            vec![("X-Hub-Signature", "sha1=0000".to_string())],
            body.to_vec(),
        ),
    ] {
        let err = call(headers, body).await.unwrap_err();
        assert!(err.is_unauthorized(), "{err}");
        assert!(!err.to_string().contains(secret));
        assert!(!err.to_string().contains(&header[7..]));
    }
    // A real payload signed with the wrong secret is refused before it is read.
    let fixture = std::fs::read(
        fixture_files("whatsapp")
            .into_iter()
            .find(|p| p.ends_with("webhook-incoming-message-video.json"))
            .unwrap(),
    )
    .unwrap();
    let err = call(
        vec![("X-Hub-Signature-256", sign("not-the-app-secret", &fixture))],
        fixture.clone(),
    )
    .await
    .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    // No app secret configured: not-configured, not a silent accept.
    let bare = this_plugin!().await.unwrap();
    let err = bare
        .webhook(&request(
            "POST",
            "https://h/",
            &[("X-Hub-Signature-256", &sign("", &fixture))],
            &fixture,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("app-secret")),
        "{err}"
    );
}

#[tokio::test]
async fn the_verification_request_answers_only_the_right_token() {
    let plugin = connector().await;
    let ok = plugin
        .webhook(&request(
            "GET",
            "https://h/wa?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
            &[],
            b"",
        ))
        .await
        .unwrap();
    let WebhookOutcome::Challenge(r) = ok else {
        panic!("expected a challenge answer")
    };
    assert_eq!((r.status, r.body.as_slice()), (200, &b"1158201444"[..]));
    let bad = plugin
        .webhook(&request(
            "GET",
            "https://h/wa?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess",
            &[],
            b"",
        ))
        .await
        .unwrap();
    let WebhookOutcome::Challenge(r) = bad else {
        panic!("expected a 403 answer")
    };
    assert_eq!(r.status, 403);
    assert!(!String::from_utf8_lossy(&r.body).contains("1158201444"));
    let err = plugin
        .webhook(&request("GET", "https://h/wa", &[], b""))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::InvalidInput(_)));
}

#[tokio::test]
async fn length_rule_and_channel_info() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "whatsapp");
    assert_eq!(info.display_name, "WhatsApp");
    assert_eq!(info.length_rule.max, 4096);
    assert!(!info.capabilities.contains(&Capability::PublicReplies));
    for c in [
        Capability::PrivateMessages,
        Capability::Threading,
        Capability::Webhooks,
    ] {
        assert!(info.capabilities.contains(&c));
    }
    assert_eq!(plugin.measure("").await.unwrap(), 0);
    assert_eq!(plugin.measure("Olá, Casey!").await.unwrap(), 11);
    // A family emoji is 5 scalar values joined by zero-width joiners; a flag is 2.
    assert_eq!(plugin.measure("👨‍👩‍👧").await.unwrap(), 5);
    assert_eq!(plugin.measure("🇵🇹").await.unwrap(), 2);
    // CJK counts one per character; a URL counts in full (no link shortening on WhatsApp).
    assert_eq!(plugin.measure("行李没到").await.unwrap(), 4);
    assert_eq!(
        plugin
            .measure("https://help.example.com/lost-bag")
            .await
            .unwrap(),
        33
    );
    assert_eq!(plugin.measure(&"字".repeat(4096)).await.unwrap(), 4096);
}

/// A Graph API on loopback answering `POST /{version}/{phone}/messages`. The recipient picks
/// the answer.
async fn mock_graph() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        if r.method != "POST" || !matches!(segments.as_slice(), [_, _, "messages"]) {
            return None;
        }
        let error = |status: u16, code: i64, message: &str| {
            Reply::json(
                status,
                &serde_json::json!({"error": {"message": message, "type": "OAuthException",
                    "code": code, "error_data": {"messaging_product": "whatsapp",
                    "details": message}, "fbtrace_id": "Az8"}}),
            )
            .header("retry-after", "12")
        };
        Some(match r.json()["to"].as_str().unwrap_or("") {
            "1429" => error(429, 130429, "Rate limit hit"),
            "1047" => error(400, 131047, "Re-engagement message"),
            "1190" => error(401, 190, "Error validating access token"),
            "1500" => error(500, 131000, "Something went wrong"),
            to => Reply::json(
                200,
                &serde_json::json!({"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": format!("wamid.OUT-{to}")}]}),
            )
            .header("retry-after", "0"),
        })
    });
    mock
}

fn reply(key: &str, wa_id: &str, visibility: Visibility) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: format!("106540352242922:{wa_id}"),
        in_reply_to: Some("wamid.IN-1".into()),
        recipient: Author {
            id: wa_id.into(),
            handle: None,
            display_name: Some("Casey".into()),
        },
        text: "Sorry, Casey: your bag is on the next flight. ^Ana".into(),
        visibility,
        extra: vec![
            ("phone-number-id".into(), "106540352242922".into()),
            ("wa-id".into(), wa_id.into()),
        ],
    }
}

#[tokio::test]
async fn delivery_speaks_the_cloud_api_and_maps_its_errors() {
    let mock = mock_graph().await;
    let plugin = connector()
        .await
        .secret("access-token", "EAAG-test-token")
        .config("api_base", mock.url())
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        // The mock stands in for graph.facebook.com, the only host the connector declares.
        .trust_undeclared_egress();

    let receipt = plugin
        .deliver(&reply("r-1", "491234567890", Visibility::Private))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "wamid.OUT-491234567890");
    assert_eq!(receipt.url, None);
    {
        let seen = mock.requests();
        assert_eq!(seen.len(), 1);
        let sent = &seen[0];
        assert_eq!(sent.path_and_query(), "/v21.0/106540352242922/messages");
        assert_eq!(sent.header("authorization"), Some("Bearer EAAG-test-token"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(
            sent.json(),
            serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "491234567890", "type": "text",
                "text": {"body": "Sorry, Casey: your bag is on the next flight. ^Ana",
                         "preview_url": false},
                "context": {"message_id": "wamid.IN-1"}})
        );
    }
    // A retry of the same reply is answered from the first receipt, not sent twice.
    let again = plugin
        .deliver(&reply("r-1", "491234567890", Visibility::Private))
        .await
        .unwrap();
    assert_eq!(again.external_id, "wamid.OUT-491234567890");
    assert_eq!(mock.count(), 1);

    // Platform refusals.
    let err = plugin
        .deliver(&reply("r-2", "1429", Visibility::Private))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(12)));
    let err = plugin
        .deliver(&reply("r-3", "1047", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("outside the 24-hour customer service window") && m.contains("131047")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("r-4", "1190", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("access token") && !m.contains("EAAG-test-token")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("r-5", "1500", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("131000")),
        "{err}"
    );

    // No public replies on WhatsApp: refused without a request.
    let before = mock.count();
    let err = plugin
        .deliver(&reply("r-6", "491234567890", Visibility::Public))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("no public replies")),
        "{err}"
    );
    // Too long for a WhatsApp text message.
    let mut long = reply("r-7", "491234567890", Visibility::Private);
    long.text = "a".repeat(4097);
    let err = plugin.deliver(&long).await.unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("4096")));
    assert_eq!(mock.count(), before);

    // A group reply goes to the group.
    let mut group = reply("r-8", "US.13491208655302741918", Visibility::Private);
    group.extra = vec![
        ("phone-number-id".into(), "106540352242922".into()),
        ("group-id".into(), "120363418770915618@g.us".into()),
    ];
    group.in_reply_to = None;
    let receipt = plugin.deliver(&group).await.unwrap();
    assert_eq!(receipt.external_id, "wamid.OUT-120363418770915618@g.us");
    let body = mock.requests().last().unwrap().json();
    assert_eq!(body["recipient_type"], "group");
    assert_eq!(body["to"], "120363418770915618@g.us");
    assert!(body.get("context").is_none());
}

#[tokio::test]
async fn delivery_without_a_token_is_not_configured() {
    let plugin = connector().await;
    let err = plugin
        .deliver(&reply("r-1", "491234567890", Visibility::Private))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("access-token")),
        "{err}"
    );
}
