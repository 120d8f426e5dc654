//! Facebook Page `changes[]` (page feed comments and visitor posts) → normalised events; the
//! entry walk and Messenger events are [`meta_graph`]'s.

use meta_graph::webhook::{epoch_ms, guard, id, seconds, text};
use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, Visibility,
};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "facebook";

/// One `changes[]` item.
pub fn change_event(change: &Value, page_id: &str, entry_time: Option<&Value>) -> Event {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    let value = change.get("value").unwrap_or(&Value::Null);
    match field {
        "feed" => feed_event(value, page_id, entry_time),
        "mention" => Event::skipped(
            Some("mention"),
            "page mention notifications carry no author id; read the post or comment through \
             the Graph API to handle it (not done by this connector yet)",
        ),
        "ratings" => Event::skipped(
            Some("ratings"),
            "page ratings and recommendations are not handled by this connector",
        ),
        "" => Event::skipped(None, "change without a `field`"),
        other => Event::skipped(
            Some(other),
            &format!("page field `{other}` is not a customer message"),
        ),
    }
}

fn author(value: &Value) -> Option<Author> {
    let from = value.get("from");
    let id = id(from.and_then(|f| f.get("id"))).or_else(|| id(value.get("sender_id")))?;
    let name = from
        .and_then(|f| text(f, "name"))
        .or_else(|| text(value, "sender_name"))
        .map(String::from);
    Some(Author {
        id,
        handle: None,
        display_name: name,
    })
}

fn action(verb: &str) -> Option<MessageAction> {
    match verb {
        "add" => Some(MessageAction::Created),
        "edited" | "edit" => Some(MessageAction::Edited),
        "remove" | "delete" => Some(MessageAction::Deleted),
        _ => None,
    }
}

fn feed_event(value: &Value, page_id: &str, entry_time: Option<&Value>) -> Event {
    let item = value.get("item").and_then(Value::as_str).unwrap_or("");
    let verb = value.get("verb").and_then(Value::as_str).unwrap_or("");
    let event_type = format!("feed.{item}.{verb}");
    let is_post = matches!(item, "post" | "status" | "photo" | "video");
    if item != "comment" && !is_post {
        let reason = match item {
            "reaction" | "like" => "reactions and likes are not messages".to_string(),
            "" => "feed change without an `item`".to_string(),
            other => format!("feed item `{other}` is not a customer message"),
        };
        return Event::skipped(Some(&event_type), &reason);
    }
    let Some(action) = action(verb) else {
        return Event::skipped(
            Some(&event_type),
            &format!(
                "verb `{verb}` is moderation or visibility, not a new, edited or removed message"
            ),
        );
    };
    let Some(author) = author(value) else {
        return Event::skipped(
            Some(&event_type),
            "the change has no author (`from.id` or `sender_id`)",
        );
    };
    if author.id == page_id {
        return Event::skipped(
            Some(&event_type),
            "written by the page itself (author id = page id): the brand's own post or reply, \
             not a customer message",
        );
    }
    let post_id = id(value.get("post_id"));
    let received_at = seconds(value.get("created_time"))
        .or_else(|| epoch_ms(entry_time))
        .unwrap_or(0);
    let message_text = text(value, "message").unwrap_or("").to_string();
    let mut attachments = Vec::new();
    if let Some(photo) = text(value, "photo") {
        attachments.push(media(AttachmentKind::Image, photo));
    }
    if let Some(video) = text(value, "video") {
        attachments.push(media(AttachmentKind::Video, video));
    }
    for photo in value
        .get("photos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(url) = photo.as_str() {
            attachments.push(media(AttachmentKind::Image, url));
        }
    }
    if let Some(link) = text(value, "link") {
        let kind = match item {
            "photo" => AttachmentKind::Image,
            "video" => AttachmentKind::Video,
            _ => AttachmentKind::Link,
        };
        attachments.push(media(kind, link));
    }
    let mut extra = vec![("page-id".to_string(), page_id.to_string())];
    let (external_id, conversation_key, in_reply_to, origin) = if item == "comment" {
        let Some(comment_id) = id(value.get("comment_id")) else {
            return Event::skipped(Some(&event_type), "the comment has no `comment_id`");
        };
        let parent = id(value.get("parent_id")).or_else(|| post_id.clone());
        extra.insert(0, ("kind".into(), "comment".into()));
        extra.push(("comment-id".into(), comment_id.clone()));
        if let Some(p) = &post_id {
            extra.push(("post-id".into(), p.clone()));
        }
        if let Some(p) = &parent {
            extra.push(("parent-id".into(), p.clone()));
        }
        let conversation = post_id.clone().unwrap_or_else(|| comment_id.clone());
        (comment_id, conversation, parent, Origin::Comment)
    } else {
        let Some(post_id) = post_id else {
            return Event::skipped(Some(&event_type), "the post has no `post_id`");
        };
        extra.insert(0, ("kind".into(), "post".into()));
        extra.push(("post-id".into(), post_id.clone()));
        // A visitor post on the page is addressed to the brand in public.
        (post_id.clone(), post_id, None, Origin::Mention)
    };
    if action != MessageAction::Deleted && message_text.is_empty() && attachments.is_empty() {
        return Event::skipped(Some(&event_type), "the change has neither text nor media");
    }
    guard(
        Message {
            tenant: String::new(),
            channel: CHANNEL.into(),
            external_id,
            conversation_key,
            in_reply_to,
            author,
            text: message_text,
            language: None,
            visibility: Visibility::Public,
            origin,
            received_at,
            attachments,
            action,
            extra,
        },
        &event_type,
    )
}

fn media(kind: AttachmentKind, url: &str) -> Attachment {
    Attachment {
        kind,
        url: Some(url.to_string()),
        mime_type: None,
        description: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta_graph::test_support::{only_skip, pairs};
    use serde_json::json;

    fn run(body: Value) -> Vec<Event> {
        let body = meta_graph::webhook::envelope(&body).unwrap();
        meta_graph::connector::events(&crate::SPEC, body).unwrap()
    }

    fn only_message(body: Value) -> Message {
        match run(body).as_slice() {
            [Event::Message(m)] => m.clone(),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn feed(value: Value) -> Value {
        json!({"object": "page", "entry": [{"id": "1234567890321", "time": 1449135003,
            "changes": [{"field": "feed", "value": value}]}]})
    }

    #[test]
    fn customer_comment_is_public_and_threaded_under_its_post() {
        let m = only_message(feed(json!({
            "item": "comment", "verb": "add", "comment_id": "901_903", "post_id": "123_901",
            "parent_id": "123_901", "sender_id": 555, "sender_name": "Casey",
            "created_time": 1449135003, "message": "and the next one",
            "photo": "https://scontent.example/p.jpg"
        })));
        assert_eq!(m.external_id, "901_903");
        assert_eq!(m.conversation_key, "123_901");
        assert_eq!(m.in_reply_to.as_deref(), Some("123_901"));
        assert_eq!(m.author.id, "555");
        assert_eq!(m.author.display_name.as_deref(), Some("Casey"));
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.origin, Origin::Comment);
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(m.received_at, 1_449_135_003_000);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(
            m.extra,
            pairs(&[
                ("kind", "comment"),
                ("page-id", "1234567890321"),
                ("comment-id", "901_903"),
                ("post-id", "123_901"),
                ("parent-id", "123_901")
            ])
        );
    }

    #[test]
    fn edits_removals_and_visitor_posts() {
        let e = only_message(feed(
            json!({"item": "comment", "verb": "edited", "comment_id": "c1",
            "post_id": "p1", "parent_id": "c0", "from": {"id": "555", "name": "Casey"}, "message": "edited"}),
        ));
        assert_eq!(
            (e.action, e.in_reply_to.as_deref()),
            (MessageAction::Edited, Some("c0"))
        );
        assert_eq!(
            e.received_at, 1_449_135_003_000,
            "entry time when created_time is absent"
        );
        let d = only_message(feed(
            json!({"item": "comment", "verb": "remove", "comment_id": "c1",
            "post_id": "p1", "from": {"id": "555"}}),
        ));
        assert_eq!((d.action, d.text.as_str()), (MessageAction::Deleted, ""));
        let p = only_message(feed(
            json!({"item": "status", "verb": "add", "post_id": "123_930",
            "from": {"id": "555", "name": "Casey"}, "message": "Where is my order?",
            "photos": ["https://x/1.png", "https://x/2.png"], "created_time": 1448633038}),
        ));
        assert_eq!(
            (p.external_id.as_str(), p.conversation_key.as_str()),
            ("123_930", "123_930")
        );
        assert_eq!(p.origin, Origin::Mention);
        assert_eq!(p.in_reply_to, None);
        assert_eq!(p.attachments.len(), 2);
        assert_eq!(p.extra[0], ("kind".to_string(), "post".to_string()));
    }

    #[test]
    fn own_posts_moderation_and_other_fields_are_skipped() {
        let skip = |body: Value| only_skip(&run(body));
        let (t, r) = skip(feed(
            json!({"item": "comment", "verb": "add", "comment_id": "c",
            "post_id": "p", "sender_id": 1234567890321u64, "message": "our reply"}),
        ));
        assert_eq!(t.as_deref(), Some("feed.comment.add"));
        assert!(r.contains("page itself"));
        let (_, r) = skip(feed(
            json!({"item": "comment", "verb": "hide", "comment_id": "c", "from": {"id": "5"}}),
        ));
        assert!(r.contains("moderation"));
        let (_, r) = skip(feed(
            json!({"item": "reaction", "verb": "add", "from": {"id": "5"}}),
        ));
        assert!(r.contains("reactions"));
        let (_, r) = skip(feed(
            json!({"item": "comment", "verb": "add", "comment_id": "c", "message": "x"}),
        ));
        assert!(r.contains("no author"));
        let (t, _) = skip(
            json!({"object": "page", "entry": [{"id": "1", "changes": [{"field": "mention", "value": {}}]}]}),
        );
        assert_eq!(t.as_deref(), Some("mention"));
        let (t, r) = skip(json!({"object": "user", "entry": []}));
        assert_eq!(t.as_deref(), Some("user"));
        assert!(r.contains("expects `page`"));
        let (t, _) =
            skip(json!({"object": "page", "entry": [{"id": "1", "standby": [{"message": {}}]}]}));
        assert_eq!(t.as_deref(), Some("standby"));
        let (t, r) = skip(json!({"object": "page", "entry": [{"messaging": []}]}));
        assert_eq!(t, None);
        assert!(r.contains("index 0"));
    }

    #[test]
    fn batched_entries_keep_every_event_in_order() {
        let body = json!({"object": "page", "entry": [
            {"id": "1", "time": 1, "messaging": [
                {"sender": {"id": "7"}, "timestamp": 1700000000000i64, "message": {"mid": "m1", "text": "a"}},
                {"sender": {"id": "7"}, "read": {"watermark": 1}}]},
            {"id": "1", "time": 1700000000, "changes": [
                {"field": "feed", "value": {"item": "post", "verb": "add", "post_id": "1_2", "from": {"id": "8"}, "message": "b"}}]}
        ]});
        let events = run(body);
        assert_eq!(events.len(), 3);
        assert!(
            matches!(&events[0], Event::Message(m) if m.external_id == "m1" && m.conversation_key == "1:7")
        );
        assert!(matches!(&events[1], Event::Skipped(s) if s.event_type.as_deref() == Some("read")));
        assert!(
            matches!(&events[2], Event::Message(m) if m.external_id == "1_2" && m.received_at == 1_700_000_000_000)
        );
    }
}
