//! Messenger Platform messaging events (`entry[].messaging[]`), which Facebook Messenger and
//! Instagram Direct share: messages, edits, deletions, and the non-message events that are
//! skipped with a reason.

use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, Visibility,
};

use crate::webhook::{epoch_ms, flag, guard, id, millis, text};

/// Where the messaging events come from.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// The channel name stamped on messages (`facebook`, `instagram`).
    pub channel: &'a str,
    /// The `extra` key naming the receiving account (`page-id`, `ig-user-id`).
    pub account_key: &'a str,
}

/// Messaging event keys that are not messages, with the reason each is skipped.
const NON_MESSAGES: &[(&str, &str)] = &[
    ("reaction", "reactions are not messages"),
    ("delivery", "delivery receipts are not messages"),
    ("read", "read receipts are not messages"),
    (
        "postback",
        "button postbacks are bot interactions, not customer messages",
    ),
    ("optin", "opt-ins are not messages"),
    (
        "referral",
        "referrals (ads, links, m.me parameters) are not messages",
    ),
    ("account_linking", "account linking is not a message"),
    (
        "pass_thread_control",
        "handover protocol event, not a message",
    ),
    (
        "take_thread_control",
        "handover protocol event, not a message",
    ),
    (
        "request_thread_control",
        "handover protocol event, not a message",
    ),
    ("app_roles", "handover protocol event, not a message"),
    (
        "policy-enforcement",
        "policy enforcement notice for the app, not a message",
    ),
    (
        "policy_enforcement",
        "policy enforcement notice for the app, not a message",
    ),
    ("checkout_update", "payments event, not a message"),
    ("payment", "payments event, not a message"),
    ("pre_checkout", "payments event, not a message"),
    ("game_play", "game event, not a message"),
    ("messaging_feedback", "feedback form answer, not a message"),
    ("message_reactions", "reactions are not messages"),
];

fn attachment(a: &Value) -> Attachment {
    let kind_name = a.get("type").and_then(Value::as_str).unwrap_or("");
    let payload = a.get("payload").unwrap_or(&Value::Null);
    let kind = match kind_name {
        _ if payload.get("sticker_id").is_some() => AttachmentKind::Sticker,
        "image" | "animated_image" => AttachmentKind::Image,
        "video" | "reel" | "ig_reel" => AttachmentKind::Video,
        "audio" => AttachmentKind::Audio,
        "file" => AttachmentKind::File,
        "location" => AttachmentKind::Location,
        "fallback" | "share" | "link" => AttachmentKind::Link,
        _ => AttachmentKind::Other,
    };
    let url = text(payload, "url")
        .or_else(|| text(a, "url"))
        .map(String::from);
    let description = text(payload, "title")
        .or_else(|| text(a, "title"))
        .or_else(|| text(payload, "template_type"))
        .or_else(|| (kind == AttachmentKind::Other && !kind_name.is_empty()).then_some(kind_name))
        .map(String::from);
    Attachment {
        kind,
        url,
        mime_type: None,
        description,
    }
}

/// The type name of a messaging event (`message`, `message_edit`, `reaction`, …).
pub fn event_type(event: &Value) -> Option<&str> {
    let obj = event.as_object()?;
    ["message", "message_edit"]
        .into_iter()
        .chain(NON_MESSAGES.iter().map(|(k, _)| *k))
        .find(|k| obj.contains_key(*k))
}

/// Normalise one messaging event received by `account_id` (the page or Instagram account).
/// `entry_time` is the entry's own `time`, used when the event has no `timestamp`.
pub fn normalise(
    event: &Value,
    account: Account,
    account_id: &str,
    entry_time: Option<&Value>,
) -> Event {
    let Some(kind) = event_type(event) else {
        return Event::skipped(
            None,
            "unrecognised messaging event (no message or known event key)",
        );
    };
    if let Some((_, reason)) = NON_MESSAGES.iter().find(|(k, _)| *k == kind) {
        return Event::skipped(Some(kind), reason);
    }
    let body = &event[kind];
    let Some(sender) = id(event.get("sender").and_then(|s| s.get("id"))) else {
        return Event::skipped(Some(kind), "the event has no `sender.id`");
    };
    if flag(body, "is_echo") {
        return Event::skipped(
            Some(kind),
            "echo of a message the account sent itself (is_echo), not a customer message",
        );
    }
    let Some(mid) = id(body.get("mid")) else {
        return Event::skipped(Some(kind), "the message has no `mid`");
    };
    let mut extra = vec![
        ("kind".to_string(), "message".to_string()),
        (account.account_key.to_string(), account_id.to_string()),
    ];
    let mut action = MessageAction::Created;
    let mut in_reply_to = None;
    let mut attachments = Vec::new();
    let message_text = text(body, "text").unwrap_or("").to_string();
    if kind == "message_edit" {
        action = MessageAction::Edited;
        if let Some(n) = body.get("num_edit").and_then(Value::as_u64) {
            extra.push(("num-edit".into(), n.to_string()));
        }
    } else if flag(body, "is_deleted") {
        action = MessageAction::Deleted;
    } else {
        if flag(body, "is_unsupported") {
            return Event::skipped(
                Some(kind),
                "Meta marked the message `is_unsupported`: its content type is not available \
                 through the API",
            );
        }
        attachments = body
            .get("attachments")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(attachment).collect())
            .unwrap_or_default();
        if let Some(reply) = body.get("reply_to") {
            in_reply_to = id(reply.get("mid"));
            if let Some(story) = reply.get("story") {
                if let Some(story_id) = id(story.get("id")) {
                    extra.push(("reply-to-story-id".into(), story_id));
                }
                if let Some(url) = text(story, "url") {
                    attachments.push(Attachment {
                        kind: AttachmentKind::Link,
                        url: Some(url.to_string()),
                        mime_type: None,
                        description: Some("story replied to".into()),
                    });
                }
            }
        }
        if let Some(payload) = body.get("quick_reply").and_then(|q| text(q, "payload")) {
            extra.push(("quick-reply-payload".into(), payload.to_string()));
        }
        if message_text.is_empty() && attachments.is_empty() {
            return Event::skipped(Some(kind), "the message has neither text nor attachments");
        }
    }
    let received_at = millis(event.get("timestamp"))
        .or_else(|| epoch_ms(entry_time))
        .unwrap_or(0);
    let message = Message {
        tenant: String::new(),
        channel: account.channel.to_string(),
        external_id: mid,
        conversation_key: format!("{account_id}:{sender}"),
        in_reply_to,
        author: Author {
            id: sender,
            handle: None,
            display_name: None,
        },
        text: message_text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at,
        attachments,
        action,
        extra,
    };
    guard(message, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pairs;
    use serde_json::json;

    const FB: Account = Account {
        channel: "facebook",
        account_key: "page-id",
    };

    fn message(event: Value) -> Message {
        match normalise(&event, FB, "111", Some(&json!(1_500_000_000_000i64))) {
            Event::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn skipped(event: Value) -> (Option<String>, String) {
        match normalise(&event, FB, "111", None) {
            Event::Skipped(s) => (s.event_type, s.reason),
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn text_message_with_reply_and_quick_reply() {
        let m = message(json!({
            "sender": {"id": 222}, "recipient": {"id": "111"}, "timestamp": 1458692752478i64,
            "message": {"mid": "m.1", "text": "hello, world!",
                        "reply_to": {"mid": "m.0"}, "quick_reply": {"payload": "YES"}}
        }));
        assert_eq!(m.external_id, "m.1");
        assert_eq!(m.conversation_key, "111:222");
        assert_eq!(m.in_reply_to.as_deref(), Some("m.0"));
        assert_eq!(m.author.id, "222");
        assert_eq!(m.text, "hello, world!");
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.received_at, 1_458_692_752_478);
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(m.channel, "facebook");
        assert!(m.tenant.is_empty());
        assert_eq!(
            m.extra,
            pairs(&[
                ("kind", "message"),
                ("page-id", "111"),
                ("quick-reply-payload", "YES")
            ])
        );
    }

    #[test]
    fn attachments_edits_and_deletions() {
        let m = message(json!({
            "sender": {"id": "222"},
            "message": {"mid": "m.2", "attachments": [
                {"type": "image", "payload": {"url": "https://cdn/x.jpg"}},
                {"type": "image", "payload": {"url": "https://cdn/s.png", "sticker_id": 369239263222822u64}},
                {"type": "ig_reel", "payload": {"url": "https://cdn/r.mp4", "title": "Reel"}},
                {"type": "template", "payload": {"template_type": "airline_itinerary"}},
                {"type": "fallback", "payload": {"url": "https://example.com", "title": "Example"}}
            ]}
        }));
        assert_eq!(m.text, "");
        assert_eq!(
            m.received_at, 1_500_000_000_000,
            "falls back to the entry time"
        );
        let kinds: Vec<_> = m.attachments.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            vec![
                AttachmentKind::Image,
                AttachmentKind::Sticker,
                AttachmentKind::Video,
                AttachmentKind::Other,
                AttachmentKind::Link
            ]
        );
        assert_eq!(m.attachments[0].url.as_deref(), Some("https://cdn/x.jpg"));
        assert_eq!(m.attachments[2].description.as_deref(), Some("Reel"));
        assert_eq!(
            m.attachments[3].description.as_deref(),
            Some("airline_itinerary")
        );

        let e = message(
            json!({"sender": {"id": "222"}, "timestamp": 1700000000000i64,
            "message_edit": {"mid": "m.1", "text": "hello again", "num_edit": 2}}),
        );
        assert_eq!(
            (e.action, e.external_id.as_str(), e.text.as_str()),
            (MessageAction::Edited, "m.1", "hello again")
        );
        assert!(e.extra.contains(&("num-edit".to_string(), "2".to_string())));

        let d = message(
            json!({"sender": {"id": "222"}, "message": {"mid": "m.1", "is_deleted": true}}),
        );
        assert_eq!((d.action, d.text.as_str()), (MessageAction::Deleted, ""));
    }

    #[test]
    fn echoes_receipts_and_broken_events_are_skipped() {
        let (t, r) = skipped(
            json!({"sender": {"id": "222"}, "message": {"mid": "m", "text": "x", "is_echo": true}}),
        );
        assert_eq!(t.as_deref(), Some("message"));
        assert!(r.contains("echo"));
        for key in [
            "reaction",
            "delivery",
            "read",
            "postback",
            "take_thread_control",
        ] {
            let (t, _) = skipped(json!({"sender": {"id": "222"}, key: {}}));
            assert_eq!(t.as_deref(), Some(key));
        }
        let (t, r) =
            skipped(json!({"recipient": {"id": "111"}, "policy-enforcement": {"action": "block"}}));
        assert_eq!(t.as_deref(), Some("policy-enforcement"));
        assert!(r.contains("policy"));
        let (_, r) = skipped(json!({"message": {"mid": "m", "text": "x"}}));
        assert!(r.contains("sender.id"));
        let (_, r) = skipped(json!({"sender": {"id": "2"}, "message": {"text": "x"}}));
        assert!(r.contains("mid"));
        let (_, r) = skipped(json!({"sender": {"id": "2"}, "message": {"mid": "m"}}));
        assert!(r.contains("neither text nor attachments"));
        let (_, r) = skipped(
            json!({"sender": {"id": "2"}, "message": {"mid": "m", "is_unsupported": true}}),
        );
        assert!(r.contains("is_unsupported"));
        let (t, _) = skipped(json!({"sender": {"id": "2"}}));
        assert_eq!(t, None);
        let (_, r) = skipped(
            json!({"sender": {"id": "2"}, "message": {"mid": "x".repeat(1025), "text": "hi"}}),
        );
        assert!(r.contains("more than 1024"));
    }
}
