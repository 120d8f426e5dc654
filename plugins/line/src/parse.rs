//! LINE webhook bodies (`{"destination": "U…", "events": [...]}`) into normalised events.

use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

use crate::text::mention_slice;

/// The channel name stamped on every message.
pub const CHANNEL: &str = "line";
/// Where LINE serves the content of media sent by users (`contentProvider.type == "line"`);
/// fetching it needs the channel access token.
pub const CONTENT_BASE: &str = "https://api-data.line.me/v2/bot/message";
/// Most events the host accepts from one call.
pub const MAX_EVENTS: usize = 10_000;
const MAX_ID_BYTES: usize = 1024;
const MAX_TEXT_BYTES: usize = 1 << 20;

/// Decode a (verified) body. A leading UTF-8 BOM is ignored. `{"events": []}` — what LINE sends
/// when the webhook URL is verified in the console — yields no events.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("body is not valid JSON: {e}")))?;
    let events = root
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            PluginError::InvalidInput(
                "body is not a LINE webhook: expected an object with an `events` array".into(),
            )
        })?;
    if events.len() > MAX_EVENTS {
        return Err(PluginError::InvalidInput(format!(
            "{} events in one body; at most {MAX_EVENTS} are accepted",
            events.len()
        )));
    }
    let destination = root.get("destination").and_then(Value::as_str);
    Ok(events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            event(e, destination).unwrap_or_else(|reason| {
                Event::skipped(
                    e.get("type").and_then(Value::as_str),
                    &format!("event at index {i}: {reason}"),
                )
            })
        })
        .collect())
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.len() > MAX_ID_BYTES {
        return Err(format!("{what} is longer than {MAX_ID_BYTES} bytes"));
    }
    Ok(())
}

/// Where an event happened: the chat to answer in, and who spoke.
struct Source {
    kind: String,
    chat_id: String,
    user_id: Option<String>,
}

fn source(e: &Value) -> Result<Source, String> {
    let s = e
        .get("source")
        .ok_or("required field `source` is missing")?;
    let kind = str_field(s, "type").ok_or("`source.type` is missing")?;
    let user_id = str_field(s, "userId").map(String::from);
    let chat_id = match kind {
        "user" => user_id.clone().ok_or("`source.userId` is missing")?,
        "group" => str_field(s, "groupId")
            .ok_or("`source.groupId` is missing")?
            .to_string(),
        "room" => str_field(s, "roomId")
            .ok_or("`source.roomId` is missing")?
            .to_string(),
        other => return Err(format!("unknown source type `{other}`")),
    };
    // Leave room for the `unknown-member-of:` pseudo author id.
    if chat_id.len() > MAX_ID_BYTES - 64 {
        return Err(format!(
            "the source id is longer than {} bytes",
            MAX_ID_BYTES - 64
        ));
    }
    if let Some(u) = &user_id {
        check_id("`source.userId`", u)?;
    }
    Ok(Source {
        kind: kind.to_string(),
        chat_id,
        user_id,
    })
}

/// Why event types other than `message` and `unsend` are not messages.
fn skip_reason(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "follow" => "a user added the account as a friend (or unblocked it): not a message",
        "unfollow" => "a user blocked the account: not a message",
        "join" => "the account joined a group or room: not a message",
        "leave" => "the account was removed from a group or room: not a message",
        "memberJoined" => "members joined a group or room: not a message",
        "memberLeft" => "members left a group or room: not a message",
        "postback" => {
            "a postback is a button or rich-menu action carrying app data, not text the user wrote"
        }
        "videoPlayComplete" => "a user finished watching a video the account sent: not a message",
        "beacon" => "a LINE Beacon proximity event: not a message",
        "accountLink" => "an account-linking result: not a message",
        "things" => "a LINE Things device event: not a message",
        "membership" => "a membership subscription event: not a message",
        "module" | "activated" | "deactivated" | "botSuspended" | "botResumed" => {
            "a module-channel control event: not a message"
        }
        _ => return None,
    })
}

fn event(e: &Value, destination: Option<&str>) -> Result<Event, String> {
    if !e.is_object() {
        return Err("not a JSON object".into());
    }
    let kind = str_field(e, "type").ok_or("required field `type` is missing")?;
    match kind {
        "message" => message_event(e, destination).map(Event::from),
        // LINE (2026): a member edited a text message in a group. The same shape as `message`,
        // for the same message id, so the host records it as an edit of the one it has.
        // Edits may arrive out of order; the event's timestamp is the edit's.
        "messageEdited" => message_event(e, destination).map(|mut m| {
            m.action = MessageAction::Edited;
            m.extra.push(("line-edited".into(), "true".into()));
            Event::from(m)
        }),
        "unsend" => unsend_event(e).map(Event::from),
        other => Ok(Event::skipped(
            Some(other),
            skip_reason(other).unwrap_or("unknown LINE event type: not a message"),
        )),
    }
}

fn timestamp(e: &Value) -> Result<i64, String> {
    e.get("timestamp")
        .and_then(Value::as_i64)
        .ok_or_else(|| "required field `timestamp` (epoch ms) is missing".to_string())
}

/// The common skeleton of a message from `source`.
fn base(e: &Value, src: &Source, external_id: &str, received_at: i64) -> Message {
    // Users who have not consented to share their profile may appear without a user id in
    // groups and rooms: they share one pseudo-identity per chat, flagged in `extra`.
    let author_id = src
        .user_id
        .clone()
        .unwrap_or_else(|| format!("unknown-member-of:{}", src.chat_id));
    let mut extra = vec![
        ("line-source-type".to_string(), src.kind.clone()),
        ("line-to".to_string(), src.chat_id.clone()),
        ("line-event-timestamp".to_string(), received_at.to_string()),
    ];
    if src.user_id.is_none() {
        extra.push(("line-author-unknown".into(), "true".into()));
    }
    if let Some(id) = str_field(e, "webhookEventId") {
        extra.push(("line-webhook-event-id".into(), id.to_string()));
    }
    if e.pointer("/deliveryContext/isRedelivery") == Some(&Value::Bool(true)) {
        extra.push(("line-redelivery".into(), "true".into()));
    }
    let mode = str_field(e, "mode").unwrap_or("active");
    extra.push(("line-mode".into(), mode.to_string()));
    Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: external_id.to_string(),
        conversation_key: src.chat_id.clone(),
        in_reply_to: None,
        author: Author {
            id: author_id,
            handle: None,
            display_name: None,
        },
        text: String::new(),
        language: None,
        // Private means between the customer and the brand (the contract's definition): a 1:1
        // chat. What is written in a group or room is seen by its other members, so it is
        // public, as Telegram's connector says of groups; a private answer then goes to the
        // member alone (see `delivery::route`).
        visibility: if src.kind == "user" {
            Visibility::Private
        } else {
            Visibility::Public
        },
        origin: if src.kind == "user" {
            Origin::DirectMessage
        } else {
            Origin::Other
        },
        received_at,
        attachments: Vec::new(),
        action: MessageAction::Created,
        extra,
    }
}

fn unsend_event(e: &Value) -> Result<Message, String> {
    let id = e
        .pointer("/unsend/messageId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("`unsend.messageId` is missing")?;
    check_id("`unsend.messageId`", id)?;
    let src = source(e)?;
    let mut m = base(e, &src, id, timestamp(e)?);
    m.action = MessageAction::Deleted;
    Ok(m)
}

fn content_url(message_id: &str, msg: &Value) -> Option<String> {
    match msg.pointer("/contentProvider/type").and_then(Value::as_str) {
        Some("external") => msg
            .pointer("/contentProvider/originalContentUrl")
            .and_then(Value::as_str)
            .map(String::from),
        // `line` (or absent, as in older payloads): LINE keeps the content.
        _ => Some(format!("{CONTENT_BASE}/{message_id}/content")),
    }
}

fn attachment(
    kind: AttachmentKind,
    url: Option<String>,
    description: Option<String>,
) -> Attachment {
    Attachment {
        kind,
        url,
        mime_type: None,
        description,
    }
}

fn message_event(e: &Value, destination: Option<&str>) -> Result<Message, String> {
    let msg = e
        .get("message")
        .ok_or("required field `message` is missing")?;
    let id = str_field(msg, "id").ok_or("`message.id` is missing")?;
    check_id("`message.id`", id)?;
    let mtype = str_field(msg, "type").ok_or("`message.type` is missing")?;
    let src = source(e)?;
    let mut m = base(e, &src, id, timestamp(e)?);
    m.extra
        .push(("line-message-type".into(), mtype.to_string()));
    if let Some(d) = destination {
        m.extra.push(("line-destination".into(), d.to_string()));
    }
    // A reply token is only usable by an account in active mode.
    if m.extra
        .iter()
        .any(|(k, v)| k == "line-mode" && v == "active")
        && let Some(token) = str_field(e, "replyToken")
    {
        m.extra.push(("line-reply-token".into(), token.to_string()));
    }
    if let Some(q) = str_field(msg, "quoteToken") {
        m.extra.push(("line-quote-token".into(), q.to_string()));
    }
    m.in_reply_to = str_field(msg, "quotedMessageId").map(String::from);
    match mtype {
        "text" => {
            let text = msg
                .get("text")
                .and_then(Value::as_str)
                .ok_or("`message.text` is missing")?;
            if text.len() > MAX_TEXT_BYTES {
                return Err("`message.text` is longer than 1 MiB".into());
            }
            // Mentions already appear in the text as `@name`; LINE emoji appear as their
            // alternative text (e.g. `(love)`), which is kept as the readable form.
            m.text = text.to_string();
            mentions(msg, text, destination, &src, &mut m);
            if let Some(n) = msg.get("emojis").and_then(Value::as_array).map(Vec::len)
                && n > 0
            {
                m.extra.push(("line-emoji-count".into(), n.to_string()));
            }
        }
        "image" | "video" | "audio" => {
            let kind = match mtype {
                "image" => AttachmentKind::Image,
                "video" => AttachmentKind::Video,
                _ => AttachmentKind::Audio,
            };
            let description = msg.get("imageSet").map(|set| {
                format!(
                    "image {} of {} sent together",
                    set.get("index").and_then(Value::as_u64).unwrap_or(0),
                    set.get("total").and_then(Value::as_u64).unwrap_or(0)
                )
            });
            m.attachments
                .push(attachment(kind, content_url(id, msg), description));
        }
        "file" => {
            let name = str_field(msg, "fileName").map(String::from);
            m.attachments.push(attachment(
                AttachmentKind::File,
                Some(format!("{CONTENT_BASE}/{id}/content")),
                name,
            ));
        }
        "location" => {
            let lat = msg.get("latitude").and_then(Value::as_f64);
            let lon = msg.get("longitude").and_then(Value::as_f64);
            let label: Vec<&str> = [str_field(msg, "title"), str_field(msg, "address")]
                .into_iter()
                .flatten()
                .collect();
            m.attachments.push(attachment(
                AttachmentKind::Location,
                // 7 decimals (about 1 cm): serde_json's float parsing may differ in the last digit.
                lat.zip(lon).map(|(a, o)| format!("geo:{a:.7},{o:.7}")),
                (!label.is_empty()).then(|| label.join(", ")),
            ));
        }
        "sticker" => {
            // Message stickers carry the words shown on them in `text`; that is what the user
            // "said". Otherwise the text stays empty and the sticker is an attachment.
            if let Some(t) = str_field(msg, "text") {
                m.text = t.to_string();
            }
            let keywords: Vec<&str> = msg
                .get("keywords")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let package = str_field(msg, "packageId").unwrap_or("?");
            let sticker = str_field(msg, "stickerId").unwrap_or("?");
            let mut description = format!("LINE sticker {package}/{sticker}");
            if !keywords.is_empty() {
                description.push_str(&format!(" ({})", keywords.join(", ")));
            }
            m.attachments
                .push(attachment(AttachmentKind::Sticker, None, Some(description)));
        }
        other => return Err(format!("message type `{other}` is not supported")),
    }
    Ok(m)
}

/// Record who was mentioned, and make the message a mention when the account itself was.
fn mentions(msg: &Value, text: &str, destination: Option<&str>, src: &Source, m: &mut Message) {
    let Some(list) = msg.pointer("/mention/mentionees").and_then(Value::as_array) else {
        return;
    };
    let mut names = Vec::new();
    let mut ids = Vec::new();
    let mut addressed = false;
    for mentionee in list {
        let user_id = str_field(mentionee, "userId");
        let is_self = mentionee.get("isSelf").and_then(Value::as_bool) == Some(true)
            || (user_id.is_some() && user_id == destination);
        addressed |= is_self;
        if let Some(u) = user_id {
            ids.push(u.to_string());
        }
        if mentionee.get("type").and_then(Value::as_str) == Some("all") {
            ids.push("all".into());
        }
        let index = mentionee.get("index").and_then(Value::as_u64);
        let length = mentionee.get("length").and_then(Value::as_u64);
        if let Some(slice) = index
            .zip(length)
            .and_then(|(i, l)| mention_slice(text, i, l))
        {
            names.push(slice.to_string());
        }
    }
    if !ids.is_empty() {
        m.extra.push(("line-mentioned-ids".into(), ids.join(",")));
    }
    if !names.is_empty() {
        m.extra.push(("line-mentions".into(), names.join(" ")));
    }
    if addressed && src.kind != "user" {
        m.origin = Origin::Mention;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../../shared/data/fixtures/line/{rel}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn messages(events: &[Event]) -> Vec<&Message> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn extra<'a>(m: &'a Message, k: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn python_sdk_body() {
        let events = parse_body(&fixture("line-bot-sdk-python/tests_text_webhook.json")).unwrap();
        assert_eq!(events.len(), 27);
        let ms = messages(&events);
        assert_eq!(ms.len(), 12); // 11 message events + 1 unsend
        let first = ms[0];
        assert_eq!(first.external_id, "325708");
        assert_eq!(first.conversation_key, "U206d25c2ea6bd87c17655609a1c37cb8");
        assert_eq!(first.author.id, "U206d25c2ea6bd87c17655609a1c37cb8");
        assert_eq!(first.text, "Hello, world");
        assert_eq!(first.origin, Origin::DirectMessage);
        assert_eq!(first.visibility, Visibility::Private);
        assert_eq!(first.received_at, 1_462_629_479_859);
        assert_eq!(
            extra(first, "line-reply-token"),
            Some("nHuyWiB7yP5Zw52FIkcQobQuGDXCTA")
        );
        assert_eq!(extra(first, "line-destination"), Some("U123"));
        // The image in a room without a user id.
        let img = ms[1];
        assert_eq!(img.conversation_key, "Ra8dbf4673c4c812cd491258042226c99");
        assert_eq!(
            img.author.id,
            "unknown-member-of:Ra8dbf4673c4c812cd491258042226c99"
        );
        assert_eq!(img.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(
            img.attachments[0].url.as_deref(),
            Some("https://example.com")
        );
        assert_eq!(img.origin, Origin::Other);
        let sticker = ms
            .iter()
            .find(|m| extra(m, "line-message-type") == Some("sticker"))
            .unwrap();
        assert_eq!(sticker.text, "Just sticker");
        assert_eq!(
            sticker.attachments[0].description.as_deref(),
            Some("LINE sticker 1/1 (Love You, Love)")
        );
        let unsend = ms
            .iter()
            .find(|m| m.action == MessageAction::Deleted)
            .unwrap();
        assert_eq!(unsend.external_id, "325708");
        assert_eq!(unsend.conversation_key, "Ca56f94637cc4347f90a25382909b24b9");
        assert_eq!(unsend.received_at, 1_547_817_848_122);
        let redelivered = ms.last().unwrap();
        assert_eq!(extra(redelivered, "line-redelivery"), Some("true"));
        assert_eq!(redelivered.external_id, "325708");
        let skipped: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped(s) => s.event_type.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(
            skipped,
            [
                "follow",
                "unfollow",
                "join",
                "leave",
                "postback",
                "beacon",
                "beacon",
                "accountLink",
                "postback",
                "postback",
                "postback",
                "memberJoined",
                "memberLeft",
                "videoPlayComplete",
                "undefined"
            ]
        );
    }

    #[test]
    fn go_sdk_body_with_tabs_mentions_emoji_and_standby() {
        let events = parse_body(&fixture(
            "line-bot-sdk-go_webhook_test_literals/webhookTestRequestBody.json",
        ))
        .unwrap();
        assert_eq!(events.len(), 32);
        let ms = messages(&events);
        assert_eq!(ms.len(), 16);
        let mention = ms[2];
        assert_eq!(
            extra(mention, "line-mentions"),
            Some("@openProfileUser @notOpenProfileU")
        );
        assert_eq!(
            extra(mention, "line-mentioned-ids"),
            Some("U0047556f2e40dba2456887320ba7c76d")
        );
        assert_eq!(mention.origin, Origin::Other); // the account itself is not mentioned
        let location = ms
            .iter()
            .find(|m| extra(m, "line-message-type") == Some("location"))
            .unwrap();
        assert_eq!(
            location.attachments[0].url.as_deref(),
            Some("geo:35.6591081,139.7037289")
        );
        assert_eq!(
            location.attachments[0].description.as_deref(),
            Some("hello, 〒150-0002 東京都渋谷区渋谷２丁目２１−１")
        );
        let standby = ms.iter().find(|m| m.text == "Stand by me").unwrap();
        assert_eq!(extra(standby, "line-mode"), Some("standby"));
        assert_eq!(extra(standby, "line-reply-token"), None);
        let all = ms.last().unwrap();
        assert_eq!(all.external_id, "444573844083572737");
        assert_eq!(all.text, "@All @example Good Morning!! (love)");
        assert_eq!(extra(all, "line-mentions"), Some("@All @example"));
        assert_eq!(extra(all, "line-mentioned-ids"), Some("all,U49585cd0d5..."));
        assert_eq!(extra(all, "line-emoji-count"), Some("1"));
        let set = ms
            .iter()
            .find(|m| m.external_id == "354718705033693861")
            .unwrap();
        assert_eq!(
            set.attachments[0].url.as_deref(),
            Some("https://api-data.line.me/v2/bot/message/354718705033693861/content")
        );
        assert_eq!(
            set.attachments[0].description.as_deref(),
            Some("image 2 of 2 sent together")
        );
    }

    #[test]
    fn mentions_of_the_account_quotes_bom_and_bad_events() {
        let body = "\u{feff}".to_string()
            + r#"{"destination":"Ubot","events":[
            {"type":"message","timestamp":5,"mode":"active","replyToken":"r",
             "source":{"type":"group","groupId":"Cg","userId":"Ua"},
             "message":{"id":"9","type":"text","text":"😀 @Brand help","quoteToken":"qt","quotedMessageId":"8",
               "mention":{"mentionees":[{"index":3,"length":6,"type":"user","userId":"Ubot"}]}}},
            {"type":"message","timestamp":5,"source":{"type":"user","userId":"Ua"},"message":{"type":"text","text":"x"}},
            {"type":"message","timestamp":5,"source":{"type":"user","userId":"Ua"},"message":{"id":"10","type":"flex"}},
            7
        ]}"#;
        let events = parse_body(body.as_bytes()).unwrap();
        let Event::Message(m) = &events[0] else {
            panic!("{:?}", events[0])
        };
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.in_reply_to.as_deref(), Some("8"));
        assert_eq!(extra(m, "line-mentions"), Some("@Brand"));
        assert_eq!(extra(m, "line-quote-token"), Some("qt"));
        assert!(
            matches!(&events[1], Event::Skipped(s) if s.reason == "event at index 1: `message.id` is missing")
        );
        assert!(
            matches!(&events[2], Event::Skipped(s) if s.reason.contains("`flex` is not supported"))
        );
        assert!(matches!(&events[3], Event::Skipped(s) if s.reason.contains("not a JSON object")));
    }

    /// LINE's `messageEdited` (2026), shaped as its reference documents it.
    #[test]
    fn an_edited_group_message_is_an_edit_of_the_same_message_and_groups_are_public() {
        let body = r#"{"destination":"Ubot","events":[
            {"type":"messageEdited","timestamp":1751900000000,"mode":"active",
             "webhookEventId":"01JZ0000000000000000000000","deliveryContext":{"isRedelivery":false},
             "replyToken":"rt","source":{"type":"group","groupId":"Cg1","userId":"Ua1"},
             "message":{"id":"5817000000000","type":"text","quoteToken":"q","text":"my order 123 never came (edited)"}},
            {"type":"message","timestamp":1751800000000,"mode":"active",
             "source":{"type":"user","userId":"Ua1"},
             "message":{"id":"5816000000000","type":"text","quoteToken":"q2","text":"hi"}}
        ]}"#;
        let events = parse_body(body.as_bytes()).unwrap();
        let Event::Message(edit) = &events[0] else {
            panic!("{:?}", events[0])
        };
        assert_eq!(edit.action, MessageAction::Edited);
        assert_eq!(edit.external_id, "5817000000000");
        assert_eq!(edit.text, "my order 123 never came (edited)");
        assert_eq!(edit.received_at, 1_751_900_000_000);
        // Seen by the group's members: public, as Telegram says of groups.
        assert_eq!(edit.visibility, Visibility::Public);
        let Event::Message(direct) = &events[1] else {
            panic!("{:?}", events[1])
        };
        assert_eq!(direct.visibility, Visibility::Private);
    }

    #[test]
    fn bodies_that_are_not_line_webhooks() {
        assert!(
            matches!(parse_body(b"{\"events\": [}"), Err(PluginError::InvalidInput(m)) if m.contains("line 1 column"))
        );
        assert!(
            matches!(parse_body(b"[]"), Err(PluginError::InvalidInput(m)) if m.contains("`events` array"))
        );
    }
}
