//! Reading a webhook body: the JSON itself (BOM tolerated, errors with their position), the
//! `{"object": …, "entry": […]}` envelope, and small accessors for Meta's loosely typed values
//! (ids arrive as strings or numbers; times as epoch seconds or milliseconds).

use serde_json::Value;
use switchboard_sdk::{Event, Message, PluginError};

/// Longest external id, conversation key or author id the host accepts, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest message text the host accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most events the host accepts from one delivery.
pub const MAX_EVENTS: usize = 10_000;

/// Parse the raw body as JSON. A leading UTF-8 byte-order mark is ignored. A body that is not
/// JSON is `invalid-input` naming the line and column where parsing failed.
pub fn parse_json(body: &[u8]) -> Result<Value, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidInput(format!(
            "the body is not valid JSON: {} at line {}, column {}",
            describe(&e),
            e.line(),
            e.column()
        ))
    })
}

fn describe(e: &serde_json::Error) -> String {
    // serde_json's Display already appends " at line L column C"; keep only the reason.
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What a parsed body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A webhook delivery: the subscribed `object` (`page`, `instagram`, …) and its entries.
    Delivery { object: String, entries: Vec<Value> },
    /// Valid JSON that is not a delivery (a documentation fragment, a Graph API object): the
    /// connector reports it as one skipped event with this reason.
    NotADelivery(String),
}

/// Classify a parsed body. JSON that is neither an envelope nor a recognisable fragment is
/// `invalid-input`.
pub fn envelope(value: &Value) -> Result<Body, PluginError> {
    let Some(obj) = value.as_object() else {
        return Err(PluginError::InvalidInput(
            "the body is JSON but not an object; Meta delivers {\"object\": …, \"entry\": […]}"
                .into(),
        ));
    };
    if let Some(object) = obj.get("object") {
        let Some(object) = object.as_str() else {
            return Err(PluginError::InvalidInput("`object` is not a string".into()));
        };
        let Some(entries) = obj.get("entry").and_then(Value::as_array) else {
            return Err(PluginError::InvalidInput(format!(
                "delivery for object `{object}` has no `entry` array"
            )));
        };
        return Ok(Body::Delivery {
            object: object.to_string(),
            entries: entries.clone(),
        });
    }
    let reason = if obj.contains_key("messaging") || obj.contains_key("changes") {
        "a single `entry` object without the {\"object\", \"entry\"} envelope (a documentation \
         fragment, not a webhook delivery)"
            .to_string()
    } else if obj.contains_key("sender") && obj.contains_key("recipient") {
        "a single messaging event without the {\"object\", \"entry\"} envelope (a documentation \
         fragment, not a webhook delivery)"
            .to_string()
    } else if obj.contains_key("id") {
        let kind = if obj.contains_key("participants") {
            "conversation"
        } else if obj.contains_key("message") || obj.contains_key("from") {
            "message"
        } else {
            "node"
        };
        format!(
            "a Graph API {kind} object (an API response, not a webhook delivery); this connector \
             does not poll, so it has no use for it"
        )
    } else {
        return Err(PluginError::InvalidInput(
            "not a Meta webhook delivery: `object` and `entry` are missing".into(),
        ));
    };
    Ok(Body::NotADelivery(reason))
}

/// A non-blank string id, or an integer id as decimal text.
pub fn id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A non-empty string field.
pub fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `true` only for a JSON `true` (or the string `"true"`, which some Graph objects use).
pub fn flag(value: &Value, key: &str) -> bool {
    matches!(value.get(key), Some(Value::Bool(true)))
        || value.get(key).and_then(Value::as_str) == Some("true")
}

fn integer(value: Option<&Value>) -> Option<i64> {
    let n = match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    (n > 0).then_some(n)
}

/// Epoch milliseconds from a time Meta documents in milliseconds (messaging `timestamp`):
/// a positive integer or digit string.
pub fn millis(value: Option<&Value>) -> Option<i64> {
    integer(value)
}

/// Epoch milliseconds from a time Meta documents in seconds (feed `created_time`).
pub fn seconds(value: Option<&Value>) -> Option<i64> {
    integer(value).map(|s| s.saturating_mul(1000))
}

/// Epoch milliseconds from an entry `time`, which Meta sends in seconds for `changes` and in
/// milliseconds for `messaging`: values below 10^11 are taken as seconds (10^11 s is the year
/// 5138; 10^11 ms is 1973).
pub fn epoch_ms(value: Option<&Value>) -> Option<i64> {
    integer(value).map(|n| if n < 100_000_000_000 { n * 1000 } else { n })
}

/// Check a message against the host's output limits; a message that would fail them becomes a
/// skipped event (so one bad event never fails the whole delivery).
pub fn guard(message: Message, event_type: &str) -> Event {
    let fields = [
        ("external id", &message.external_id),
        ("conversation key", &message.conversation_key),
        ("author id", &message.author.id),
    ];
    for (what, value) in fields {
        if value.trim().is_empty() {
            return Event::skipped(Some(event_type), &format!("the {what} is empty"));
        }
        if value.len() > MAX_ID_BYTES {
            return Event::skipped(
                Some(event_type),
                &format!(
                    "the {what} is {} bytes, more than {MAX_ID_BYTES}",
                    value.len()
                ),
            );
        }
    }
    if message.text.len() > MAX_TEXT_BYTES {
        return Event::skipped(
            Some(event_type),
            &format!(
                "the text is {} bytes, more than {MAX_TEXT_BYTES}",
                message.text.len()
            ),
        );
    }
    Event::Message(message)
}

/// Refuse a delivery with more events than the host accepts.
pub fn check_count(events: &[Event]) -> Result<(), PluginError> {
    if events.len() > MAX_EVENTS {
        return Err(PluginError::InvalidInput(format!(
            "the delivery holds {} events, more than {MAX_EVENTS}",
            events.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bom_is_ignored_and_bad_json_names_its_position() {
        assert_eq!(
            parse_json(b"\xEF\xBB\xBF{\"a\": 1}").unwrap(),
            json!({"a": 1})
        );
        let Err(PluginError::InvalidInput(m)) = parse_json(b"{\n  \"a\": 1,\n  // note\n}") else {
            panic!("expected invalid input")
        };
        assert!(m.contains("line 3, column 3"), "{m}");
        assert!(m.starts_with("the body is not valid JSON: "), "{m}");
        assert!(!m.contains(" at line 3 column"), "{m}");
    }

    #[test]
    fn envelopes_fragments_and_api_objects() {
        let Body::Delivery { object, entries } =
            envelope(&json!({"object": "page", "entry": [{"id": "1"}]})).unwrap()
        else {
            panic!()
        };
        assert_eq!((object.as_str(), entries.len()), ("page", 1));
        assert!(matches!(
            envelope(&json!({"id": "1", "messaging": []})).unwrap(),
            Body::NotADelivery(r) if r.contains("single `entry`")
        ));
        assert!(matches!(
            envelope(&json!({"sender": {}, "recipient": {}})).unwrap(),
            Body::NotADelivery(r) if r.contains("single messaging event")
        ));
        assert!(matches!(
            envelope(&json!({"id": "t", "participants": {}})).unwrap(),
            Body::NotADelivery(r) if r.contains("Graph API conversation")
        ));
        assert!(matches!(
            envelope(&json!({"object": "page"})),
            Err(PluginError::InvalidInput(m)) if m.contains("no `entry`")
        ));
        assert!(matches!(
            envelope(&json!([1])),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            envelope(&json!({"x": 1})),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn ids_flags_and_times() {
        assert_eq!(id(Some(&json!(12345654332u64))), Some("12345654332".into()));
        assert_eq!(id(Some(&json!(" 42 "))), Some("42".into()));
        assert_eq!(id(Some(&json!(""))), None);
        assert_eq!(id(Some(&json!(1.5))), None);
        assert_eq!(id(None), None);
        assert!(flag(&json!({"is_echo": true}), "is_echo"));
        assert!(flag(&json!({"is_unsupported": "true"}), "is_unsupported"));
        assert!(!flag(&json!({"is_echo": false}), "is_echo"));
        assert_eq!(epoch_ms(Some(&json!(1448555737))), Some(1_448_555_737_000));
        assert_eq!(
            epoch_ms(Some(&json!(1458692752478i64))),
            Some(1_458_692_752_478)
        );
        assert_eq!(
            epoch_ms(Some(&json!("1614340862"))),
            Some(1_614_340_862_000)
        );
        assert_eq!(epoch_ms(Some(&json!("<TIMESTAMP>"))), None);
        assert_eq!(epoch_ms(Some(&json!(0))), None);
        assert_eq!(millis(Some(&json!(2222222))), Some(2_222_222));
        assert_eq!(seconds(Some(&json!(1448555737))), Some(1_448_555_737_000));
        assert_eq!(seconds(Some(&json!(null))), None);
    }
}
