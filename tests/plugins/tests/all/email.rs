//! The e-mail connector as a built component in the real runtime: Postmark's documented inbound
//! example, RFC 5322 Appendix A messages, and messages written for the tricky parts (multipart,
//! HTML only, ISO-8859-1 / ISO-2022-JP / Shift_JIS, quoted-printable, base64, attachments)
//! delivered the way each provider posts them (Postmark JSON, Mailgun signed forms, SendGrid
//! multipart Inbound Parse), and replies to loopback mocks of the three send APIs. The sample
//! files and their sources are in `plugins/email/testdata/README.md`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_testkit::switchboard::contract::{
    AttachmentKind, Author, Event, Message, Origin, OutboundReply, PluginError, Visibility,
    WebhookOutcome,
};
use switchboard_testkit::switchboard::runtime::{CallError, CallFailure};
use switchboard_testkit::{Harness, PlatformMock, Reply, plugin_error, request};

plugin_under_test!("email", "email-connector");

const URL: &str = "https://care.example.com/hooks/acme/email";
const USER: &str = "switchboard";
const PASSWORD: &str = "inbound-pa55";
const SIGNING_KEY: &str = "key-7e55a5b8c0e6c4a1";

fn testdata(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/email/testdata")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn connector(provider: &str) -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .config("provider", provider)
        .secret("inbound-username", USER)
        .secret("inbound-password", PASSWORD)
        .secret("webhook-signing-key", SIGNING_KEY)
        .secret("api-key", "provider-api-key")
}

/// One `multipart/form-data` field: name, optional (filename, content type), value.
type Field<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A `multipart/form-data` body.
fn multipart(fields: &[Field<'_>]) -> (String, Vec<u8>) {
    let boundary = "xYzZY";
    let mut body = Vec::new();
    for (name, file, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, ct)) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post(
    plugin: &Harness,
    content_type: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Result<WebhookOutcome, CallError> {
    let mut headers = vec![("content-type", content_type)];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    plugin.webhook(&request("POST", URL, &headers, body)).await
}

/// SendGrid Inbound Parse with "POST the raw, full MIME message" on.
async fn sendgrid_raw(plugin: &Harness, eml: &[u8]) -> Result<WebhookOutcome, CallError> {
    let (ct, body) = multipart(&[
        ("dkim", None, b"none"),
        ("email", None, eml),
        ("to", None, b"care@acme.example"),
        ("from", None, b"someone@example.com"),
        ("sender_ip", None, b"203.0.113.9"),
        (
            "spam_report",
            None,
            b"Spam detection software has not identified this incoming email as spam.",
        ),
        (
            "envelope",
            None,
            br#"{"to":["care@acme.example"],"from":"someone@example.com"}"#,
        ),
        (
            "subject",
            None,
            b"ignored: the raw message is authoritative",
        ),
        ("spam_score", None, b"0.1"),
        (
            "charsets",
            None,
            br#"{"to":"UTF-8","from":"UTF-8","subject":"UTF-8"}"#,
        ),
        ("SPF", None, b"pass"),
    ]);
    post(plugin, &ct, Some(&basic(USER, PASSWORD)), &body).await
}

fn mailgun_signature(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Mailgun's route `forward()` fields for one message, signed with `key` at `timestamp`.
fn mailgun_form(key: &str, timestamp: i64, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    let mut pairs: Vec<(String, String)> = [
        ("recipient", "care@acme.example"),
        ("sender", "bob@example.com"),
        ("from", "Bob Example <bob@example.com>"),
        ("subject", "Re: Your return label"),
        (
            "body-plain",
            "The label doesn't print.\r\n\r\nOn Tue, Dec 1, 2026 at 9:14 AM Acme Care <care@acme.example> wrote:\r\n> Here is your return label.\r\n",
        ),
        ("stripped-text", "The label doesn't print."),
        ("stripped-signature", ""),
        ("body-html", "<div>The label doesn't print.</div>"),
        ("Message-Id", "<CAHxYz.bob.2@mail.example.com>"),
        ("In-Reply-To", "<label-1@acme.example>"),
        ("References", "<ticket-9@acme.example> <label-1@acme.example>"),
        ("Date", "Tue, 01 Dec 2026 10:20:00 +0000"),
        ("attachment-count", "0"),
        (
            "message-headers",
            r#"[["Received","by mxa.mailgun.org"],["Authentication-Results","mxa.mailgun.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"],["From","Bob Example <bob@example.com>"],["To","care@acme.example"],["Subject","Re: Your return label"]]"#,
        ),
        ("timestamp", &ts),
        ("token", token),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        pairs.retain(|(n, _)| n != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    // Sign whatever token the fields end with (a test may give its own).
    let token = pairs
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    pairs.push(("signature".into(), mailgun_signature(key, &ts, &token)));
    pairs
}

fn urlencoded(pairs: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn events(outcome: Result<WebhookOutcome, CallError>) -> Vec<Event> {
    match outcome {
        Ok(WebhookOutcome::Events(e)) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn message(outcome: Result<WebhookOutcome, CallError>) -> Message {
    match events(outcome).as_slice() {
        [Event::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
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
async fn postmark_documented_example_is_one_verified_private_message() {
    let plugin = connector("postmark").await.tenant("acme");
    let body = testdata("postmark/inbound-docs-example.json");
    let r = post(
        &plugin,
        "application/json",
        Some(&basic(USER, PASSWORD)),
        &body,
    )
    .await;
    never_crashed(&r);
    let m = message(r);
    assert_eq!(m.tenant, "acme");
    assert_eq!(m.channel, "email");
    // The Message-ID header, not Postmark's own id, is the external id (it threads).
    assert_eq!(m.external_id, "test-messag-id@mail.example.com");
    assert_eq!(m.conversation_key, "test-messag-id@mail.example.com");
    assert_eq!(m.in_reply_to, None);
    assert_eq!(m.author.id, "john@example.com");
    assert_eq!(m.author.display_name.as_deref(), Some("John Doe"));
    assert_eq!(m.text, "[ASCII]");
    assert_eq!(m.visibility, Visibility::Private);
    assert_eq!(m.origin, Origin::DirectMessage);
    // Wed, 6 Sep 2017 19:11:00 +0200
    assert_eq!(m.received_at, 1_504_717_860_000);
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(m.attachments[0].description.as_deref(), Some("myimage.png"));
    assert_eq!(m.attachments[1].kind, AttachmentKind::File);
    assert_eq!(
        m.attachments[1].mime_type.as_deref(),
        Some("application/msword")
    );
    assert_eq!(
        extra(&m, "email-subject"),
        Some("Postmark inbound message test")
    );
    assert!(
        extra(&m, "email-to")
            .unwrap()
            .contains("jane+ahoy@inbound.postmarkapp.com")
    );
    assert_eq!(extra(&m, "email-provider"), Some("postmark"));
    assert_eq!(extra(&m, "author-id-kind"), Some("email-address"));
    // SpamAssassin's DKIM_VALID_AU in Postmark's single X-Spam-Tests header.
    assert_eq!(extra(&m, "verified-email"), Some("john@example.com"));
    // An authenticated sender's Reply-To is where answers go.
    assert_eq!(extra(&m, "email-reply-to"), Some("reply-to@example.com"));
}

#[tokio::test]
async fn postmark_threading_headers_and_forged_verdicts() {
    let plugin = connector("postmark").await;
    let mut doc: Value =
        serde_json::from_slice(&testdata("postmark/inbound-docs-example.json")).unwrap();
    let headers = doc["Headers"].as_array_mut().unwrap();
    headers.push(json!({"Name": "In-Reply-To", "Value": "<reply-1@acme.example>"}));
    headers.push(
        json!({"Name": "References", "Value": "<case-77@acme.example>\r\n <reply-1@acme.example>"}),
    );
    // A second X-Spam-Tests: the sender wrote one, so neither is trusted.
    headers.push(json!({"Name": "X-Spam-Tests", "Value": "DKIM_VALID_AU"}));
    doc["TextBody"] =
        json!("Any news?\n\nSent from my iPhone\n\n> On Dec 1 Acme wrote:\n> We're checking.");
    let body = serde_json::to_vec(&doc).unwrap();
    let m = message(
        post(
            &plugin,
            "application/json",
            Some(&basic(USER, PASSWORD)),
            &body,
        )
        .await,
    );
    assert_eq!(m.conversation_key, "case-77@acme.example");
    assert_eq!(m.in_reply_to.as_deref(), Some("reply-1@acme.example"));
    assert_eq!(
        extra(&m, "email-references"),
        Some("case-77@acme.example reply-1@acme.example")
    );
    assert_eq!(m.text, "Any news?");
    assert!(extra(&m, "email-body").unwrap().contains("We're checking."));
    assert_eq!(extra(&m, "verified-email"), None);
    // Unverified: its Reply-To is not offered for answers (a forger's address would be).
    assert_eq!(extra(&m, "email-reply-to"), None);
}

#[tokio::test]
async fn postmark_raw_email_is_the_threading_source_when_included() {
    // With "include raw email content" on, Postmark adds `RawEmail`; its headers win over the
    // parsed JSON (which here carries no threading headers at all).
    let plugin = connector("postmark").await;
    let mut doc: Value =
        serde_json::from_slice(&testdata("postmark/inbound-docs-example.json")).unwrap();
    doc["RawEmail"] = json!(String::from_utf8(testdata("rfc5322/a2-reply-to-reply.eml")).unwrap());
    doc["Headers"] = json!([]);
    let body = serde_json::to_vec(&doc).unwrap();
    let m = message(
        post(
            &plugin,
            "application/json",
            Some(&basic(USER, PASSWORD)),
            &body,
        )
        .await,
    );
    assert_eq!(m.external_id, "abcd.1234@local.machine.test");
    assert_eq!(m.in_reply_to.as_deref(), Some("3456@example.net"));
    assert_eq!(m.conversation_key, "1234@local.machine.example");
    // The JSON's own fields still give the rest (author from FromFull).
    assert_eq!(m.author.id, "john@example.com");
}

#[tokio::test]
async fn basic_auth_is_required_and_never_echoed() {
    let plugin = connector("postmark").await;
    let body = testdata("postmark/inbound-docs-example.json");
    for auth in [
        None,
        Some(basic(USER, "wrong")),
        Some(basic("other", PASSWORD)),
        Some("Bearer inbound-pa55".to_string()),
    ] {
        let err = post(&plugin, "application/json", auth.as_deref(), &body)
            .await
            .unwrap_err();
        assert!(err.is_unauthorized(), "{auth:?}: {err}");
        assert!(!err.to_string().contains(PASSWORD));
    }
    // No credentials configured: not-configured, not a silent accept.
    let bare = this_plugin!().await.unwrap().config("provider", "sendgrid");
    let err = post(
        &bare,
        "multipart/form-data; boundary=x",
        Some(&basic(USER, PASSWORD)),
        b"",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("inbound-username"))
    );
    let unset = this_plugin!().await.unwrap();
    let err = post(&unset, "application/json", None, &body)
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("provider")));
}

#[tokio::test]
async fn rfc5322_appendix_a_thread_shares_one_conversation() {
    let plugin = connector("sendgrid").await;
    let first = message(sendgrid_raw(&plugin, &testdata("rfc5322/a1.1-simple.eml")).await);
    let reply = message(sendgrid_raw(&plugin, &testdata("rfc5322/a2-reply.eml")).await);
    let again = message(sendgrid_raw(&plugin, &testdata("rfc5322/a2-reply-to-reply.eml")).await);
    assert_eq!(first.external_id, "1234@local.machine.example");
    assert_eq!(first.author.id, "jdoe@machine.example");
    assert_eq!(
        first.text,
        "This is a message just to say hello.\nSo, \"Hello\"."
    );
    assert_eq!(first.received_at, 880_127_706_000);
    assert_eq!(reply.external_id, "3456@example.net");
    assert_eq!(
        reply.in_reply_to.as_deref(),
        Some("1234@local.machine.example")
    );
    assert_eq!(again.external_id, "abcd.1234@local.machine.test");
    assert_eq!(again.in_reply_to.as_deref(), Some("3456@example.net"));
    for m in [&first, &reply, &again] {
        assert_eq!(
            m.conversation_key, "1234@local.machine.example",
            "{}",
            m.external_id
        );
    }
    // SendGrid said `dkim: none`: nobody is verified.
    assert_eq!(extra(&reply, "verified-email"), None);
}

#[tokio::test]
async fn charsets_and_transfer_encodings_are_decoded() {
    let plugin = connector("sendgrid").await;
    let m = message(
        sendgrid_raw(
            &plugin,
            &testdata("messages/multipart-alternative-latin1-qp.eml"),
        )
        .await,
    );
    assert_eq!(m.author.display_name.as_deref(), Some("Renée Dupont"));
    assert_eq!(
        extra(&m, "email-subject"),
        Some("Re: Commande n°4521 cassée")
    );
    // The text part wins over HTML; the French attribution and quote are cut.
    assert_eq!(
        m.text,
        "Bonjour,\n\nMa commande n°4521 est arrivée cassée. Pouvez-vous la remplacer ?"
    );
    assert!(
        extra(&m, "email-body")
            .unwrap()
            .contains("> Votre commande a été expédiée.")
    );
    assert_eq!(m.conversation_key, "order-4521@acme.example");
    assert_eq!(m.external_id, "CAF=qp.4521@mail.example.fr");

    let m = message(sendgrid_raw(&plugin, &testdata("messages/iso-2022-jp.eml")).await);
    assert_eq!(m.text, "注文した商品がまだ届きません。確認をお願いします。");
    assert_eq!(m.author.display_name.as_deref(), Some("山田太郎"));
    assert_eq!(extra(&m, "email-subject"), Some("配送について"));

    let m = message(sendgrid_raw(&plugin, &testdata("messages/shift_jis-base64.eml")).await);
    assert_eq!(m.text, "返品の手続きを教えてください。");
}

#[tokio::test]
async fn html_only_mail_is_read_as_text() {
    let plugin = connector("sendgrid").await;
    let m = message(sendgrid_raw(&plugin, &testdata("messages/html-only-base64.eml")).await);
    assert!(!m.text.contains('<'), "{}", m.text);
    assert!(!m.text.contains("color:red"), "{}", m.text);
    assert!(
        m.text.contains("My refund for order #88 hasn't arrived"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("Sent from my iPhone"), "{}", m.text);
    assert_eq!(extra(&m, "email-html-only"), Some("true"));
    assert_eq!(m.author.display_name.as_deref(), Some("Sam Lee"));
}

#[tokio::test]
async fn attachments_and_outlook_history() {
    let plugin = connector("sendgrid").await;
    let m =
        message(sendgrid_raw(&plugin, &testdata("messages/mixed-attachments-outlook.eml")).await);
    assert_eq!(m.author.id, "alex.kim@example.org");
    assert_eq!(
        m.text,
        "I was charged twice, see the attached invoice and screenshot.\n\nAlex Kim\nHead of Ops"
    );
    assert!(
        extra(&m, "email-body")
            .unwrap()
            .contains("-----Original Message-----")
    );
    let described: Vec<(AttachmentKind, Option<&str>, Option<&str>)> = m
        .attachments
        .iter()
        .map(|a| (a.kind, a.description.as_deref(), a.mime_type.as_deref()))
        .collect();
    assert_eq!(
        described,
        vec![
            (
                AttachmentKind::File,
                Some("INV-7.pdf"),
                Some("application/pdf")
            ),
            (
                AttachmentKind::Image,
                Some("screenshot.png"),
                Some("image/png")
            ),
        ]
    );
    assert_eq!(
        extra(&m, "email-to"),
        Some("care@acme.example, billing@acme.example")
    );
}

#[tokio::test]
async fn auto_replies_and_bounces_are_skipped() {
    let plugin = connector("sendgrid").await;
    let r = sendgrid_raw(&plugin, &testdata("messages/auto-reply.eml")).await;
    assert!(
        matches!(events(r).as_slice(), [Event::Skipped(s)] if s.event_type.as_deref() == Some("auto-reply"))
    );
    let r = sendgrid_raw(&plugin, &testdata("messages/bounce-dsn.eml")).await;
    assert!(
        matches!(events(r).as_slice(), [Event::Skipped(s)] if s.event_type.as_deref() == Some("delivery-report"))
    );
}

#[tokio::test]
async fn sendgrid_parsed_fields_with_their_charsets_and_dkim() {
    let plugin = connector("sendgrid").await;
    let headers = b"Received: by mx0047p1mdw1.sendgrid.net\nMessage-ID: <p-1@example.com>\nIn-Reply-To: <t-1@acme.example>\nReferences: <t-1@acme.example>\nDate: Sat, 05 Dec 2026 12:00:00 +0000\nFrom: =?iso-8859-1?q?Jos=E9?= <jose@example.com>\nTo: care@acme.example\nSubject: Re: Pedido";
    let (ct, body) = multipart(&[
        ("headers", None, headers),
        ("dkim", None, b"{@example.com : pass}"),
        ("to", None, b"care@acme.example"),
        ("cc", None, b"Ana <ana@example.com>"),
        ("from", None, b"Jos\xe9 <jose@example.com>"),
        ("text", None, b"\xbfD\xf3nde est\xe1 mi pedido?\r\n"),
        ("subject", None, b"Re: Pedido"),
        (
            "charsets",
            None,
            br#"{"to":"UTF-8","from":"iso-8859-1","subject":"UTF-8","text":"iso-8859-1"}"#,
        ),
        ("SPF", None, b"pass"),
        ("attachments", None, b"1"),
        (
            "attachment-info",
            None,
            br#"{"attachment1":{"filename":"foto.jpg","name":"foto.jpg","type":"image/jpeg"}}"#,
        ),
        (
            "attachment1",
            Some(("foto.jpg", "image/jpeg")),
            b"\xff\xd8\xff\xe0",
        ),
    ]);
    let m = message(post(&plugin, &ct, Some(&basic(USER, PASSWORD)), &body).await);
    assert_eq!(m.text, "¿Dónde está mi pedido?");
    assert_eq!(m.author.id, "jose@example.com");
    assert_eq!(m.external_id, "p-1@example.com");
    assert_eq!(m.conversation_key, "t-1@acme.example");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
    assert_eq!(extra(&m, "verified-email"), Some("jose@example.com"));
    assert_eq!(
        extra(&m, "email-to"),
        Some("care@acme.example, ana@example.com")
    );
}

#[tokio::test]
async fn sendgrid_captured_post_in_four_charsets() {
    // Captured from SendGrid: each parsed field in the charset `charsets` names for it.
    let body = testdata("sendgrid/charsets-captured.multipart");
    let plugin = connector("sendgrid").await;
    let r = post(
        &plugin,
        "multipart/form-data; boundary=xYzZY",
        Some(&basic(USER, PASSWORD)),
        &body,
    )
    .await;
    never_crashed(&r);
    let m = message(r);
    assert_eq!(m.author.id, "sender@example.com");
    assert_eq!(m.author.display_name.as_deref(), Some("Opérateur de test"));
    assert_eq!(
        m.text,
        "Test the ESP\u{2019}s inbound charset handling\u{2026}"
    );
    assert_eq!(extra(&m, "email-subject"), Some("Como usted pidió"));
    assert_eq!(extra(&m, "email-to"), Some("inbound@sg.example.com"));
    // No Message-ID in the capture: a content hash stands in, the same on a redelivery.
    assert!(m.external_id.starts_with("sha256:"), "{}", m.external_id);
    let again = message(
        post(
            &plugin,
            "multipart/form-data; boundary=xYzZY",
            Some(&basic(USER, PASSWORD)),
            &body,
        )
        .await,
    );
    assert_eq!(again.external_id, m.external_id);
    // Fri, 24 Jul 2020 16:43:46 UTC
    assert_eq!(m.received_at, 1_595_609_026_000);
    assert_eq!(extra(&m, "verified-email"), None);
}

#[tokio::test]
async fn mailgun_signed_forms_are_parsed_and_verified_only_by_trusted_servers() {
    let now = now_seconds();
    let plain = connector("mailgun").await;
    let body = urlencoded(&mailgun_form(SIGNING_KEY, now, &[]));
    let r = post(&plain, "application/x-www-form-urlencoded", None, &body).await;
    never_crashed(&r);
    let m = message(r);
    assert_eq!(m.external_id, "CAHxYz.bob.2@mail.example.com");
    assert_eq!(m.conversation_key, "ticket-9@acme.example");
    assert_eq!(m.in_reply_to.as_deref(), Some("label-1@acme.example"));
    assert_eq!(m.author.id, "bob@example.com");
    assert_eq!(m.author.display_name.as_deref(), Some("Bob Example"));
    assert_eq!(m.text, "The label doesn't print.");
    assert_eq!(extra(&m, "email-provider"), Some("mailgun"));
    // The DKIM pass is from a server the tenant did not name as trusted.
    assert_eq!(extra(&m, "verified-email"), None);
    let trusting = connector("mailgun")
        .await
        .config("trusted_authserv_ids", "mxa.mailgun.org");
    let m = message(post(&trusting, "application/x-www-form-urlencoded", None, &body).await);
    assert_eq!(extra(&m, "verified-email"), Some("bob@example.com"));

    // The same message as multipart with an attachment, and as raw MIME (`body-mime`).
    let pairs = mailgun_form(SIGNING_KEY, now, &[("attachment-count", "1")]);
    let mut fields: Vec<Field<'_>> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), None, v.as_bytes()))
        .collect();
    fields.push((
        "attachment-1",
        Some(("receipt.pdf", "application/pdf")),
        b"%PDF-1.4",
    ));
    let (ct, mp) = multipart(&fields);
    let m = message(post(&plain, &ct, None, &mp).await);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].description.as_deref(), Some("receipt.pdf"));
    let eml = String::from_utf8(testdata("rfc5322/a2-reply.eml")).unwrap();
    let m = message(
        post(
            &plain,
            "application/x-www-form-urlencoded",
            None,
            &urlencoded(&mailgun_form(
                SIGNING_KEY,
                now,
                &[
                    ("body-mime", &eml),
                    (
                        "token",
                        "b1f0c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4",
                    ),
                ],
            )),
        )
        .await,
    );
    assert_eq!(m.external_id, "3456@example.net");
    assert_eq!(m.author.id, "mary@example.net");
}

#[tokio::test]
async fn mailgun_recorded_route_post_with_headers_only_in_message_headers() {
    // No top-level `from`, `subject` or `Message-Id`: everything comes from `message-headers`.
    let recorded: serde_json::Map<String, Value> =
        serde_json::from_slice(&testdata("mailgun/forward-fields.json")).unwrap();
    let ts = now_seconds().to_string();
    let mut pairs: Vec<(String, String)> = recorded
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .map(|(k, v)| {
            if k == "timestamp" {
                (k, ts.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let token = recorded["token"].as_str().unwrap();
    pairs.push((
        "signature".into(),
        mailgun_signature(SIGNING_KEY, &ts, token),
    ));
    let plugin = connector("mailgun").await;
    let r = post(
        &plugin,
        "application/x-www-form-urlencoded",
        None,
        &urlencoded(&pairs),
    )
    .await;
    never_crashed(&r);
    let m = message(r);
    assert_eq!(m.author.id, "from+test@example.org");
    assert_eq!(m.author.display_name.as_deref(), Some("Displayed From"));
    assert_eq!(m.external_id, "CAEPk3R+4Zr@mail.example.org");
    assert_eq!(m.text, "Test body plain");
    assert_eq!(extra(&m, "email-subject"), Some("Test subject"));
    assert_eq!(
        extra(&m, "email-to"),
        Some("test@inbound.example.com, other@example.com, cc@example.com")
    );
    // Wed, 11 Oct 2017 18:31:04 -0700
    assert_eq!(m.received_at, 1_507_771_864_000);
    // Mailgun's single X-Mailgun-Spam-Rules lists DKIM_VALID_AU: the author domain signed.
    assert_eq!(extra(&m, "verified-email"), Some("from+test@example.org"));
}

#[tokio::test]
async fn mailgun_bad_or_stale_signatures_are_unauthorized() {
    let plugin = connector("mailgun").await;
    let now = now_seconds();
    let ct = "application/x-www-form-urlencoded";
    let wrong_key = urlencoded(&mailgun_form("key-other", now, &[]));
    assert!(
        post(&plugin, ct, None, &wrong_key)
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    let stale = urlencoded(&mailgun_form(SIGNING_KEY, now - 3600, &[]));
    let err = post(&plugin, ct, None, &stale).await.unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Unauthorized(m) if m.contains("clock")),
        "{err}"
    );
    let mut unsigned = mailgun_form(SIGNING_KEY, now, &[]);
    unsigned.retain(|(k, _)| k != "signature");
    let err = post(&plugin, ct, None, &urlencoded(&unsigned))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::Unauthorized(m) if m.contains("signature")));
    let get = plugin
        .webhook(&request("GET", URL, &[], b""))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&get), PluginError::InvalidInput(m) if m.contains("POST")));
}

#[tokio::test]
async fn garbage_bodies_are_typed_errors() {
    let plugin = connector("sendgrid").await;
    let auth = basic(USER, PASSWORD);
    for (ct, body) in [
        (
            "multipart/form-data; boundary=xYzZY",
            &b"--xYzZY\r\n\xff\xfe"[..],
        ),
        ("multipart/form-data", &b"whatever"[..]),
        ("application/json", &b"{}"[..]),
    ] {
        let r = post(&plugin, ct, Some(&auth), body).await;
        never_crashed(&r);
        assert!(
            matches!(
                r.as_ref().map_err(plugin_error),
                Err(PluginError::InvalidInput(_))
            ),
            "{ct}: {r:?}"
        );
    }
    let (ct, body) = multipart(&[("email", None, b"From: nobody\r\n\r\nno address")]);
    let r = post(&plugin, &ct, Some(&auth), &body).await;
    never_crashed(&r);
    assert!(
        matches!(
            r.as_ref().map_err(plugin_error),
            Err(PluginError::InvalidInput(_))
        ),
        "{r:?}"
    );
    let pm = connector("postmark").await;
    let r = post(
        &pm,
        "application/json",
        Some(&auth),
        b"\xef\xbb\xbf{\"FromFull\":",
    )
    .await;
    never_crashed(&r);
    assert!(matches!(
        r.as_ref().map_err(plugin_error),
        Err(PluginError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn channel_info_and_length_rule() {
    let plugin = connector("postmark").await;
    let info = plugin.channel_info().await.unwrap();
    assert_eq!(info.channel, "email");
    assert_eq!(info.display_name, "E-mail");
    assert_eq!(info.length_rule.max, 10_000);
    assert_eq!(plugin.measure("Thanks, Ana").await.unwrap(), 11);
    assert_eq!(
        plugin.measure("ご注文ありがとうございます").await.unwrap(),
        13
    );
}

/// Loopback mocks of the three send APIs, answering by recipient.
async fn mock_providers() -> PlatformMock {
    let mock = PlatformMock::start().await;
    mock.respond_with(|r| {
        if r.method != "POST" {
            return None;
        }
        let to = match r.path.as_str() {
            "/email" => r.json()["To"].as_str().unwrap_or("").to_string(),
            "/v3/mg.acme.example/messages" => r
                .form()
                .into_iter()
                .find(|(k, _)| k == "to")
                .map(|(_, v)| v)
                .unwrap_or_default(),
            "/v3/mail/send" => r.json()["personalizations"][0]["to"][0]["email"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            _ => return None,
        };
        Some(match (r.path.as_str(), to.as_str()) {
            (_, "slow@example.com") => Reply::text(429, "").header("retry-after", "30"),
            (_, "down@example.com") => Reply::text(503, "upstream unavailable"),
            ("/email", "gone@example.com") => Reply::json(
                422,
                &json!({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."}),
            ),
            ("/email", _) => Reply::json(
                200,
                &json!({"To": to, "SubmittedAt": "2026-12-06T09:00:00Z", "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d", "ErrorCode": 0, "Message": "OK"}),
            ),
            ("/v3/mail/send", "bad@example.com") => Reply::json(
                400,
                &json!({"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email"}]}),
            ),
            ("/v3/mail/send", _) => Reply::status(202).header("x-message-id", "W86EgYT6SQKkJMp0bA6fHw"),
            (_, _) => Reply::json(
                200,
                &json!({"id": "<20261206090000.1.ABCDEF@mg.acme.example>", "message": "Queued. Thank you."}),
            ),
        })
    });
    mock
}

fn reply(key: &str, to: &str) -> OutboundReply {
    OutboundReply {
        idempotency_key: key.into(),
        conversation_key: "ticket-9@acme.example".into(),
        in_reply_to: Some("CAHxYz.bob.2@mail.example.com".into()),
        recipient: Author {
            id: to.into(),
            handle: None,
            display_name: Some("Bob Example".into()),
        },
        text: "Sorry about that — a new label is attached to this reply.\n\nAna, Acme Care".into(),
        visibility: Visibility::Private,
        extra: vec![
            (
                "email-message-id".into(),
                "CAHxYz.bob.2@mail.example.com".into(),
            ),
            (
                "email-references".into(),
                "ticket-9@acme.example label-1@acme.example".into(),
            ),
            ("email-subject".into(), "Re: Your return label".into()),
            ("email-to".into(), "care@acme.example".into()),
        ],
    }
}

async fn delivering(provider: &str, url: &str) -> Harness {
    connector(provider)
        .await
        .config("api_base", url)
        .config("domain", "mg.acme.example")
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress()
}

const REFERENCES: &str =
    "<ticket-9@acme.example> <label-1@acme.example> <CAHxYz.bob.2@mail.example.com>";

#[tokio::test]
async fn postmark_replies_carry_threading_headers() {
    let mock = mock_providers().await;
    let plugin = delivering("postmark", mock.url()).await;
    let receipt = plugin
        .deliver(&reply("r-1", "bob@example.com"))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "0a129aee-e1cd-480d-b08d-4f48548ff48d");
    // Same idempotency key: the remembered receipt, nothing sent twice.
    let again = plugin
        .deliver(&reply("r-1", "bob@example.com"))
        .await
        .unwrap();
    assert_eq!(again.external_id, receipt.external_id);
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    assert_eq!(sent.path, "/email");
    assert_eq!(
        sent.header("x-postmark-server-token"),
        Some("provider-api-key")
    );
    let body = sent.json();
    assert_eq!(body["From"], "care@acme.example");
    assert_eq!(body["To"], "bob@example.com");
    assert_eq!(body["Subject"], "Re: Your return label");
    assert_eq!(body["MessageStream"], "outbound");
    assert!(
        body["TextBody"]
            .as_str()
            .unwrap()
            .starts_with("Sorry about that")
    );
    assert_eq!(
        body["Headers"],
        json!([
            {"Name": "In-Reply-To", "Value": "<CAHxYz.bob.2@mail.example.com>"},
            {"Name": "References", "Value": REFERENCES},
        ])
    );
    // An authenticated sender's Reply-To takes the answer.
    let mut to_reply_to = reply("r-4", "bob@example.com");
    to_reply_to
        .extra
        .push(("email-reply-to".into(), "orders@example.com".into()));
    plugin.deliver(&to_reply_to).await.unwrap();
    assert_eq!(mock.requests()[1].json()["To"], "orders@example.com");
    let err = plugin
        .deliver(&reply("r-2", "gone@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("inactive")),
        "{err}"
    );
    let err = plugin
        .deliver(&reply("r-3", "slow@example.com"))
        .await
        .unwrap_err();
    assert_eq!(plugin_error(&err), &PluginError::RateLimited(Some(30)));
}

#[tokio::test]
async fn mailgun_replies_are_forms_with_h_headers() {
    let mock = mock_providers().await;
    let plugin = delivering("mailgun", mock.url())
        .await
        .config("from_address", "Acme Care <care@mg.acme.example>");
    let receipt = plugin
        .deliver(&reply("r-1", "Bob@Example.com"))
        .await
        .unwrap();
    assert_eq!(
        receipt.external_id,
        "20261206090000.1.ABCDEF@mg.acme.example"
    );
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v3/mg.acme.example/messages");
    assert_eq!(
        sent.header("authorization"),
        Some(basic("api", "provider-api-key").as_str())
    );
    let form = sent.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("from"), Some("Acme Care <care@mg.acme.example>"));
    assert_eq!(get("to"), Some("bob@example.com"));
    assert_eq!(get("subject"), Some("Re: Your return label"));
    assert_eq!(
        get("h:In-Reply-To"),
        Some("<CAHxYz.bob.2@mail.example.com>")
    );
    assert_eq!(get("h:References"), Some(REFERENCES));
    // The customer answers from Outlook, which sends only In-Reply-To (Mailgun's receipt id is
    // the reply's Message-ID): the answer joins the conversation, not a new one.
    let answer = urlencoded(&mailgun_form(
        SIGNING_KEY,
        now_seconds(),
        &[
            ("Message-Id", "<outlook-answer-1@example.com>"),
            ("In-Reply-To", "<20261206090000.1.ABCDEF@mg.acme.example>"),
            ("References", ""),
            (
                "token",
                "c0ffee0ddb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
            ),
        ],
    ));
    let m = message(post(&plugin, "application/x-www-form-urlencoded", None, &answer).await);
    assert_eq!(
        m.in_reply_to.as_deref(),
        Some("20261206090000.1.ABCDEF@mg.acme.example")
    );
    assert_eq!(m.conversation_key, "ticket-9@acme.example");
    let err = plugin
        .deliver(&reply("r-2", "down@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::Unavailable(m) if m.contains("503")));
    // Without a sending domain Mailgun cannot be called: not configured, nothing sent.
    let before = mock.count();
    let no_domain = connector("mailgun")
        .await
        .config("api_base", mock.url())
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
        .trust_undeclared_egress();
    let err = no_domain
        .deliver(&reply("r-3", "bob@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(plugin_error(&err), PluginError::NotConfigured(m) if m.contains("domain")));
    assert_eq!(mock.count(), before);
}

#[tokio::test]
async fn sendgrid_replies_use_the_headers_object() {
    let mock = mock_providers().await;
    let plugin = delivering("sendgrid", mock.url()).await;
    let receipt = plugin
        .deliver(&reply("r-1", "bob@example.com"))
        .await
        .unwrap();
    assert_eq!(receipt.external_id, "W86EgYT6SQKkJMp0bA6fHw");
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v3/mail/send");
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer provider-api-key")
    );
    let body = sent.json();
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        "bob@example.com"
    );
    assert_eq!(body["from"]["email"], "care@acme.example");
    assert_eq!(body["subject"], "Re: Your return label");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert_eq!(
        body["headers"],
        json!({"In-Reply-To": "<CAHxYz.bob.2@mail.example.com>", "References": REFERENCES})
    );
    let err = plugin
        .deliver(&reply("r-2", "bad@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::Rejected(m) if m.contains("valid address")),
        "{err}"
    );
    // A recipient that is not an address (a phone number from another channel).
    let before = mock.count();
    let err = plugin
        .deliver(&reply("r-3", "+14155550100"))
        .await
        .unwrap_err();
    assert!(
        matches!(plugin_error(&err), PluginError::InvalidInput(m) if m.contains("e-mail address"))
    );
    assert_eq!(mock.count(), before);
}
