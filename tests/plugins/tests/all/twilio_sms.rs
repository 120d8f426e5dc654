//! The Twilio SMS connector as a built component in the real runtime: the published request
//! validation example, realistic webhook bodies built from Twilio's documented parameters (there
//! are no Twilio fixture files), the length rule, and delivery to a loopback Messages API.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, Origin, OutboundReply, PluginError, Visibility,
    WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("twilio-sms", "twilio-sms-connector");

const TOKEN: &str = "12345";
const URL: &str = "https://care.example.com/hooks/acme/sms";
const SID: &str = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

/// Twilio's algorithm, written out independently of the plugin.
fn twilio_signature(token: &str, url: &str, body: &str) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    params.sort();
    let mut data = url.to_string();
    for (k, v) in params {
        data.push_str(&k);
        data.push_str(&v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// An inbound SMS as Twilio documents it ("A message comes in" webhook parameters).
fn inbound_sms(sid: &str, body: &str) -> String {
    form(&[
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", "+15005550006"),
        ("MessagingServiceSid", "MGXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", SID),
        ("From", "+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ])
}

async fn connector() -> Harness {
    this_plugin!().await.unwrap().secret("auth-token", TOKEN)
}

async fn post(
    plugin: &Harness,
    url: &str,
    body: &str,
    signed_url: &str,
) -> Result<WebhookOutcome, CallError> {
    let sig = twilio_signature(TOKEN, signed_url, body);
    plugin
        .webhook(&request(
            "POST",
            url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", &sig),
                (
                    "i-twilio-idempotency-token",
                    "a5f0b8b1-2d2b-4c4a-9a55-9e1d6a1f0c11",
                ),
            ],
            body.as_bytes(),
        ))
        .await
}

fn one(outcome: Result<WebhookOutcome, CallError>) -> Event {
    match outcome {
        Ok(WebhookOutcome::Events(mut e)) if e.len() == 1 => e.remove(0),
        other => panic!("expected one event, got {other:?}"),
    }
}

fn message(event: Event) -> Message {
    match event {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
    m.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn never_crashed(r: &Result<WebhookOutcome, CallError>) {
    if let Err(e) = r {
        assert!(
            !matches!(
                e.failure,
                CallFailure::Trap { .. } | CallFailure::MalformedOutput { .. }
            ),
            "{e}"
        );
    }
}

#[tokio::test]
async fn inbound_sms_is_one_private_message_from_a_phone_number() {
    let plugin = connector().await.tenant("acme");
    let body = inbound_sms(
        "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
        "Hi, my package never arrived. Order #1234",
    );
    let r = post(&plugin, URL, &body, URL).await;
    never_crashed(&r);
    let m = message(one(r));
    assert_eq!(m.tenant, "acme");
    assert_eq!(m.channel, "sms");
    assert_eq!(m.external_id, "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d");
    assert_eq!(m.conversation_key, "+15005550006|+14155550100");
    assert_eq!(m.author.id, "+14155550100");
    assert_eq!(m.author.handle, None);
    assert_eq!(m.text, "Hi, my package never arrived. Order #1234");
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    assert!(m.attachments.is_empty());
    assert_eq!(extra(&m, "author-id-kind"), Some("phone-number"));
    assert_eq!(extra(&m, "twilio-to"), Some("+15005550006"));
    assert_eq!(extra(&m, "twilio-account-sid"), Some(SID));
    assert_eq!(extra(&m, "twilio-from-country"), Some("US"));
    // The host stamps its clock: Twilio's webhook has no timestamp.
    assert!(m.received_at > 1_700_000_000_000, "{}", m.received_at);
}

#[tokio::test]
async fn unicode_bodies_survive_form_encoding() {
    let plugin = connector().await;
    let text = "¿Dónde está mi pedido? 注文が届きません 😡 + 50% off & more";
    let m = message(one(
        post(&plugin, URL, &inbound_sms("SMu1", text), URL).await
    ));
    assert_eq!(m.text, text);
}

#[tokio::test]
async fn mms_with_media_becomes_attachments() {
    let plugin = connector().await;
    let body = form(&[
        ("MessageSid", "MM09876543210fedcba09876543210fedc"),
        ("AccountSid", SID),
        ("From", "+14155550100"),
        ("To", "+15005550006"),
        ("Body", "Here is the broken item"),
        ("NumMedia", "2"),
        ("NumSegments", "1"),
        ("MediaContentType0", "image/jpeg"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/ACXXX/Messages/MM098/Media/ME111",
        ),
        ("MediaContentType1", "video/mp4"),
        (
            "MediaUrl1",
            "https://api.twilio.com/2010-04-01/Accounts/ACXXX/Messages/MM098/Media/ME222",
        ),
        ("ApiVersion", "2010-04-01"),
    ]);
    let m = message(one(post(&plugin, URL, &body, URL).await));
    assert_eq!(m.external_id, "MM09876543210fedcba09876543210fedc");
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(m.attachments[0].mime_type.as_deref(), Some("image/jpeg"));
    assert!(
        m.attachments[0]
            .url
            .as_deref()
            .unwrap()
            .ends_with("/Media/ME111")
    );
    assert_eq!(m.attachments[1].kind, AttachmentKind::Video);
}

#[tokio::test]
async fn status_callbacks_and_voice_webhooks_are_skipped() {
    let plugin = connector().await;
    let body = form(&[
        ("SmsSid", "SM5e6f"),
        ("SmsStatus", "delivered"),
        ("MessageStatus", "delivered"),
        ("To", "+14155550100"),
        ("MessageSid", "SM5e6f"),
        ("AccountSid", SID),
        ("From", "+15005550006"),
        ("ApiVersion", "2010-04-01"),
    ]);
    let r = post(&plugin, URL, &body, URL).await;
    never_crashed(&r);
    assert!(
        matches!(one(r), Event::Skipped(s) if s.event_type.as_deref() == Some("status-callback") && s.reason.contains("delivered"))
    );
}

#[tokio::test]
async fn published_validation_example_and_the_port_rule() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/signatures/hmac_vectors.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "twilio_docs_worked_example_legacy_numbers")
        .unwrap();
    let url = v["url"].as_str().unwrap();
    let sig = v["headers"]["X-Twilio-Signature"].as_str().unwrap();
    let pairs: Vec<(String, String)> = v["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let plugin = this_plugin!()
        .await
        .unwrap()
        .secret("auth-token", v["secret"].as_str().unwrap());
    let send = |u: &str, s: &str, b: &str| {
        request(
            "POST",
            u,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", s),
            ],
            b.as_bytes(),
        )
    };
    // Valid: verified, then skipped (the example is a voice call).
    let ok = plugin.webhook(&send(url, sig, &body)).await;
    never_crashed(&ok);
    assert!(matches!(one(ok), Event::Skipped(s) if s.event_type.as_deref() == Some("voice-call")));
    // The same signature with :443 made explicit in the URL the host saw.
    let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert!(plugin.webhook(&send(with_port, sig, &body)).await.is_ok());
    // Or via config `webhook_url` when a proxy changed the URL.
    let proxied = this_plugin!()
        .await
        .unwrap()
        .secret("auth-token", "12345")
        .config("webhook_url", url);
    assert!(
        proxied
            .webhook(&send(
                "http://10.0.0.7:8080/myapp.php?foo=1&bar=2",
                sig,
                &body
            ))
            .await
            .is_ok()
    );
    // Invalid: changed parameter, other URL, other token, missing header.
    let tampered = body.replace("Digits=1234", "Digits=1235");
    assert!(
        plugin
            .webhook(&send(url, sig, &tampered))
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    assert!(
        plugin
            .webhook(&send(
                "https://mycompany.com/other.php?foo=1&bar=2",
                sig,
                &body
            ))
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    // Any port is dropped before trying again (twilio-python's validator), since Twilio signs
    // the URL as configured and a proxy may show the host another port.
    assert!(
        plugin
            .webhook(&send(
                "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
                sig,
                &body
            ))
            .await
            .is_ok()
    );
    let other = this_plugin!().await.unwrap().secret("auth-token", "54321");
    let err = other.webhook(&send(url, sig, &body)).await.unwrap_err();
    assert!(err.is_unauthorized());
    assert!(!err.to_string().contains("54321"));
    let err = plugin
        .webhook(&request(
            "POST",
            url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::Unauthorized(m) if m.contains("missing")));
}

#[tokio::test]
async fn whatsapp_through_twilio_arrives_on_whatsapp_with_the_number_verified() {
    let plugin = connector().await.tenant("acme");
    let url = "https://hooks.example.com/twilio";
    let body = form(&[
        ("SmsMessageSid", "SM9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("NumMedia", "0"),
        ("ProfileName", "Casey"),
        ("WaId", "14155550100"),
        ("SmsStatus", "received"),
        ("Body", "Is my flight on time?"),
        ("To", "whatsapp:+14155238886"),
        ("NumSegments", "1"),
        ("MessageSid", "SM9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("AccountSid", SID),
        ("From", "whatsapp:+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ]);
    let sig = twilio_signature(TOKEN, url, &body);
    let answered = plugin
        .answered_webhook(&request(
            "POST",
            url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", &sig),
            ],
            body.as_bytes(),
        ))
        .await
        .unwrap();
    let m = message(one(Ok(answered.outcome)));
    assert_eq!(m.channel, "whatsapp");
    assert_eq!(m.author.id, "whatsapp:+14155550100");
    assert_eq!(extra(&m, "verified-phone"), Some("+14155550100"));
    // Twilio reads the answer as instructions: empty TwiML, so nothing is texted back.
    let ack = answered.acknowledgement.expect("a TwiML acknowledgement");
    assert_eq!(ack.status, 200);
    assert!(String::from_utf8_lossy(&ack.body).contains("<Response/>"));
    assert!(
        ack.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/xml"))
    );

    // An SMS stays on `sms`.
    let body = inbound_sms("SM1", "hello");
    let sig = twilio_signature(TOKEN, url, &body);
    let sms = plugin
        .answered_webhook(&request(
            "POST",
            url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", &sig),
            ],
            body.as_bytes(),
        ))
        .await
        .unwrap();
    assert_eq!(message(one(Ok(sms.outcome))).channel, "sms");
}

#[tokio::test]
async fn length_rule_is_characters_up_to_1600() {
    let plugin = connector().await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "sms");
    assert_eq!(info.length_rule.max, 1600);
    assert!(info.length_rule.description.contains("GSM-7"));
    assert_eq!(plugin.measure("Your order ships today").await.unwrap(), 22);
    assert_eq!(plugin.measure("你好，订单已发货").await.unwrap(), 8);
    assert_eq!(plugin.measure("👍").await.unwrap(), 1);
    assert_eq!(plugin.measure("👨‍👩‍👧").await.unwrap(), 5);
    assert_eq!(
        plugin
            .measure("https://help.example.com/a/1")
            .await
            .unwrap(),
        28
    );
}

/// The Messages API on loopback (`POST /2010-04-01/Accounts/{account}/Messages.json`),
/// answering by recipient.
async fn mock_twilio() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        if r.method != "POST"
            || !matches!(segments.as_slice(), ["2010-04-01", "Accounts", _, "Messages.json"])
        {
            return None;
        }
        let form = r.form();
        let to = form.iter().find(|(k, _)| k == "To").map(|(_, v)| v.as_str()).unwrap_or("");
        let (status, body) = match to {
            "+14155550199" => (429, r#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}"#),
            "+14155550111" => (400, r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","more_info":"https://www.twilio.com/docs/errors/21610","status":400}"#),
            "+1555" => (400, r#"{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#),
            "+14155550500" => (503, "Service Unavailable"),
            _ => (201, r#"{"sid":"SM7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","status":"queued","num_segments":"1","direction":"outbound-api"}"#),
        };
        Some(Reply::text(status, body).header("retry-after", "5"))
    });
    mock
}

fn reply(key: &str, to: &str) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: format!("+15005550006|{to}"),
        in_reply_to: Some("SM1a2b".into()),
        recipient: Author {
            id: to.into(),
            handle: None,
            display_name: None,
        },
        text: "Sorry! A replacement ships today: https://help.example.com/r/1234 – Ana".into(),
        visibility: Visibility::Private,
        extra: vec![("twilio-to".into(), "+15005550006".into())],
    }
}

async fn delivering(url: &str) -> Harness {
    connector()
        .await
        .config("account_sid", ACCOUNT)
        .config("api_base", url)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress()
}

#[tokio::test]
async fn delivery_posts_the_documented_form_with_basic_auth() {
    let mock = mock_twilio().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await;
    let receipt = plugin.deliver(&reply("r-1", "+14155550100")).await.unwrap();
    assert_eq!(receipt.external_id, "SM7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d");
    // Same idempotency key again: the remembered receipt, nothing sent twice.
    assert_eq!(
        plugin
            .deliver(&reply("r-1", "+14155550100"))
            .await
            .unwrap()
            .external_id,
        receipt.external_id
    );
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    assert_eq!(
        sent.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    assert_eq!(sent.header("authorization"), Some(expected.as_str()));
    let form = sent.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some("+14155550100"));
    assert_eq!(get("From"), Some("+15005550006"));
    assert_eq!(
        get("Body"),
        Some("Sorry! A replacement ships today: https://help.example.com/r/1234 – Ana")
    );
}

#[tokio::test]
async fn whatsapp_replies_carry_the_prefix_on_both_numbers() {
    let mock = mock_twilio().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await.config("from_number", "+14155238886");
    plugin
        .deliver(&reply("w-1", "whatsapp:+14155550100"))
        .await
        .unwrap();
    let form = mock.requests()[0].form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("To").as_deref(), Some("whatsapp:+14155550100"));
    assert_eq!(get("From").as_deref(), Some("whatsapp:+14155238886"));
}

#[tokio::test]
async fn configured_sender_wins_and_errors_are_mapped() {
    let mock = mock_twilio().await;
    let url = mock.url().to_string();
    let plugin = delivering(&url).await.config("from_number", "+18005551212");
    plugin.deliver(&reply("r-2", "+14155550100")).await.unwrap();
    assert_eq!(
        mock.requests()[0].form()[1],
        ("From".into(), "+18005551212".into())
    );

    let err = plugin
        .deliver(&reply("r-3", "+14155550199"))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(5)));
    let err = plugin
        .deliver(&reply("r-4", "+14155550111"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("21610") && m.contains("STOP")),
        "{err}"
    );
    let err = plugin.deliver(&reply("r-5", "+1555")).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("21211")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("r-6", "+14155550500"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("503")),
        "{err}"
    );

    // No account SID: not configured, nothing sent.
    let before = mock.count();
    let bare = connector()
        .await
        .config("api_base", &url)
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress();
    let err = bare
        .deliver(&reply("r-7", "+14155550100"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("account_sid"))
    );
    assert_eq!(mock.count(), before);
}
