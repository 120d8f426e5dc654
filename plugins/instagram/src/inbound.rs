//! Instagram `changes[]` (comments and live comments) → normalised events; the entry walk and
//! direct messages are [`meta_graph`]'s.

use meta_graph::webhook::{epoch_ms, guard, id, text};
use serde_json::Value;
use switchboard_sdk::{Author, Event, Message, MessageAction, Origin, Visibility};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "instagram";

/// One `changes[]` item.
pub fn change_event(change: &Value, account_id: &str, entry_time: Option<&Value>) -> Event {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    let value = change.get("value").unwrap_or(&Value::Null);
    match field {
        "comments" | "live_comments" => comment(field, value, account_id, entry_time),
        "mentions" => Event::skipped(
            Some("mentions"),
            "mention notifications carry only the media or comment id, no author or text; \
             reading them through the Graph API is not done by this connector yet",
        ),
        "message_reactions" => Event::skipped(Some(field), "reactions are not messages"),
        "messaging_seen" | "message_deliveries" => {
            Event::skipped(Some(field), "read and delivery receipts are not messages")
        }
        "story_insights" => Event::skipped(Some(field), "story insights are metrics, not messages"),
        "" => Event::skipped(None, "change without a `field`"),
        other => Event::skipped(
            Some(other),
            &format!("Instagram field `{other}` is not a customer message"),
        ),
    }
}

fn comment(field: &str, value: &Value, account_id: &str, entry_time: Option<&Value>) -> Event {
    let from = value.get("from");
    let Some(author_id) = id(from.and_then(|f| f.get("id"))) else {
        return Event::skipped(Some(field), "the comment has no author (`from.id`)");
    };
    if author_id == account_id {
        return Event::skipped(
            Some(field),
            "written by the account itself (author id = account id): the brand's own reply, \
             not a customer message",
        );
    }
    let Some(comment_id) = id(value.get("id")) else {
        return Event::skipped(Some(field), "the comment has no `id`");
    };
    let media = value.get("media");
    let media_id = id(media.and_then(|m| m.get("id"))).or_else(|| id(value.get("media_id")));
    let parent_id = id(value.get("parent_id"));
    let message_text = text(value, "text").unwrap_or("").to_string();
    if message_text.is_empty() {
        return Event::skipped(Some(field), "the comment has no text");
    }
    let mut extra = vec![
        ("kind".to_string(), "comment".to_string()),
        ("ig-user-id".to_string(), account_id.to_string()),
        ("comment-id".to_string(), comment_id.clone()),
    ];
    if let Some(m) = &media_id {
        extra.push(("media-id".into(), m.clone()));
    }
    if let Some(p) = &parent_id {
        extra.push(("parent-id".into(), p.clone()));
    }
    if let Some(t) = media.and_then(|m| text(m, "media_product_type")) {
        extra.push(("media-product-type".into(), t.to_string()));
    }
    if field == "live_comments" {
        extra.push(("live".into(), "true".into()));
    }
    let handle = from
        .and_then(|f| text(f, "username"))
        .map(|u| format!("@{}", u.trim_start_matches('@')));
    let received_at = epoch_ms(value.get("timestamp"))
        .or_else(|| epoch_ms(entry_time))
        .unwrap_or(0);
    guard(
        Message {
            tenant: String::new(),
            channel: CHANNEL.into(),
            conversation_key: media_id.clone().unwrap_or_else(|| comment_id.clone()),
            in_reply_to: parent_id.or(media_id),
            external_id: comment_id,
            author: Author {
                id: author_id,
                handle,
                display_name: None,
            },
            text: message_text,
            language: None,
            visibility: Visibility::Public,
            origin: Origin::Comment,
            received_at,
            attachments: Vec::new(),
            action: MessageAction::Created,
            extra,
        },
        field,
    )
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

    fn change(field: &str, value: Value) -> Value {
        json!({"object": "instagram", "entry": [{"id": "17841400000000000", "time": 1519399307,
            "changes": [{"field": field, "value": value}]}]})
    }

    #[test]
    fn comment_is_public_under_its_media() {
        let events = run(change(
            "comments",
            json!({
                "from": {"id": "232323232", "username": "casey"},
                "media": {"id": "123123123", "media_product_type": "FEED"},
                "id": "17865799348089039", "parent_id": "1231231234", "text": "Where is my parcel?"
            }),
        ));
        let [Event::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.channel, "instagram");
        assert_eq!(m.external_id, "17865799348089039");
        assert_eq!(m.conversation_key, "123123123");
        assert_eq!(m.in_reply_to.as_deref(), Some("1231231234"));
        assert_eq!(m.author.id, "232323232");
        assert_eq!(m.author.handle.as_deref(), Some("@casey"));
        assert_eq!(m.text, "Where is my parcel?");
        assert_eq!(
            (m.visibility, m.origin),
            (Visibility::Public, Origin::Comment)
        );
        assert_eq!(m.received_at, 1_519_399_307_000);
        assert_eq!(
            m.extra,
            pairs(&[
                ("kind", "comment"),
                ("ig-user-id", "17841400000000000"),
                ("comment-id", "17865799348089039"),
                ("media-id", "123123123"),
                ("parent-id", "1231231234"),
                ("media-product-type", "FEED")
            ])
        );
    }

    #[test]
    fn direct_messages_use_the_shared_messaging_parser() {
        let events = run(
            json!({"object": "instagram", "entry": [{"id": "178414", "time": 1569262486134i64,
            "messaging": [{"sender": {"id": "IGSID1"}, "recipient": {"id": "178414"}, "timestamp": 1569262485349i64,
                "message": {"mid": "aWdf1", "text": "Hello", "reply_to": {"story": {"url": "https://cdn/s", "id": "st1"}}}},
                {"sender": {"id": "178414"}, "recipient": {"id": "IGSID1"}, "message": {"mid": "aWdf2", "text": "ours", "is_echo": true}}]}]}),
        );
        let [Event::Message(m), Event::Skipped(s)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(
            (m.external_id.as_str(), m.conversation_key.as_str()),
            ("aWdf1", "178414:IGSID1")
        );
        assert_eq!(
            (m.visibility, m.origin),
            (Visibility::Private, Origin::DirectMessage)
        );
        assert!(
            m.extra
                .contains(&("ig-user-id".to_string(), "178414".to_string()))
        );
        assert!(
            m.extra
                .contains(&("reply-to-story-id".to_string(), "st1".to_string()))
        );
        assert!(s.reason.contains("echo"));
    }

    #[test]
    fn own_comments_mentions_and_other_objects_are_skipped() {
        let skip = |body: Value| only_skip(&run(body));
        let (_, r) = skip(change(
            "comments",
            json!({"from": {"id": "17841400000000000"}, "id": "1", "text": "thanks!"}),
        ));
        assert!(r.contains("account itself"));
        let (t, r) = skip(change(
            "live_comments",
            json!({"id": "123456789", "text": "This is an example."}),
        ));
        assert_eq!(t.as_deref(), Some("live_comments"));
        assert!(r.contains("from.id"));
        let (t, _) = skip(change(
            "mentions",
            json!({"media_id": "1", "comment_id": "2"}),
        ));
        assert_eq!(t.as_deref(), Some("mentions"));
        let (t, _) = skip(change("message_reactions", json!({})));
        assert_eq!(t.as_deref(), Some("message_reactions"));
        let (t, r) = skip(json!({"object": "page", "entry": []}));
        assert_eq!(t.as_deref(), Some("page"));
        assert!(r.contains("expects `instagram`"));
    }
}
