//! Decoding a verified webhook body into events.
//!
//! The body as a whole must be JSON of the right shape (else `invalid-input`); each event is
//! then decoded on its own, and an event with a problem becomes a skipped event that names the
//! field, so one bad event never costs the rest of the batch.

use serde_json::{Map, Value};
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";

// Limits the host checks on a connector's output; an event beyond them is skipped here, so it
// cannot make the host reject the whole batch as malformed.
/// Most events in one body.
pub const MAX_EVENTS: usize = 10_000;
/// Longest id (`id`, `conversation`, `in_reply_to`, `author.id`), in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest `text`, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Decode a whole body: one event object, an array of them, or `{"events": [...]}`.
pub fn parse_body(body: &[u8], channel: &str) -> Result<Vec<Event>, PluginError> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("request body is not valid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("events") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(PluginError::InvalidInput(format!(
                    "`events` must be an array of event objects, got {}",
                    kind(&other)
                )));
            }
            None => vec![Value::Object(object)],
        },
        other => {
            return Err(PluginError::InvalidInput(format!(
                "request body must be an event object, an array of events or \
                 {{\"events\": [...]}}, got {}",
                kind(&other)
            )));
        }
    };
    if items.len() > MAX_EVENTS {
        return Err(PluginError::InvalidInput(format!(
            "request body holds {} events, more than the {MAX_EVENTS} allowed in one delivery",
            items.len()
        )));
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_event(item, channel).unwrap_or_else(|problem| {
                Event::skipped(None, &format!("event at index {index}: {problem}"))
            })
        })
        .collect())
}

/// A JSON value's kind, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why one event cannot be used; the message names the field.
type Problem = String;

/// Field `name` of `obj`, with `null` counting as absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// An optional string; `null` and `""` count as absent.
fn opt_string(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<String>, Problem> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "field `{path}` must be a string, got {}",
            kind(other)
        )),
    }
}

/// An optional id: a string or an integer; `null`, `""` and blank strings count as absent.
fn opt_id(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<String>, Problem> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_ID_BYTES => Err(format!(
            "field `{path}` is {} bytes long, more than {MAX_ID_BYTES}",
            s.len()
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(format!(
            "field `{path}` must be a string or an integer, got {}",
            kind(other)
        )),
    }
}

/// A required id.
fn req_id(obj: &Map<String, Value>, name: &str, path: &str) -> Result<String, Problem> {
    opt_id(obj, name, path)?.ok_or_else(|| format!("required field `{path}` is missing or empty"))
}

/// Decode one event. `Ok` may still be a skipped event (an unknown `type`).
pub fn parse_event(item: &Value, channel: &str) -> Result<Event, Problem> {
    let Value::Object(obj) = item else {
        return Err(format!(
            "an event must be a JSON object, got {}",
            kind(item)
        ));
    };
    let action = match field(obj, "type") {
        None => MessageAction::Created,
        Some(Value::String(t)) => match t.as_str() {
            "message" => MessageAction::Created,
            "edit" => MessageAction::Edited,
            "delete" => MessageAction::Deleted,
            other => {
                return Ok(Event::skipped(
                    Some(other),
                    &format!("event type `{other}` is not a message"),
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "field `type` must be a string, got {}",
                kind(other)
            ));
        }
    };

    let external_id = req_id(obj, "id", "id")?;
    let in_reply_to = opt_id(obj, "in_reply_to", "in_reply_to")?;
    let conversation_key = opt_id(obj, "conversation", "conversation")?
        .or_else(|| in_reply_to.clone())
        .unwrap_or_else(|| external_id.clone());

    let author = match field(obj, "author") {
        None => return Err("required field `author` is missing".into()),
        Some(Value::Object(a)) => Author {
            id: req_id(a, "id", "author.id")?,
            handle: opt_string(a, "handle", "author.handle")?,
            display_name: opt_string(a, "name", "author.name")?,
        },
        Some(other) => {
            return Err(format!(
                "field `author` must be an object, got {}",
                kind(other)
            ));
        }
    };

    let text = match field(obj, "text") {
        Some(Value::String(s)) if s.len() > MAX_TEXT_BYTES => {
            return Err(format!(
                "field `text` is {} bytes long, more than {MAX_TEXT_BYTES}",
                s.len()
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "field `text` must be a string, got {}",
                kind(other)
            ));
        }
        None if action == MessageAction::Deleted => String::new(),
        None => return Err("required field `text` is missing".into()),
    };

    let language = opt_string(obj, "language", "language")?;
    let private = match field(obj, "private") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "field `private` must be true or false, got {}",
                kind(other)
            ));
        }
    };
    let origin = match opt_string(obj, "origin", "origin")?.as_deref() {
        None if private => Origin::DirectMessage,
        None => Origin::Mention,
        Some("mention") => Origin::Mention,
        Some("direct-message") => Origin::DirectMessage,
        Some("comment") => Origin::Comment,
        Some("listening") => Origin::Listening,
        Some(_) => Origin::Other,
    };

    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: channel.to_string(),
        external_id,
        conversation_key,
        in_reply_to,
        author,
        text,
        language,
        visibility: if private {
            Visibility::Private
        } else {
            Visibility::Public
        },
        origin,
        received_at: created_at(field(obj, "created_at"))?,
        attachments: attachments(field(obj, "attachments"))?,
        action,
        extra: extra(field(obj, "extra"))?,
    }))
}

/// `created_at` in epoch milliseconds; absent is 0 (the host fills in its clock).
fn created_at(value: Option<&Value>) -> Result<i64, Problem> {
    match value {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            format!("field `created_at` must be integer epoch milliseconds, got {n}")
        }),
        Some(Value::String(s)) => s
            .trim()
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| format!("field `created_at` is not an RFC 3339 timestamp (`{s}`): {e}")),
        Some(other) => Err(format!(
            "field `created_at` must be an RFC 3339 string or epoch milliseconds, got {}",
            kind(other)
        )),
    }
}

fn attachments(value: Option<&Value>) -> Result<Vec<Attachment>, Problem> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "field `attachments` must be an array, got {}",
                kind(other)
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(a) = item else {
                return Err(format!(
                    "field `attachments[{i}]` must be an object, got {}",
                    kind(item)
                ));
            };
            let path = |f: &str| format!("attachments[{i}].{f}");
            let kind = match opt_string(a, "type", &path("type"))?.as_deref() {
                Some("image") => AttachmentKind::Image,
                Some("video") => AttachmentKind::Video,
                Some("audio") => AttachmentKind::Audio,
                Some("file") => AttachmentKind::File,
                Some("link") => AttachmentKind::Link,
                Some("sticker") => AttachmentKind::Sticker,
                Some("location") => AttachmentKind::Location,
                _ => AttachmentKind::Other,
            };
            Ok(Attachment {
                kind,
                url: opt_string(a, "url", &path("url"))?,
                mime_type: opt_string(a, "mime_type", &path("mime_type"))?,
                description: opt_string(a, "description", &path("description"))?,
            })
        })
        .collect()
}

/// `extra` as (key, value) pairs sorted by key.
fn extra(value: Option<&Value>) -> Result<Vec<(String, String)>, Problem> {
    let map = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "field `extra` must be an object of string values, got {}",
                kind(other)
            ));
        }
    };
    let mut pairs = map
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "field `extra.{k}` must be a string, got {}",
                kind(other)
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    pairs.sort();
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &str) -> Vec<Event> {
        parse_body(body.as_bytes(), "webhook").unwrap()
    }

    fn message(event: &Event) -> &Message {
        match event {
            Event::Message(m) => m,
            Event::Skipped(s) => panic!("expected a message, got skipped: {}", s.reason),
        }
    }

    fn skipped(event: &Event) -> (Option<String>, String) {
        match event {
            Event::Skipped(s) => (s.event_type.clone(), s.reason.clone()),
            Event::Message(m) => panic!("expected a skip, got message {}", m.external_id),
        }
    }

    const FULL: &str = r#"{
        "id": "m-1",
        "conversation": "thread-9",
        "in_reply_to": "m-0",
        "author": {"id": 42, "handle": "@alice", "name": "Alice A."},
        "text": "My bag never arrived 🧳",
        "language": "en",
        "origin": "comment",
        "created_at": "2024-06-19T15:22:45.123+01:00"
    }"#;

    #[test]
    fn single_object_with_every_field() {
        let got = events(FULL);
        assert_eq!(got.len(), 1);
        let m = message(&got[0]);
        assert_eq!(m.tenant, "");
        assert_eq!(m.channel, "webhook");
        assert_eq!(m.external_id, "m-1");
        assert_eq!(m.conversation_key, "thread-9");
        assert_eq!(m.in_reply_to.as_deref(), Some("m-0"));
        assert_eq!(m.author.id, "42");
        assert_eq!(m.author.handle.as_deref(), Some("@alice"));
        assert_eq!(m.author.display_name.as_deref(), Some("Alice A."));
        assert_eq!(m.text, "My bag never arrived 🧳");
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.origin, Origin::Comment);
        assert_eq!(m.action, MessageAction::Created);
        // 2024-06-19T14:22:45.123Z
        assert_eq!(m.received_at, 1_718_806_965_123);
        assert!(m.attachments.is_empty());
        assert!(m.extra.is_empty());
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let got = events(r#"{"id": 7, "author": {"id": "u1"}, "text": "hi"}"#);
        let m = message(&got[0]);
        assert_eq!(m.external_id, "7");
        assert_eq!(m.conversation_key, "7");
        assert_eq!(m.in_reply_to, None);
        assert_eq!(m.author.handle, None);
        assert_eq!(m.language, None);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.received_at, 0);
        assert_eq!(m.action, MessageAction::Created);

        let reply = events(
            r#"{"id": "b", "in_reply_to": "a", "author": {"id": "u1"}, "text": "x", "private": true}"#,
        );
        let m = message(&reply[0]);
        assert_eq!(m.conversation_key, "a");
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
    }

    #[test]
    fn array_and_events_wrapper_and_custom_channel() {
        let array = parse_body(
            br#"[{"id": "1", "author": {"id": "u"}, "text": "a"}, {"id": "2", "author": {"id": "u"}, "text": "b"}]"#,
            "forms",
        )
        .unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(message(&array[1]).external_id, "2");
        assert_eq!(message(&array[1]).channel, "forms");

        let wrapped = events(r#"{"events": [{"id": "3", "author": {"id": "u"}, "text": "c"}]}"#);
        assert_eq!(wrapped.len(), 1);
        assert_eq!(message(&wrapped[0]).text, "c");

        assert!(events("[]").is_empty());
        let too_many = format!("[{}]", vec!["1"; MAX_EVENTS + 1].join(","));
        assert!(matches!(
            parse_body(too_many.as_bytes(), "webhook"),
            Err(PluginError::InvalidInput(m)) if m.contains("10001 events")
        ));
        assert!(events(r#"{"events": []}"#).is_empty());
    }

    #[test]
    fn leading_bom_is_tolerated() {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(br#"{"id": "1", "author": {"id": "u"}, "text": "bom"}"#);
        let got = parse_body(&body, "webhook").unwrap();
        assert_eq!(message(&got[0]).text, "bom");
    }

    #[test]
    fn edit_and_delete() {
        let got = events(
            r#"[{"type": "edit", "id": "1", "author": {"id": "u"}, "text": "fixed typo"},
                {"type": "delete", "id": "1", "author": {"id": "u"}},
                {"type": "delete", "id": "2", "author": {"id": "u"}, "text": "gone"}]"#,
        );
        assert_eq!(message(&got[0]).action, MessageAction::Edited);
        assert_eq!(message(&got[0]).text, "fixed typo");
        assert_eq!(message(&got[1]).action, MessageAction::Deleted);
        assert_eq!(message(&got[1]).text, "");
        assert_eq!(message(&got[2]).text, "gone");
        // Only deletions may leave out the text.
        let (_, reason) =
            skipped(&events(r#"{"type": "edit", "id": "1", "author": {"id": "u"}}"#)[0]);
        assert_eq!(reason, "event at index 0: required field `text` is missing");
    }

    #[test]
    fn unknown_type_is_skipped_with_its_name() {
        let got = events(r#"{"type": "reaction", "id": "1", "emoji": "👍"}"#);
        let (event_type, reason) = skipped(&got[0]);
        assert_eq!(event_type.as_deref(), Some("reaction"));
        assert_eq!(reason, "event type `reaction` is not a message");
    }

    #[test]
    fn one_bad_event_is_skipped_and_the_rest_kept() {
        let got = events(
            r#"[{"id": "1", "author": {"id": "u"}, "text": "ok"},
                {"author": {"id": "u"}, "text": "no id"},
                {"id": "3", "text": "no author"},
                {"id": "4", "author": {"handle": "x"}, "text": "no author id"},
                {"id": "5", "author": {"id": "u"}, "text": 12},
                {"id": 5.5, "author": {"id": "u"}, "text": "float id"},
                {"id": "7", "author": {"id": "u"}, "text": "t", "private": "yes"},
                "not an object",
                {"id": "9", "author": {"id": "u"}, "text": "also ok"}]"#,
        );
        assert_eq!(got.len(), 9);
        assert_eq!(message(&got[0]).external_id, "1");
        assert_eq!(message(&got[8]).external_id, "9");
        let reasons: Vec<(Option<String>, String)> = got[1..8].iter().map(skipped).collect();
        assert_eq!(
            reasons.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
            vec![
                "event at index 1: required field `id` is missing or empty",
                "event at index 2: required field `author` is missing",
                "event at index 3: required field `author.id` is missing or empty",
                "event at index 4: field `text` must be a string, got a number",
                "event at index 5: field `id` must be a string or an integer, got a number",
                "event at index 6: field `private` must be true or false, got a string",
                "event at index 7: an event must be a JSON object, got a string",
            ]
        );
        assert!(reasons.iter().all(|(t, _)| t.is_none()));
    }

    #[test]
    fn blank_and_oversized_ids_and_text_are_skipped() {
        let long_id = "i".repeat(MAX_ID_BYTES + 1);
        let long_text = "t".repeat(MAX_TEXT_BYTES + 1);
        let body = serde_json::json!([
            {"id": "  ", "author": {"id": "u"}, "text": "blank id"},
            {"id": "2", "author": {"id": "u"}, "text": "x", "conversation": long_id},
            {"id": "3", "author": {"id": " "}, "text": "blank author"},
            {"id": "4", "author": {"id": "u"}, "text": long_text},
            {"id": "5", "author": {"id": "u"}, "text": "x", "conversation": " "},
        ]);
        let got = parse_body(body.to_string().as_bytes(), "webhook").unwrap();
        assert_eq!(
            skipped(&got[0]).1,
            "event at index 0: required field `id` is missing or empty"
        );
        assert_eq!(
            skipped(&got[1]).1,
            "event at index 1: field `conversation` is 1025 bytes long, more than 1024"
        );
        assert_eq!(
            skipped(&got[2]).1,
            "event at index 2: required field `author.id` is missing or empty"
        );
        assert_eq!(
            skipped(&got[3]).1,
            "event at index 3: field `text` is 1048577 bytes long, more than 1048576"
        );
        // A blank conversation falls back to the id.
        assert_eq!(message(&got[4]).conversation_key, "5");
    }

    #[test]
    fn non_json_body_is_invalid_input_with_position() {
        let err = parse_body(b"{\"id\": 1,\n  oops}", "webhook").unwrap_err();
        let PluginError::InvalidInput(message) = err else {
            panic!("expected invalid input")
        };
        assert!(
            message.starts_with("request body is not valid JSON: "),
            "{message}"
        );
        assert!(message.contains("line 2 column 3"), "{message}");

        let err = parse_body(b"", "webhook").unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(m) if m.contains("line 1 column 0")));
    }

    #[test]
    fn wrong_top_level_shape_is_invalid_input() {
        assert!(matches!(
            parse_body(b"\"hello\"", "webhook"),
            Err(PluginError::InvalidInput(m)) if m.contains("got a string")
        ));
        assert!(matches!(
            parse_body(br#"{"events": {"id": 1}}"#, "webhook"),
            Err(PluginError::InvalidInput(m)) if m.contains("`events` must be an array") && m.contains("got an object")
        ));
    }

    #[test]
    fn created_at_as_rfc3339_and_as_millis() {
        let got = events(
            r#"[{"id": "1", "author": {"id": "u"}, "text": "a", "created_at": "2023-11-14T22:13:20Z"},
                {"id": "2", "author": {"id": "u"}, "text": "b", "created_at": 1700000000123},
                {"id": "3", "author": {"id": "u"}, "text": "c", "created_at": "yesterday"},
                {"id": "4", "author": {"id": "u"}, "text": "d", "created_at": 1.5}]"#,
        );
        assert_eq!(message(&got[0]).received_at, 1_700_000_000_000);
        assert_eq!(message(&got[1]).received_at, 1_700_000_000_123);
        let (_, reason) = skipped(&got[2]);
        assert!(
            reason.starts_with(
                "event at index 2: field `created_at` is not an RFC 3339 timestamp (`yesterday`)"
            ),
            "{reason}"
        );
        let (_, reason) = skipped(&got[3]);
        assert_eq!(
            reason,
            "event at index 3: field `created_at` must be integer epoch milliseconds, got 1.5"
        );
    }

    #[test]
    fn attachments_are_mapped() {
        let got = events(
            r#"{"id": "1", "author": {"id": "u"}, "text": "", "attachments": [
                {"type": "image", "url": "https://cdn.example/a.jpg", "mime_type": "image/jpeg", "description": "boarding pass"},
                {"type": "location"},
                {"type": "hologram", "url": "https://x.example/h"},
                {"url": "https://x.example/f.pdf"}
            ]}"#,
        );
        let a = &message(&got[0]).attachments;
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].kind, AttachmentKind::Image);
        assert_eq!(a[0].url.as_deref(), Some("https://cdn.example/a.jpg"));
        assert_eq!(a[0].mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(a[0].description.as_deref(), Some("boarding pass"));
        assert_eq!(a[1].kind, AttachmentKind::Location);
        assert_eq!(a[1].url, None);
        assert_eq!(a[2].kind, AttachmentKind::Other);
        assert_eq!(a[3].kind, AttachmentKind::Other);

        let bad = events(
            r#"{"id": "1", "author": {"id": "u"}, "text": "", "attachments": [{"url": 3}]}"#,
        );
        assert_eq!(
            skipped(&bad[0]).1,
            "event at index 0: field `attachments[0].url` must be a string, got a number"
        );
    }

    #[test]
    fn extra_is_sorted_by_key_and_must_hold_strings() {
        let got = events(
            r#"{"id": "1", "author": {"id": "u"}, "text": "x", "extra": {"page-id": "p1", "form": "contact", "chat-type": "group"}}"#,
        );
        assert_eq!(
            message(&got[0]).extra,
            vec![
                ("chat-type".to_string(), "group".to_string()),
                ("form".to_string(), "contact".to_string()),
                ("page-id".to_string(), "p1".to_string()),
            ]
        );
        let bad = events(r#"{"id": "1", "author": {"id": "u"}, "text": "x", "extra": {"n": 1}}"#);
        assert_eq!(
            skipped(&bad[0]).1,
            "event at index 0: field `extra.n` must be a string, got a number"
        );
    }

    #[test]
    fn origin_values() {
        let got = events(
            r#"[{"id": "1", "author": {"id": "u"}, "text": "", "origin": "listening"},
                {"id": "2", "author": {"id": "u"}, "text": "", "origin": "direct-message"},
                {"id": "3", "author": {"id": "u"}, "text": "", "origin": "mention", "private": true},
                {"id": "4", "author": {"id": "u"}, "text": "", "origin": "carrier-pigeon"}]"#,
        );
        assert_eq!(message(&got[0]).origin, Origin::Listening);
        assert_eq!(message(&got[1]).origin, Origin::DirectMessage);
        assert_eq!(message(&got[2]).origin, Origin::Mention);
        assert_eq!(message(&got[3]).origin, Origin::Other);
    }
}
