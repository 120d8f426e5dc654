//! Decoding a verified Events API request body into a handshake answer or events.
//!
//! The body as a whole must be a JSON object (else `invalid-input`, with the parser's line and
//! column); everything inside it that is not a customer message becomes a skipped event with
//! a reason, so Slack gets its 200 and does not redeliver what the product will never use.

use serde_json::{Map, Value, json};
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, HttpResponse, Message, MessageAction, Origin,
    PluginError, Visibility, WebhookOutcome,
};

use crate::markup;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The channel name stamped on every message.
pub const CHANNEL: &str = "slack";
/// Longest id the host accepts, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest text the host accepts, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Slackbot's user id: its messages are notices from Slack, not from customers.
pub const SLACKBOT: &str = "USLACKBOT";

/// Facts about this delivery taken from the request headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// `X-Slack-Retry-Num`: how many times Slack has redelivered this event (absent on the
    /// first delivery).
    pub retry_num: Option<String>,
    /// `X-Slack-Retry-Reason` (`http_timeout`, `http_error`, …).
    pub retry_reason: Option<String>,
}

/// Why one event cannot be used.
type Problem = String;

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

/// A non-blank string field; anything else counts as absent.
fn text_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Decode a verified request body.
pub fn parse_body(
    body: &[u8],
    content_type: Option<&str>,
    delivery: &Delivery,
) -> Result<WebhookOutcome, PluginError> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let form = content_type.is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form && !body.trim_ascii_start().starts_with(b"{") {
        return Err(PluginError::InvalidInput(
            "form-encoded requests (slash commands, interactivity payloads) are not handled by \
             this connector: point only the Events API request URL at it"
                .into(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(envelope) = value else {
        return Err(PluginError::InvalidInput(format!(
            "request body must be a JSON object (an Events API envelope), got {}",
            kind(&value)
        )));
    };
    match text_field(&envelope, "type") {
        Some("url_verification") => {
            let challenge = text_field(&envelope, "challenge").ok_or_else(|| {
                PluginError::InvalidInput(
                    "url_verification request without a `challenge` string".into(),
                )
            })?;
            Ok(WebhookOutcome::Challenge(HttpResponse::json(
                200,
                &json!({ "challenge": challenge }),
            )))
        }
        Some("event_callback") => Ok(WebhookOutcome::Events(vec![event_callback(
            &envelope, delivery,
        )])),
        Some("app_rate_limited") => Ok(WebhookOutcome::Events(vec![Event::skipped(
            Some("app_rate_limited"),
            "Slack reports it is rate-limiting event deliveries to this app (more than 30,000 \
             events per workspace per hour); the events it dropped are not in this request",
        )])),
        Some(other) => Ok(WebhookOutcome::Events(vec![Event::skipped(
            Some(other),
            &format!(
                "envelope type `{other}` is not an Events API delivery this connector handles"
            ),
        )])),
        None if envelope.contains_key("ok") => Ok(WebhookOutcome::Events(vec![Event::skipped(
            None,
            "this is a Slack Web API response (it has `ok`), not an Events API delivery",
        )])),
        None => Ok(WebhookOutcome::Events(vec![Event::skipped(
            None,
            "envelope `type` is missing or empty, so this is not an Events API delivery \
             (expected `event_callback` or `url_verification`)",
        )])),
    }
}

/// Envelope-level facts every message of an `event_callback` needs.
struct Context<'a> {
    team: Option<&'a str>,
    event_id: Option<&'a str>,
    /// User ids of the app's bot users in this workspace (`authorizations[].is_bot`).
    bot_users: Vec<&'a str>,
    delivery: &'a Delivery,
}

fn event_callback(envelope: &Map<String, Value>, delivery: &Delivery) -> Event {
    let Some(Value::Object(event)) = envelope.get("event") else {
        return Event::skipped(
            Some("event_callback"),
            "event_callback without an `event` object",
        );
    };
    let bot_users = envelope
        .get("authorizations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .filter(|a| a.get("is_bot") == Some(&Value::Bool(true)))
                .filter_map(|a| text_field(a, "user_id"))
                .collect()
        })
        .unwrap_or_default();
    let ctx = Context {
        team: text_field(envelope, "team_id").or_else(|| text_field(event, "team")),
        event_id: text_field(envelope, "event_id"),
        bot_users,
        delivery,
    };
    match text_field(event, "type") {
        Some("message") => message_event(event, &ctx),
        Some("app_mention") => {
            if is_bot(event, &ctx) {
                return bot_skip("app_mention");
            }
            normalise(event, event, &ctx, MessageAction::Created, true)
                .unwrap_or_else(|p| Event::skipped(Some("app_mention"), &p))
        }
        Some(other) => Event::skipped(
            Some(other),
            &format!("`{other}` events are not customer messages"),
        ),
        None => Event::skipped(
            Some("event_callback"),
            "event_callback whose `event` has no `type`",
        ),
    }
}

/// Whether `msg` was written by a bot, Slackbot or this app's own bot user.
fn is_bot(msg: &Map<String, Value>, ctx: &Context) -> bool {
    text_field(msg, "bot_id").is_some()
        || text_field(msg, "subtype") == Some("bot_message")
        || text_field(msg, "user").is_some_and(|u| u == SLACKBOT || ctx.bot_users.contains(&u))
}

fn bot_skip(event_type: &str) -> Event {
    Event::skipped(
        Some(event_type),
        "messages from bots are not customer messages",
    )
}

fn message_event(event: &Map<String, Value>, ctx: &Context) -> Event {
    let subtype = text_field(event, "subtype");
    let result = match subtype {
        // Plain messages, and the subtypes that are still a person writing: a file shared with
        // a comment, a thread reply also sent to the channel, a `/me` message.
        None | Some("file_share" | "thread_broadcast" | "me_message") => {
            if is_bot(event, ctx) {
                return bot_skip("message");
            }
            normalise(event, event, ctx, MessageAction::Created, false)
        }
        Some("bot_message") => return bot_skip("bot_message"),
        Some("message_changed") => {
            let Some(Value::Object(inner)) = event.get("message") else {
                return Event::skipped(
                    Some("message_changed"),
                    "message_changed without the edited `message` object",
                );
            };
            if is_bot(inner, ctx) {
                return bot_skip("message_changed");
            }
            if let Some(Value::Object(previous)) = event.get("previous_message") {
                let same = |k: &str| previous.get(k) == inner.get(k);
                if same("text") && same("files") {
                    return Event::skipped(
                        Some("message_changed"),
                        "message_changed without a change to the text or files (Slack sends \
                         these when it adds a link preview or a reply count)",
                    );
                }
            }
            normalise(event, inner, ctx, MessageAction::Edited, false)
        }
        Some("message_deleted") => deleted(event, ctx),
        Some(other) => {
            return Event::skipped(
                Some(other),
                &format!("message subtype `{other}` is not a customer message"),
            );
        }
    };
    result.unwrap_or_else(|p| Event::skipped(Some(subtype.unwrap_or("message")), &p))
}

fn deleted(event: &Map<String, Value>, ctx: &Context) -> Result<Event, Problem> {
    let previous = match event.get("previous_message") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err("message_deleted without `previous_message`: the author is unknown".into());
        }
    };
    if is_bot(previous, ctx) {
        return Ok(bot_skip("message_deleted"));
    }
    let mut stub = previous.clone();
    // The deleted message's own ts identifies it; the event's ts is when it was deleted.
    if let Some(ts) = event.get("deleted_ts").filter(|v| v.is_string()) {
        stub.insert("ts".into(), ts.clone());
    }
    stub.insert("text".into(), Value::String(String::new()));
    stub.remove("files");
    stub.remove("attachments");
    normalise(event, &stub, ctx, MessageAction::Deleted, false)
}

/// `seconds.micros` (Slack's `ts`) as epoch milliseconds.
pub fn ts_to_ms(ts: &str) -> Option<i64> {
    let (secs, frac) = ts.trim().split_once('.').unwrap_or((ts.trim(), ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    secs.checked_mul(1000)?.checked_add(millis)
}

fn checked_id(what: &str, id: String) -> Result<String, Problem> {
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "{what} is {} bytes long, more than {MAX_ID_BYTES}",
            id.len()
        ));
    }
    Ok(id)
}

/// Build a message from `msg` (the event itself, or the inner message of an edit or deletion),
/// with channel facts from `event`.
fn normalise(
    event: &Map<String, Value>,
    msg: &Map<String, Value>,
    ctx: &Context,
    action: MessageAction,
    app_mention: bool,
) -> Result<Event, Problem> {
    let channel = text_field(event, "channel")
        .or_else(|| text_field(msg, "channel"))
        .ok_or("the event has no `channel`")?;
    let ts = text_field(msg, "ts").ok_or("the message has no `ts`")?;
    let user = text_field(msg, "user").ok_or("the message has no `user`")?;
    let thread_ts = text_field(msg, "thread_ts");
    let received_at = match action {
        MessageAction::Edited => msg
            .get("edited")
            .and_then(Value::as_object)
            .and_then(|e| text_field(e, "ts"))
            .and_then(ts_to_ms),
        MessageAction::Deleted => text_field(event, "event_ts")
            .or_else(|| text_field(event, "ts"))
            .and_then(ts_to_ms),
        MessageAction::Created => None,
    }
    .or_else(|| ts_to_ms(ts))
    .ok_or_else(|| format!("`ts` `{ts}` is not Slack's seconds.microseconds form"))?;

    let external_id = checked_id("the message id", format!("{channel}:{ts}"))?;
    let conversation_key = checked_id(
        "the conversation key",
        format!("{channel}:{}", thread_ts.unwrap_or(ts)),
    )?;
    let in_reply_to = thread_ts
        .filter(|t| *t != ts)
        .map(|t| format!("{channel}:{t}"));

    let raw_text = msg.get("text").and_then(Value::as_str).unwrap_or("");
    let text = markup::to_plain(raw_text);
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "the text is {} bytes long, more than {MAX_TEXT_BYTES}",
            text.len()
        ));
    }

    let channel_type = text_field(event, "channel_type");
    let direct = match channel_type {
        Some(t) => t == "im" || t == "mpim",
        // app_mention events carry no channel_type; direct-message channel ids start with D.
        None => channel.starts_with('D'),
    };
    let mentions_app = ctx
        .bot_users
        .iter()
        .any(|b| raw_text.contains(&format!("<@{b}>")) || raw_text.contains(&format!("<@{b}|")));
    let (visibility, origin) = if direct {
        (Visibility::Private, Origin::DirectMessage)
    } else if app_mention || mentions_app {
        (Visibility::Public, Origin::Mention)
    } else {
        (Visibility::Public, Origin::Other)
    };

    let profile = msg.get("user_profile").and_then(Value::as_object);
    let author = Author {
        id: checked_id("the user id", user.to_string())?,
        handle: profile
            .and_then(|p| text_field(p, "display_name").or_else(|| text_field(p, "name")))
            .map(|h| format!("@{h}")),
        display_name: profile
            .and_then(|p| text_field(p, "real_name"))
            .map(String::from),
    };

    let mut extra = vec![("channel".to_string(), channel.to_string())];
    if let Some(t) = channel_type {
        extra.push(("channel-type".into(), t.into()));
    }
    if let Some(team) = ctx.team {
        extra.push(("team".into(), team.into()));
    }
    if let Some(t) = thread_ts {
        extra.push(("thread-ts".into(), t.into()));
    }
    if let Some(id) = ctx.event_id {
        extra.push(("event-id".into(), id.into()));
    }
    if let Some(n) = &ctx.delivery.retry_num {
        extra.push(("retry-num".into(), n.clone()));
    }
    if let Some(r) = &ctx.delivery.retry_reason {
        extra.push(("retry-reason".into(), r.clone()));
    }

    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id,
        conversation_key,
        in_reply_to,
        author,
        text,
        language: None,
        visibility,
        origin,
        received_at,
        attachments: attachments(msg),
        action,
        extra,
    }))
}

/// Shared files, and legacy attachments that point somewhere (shared messages, unfurls).
fn attachments(msg: &Map<String, Value>) -> Vec<Attachment> {
    let objects = |name: &str| {
        msg.get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut out: Vec<Attachment> = objects("files")
        .into_iter()
        .map(|f| {
            let mime = text_field(f, "mimetype");
            let kind = match mime.and_then(|m| m.split('/').next()) {
                Some("image") => AttachmentKind::Image,
                Some("video") => AttachmentKind::Video,
                Some("audio") => AttachmentKind::Audio,
                _ => AttachmentKind::File,
            };
            Attachment {
                kind,
                url: text_field(f, "url_private").map(String::from),
                mime_type: mime.map(String::from),
                description: text_field(f, "title")
                    .or_else(|| text_field(f, "name"))
                    .map(String::from),
            }
        })
        .collect();
    out.extend(objects("attachments").into_iter().filter_map(|a| {
        let url = ["from_url", "title_link", "original_url"]
            .iter()
            .find_map(|k| text_field(a, k))?;
        Some(Attachment {
            kind: AttachmentKind::Link,
            url: Some(url.to_string()),
            mime_type: None,
            description: ["fallback", "title", "text"]
                .iter()
                .find_map(|k| text_field(a, k))
                .map(markup::to_plain),
        })
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(event: Value) -> Vec<u8> {
        json!({
            "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": "Ev1", "event_time": 1_700_000_000,
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": true}],
            "event": event,
        })
        .to_string()
        .into_bytes()
    }

    fn events(body: &[u8], delivery: &Delivery) -> Vec<Event> {
        match parse_body(body, Some("application/json"), delivery).unwrap() {
            WebhookOutcome::Events(e) => e,
            WebhookOutcome::Challenge(_) => panic!("unexpected challenge"),
        }
    }

    fn one(event: Value) -> Event {
        let mut all = events(&envelope(event), &Delivery::default());
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn message(event: Value) -> Message {
        match one(event) {
            Event::Message(m) => m,
            Event::Skipped(s) => panic!("skipped: {s:?}"),
        }
    }

    fn skipped(event: Value) -> (Option<String>, String) {
        match one(event) {
            Event::Skipped(s) => (s.event_type, s.reason),
            Event::Message(m) => panic!("unexpected message {m:?}"),
        }
    }

    fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn ts_parsing() {
        assert_eq!(ts_to_ms("1515449522.000016"), Some(1_515_449_522_000));
        assert_eq!(ts_to_ms("1670625739.704049"), Some(1_670_625_739_704));
        assert_eq!(ts_to_ms("1670625739.7"), Some(1_670_625_739_700));
        assert_eq!(ts_to_ms("1670625739"), Some(1_670_625_739_000));
        assert_eq!(ts_to_ms(""), None);
        assert_eq!(ts_to_ms("abc.1"), None);
        assert_eq!(ts_to_ms("-1.5"), None);
        assert_eq!(ts_to_ms("99999999999999999999.1"), None);
    }

    #[test]
    fn url_verification_is_answered_with_the_challenge() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV","type":"url_verification"}"#;
        let WebhookOutcome::Challenge(r) = parse_body(body, None, &Delivery::default()).unwrap()
        else {
            panic!("expected a challenge")
        };
        assert_eq!(r.status, 200);
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"challenge": "3eZbrw1aBm2rZgRNFdxV"})
        );
        assert!(matches!(
            parse_body(br#"{"type":"url_verification"}"#, None, &Delivery::default()),
            Err(PluginError::InvalidInput(m)) if m.contains("challenge")
        ));
    }

    #[test]
    fn plain_channel_message_in_a_thread() {
        let body = envelope(json!({
            "type": "message", "channel": "C9", "channel_type": "channel", "user": "U7",
            "text": "my order &lt;1234&gt; never came, cc <@U8|ana> <https://x.test/o/1|order>",
            "ts": "1700000050.000200", "thread_ts": "1700000000.000100", "team": "T1",
            "files": [{"mimetype": "image/png", "name": "a.png", "title": "receipt",
                       "url_private": "https://files.slack.com/a.png"}],
        }));
        let delivery = Delivery {
            retry_num: Some("2".into()),
            retry_reason: Some("http_timeout".into()),
        };
        let all = events(&body, &delivery);
        let [Event::Message(m)] = all.as_slice() else {
            panic!("expected a message")
        };
        assert_eq!(m.channel, "slack");
        assert_eq!(m.tenant, "");
        assert_eq!(m.external_id, "C9:1700000050.000200");
        assert_eq!(m.conversation_key, "C9:1700000000.000100");
        assert_eq!(m.in_reply_to.as_deref(), Some("C9:1700000000.000100"));
        assert_eq!(m.author.id, "U7");
        assert_eq!(m.author.handle, None);
        assert_eq!(
            m.text,
            "my order <1234> never came, cc @ana order (https://x.test/o/1)"
        );
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.origin, Origin::Other);
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(m.received_at, 1_700_000_050_000);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(m.attachments[0].description.as_deref(), Some("receipt"));
        assert_eq!(extra(m, "channel"), Some("C9"));
        assert_eq!(extra(m, "team"), Some("T1"));
        assert_eq!(extra(m, "thread-ts"), Some("1700000000.000100"));
        assert_eq!(extra(m, "retry-num"), Some("2"));
        assert_eq!(extra(m, "retry-reason"), Some("http_timeout"));
        assert_eq!(extra(m, "event-id"), Some("Ev1"));
    }

    #[test]
    fn redelivery_keeps_the_id_and_a_mention_matches_its_message_event() {
        let event = json!({"type": "message", "channel": "C9", "channel_type": "channel",
            "user": "U7", "text": "<@UBOT> help", "ts": "1700000000.000100"});
        let first = message(event.clone());
        let mut again = serde_json::from_slice::<Value>(&envelope(event)).unwrap();
        again["event_id"] = json!("Ev2");
        let all = events(
            again.to_string().as_bytes(),
            &Delivery {
                retry_num: Some("1".into()),
                retry_reason: None,
            },
        );
        let [Event::Message(second)] = all.as_slice() else {
            panic!("expected a message")
        };
        assert_eq!(first.external_id, second.external_id);
        assert_eq!(
            first.origin,
            Origin::Mention,
            "the text mentions the app's bot user"
        );
        let mention = message(json!({"type": "app_mention", "channel": "C9", "user": "U7",
            "text": "<@UBOT> help", "ts": "1700000000.000100", "event_ts": "1700000000.000100"}));
        assert_eq!(mention.external_id, first.external_id);
        assert_eq!(mention.origin, Origin::Mention);
        assert_eq!(mention.text, "@UBOT help");
        assert_eq!(mention.in_reply_to, None);
        assert_eq!(mention.conversation_key, "C9:1700000000.000100");
    }

    #[test]
    fn direct_messages_are_private() {
        let m = message(
            json!({"type": "message", "channel": "D1", "channel_type": "im",
            "user": "U7", "text": "card number question", "ts": "1700000000.000100",
            "user_profile": {"name": "casey", "display_name": "Casey", "real_name": "Casey Jones"}}),
        );
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.author.handle.as_deref(), Some("@Casey"));
        assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
        assert_eq!(extra(&m, "channel-type"), Some("im"));
        let group = message(
            json!({"type": "message", "channel": "G1", "channel_type": "mpim",
            "user": "U7", "text": "hi", "ts": "1.0"}),
        );
        assert_eq!(group.visibility, Visibility::Private);
    }

    #[test]
    fn edits_use_the_inner_message_and_keep_the_id() {
        let m = message(
            json!({"type": "message", "subtype": "message_changed", "hidden": true,
            "channel": "C9", "channel_type": "channel", "ts": "1700000100.000000",
            "message": {"type": "message", "user": "U7", "text": "fixed &amp; better",
                        "ts": "1700000000.000100",
                        "edited": {"user": "U7", "ts": "1700000099.000000"}},
            "previous_message": {"type": "message", "user": "U7", "text": "fixd",
                                  "ts": "1700000000.000100"}}),
        );
        assert_eq!(m.action, MessageAction::Edited);
        assert_eq!(m.external_id, "C9:1700000000.000100");
        assert_eq!(m.text, "fixed & better");
        assert_eq!(m.received_at, 1_700_000_099_000);
        let (t, reason) = skipped(json!({"type": "message", "subtype": "message_changed",
            "channel": "C9", "ts": "2.0",
            "message": {"user": "U7", "text": "same", "ts": "1.0", "attachments": [{}]},
            "previous_message": {"user": "U7", "text": "same", "ts": "1.0"}}));
        assert_eq!(t.as_deref(), Some("message_changed"));
        assert!(reason.contains("link preview"), "{reason}");
        let (_, reason) = skipped(json!({"type": "message", "subtype": "message_changed",
            "channel": "C9", "ts": "2.0"}));
        assert!(reason.contains("without the edited `message`"));
    }

    #[test]
    fn deletions_reuse_the_deleted_messages_id() {
        let m = message(
            json!({"type": "message", "subtype": "message_deleted", "hidden": true,
            "channel": "C9", "channel_type": "channel", "ts": "1700000200.000000",
            "event_ts": "1700000200.000000", "deleted_ts": "1700000000.000100",
            "previous_message": {"type": "message", "user": "U7", "text": "oops",
                                  "ts": "1700000000.000100", "thread_ts": "1699999999.000001"}}),
        );
        assert_eq!(m.action, MessageAction::Deleted);
        assert_eq!(m.external_id, "C9:1700000000.000100");
        assert_eq!(m.conversation_key, "C9:1699999999.000001");
        assert_eq!(m.text, "");
        assert_eq!(m.received_at, 1_700_000_200_000);
        let (_, reason) = skipped(json!({"type": "message", "subtype": "message_deleted",
            "channel": "C9", "ts": "2.0", "deleted_ts": "1.0"}));
        assert!(reason.contains("author is unknown"));
    }

    #[test]
    fn bots_are_skipped() {
        for event in [
            json!({"type": "message", "subtype": "bot_message", "bot_id": "B1", "channel": "C1", "text": "x", "ts": "1.0"}),
            json!({"type": "message", "bot_id": "B1", "user": "U1", "channel": "C1", "text": "x", "ts": "1.0"}),
            json!({"type": "message", "user": "USLACKBOT", "channel": "D1", "text": "x", "ts": "1.0"}),
            json!({"type": "message", "user": "UBOT", "channel": "C1", "text": "x", "ts": "1.0"}),
            json!({"type": "app_mention", "bot_id": "B1", "user": "U1", "channel": "C1", "text": "x", "ts": "1.0"}),
            json!({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "2.0",
                   "message": {"bot_id": "B1", "text": "y", "ts": "1.0"}}),
        ] {
            let (_, reason) = skipped(event);
            assert_eq!(reason, "messages from bots are not customer messages");
        }
        // An empty bot_id (as in scrubbed samples) is no bot.
        let m = message(
            json!({"type": "message", "bot_id": "", "user": "U1", "channel": "C1",
            "text": "x", "ts": "1.0"}),
        );
        assert_eq!(m.author.id, "U1");
    }

    #[test]
    fn other_subtypes_and_event_types_are_skipped_by_name() {
        let (t, reason) = skipped(json!({"type": "message", "subtype": "channel_join",
            "user": "U1", "channel": "C1", "text": "<@U1> has joined", "ts": "1.0"}));
        assert_eq!(t.as_deref(), Some("channel_join"));
        assert_eq!(
            reason,
            "message subtype `channel_join` is not a customer message"
        );
        let (t, reason) = skipped(json!({"type": "reaction_added", "user": "U1"}));
        assert_eq!(t.as_deref(), Some("reaction_added"));
        assert_eq!(reason, "`reaction_added` events are not customer messages");
        // file_share is a person sharing a file: a message.
        let m = message(
            json!({"type": "message", "subtype": "file_share", "user": "U1",
            "channel": "C1", "text": "", "ts": "1.0",
            "files": [{"mimetype": "application/pdf", "name": "invoice.pdf"}]}),
        );
        assert_eq!(m.attachments[0].kind, AttachmentKind::File);
        assert_eq!(m.attachments[0].url, None);
    }

    #[test]
    fn missing_fields_skip_the_event_with_the_reason() {
        let (t, reason) =
            skipped(json!({"type": "message", "user": "U1", "text": "x", "ts": "1.0"}));
        assert_eq!(t.as_deref(), Some("message"));
        assert_eq!(reason, "the event has no `channel`");
        let (_, reason) =
            skipped(json!({"type": "message", "user": "U1", "channel": "C1", "ts": ""}));
        assert_eq!(reason, "the message has no `ts`");
        let (_, reason) = skipped(json!({"type": "message", "channel": "C1", "ts": "1.0"}));
        assert_eq!(reason, "the message has no `user`");
        let (_, reason) =
            skipped(json!({"type": "message", "user": "U1", "channel": "C1", "ts": "soon"}));
        assert!(reason.contains("seconds.microseconds"));
        let (_, reason) = skipped(json!({"type": "message", "user": "U1",
            "channel": "C".repeat(1100), "ts": "1.0"}));
        assert!(reason.contains("more than 1024"));
    }

    #[test]
    fn envelopes_that_are_not_events() {
        let check = |body: &[u8], expected: &str| {
            let all = events(body, &Delivery::default());
            let [Event::Skipped(s)] = all.as_slice() else {
                panic!("expected one skipped event")
            };
            assert!(s.reason.contains(expected), "{}", s.reason);
        };
        check(
            br#"{"type":"","event":{"type":"message"}}"#,
            "missing or empty",
        );
        check(br#"{"ok":true,"messages":[]}"#, "Web API response");
        check(
            br#"{"type":"app_rate_limited","minute_rate_limited":1}"#,
            "rate-limiting",
        );
        check(br#"{"type":"block_actions"}"#, "`block_actions`");
        check(br#"{"type":"event_callback"}"#, "without an `event` object");
        check(br#"{"type":"event_callback","event":{}}"#, "has no `type`");
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_invalid_input() {
        let err = parse_body(b"{\n  \"a\": 1,\n}", None, &Delivery::default()).unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidInput(m) if m.contains("line 3 column 1")),
            "{err:?}"
        );
        assert!(matches!(
            parse_body(b"[1]", None, &Delivery::default()),
            Err(PluginError::InvalidInput(m)) if m.contains("got an array")
        ));
        assert!(matches!(
            parse_body(b"token=x&command=%2Fhelp", Some("application/x-www-form-urlencoded"), &Delivery::default()),
            Err(PluginError::InvalidInput(m)) if m.contains("form-encoded")
        ));
        // A BOM is tolerated.
        let mut body = BOM.to_vec();
        body.extend_from_slice(br#"{"type":"url_verification","challenge":"c"}"#);
        assert!(matches!(
            parse_body(&body, None, &Delivery::default()),
            Ok(WebhookOutcome::Challenge(_))
        ));
    }
}
