//! Decoding one verified Account Activity delivery (or another signed X body) into events.

use std::collections::HashMap;

use serde_json::Value;
use switchboard_sdk::Event;

use crate::tweet::{self, Context, Threads};

/// Largest number of events one delivery may produce (the host's limit).
pub const MAX_EVENTS: usize = 10_000;

/// Account Activity event arrays that are not messages, with the reason they are skipped.
const NOT_MESSAGES: &[(&str, &str)] = &[
    ("favorite_events", "a like is not a message"),
    ("follow_events", "a follow or unfollow is not a message"),
    ("unfollow_events", "a follow or unfollow is not a message"),
    ("block_events", "a block or unblock is not a message"),
    ("unblock_events", "a block or unblock is not a message"),
    ("mute_events", "a mute or unmute is not a message"),
    ("unmute_events", "a mute or unmute is not a message"),
    (
        "user_event",
        "an app-permission revocation is not a message",
    ),
    (
        "direct_message_indicate_typing_events",
        "a typing indicator is not a message",
    ),
    (
        "direct_message_mark_read_events",
        "a read receipt is not a message",
    ),
];

/// Top-level keys that carry context rather than events.
const CONTEXT_KEYS: &[&str] = &["for_user_id", "users", "apps", "user_has_blocked", "source"];

/// The users map of a delivery. X's own documentation example misplaces the user objects inside
/// `apps`; they are picked up there too when they look like users.
fn users_map(payload: &Value) -> HashMap<String, Value> {
    let mut users = HashMap::new();
    for container in ["apps", "users"] {
        if let Some(map) = payload.get(container).and_then(Value::as_object) {
            for (id, user) in map {
                if user.get("screen_name").is_some() || user.get("username").is_some() {
                    users.insert(id.clone(), user.clone());
                }
            }
        }
    }
    users
}

fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![value],
        _ => Vec::new(),
    }
}

/// Decode a JSON body. `configured_user` is config `user_id`; a delivery's own `for_user_id`
/// wins.
pub fn decode(
    payload: &Value,
    configured_user: Option<&str>,
    now_ms: i64,
    threads: &mut dyn Threads,
) -> Vec<Event> {
    let Some(object) = payload.as_object() else {
        return match payload {
            Value::Array(list) => list
                .iter()
                .take(MAX_EVENTS)
                .map(|status| bare(status, configured_user, now_ms, threads))
                .flat_map(|e| e.into_iter())
                .collect(),
            _ => vec![Event::skipped(None, "the body is JSON but not an object")],
        };
    };
    let own = tweet::id_of(payload, "for_user_id");
    let ctx = Context {
        own_id: own.as_deref().or(configured_user),
        now_ms,
    };
    let users = users_map(payload);
    let mut events = Vec::new();
    let mut recognised = false;
    for (key, value) in object {
        let list = items(value);
        match key.as_str() {
            "tweet_create_events" => {
                recognised = true;
                events.extend(list.into_iter().map(|s| tweet::v1_status(s, &ctx, threads)));
            }
            "direct_message_events" => {
                recognised = true;
                events.extend(list.into_iter().map(|d| tweet::v1_dm(d, &users, &ctx)));
            }
            "tweet_delete_events" => {
                recognised = true;
                events.extend(list.into_iter().map(|d| tweet::v1_delete(d, &ctx, threads)));
            }
            k if CONTEXT_KEYS.contains(&k) => {}
            k => {
                if let Some((_, reason)) = NOT_MESSAGES.iter().find(|(name, _)| *name == k) {
                    recognised = true;
                    let n = list.len().max(1);
                    events.extend((0..n).map(|_| Event::skipped(Some(k), reason)));
                } else if k.ends_with("_events") || k == "user_event" {
                    recognised = true;
                    events.push(Event::skipped(
                        Some(k),
                        &format!("Account Activity `{k}` is not handled by this connector"),
                    ));
                }
            }
        }
        if events.len() > MAX_EVENTS {
            events.truncate(MAX_EVENTS);
            break;
        }
    }
    if recognised {
        return events;
    }
    bare(payload, configured_user, now_ms, threads)
}

/// A body that is not an Account Activity delivery: a captured v1.1 status is normalised;
/// API responses are skipped with the reason.
fn bare(
    value: &Value,
    configured_user: Option<&str>,
    now_ms: i64,
    threads: &mut dyn Threads,
) -> Vec<Event> {
    let ctx = Context {
        own_id: configured_user,
        now_ms,
    };
    if value.get("user").is_some() && (value.get("id_str").is_some() || value.get("id").is_some()) {
        return vec![tweet::v1_status(value, &ctx, threads)];
    }
    if let Some(event) = value
        .get("event")
        .filter(|e| e.get("message_create").is_some())
    {
        return vec![tweet::v1_dm(event, &HashMap::new(), &ctx)];
    }
    if value.get("data").is_some() || value.get("meta").is_some() || value.get("errors").is_some() {
        let count = value
            .get("meta")
            .and_then(|m| m.get("result_count"))
            .and_then(Value::as_u64);
        let detail = match count {
            Some(n) => format!(" ({n} results)"),
            None => String::new(),
        };
        return vec![Event::skipped(
            Some("api-v2-response"),
            &format!(
                "an X API v2 response{detail}, not an Account Activity delivery: `poll` reads the \
                 mentions, search and DM endpoints itself"
            ),
        )];
    }
    let keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).take(8).collect())
        .unwrap_or_default();
    vec![Event::skipped(
        None,
        &format!(
            "not an Account Activity delivery (no `tweet_create_events`, `direct_message_events` \
             or other `*_events` key; keys: {})",
            keys.join(", ")
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_sdk::{MessageAction, Origin};

    fn decode_all(v: &Value) -> Vec<Event> {
        decode(v, None, 0, &mut HashMap::new())
    }

    #[test]
    fn batch_with_many_kinds() {
        let payload = json!({
            "for_user_id": "2244994945",
            "tweet_create_events": [
                {"id_str": "1", "text": "@acme help", "user": {"id_str": "9", "screen_name": "casey"},
                 "entities": {"user_mentions": [{"id_str": "2244994945"}]}, "timestamp_ms": "1000"},
                {"id_str": "2", "text": "our own", "user": {"id_str": "2244994945"}}
            ],
            "favorite_events": [{"id": "a"}, {"id": "b"}],
            "tweet_delete_events": [{"status": {"id": "1", "user_id": "9"}, "timestamp_ms": "2000"}],
            "something_new_events": [{}]
        });
        let events = decode_all(&payload);
        assert_eq!(events.len(), 6);
        let messages: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].origin, Origin::Mention);
        assert_eq!(messages[0].received_at, 1000);
        assert_eq!(messages[1].action, MessageAction::Deleted);
        assert_eq!(messages[1].received_at, 2000);
        assert_eq!(
            messages[1].conversation_key, "1",
            "remembered from the create in the same batch"
        );
        let reasons: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped(s) => Some(s.reason.clone()),
                _ => None,
            })
            .collect();
        assert!(reasons.iter().any(|r| r.contains("own post")));
        assert_eq!(reasons.iter().filter(|r| r.contains("like")).count(), 2);
        assert!(reasons.iter().any(|r| r.contains("something_new_events")));
    }

    #[test]
    fn responses_and_unknown_bodies_are_skipped() {
        let e = decode_all(&json!({"meta": {"result_count": 0}}));
        assert!(matches!(&e[..], [Event::Skipped(s)] if s.reason.contains("0 results")));
        let e = decode_all(&json!({"hello": 1}));
        assert!(matches!(&e[..], [Event::Skipped(s)] if s.reason.contains("keys: hello")));
        let e = decode_all(&json!(3));
        assert!(matches!(&e[..], [Event::Skipped(_)]));
    }
}
