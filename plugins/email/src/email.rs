//! One inbound e-mail, whichever provider delivered it, and how it becomes a Switchboard message:
//! threading, the customer's identity, what "verified" means, the classifier text.

use sha2::{Digest, Sha256};
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, Visibility,
};

use crate::{mime, quote};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "email";
/// The contract's limit on ids (external id, conversation key, author id), in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Most of the full body kept in extra `email-body` (the classifier text is separate).
pub const MAX_FULL_BODY_BYTES: usize = 256 * 1024;
/// Most attachments listed on one message.
pub const MAX_ATTACHMENTS: usize = 50;
/// Most `References` ids kept (the root and the most recent ones matter for threading).
pub const MAX_REFERENCES: usize = 50;

/// How far in the future a `Date` header may be before the host's clock is used instead.
pub const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;

/// An attachment's metadata (the host never fetches or stores attachment bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailAttachment {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<usize>,
}

/// An inbound e-mail as a provider delivered it, before normalisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    /// The `From` address (the customer), as given.
    pub from: String,
    pub from_name: Option<String>,
    /// The `Reply-To` address, where the sender asks replies to go.
    pub reply_to: Option<String>,
    /// `To` and `Cc` addresses: the brand address the customer wrote to is among them.
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The `Date` header, ms since the epoch.
    pub date_ms: Option<i64>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<EmailAttachment>,
    /// Every header, in order (name, unfolded value).
    pub headers: Vec<(String, String)>,
    /// The provider's own id of the delivery (Postmark `MessageID`), the fallback external id.
    pub provider_id: Option<String>,
    /// Whether the provider authenticated the `From` domain (see [`crate::auth`]).
    pub verified: bool,
}

fn strip_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// Ids from a raw `References`/`In-Reply-To` value (`<a@b> <c@d>`), brackets removed.
pub fn parse_ids(raw: &str) -> Vec<String> {
    let ids: Vec<String> = raw
        .split(['<', '>', ' ', '\t', '\r', '\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_BYTES)
        .map(String::from)
        .collect();
    ids
}

/// The first header called `name` (any case).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Fill threading fields that a provider gave only as headers.
pub fn thread_from_headers(email: &mut Email) {
    if email.message_id.is_none() {
        email.message_id =
            header(&email.headers, "message-id").and_then(|v| parse_ids(v).into_iter().next());
    }
    if email.in_reply_to.is_none() {
        email.in_reply_to =
            header(&email.headers, "in-reply-to").and_then(|v| parse_ids(v).into_iter().next());
    }
    if email.references.is_empty()
        && let Some(r) = header(&email.headers, "references")
    {
        email.references = parse_ids(r);
    }
}

fn kind_of(content_type: Option<&str>) -> AttachmentKind {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    match ct.split('/').next().unwrap_or("") {
        "image" => AttachmentKind::Image,
        "video" => AttachmentKind::Video,
        "audio" => AttachmentKind::Audio,
        "" => AttachmentKind::Other,
        _ => AttachmentKind::File,
    }
}

fn bounded(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Whether `address` looks like one mailbox (`local@domain`, no spaces or brackets).
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && address.len() <= 320
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;\"".contains(c))
}

/// Whether the message is an automatic reply (RFC 3834 `Auto-Submitted`, out-of-office
/// markers), which a care desk must not answer.
pub fn auto_reply_reason(email: &Email) -> Option<String> {
    if let Some(v) = header(&email.headers, "auto-submitted")
        && !v.trim().eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {}", v.trim()));
    }
    for name in ["x-autoreply", "x-autorespond"] {
        if header(&email.headers, name).is_some() {
            return Some(format!("{name} header"));
        }
    }
    None
}

/// Whether the message is a bounce or other delivery status notification (RFC 3464), typically
/// for a reply the desk sent: answering it would loop.
pub fn delivery_report_reason(email: &Email) -> Option<String> {
    if let Some(ct) = header(&email.headers, "content-type")
        && ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("multipart/report")
    {
        return Some("Content-Type: multipart/report".into());
    }
    if header(&email.headers, "x-failed-recipients").is_some() {
        return Some("X-Failed-Recipients header".into());
    }
    let local = email
        .from
        .trim()
        .rsplit_once('@')
        .map(|(l, _)| l.to_ascii_lowercase())?;
    matches!(local.as_str(), "mailer-daemon" | "postmaster").then(|| format!("sent by {local}"))
}

/// The kv key remembering which conversation a message id belongs to (hashed: ids are long).
pub fn thread_key(message_id: &str) -> String {
    format!(
        "thread/{}",
        hex::encode(Sha256::digest(message_id.as_bytes()))
    )
}

/// A reply without `References` (Outlook often sends only `In-Reply-To`) answering a message
/// whose conversation is known (`lookup`, e.g. a reply the desk sent) joins that conversation
/// instead of starting one keyed by the parent's id.
pub fn rethread(message: &mut Message, lookup: impl Fn(&str) -> Option<String>) {
    let has_references = message.extra.iter().any(|(k, _)| k == "email-references");
    let Some(parent) = message.in_reply_to.clone() else {
        return;
    };
    if has_references || message.conversation_key != parent {
        return;
    }
    if let Some(known) =
        lookup(&thread_key(&parent)).filter(|k| !k.is_empty() && k.len() <= MAX_ID_BYTES)
    {
        message.conversation_key = known;
    }
}

/// The normalised event of one (authenticated) e-mail.
///
/// Threading: `external-id` is the `Message-ID`; the conversation is the thread's root, the
/// first id of `References` (RFC 5322 §3.6.4: it starts with the thread's first message), else
/// `In-Reply-To`, else the message itself; `in-reply-to` is `In-Reply-To`. Without a
/// `Message-ID` the provider's id, else a hash of sender, subject, date and body, stands in
/// (stable across the provider's redeliveries, so the host still deduplicates).
///
/// `received-at` is the `Date` header unless it lies in the future of `now_ms` (the sender
/// writes `Date`; a far-future one must not jump queues), else 0 so the host stamps its clock.
pub fn to_event(
    email: Email,
    provider: &str,
    now_ms: i64,
) -> Result<Event, switchboard_sdk::PluginError> {
    use switchboard_sdk::PluginError;
    if let Some(reason) = delivery_report_reason(&email) {
        return Ok(Event::skipped(
            Some("delivery-report"),
            &format!("a delivery status report ({reason}): not a customer message"),
        ));
    }
    if let Some(reason) = auto_reply_reason(&email) {
        return Ok(Event::skipped(
            Some("auto-reply"),
            &format!("an automatic reply ({reason}): not a customer message"),
        ));
    }
    let from = email.from.trim().to_lowercase();
    if !is_address(&from) {
        return Err(PluginError::InvalidInput(
            "the e-mail has no valid From address".into(),
        ));
    }
    let full_text = match (&email.text, &email.html) {
        (Some(t), _) if !t.trim().is_empty() => t.clone(),
        (_, Some(h)) => mime::html_to_text(h),
        (Some(t), None) => t.clone(),
        (None, None) => String::new(),
    };
    let (full_text, truncated) = {
        let (kept, cut) = bounded(&full_text, MAX_FULL_BODY_BYTES);
        (kept.to_string(), cut)
    };
    // Bounded first: the classifier text is never larger than the kept body.
    let text = quote::strip(&full_text);
    let message_id = email
        .message_id
        .as_deref()
        .map(strip_brackets)
        .filter(|m| !m.is_empty() && m.len() <= MAX_ID_BYTES);
    let external_id = match (&message_id, &email.provider_id) {
        (Some(m), _) => m.clone(),
        (None, Some(p)) if !p.trim().is_empty() && p.len() < MAX_ID_BYTES - 9 => {
            format!("{provider}:{}", p.trim())
        }
        _ => {
            let mut h = Sha256::new();
            for part in [
                from.as_str(),
                email.subject.as_deref().unwrap_or(""),
                &email.date_ms.unwrap_or(0).to_string(),
                &full_text,
            ] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            format!("sha256:{}", hex::encode(h.finalize()))
        }
    };
    let in_reply_to = email
        .in_reply_to
        .as_deref()
        .map(strip_brackets)
        .filter(|m| !m.is_empty() && m.len() <= MAX_ID_BYTES);
    let references: Vec<String> = {
        let refs: Vec<String> = email
            .references
            .iter()
            .map(|r| strip_brackets(r))
            .filter(|r| !r.is_empty() && r.len() <= MAX_ID_BYTES)
            .collect();
        // Keep the root and the most recent ones.
        if refs.len() > MAX_REFERENCES {
            let mut kept = vec![refs[0].clone()];
            kept.extend_from_slice(&refs[refs.len() - (MAX_REFERENCES - 1)..]);
            kept
        } else {
            refs
        }
    };
    let conversation_key = references
        .first()
        .cloned()
        .or_else(|| in_reply_to.clone())
        .unwrap_or_else(|| external_id.clone());
    let attachments = email
        .attachments
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(|a| Attachment {
            kind: kind_of(a.content_type.as_deref()),
            url: None,
            mime_type: a.content_type.clone(),
            description: a.filename.clone(),
        })
        .collect();
    let mut extra: Vec<(String, String)> = vec![
        ("email-provider".into(), provider.into()),
        ("email-from".into(), from.clone()),
        ("author-id-kind".into(), "email-address".into()),
        (
            "personal-data".into(),
            "author.id author.display-name email-from email-to email-reply-to email-body".into(),
        ),
    ];
    if let Some(m) = &message_id {
        extra.push(("email-message-id".into(), m.clone()));
    }
    if !references.is_empty() {
        extra.push(("email-references".into(), references.join(" ")));
    }
    if let Some(s) = &email.subject {
        extra.push(("email-subject".into(), bounded(s.trim(), 998).0.to_string()));
    }
    let to: Vec<String> = email
        .to
        .iter()
        .map(|a| a.trim().to_lowercase())
        .filter(|a| is_address(a))
        .take(20)
        .collect();
    if !to.is_empty() {
        extra.push(("email-to".into(), to.join(", ")));
    }
    if full_text != text {
        extra.push(("email-body".into(), full_text.clone()));
    }
    if truncated {
        extra.push(("email-body-truncated".into(), "true".into()));
    }
    if email.html.is_some() && email.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        extra.push(("email-html-only".into(), "true".into()));
    }
    // Only an address the provider authenticated links identities across channels.
    if email.verified {
        extra.push(("verified-email".into(), from.clone()));
        // Replies go to `Reply-To` (RFC 5322 §3.6.2) only when the sender is authenticated: a
        // forged `From` with the forger's `Reply-To` must not draw the victim's answers.
        let reply_to = email
            .reply_to
            .clone()
            .or_else(|| {
                header(&email.headers, "reply-to").and_then(|v| {
                    mime::parse_message(format!("Reply-To: {v}\r\n\r\n").as_bytes())?.reply_to
                })
            })
            .map(|r| r.trim().to_lowercase())
            .filter(|r| is_address(r) && *r != from);
        if let Some(r) = reply_to {
            extra.push(("email-reply-to".into(), r));
        }
    }
    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id,
        conversation_key,
        in_reply_to,
        author: Author {
            id: from,
            handle: None,
            display_name: email
                .from_name
                .map(|n| bounded(n.trim(), 256).0.to_string())
                .filter(|n| !n.is_empty()),
        },
        text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at: email
            .date_ms
            .filter(|d| *d > 0 && *d <= now_ms.saturating_add(MAX_CLOCK_SKEW_MS))
            .unwrap_or(0),
        attachments,
        action: MessageAction::Created,
        extra,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn email() -> Email {
        Email {
            from: "Jane.Doe@Example.COM".into(),
            from_name: Some("Jane Doe".into()),
            to: vec!["care@acme.example".into()],
            subject: Some("Re: Order #1234".into()),
            message_id: Some("<c@example.com>".into()),
            in_reply_to: Some("b@acme.example".into()),
            references: vec!["a@example.com".into(), "b@acme.example".into()],
            text: Some("Still broken.\n\nOn Mon, Acme <care@acme.example> wrote:\n> Sorry!".into()),
            ..Email::default()
        }
    }

    fn message(e: Email) -> Message {
        match to_event(e, "postmark", NOW).unwrap() {
            Event::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn extra<'a>(m: &'a Message, k: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn threading_identity_and_text() {
        let m = message(email());
        assert_eq!(m.external_id, "c@example.com");
        assert_eq!(m.conversation_key, "a@example.com");
        assert_eq!(m.in_reply_to.as_deref(), Some("b@acme.example"));
        assert_eq!(m.author.id, "jane.doe@example.com");
        assert_eq!(m.text, "Still broken.");
        assert!(extra(&m, "email-body").unwrap().contains("> Sorry!"));
        assert_eq!(
            extra(&m, "email-references"),
            Some("a@example.com b@acme.example")
        );
        assert_eq!(extra(&m, "verified-email"), None);
        let with_reply_to = Email {
            reply_to: Some("Orders@Example.com".into()),
            ..email()
        };
        assert_eq!(
            extra(&message(with_reply_to.clone()), "email-reply-to"),
            None,
            "unverified"
        );
        let m = message(Email {
            verified: true,
            ..email()
        });
        assert_eq!(extra(&m, "verified-email"), Some("jane.doe@example.com"));
        let m = message(Email {
            verified: true,
            ..with_reply_to
        });
        assert_eq!(extra(&m, "email-reply-to"), Some("orders@example.com"));
        let m = message(Email {
            verified: true,
            headers: vec![("Reply-To".into(), "Desk <desk@example.com>".into())],
            ..email()
        });
        assert_eq!(extra(&m, "email-reply-to"), Some("desk@example.com"));
    }

    #[test]
    fn replies_without_references_join_a_known_conversation() {
        let known = |k: &str| (k == thread_key("b@acme.example")).then(|| "case-1".to_string());
        let mut m = message(Email {
            references: vec![],
            ..email()
        });
        assert_eq!(m.conversation_key, "b@acme.example");
        rethread(&mut m, known);
        assert_eq!(m.conversation_key, "case-1");
        // With References the root already decides; unknown parents stay as they are.
        let mut m = message(email());
        rethread(&mut m, known);
        assert_eq!(m.conversation_key, "a@example.com");
        let mut m = message(Email {
            references: vec![],
            in_reply_to: Some("zzz@x.example".into()),
            ..email()
        });
        rethread(&mut m, known);
        assert_eq!(m.conversation_key, "zzz@x.example");
    }

    #[test]
    fn html_only_replies_lose_their_quoted_history() {
        let gmail = r#"<div dir="ltr">The strap broke again.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Dec 1, 2026 at 9:14 AM Acme Care &lt;<a href="mailto:care@acme.example">care@acme.example</a>&gt; wrote:<br></div><blockquote class="gmail_quote">We sent a new strap.</blockquote></div>"#;
        let outlook = r#"<html><body><p>Please cancel order 55.</p><div id="divRplyFwdMsg"><hr><b>From:</b> Acme Care &lt;care@acme.example&gt;<br><b>Sent:</b> Monday, November 30, 2026 10:00 AM<br><b>To:</b> Jane Doe<br><b>Subject:</b> Order 55</div><p>Your order ships soon.</p></body></html>"#;
        for (html, said, quoted) in [
            (gmail, "The strap broke again.", "new strap"),
            (outlook, "Please cancel order 55.", "ships soon"),
        ] {
            let m = message(Email {
                text: None,
                html: Some(html.into()),
                ..email()
            });
            assert_eq!(m.text, said, "{html}");
            assert!(extra(&m, "email-body").unwrap().contains(quoted));
        }
    }

    #[test]
    fn huge_bodies_are_bounded_on_a_char_boundary() {
        let e = Email {
            text: Some(format!("{}\n-- \nsig", "é".repeat(MAX_FULL_BODY_BYTES))),
            ..email()
        };
        let m = message(e);
        assert!(m.text.len() <= MAX_FULL_BODY_BYTES);
        assert_eq!(extra(&m, "email-body-truncated"), Some("true"));
        assert!(m.text.chars().all(|c| c == 'é'));
    }

    #[test]
    fn first_message_is_its_own_thread_and_ids_fall_back() {
        let e = Email {
            references: vec![],
            in_reply_to: None,
            ..email()
        };
        assert_eq!(message(e).conversation_key, "c@example.com");
        let e = Email {
            message_id: None,
            provider_id: Some("pm-1".into()),
            ..email()
        };
        assert_eq!(message(e).external_id, "postmark:pm-1");
        let e = Email {
            message_id: None,
            ..email()
        };
        let a = message(e.clone()).external_id;
        assert!(a.starts_with("sha256:"));
        assert_eq!(a, message(e).external_id, "stable across redeliveries");
    }

    #[test]
    fn html_only_and_auto_replies_and_bad_senders() {
        let e = Email {
            text: None,
            html: Some("<p>Hello <b>there</b></p>".into()),
            ..email()
        };
        let m = message(e);
        assert!(m.text.contains("Hello there"), "{}", m.text);
        assert_eq!(extra(&m, "email-html-only"), Some("true"));
        let e = Email {
            headers: vec![("Auto-Submitted".into(), "auto-replied".into())],
            ..email()
        };
        assert!(
            matches!(to_event(e, "postmark", NOW).unwrap(), Event::Skipped(s) if s.event_type.as_deref() == Some("auto-reply"))
        );
        let e = Email {
            date_ms: Some(NOW + 3_600_000),
            ..email()
        };
        assert_eq!(message(e).received_at, 0, "a future Date is not trusted");
        let e = Email {
            date_ms: Some(NOW - 3_600_000),
            ..email()
        };
        assert_eq!(message(e).received_at, NOW - 3_600_000);
        let e = Email {
            from: "not an address".into(),
            ..email()
        };
        assert!(to_event(e, "postmark", NOW).is_err());
        for e in [
            Email {
                from: "MAILER-DAEMON@mx.example.com".into(),
                ..email()
            },
            Email {
                headers: vec![(
                    "Content-Type".into(),
                    "multipart/report; report-type=delivery-status; boundary=x".into(),
                )],
                ..email()
            },
        ] {
            assert!(
                matches!(to_event(e, "postmark", NOW).unwrap(), Event::Skipped(s) if s.event_type.as_deref() == Some("delivery-report"))
            );
        }
        assert_eq!(parse_ids("<a@b> <c@d>\r\n\t<e@f>"), ["a@b", "c@d", "e@f"]);
    }
}
