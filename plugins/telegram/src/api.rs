//! Bot API calls: `sendMessage` for replies, `getUpdates` for polling, and mapping Telegram's
//! answers (`{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description": …,
//! "parameters": {"retry_after": …}}`) to receipts, poll batches and typed errors.
//!
//! The bot token is part of every method URL (`/bot<token>/<method>`): no error produced here
//! contains it ([`redact`] scrubs anything that could echo it back).

use serde_json::{Value, json};
use switchboard_sdk::http::{HttpError, Request, Response};
use switchboard_sdk::{DeliveryReceipt, Event, OutboundReply, PluginError, PollBatch, Visibility};

use crate::update::{self, Options};

/// The real Bot API.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";
/// The secret holding the bot token.
pub const TOKEN_SECRET: &str = "bot-token";
/// How long to wait for Telegram's answer.
pub const TIMEOUT_MS: u64 = 15_000;
/// Most updates asked for in one getUpdates call (Telegram's maximum).
pub const POLL_LIMIT: u32 = 100;
/// Longest description excerpt quoted in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Whether `token` has the shape of a bot token (`<digits>:<letters, digits, _ and ->`), so it
/// can go into a URL path as is.
pub fn is_valid_token(token: &str) -> bool {
    let Some((id, key)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The token from the secret, checked; errors never show it.
pub fn token(secret: Option<String>) -> Result<String, PluginError> {
    let token = secret.filter(|t| !t.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!(
            "secret `{TOKEN_SECRET}` is not set for this plugin: it is the token @BotFather gave \
             the bot"
        ))
    })?;
    if !is_valid_token(&token) {
        return Err(PluginError::NotConfigured(format!(
            "secret `{TOKEN_SECRET}` does not look like a Telegram bot token (expected \
             `<digits>:<letters, digits, _ and ->`)"
        )));
    }
    Ok(token)
}

/// `text` with every occurrence of the token (and of its secret part) replaced.
pub fn redact(text: &str, token: &str) -> String {
    let mut out = text.to_string();
    if !token.is_empty() {
        out = out.replace(token, "<bot-token>");
    }
    if let Some((_, key)) = token.split_once(':')
        && key.len() >= 8
    {
        out = out.replace(key, "<bot-token>");
    }
    out
}

/// `{api_base}/bot<token>/<method>`.
pub fn method_url(api_base: &str, token: &str, method: &str) -> String {
    format!("{}/bot{token}/{method}", api_base.trim_end_matches('/'))
}

/// The value of `extra` key `name`.
fn extra<'a>(reply: &'a OutboundReply, name: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn parse_id(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

/// The JSON body of `sendMessage` for `reply`.
///
/// - `chat_id`: `extra` `chat-id`, else the chat part of the conversation key (`<chat>` or
///   `<chat>:<topic>`), else the recipient's id.
/// - A private reply to a message from a group or channel goes to the recipient's private chat
///   (`chat_id` = the user id, no reply or topic): Telegram only allows this once the user has
///   started a conversation with the bot, else it answers 403.
/// - `reply_parameters`: `{"message_id", "allow_sending_without_reply": true}` from
///   `in_reply_to` (`<chat>:<message>`; a different chat adds its `chat_id`).
/// - `message_thread_id` from `extra` `message-thread-id` (forum topics);
///   `business_connection_id` from `extra` `business-connection-id` (business chats).
/// - No `parse_mode`: the text is sent as plain text, so nothing in it is read as markup.
pub fn send_message_body(reply: &OutboundReply) -> Result<Value, PluginError> {
    let chat_id = extra(reply, "chat-id")
        .and_then(parse_id)
        .or_else(|| reply.conversation_key.split(':').next().and_then(parse_id))
        .or_else(|| parse_id(&reply.recipient.id))
        .ok_or_else(|| {
            PluginError::InvalidInput(
                "no Telegram chat id: `extra` has no `chat-id`, and neither the conversation key \
                 nor the recipient id is a number"
                    .into(),
            )
        })?;
    let chat_type =
        extra(reply, "chat-type").unwrap_or(if chat_id > 0 { "private" } else { "group" });
    let business = extra(reply, "business-connection-id");

    let mut body = serde_json::Map::new();
    if reply.visibility == Visibility::Private && chat_type != "private" && business.is_none() {
        let user = parse_id(&reply.recipient.id)
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "a private reply needs the recipient's numeric Telegram user id, got `{}`",
                    reply.recipient.id
                ))
            })?;
        body.insert("chat_id".into(), json!(user));
        body.insert("text".into(), json!(reply.text));
        return Ok(Value::Object(body));
    }

    body.insert("chat_id".into(), json!(chat_id));
    body.insert("text".into(), json!(reply.text));
    if let Some(parent) = reply.in_reply_to.as_deref() {
        let (parent_chat, message_id) = match parent.rsplit_once(':') {
            Some((c, m)) => (parse_id(c), parse_id(m)),
            None => (None, parse_id(parent)),
        };
        let message_id = message_id.ok_or_else(|| {
            PluginError::InvalidInput(format!(
                "`in_reply_to` must be `<chat id>:<message id>`, got `{parent}`"
            ))
        })?;
        let mut params = json!({"message_id": message_id, "allow_sending_without_reply": true});
        if let Some(c) = parent_chat.filter(|c| *c != chat_id) {
            params["chat_id"] = json!(c);
        }
        body.insert("reply_parameters".into(), params);
    }
    if let Some(thread) = extra(reply, "message-thread-id").and_then(parse_id) {
        body.insert("message_thread_id".into(), json!(thread));
    }
    if let Some(b) = business {
        body.insert("business_connection_id".into(), json!(b));
    }
    Ok(Value::Object(body))
}

/// The `sendMessage` request.
pub fn build_send(
    api_base: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<Request, PluginError> {
    let body = send_message_body(reply)?;
    let mut request = Request::post_json(&method_url(api_base, token, "sendMessage"), &body);
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok(request)
}

/// The `getUpdates` request: `offset` = the cursor (the last seen update_id + 1), no long
/// polling (`timeout` 0: a plugin call has a deadline), at most [`POLL_LIMIT`] updates.
pub fn build_get_updates(
    api_base: &str,
    token: &str,
    cursor: Option<&str>,
) -> Result<Request, PluginError> {
    let mut body = json!({"timeout": 0, "limit": POLL_LIMIT});
    if let Some(c) = cursor.map(str::trim).filter(|c| !c.is_empty()) {
        let offset = c.parse::<i64>().map_err(|_| {
            PluginError::InvalidInput(format!(
                "poll cursor `{c}` is not an update offset (an integer)"
            ))
        })?;
        body["offset"] = json!(offset);
    }
    let mut request = Request::post_json(&method_url(api_base, token, "getUpdates"), &body);
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok(request)
}

/// A transport failure, with the token scrubbed.
pub fn transport_error(e: HttpError, token: &str) -> PluginError {
    match e {
        HttpError::Denied(m) => PluginError::NotConfigured(format!(
            "egress denied: {} (the tenant must allow the host of config `api_base`)",
            redact(&m, token)
        )),
        HttpError::InvalidUrl(_) => PluginError::NotConfigured(
            "config `api_base` does not give a usable http(s) URL".into(),
        ),
        other => PluginError::Unavailable(format!(
            "calling the Telegram Bot API failed: {}",
            redact(&other.to_string(), token)
        )),
    }
}

/// Shorten and collapse whitespace.
fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(no description)".into();
    }
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Telegram's answer, decoded as far as it is JSON.
struct Answer {
    ok: bool,
    result: Value,
    code: u16,
    description: String,
    retry_after: Option<u32>,
    migrate_to: Option<i64>,
}

fn answer(response: &Response, token: &str) -> Answer {
    let value: Option<Value> = serde_json::from_slice(&response.body).ok();
    let get = |k: &str| value.as_ref().and_then(|v| v.get(k));
    let params = get("parameters");
    let code = get("error_code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(response.status);
    let description = match get("description").and_then(Value::as_str) {
        Some(d) => d.to_string(),
        None if value.is_some() => String::new(),
        None => String::from_utf8_lossy(&response.body).into_owned(),
    };
    Answer {
        ok: get("ok").and_then(Value::as_bool) == Some(true)
            && (200..300).contains(&response.status),
        result: get("result").cloned().unwrap_or(Value::Null),
        code,
        description: redact(&excerpt(&description), token),
        retry_after: params
            .and_then(|p| p.get("retry_after"))
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .or_else(|| response.retry_after_seconds()),
        migrate_to: params
            .and_then(|p| p.get("migrate_to_chat_id"))
            .and_then(Value::as_i64),
    }
}

/// The typed error for a failed call.
fn error(a: &Answer) -> PluginError {
    let summary = format!("Telegram {}: {}", a.code, a.description);
    match a.code {
        429 => PluginError::RateLimited(a.retry_after),
        401 => PluginError::Rejected(format!(
            "{summary} (the bot token was refused: check the secret `{TOKEN_SECRET}`)"
        )),
        _ if a.migrate_to.is_some() => PluginError::Rejected(format!(
            "{summary} (the group became a supergroup with chat id {})",
            a.migrate_to.unwrap_or_default()
        )),
        400..=499 => PluginError::Rejected(summary),
        _ => PluginError::Unavailable(summary),
    }
}

/// Map a `sendMessage` answer: `result` is the sent Message; its id is `<chat id>:<message id>`
/// (the same shape as inbound external ids). A public chat with a username gets a t.me link.
pub fn map_send_response(response: &Response, token: &str) -> Result<DeliveryReceipt, PluginError> {
    let a = answer(response, token);
    if !a.ok {
        return Err(error(&a));
    }
    let message_id = a.result.get("message_id").and_then(Value::as_i64);
    let chat = a.result.get("chat");
    let chat_id = chat.and_then(|c| c.get("id")).and_then(Value::as_i64);
    let (Some(message_id), Some(chat_id)) = (message_id, chat_id) else {
        return Err(PluginError::Internal(
            "sendMessage answered ok but `result` has no `message_id` and `chat.id`".into(),
        ));
    };
    let url = chat
        .filter(|c| c.get("type").and_then(Value::as_str) != Some("private"))
        .and_then(|c| c.get("username"))
        .and_then(Value::as_str)
        .map(|u| format!("https://t.me/{u}/{message_id}"));
    Ok(DeliveryReceipt {
        external_id: format!("{chat_id}:{message_id}"),
        url,
    })
}

/// Map a `getUpdates` answer into events and the next cursor (the highest update_id + 1; none
/// when there were no updates, keeping the previous cursor).
pub fn map_updates_response(
    response: &Response,
    token: &str,
    opts: Options<'_>,
) -> Result<PollBatch, PluginError> {
    let a = answer(response, token);
    if !a.ok {
        if a.code == 409 {
            return Err(PluginError::NotConfigured(format!(
                "Telegram 409: {} (getUpdates does not work while a webhook is set: use the \
                 webhook, or call deleteWebhook)",
                a.description
            )));
        }
        return Err(error(&a));
    }
    let Value::Array(updates) = a.result else {
        return Err(PluginError::Internal(
            "getUpdates answered ok but `result` is not an array of Update objects".into(),
        ));
    };
    let mut events: Vec<Event> = Vec::new();
    let mut highest: Option<i64> = None;
    for item in &updates {
        let Value::Object(update) = item else {
            events.push(Event::skipped(
                None,
                "a getUpdates result item is not an object",
            ));
            continue;
        };
        if let Some(id) = update::update_id(update) {
            highest = Some(highest.map_or(id, |h| h.max(id)));
        }
        events.extend(update::parse_update(update, opts));
    }
    Ok(PollBatch {
        events,
        next_cursor: highest.map(|h| h.saturating_add(1).to_string()),
    })
}

/// What the kv store keeps per delivered idempotency key: `<external id>\n<url>`.
pub fn encode_receipt(r: &DeliveryReceipt) -> Vec<u8> {
    format!("{}\n{}", r.external_id, r.url.as_deref().unwrap_or("")).into_bytes()
}

pub fn decode_receipt(bytes: &[u8]) -> Option<DeliveryReceipt> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (id, url) = text.split_once('\n')?;
    (!id.is_empty()).then(|| DeliveryReceipt {
        external_id: id.to_string(),
        url: (!url.is_empty()).then(|| url.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Author, Message, MessageAction};

    const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

    fn reply(
        extra: &[(&str, &str)],
        in_reply_to: Option<&str>,
        visibility: Visibility,
    ) -> OutboundReply {
        OutboundReply {
            idempotency_key: "r-1".into(),
            conversation_key: "-100123".into(),
            in_reply_to: in_reply_to.map(String::from),
            recipient: Author {
                id: "42".into(),
                handle: Some("@casey".into()),
                display_name: None,
            },
            text: "Sorry about that 🧳 — on it. ^ana".into(),
            visibility,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The SDK's generated types have no `PartialEq`: compare their debug renderings.
    fn d<T: std::fmt::Debug>(x: T) -> String {
        format!("{x:?}")
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn token_shape_and_redaction() {
        assert!(is_valid_token(TOKEN));
        for bad in [
            "", "123456", ":abc", "abc:def", "123:", "123:a/b", "123:a?b", "123:a b",
        ] {
            assert!(!is_valid_token(bad), "{bad}");
        }
        assert!(
            matches!(token(None), Err(PluginError::NotConfigured(m)) if m.contains("`bot-token` is not set"))
        );
        assert!(
            matches!(token(Some("12:x/y".into())), Err(PluginError::NotConfigured(m)) if !m.contains("x/y"))
        );
        assert_eq!(token(Some(TOKEN.into())).unwrap(), TOKEN);
        let url = method_url("https://api.telegram.org/", TOKEN, "sendMessage");
        assert_eq!(
            url,
            format!("https://api.telegram.org/bot{TOKEN}/sendMessage")
        );
        let scrubbed = redact(
            &format!("failed {url} and ABC-DEF1234ghIkl-zyx57W2v1u123ew11"),
            TOKEN,
        );
        assert!(!scrubbed.contains("ABC-DEF1234"), "{scrubbed}");
        assert_eq!(
            scrubbed,
            "failed https://api.telegram.org/bot<bot-token>/sendMessage and <bot-token>"
        );
    }

    #[test]
    fn send_message_in_a_forum_topic_replying() {
        let r = reply(
            &[
                ("chat-id", "-100123"),
                ("chat-type", "supergroup"),
                ("message-thread-id", "33"),
            ],
            Some("-100123:70"),
            Visibility::Public,
        );
        let request = build_send("https://api.telegram.org", TOKEN, &r).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            format!("https://api.telegram.org/bot{TOKEN}/sendMessage")
        );
        assert_eq!(request.timeout_ms, Some(TIMEOUT_MS));
        assert!(
            request
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({
                "chat_id": -100123,
                "text": "Sorry about that 🧳 — on it. ^ana",
                "reply_parameters": {"message_id": 70, "allow_sending_without_reply": true},
                "message_thread_id": 33
            })
        );
    }

    #[test]
    fn send_message_fallbacks() {
        // No extra: chat id from the conversation key (`<chat>:<topic>` too), no reply.
        let mut r = reply(&[], None, Visibility::Public);
        r.conversation_key = "-100777:5".into();
        assert_eq!(
            send_message_body(&r).unwrap(),
            json!({"chat_id": -100777, "text": r.text})
        );
        // A reply to a message in another chat names that chat.
        let r = reply(&[("chat-id", "42")], Some("-1009:3"), Visibility::Private);
        assert_eq!(
            send_message_body(&r).unwrap()["reply_parameters"],
            json!({"message_id": 3, "allow_sending_without_reply": true, "chat_id": -1009})
        );
        // A bare message id is accepted.
        let r = reply(&[("chat-id", "42")], Some("3"), Visibility::Private);
        assert_eq!(
            send_message_body(&r).unwrap()["reply_parameters"]["message_id"],
            3
        );
        let r = reply(&[("chat-id", "42")], Some("42:x"), Visibility::Private);
        assert!(
            matches!(send_message_body(&r), Err(PluginError::InvalidInput(m)) if m.contains("42:x"))
        );
        // Business chats carry their connection.
        let r = reply(
            &[
                ("chat-id", "42"),
                ("chat-type", "private"),
                ("business-connection-id", "bc-1"),
            ],
            None,
            Visibility::Private,
        );
        assert_eq!(
            send_message_body(&r).unwrap()["business_connection_id"],
            "bc-1"
        );
        // Nothing numeric at all.
        let mut r = reply(&[], None, Visibility::Public);
        r.conversation_key = "abc".into();
        r.recipient.id = "casey".into();
        assert!(matches!(
            send_message_body(&r),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn private_reply_to_a_group_message_goes_to_the_user() {
        let r = reply(
            &[
                ("chat-id", "-100123"),
                ("chat-type", "supergroup"),
                ("message-thread-id", "33"),
            ],
            Some("-100123:70"),
            Visibility::Private,
        );
        assert_eq!(
            send_message_body(&r).unwrap(),
            json!({"chat_id": 42, "text": r.text})
        );
        let mut r = r;
        r.recipient.id = "-100999".into();
        assert!(matches!(
            send_message_body(&r),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn get_updates_request() {
        let r = build_get_updates("http://127.0.0.1:9/", TOKEN, Some("10001")).unwrap();
        assert_eq!(r.url, format!("http://127.0.0.1:9/bot{TOKEN}/getUpdates"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, json!({"offset": 10001, "timeout": 0, "limit": 100}));
        let r = build_get_updates("http://127.0.0.1:9", TOKEN, None).unwrap();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, json!({"timeout": 0, "limit": 100}));
        assert!(matches!(
            build_get_updates("x", TOKEN, Some("abc")),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn send_response_mapping() {
        let ok = r#"{"ok":true,"result":{"message_id":71,"date":1,"chat":{"id":-100123,"type":"supergroup","username":"acmefans"},"text":"x"}}"#;
        let receipt = map_send_response(&response(200, ok), TOKEN).unwrap();
        assert_eq!(receipt.external_id, "-100123:71");
        assert_eq!(receipt.url.as_deref(), Some("https://t.me/acmefans/71"));
        let ok = r#"{"ok":true,"result":{"message_id":8,"date":1,"chat":{"id":42,"type":"private","username":"casey"}}}"#;
        let receipt = map_send_response(&response(200, ok), TOKEN).unwrap();
        assert_eq!(
            (receipt.external_id.as_str(), receipt.url),
            ("42:8", None::<String>)
        );
        assert!(matches!(
            map_send_response(&response(200, r#"{"ok":true,"result":true}"#), TOKEN),
            Err(PluginError::Internal(_))
        ));

        let e = |status: u16, body: &str| {
            map_send_response(&response(status, body), TOKEN).unwrap_err()
        };
        assert_eq!(
            d(e(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#
            )),
            d(PluginError::RateLimited(Some(35)))
        );
        let mut limited = response(429, "");
        limited.headers.push(("Retry-After".into(), "12".into()));
        assert_eq!(
            d(map_send_response(&limited, TOKEN).unwrap_err()),
            d(PluginError::RateLimited(Some(12)))
        );
        assert_eq!(
            d(e(
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#
            )),
            d(PluginError::Rejected(
                "Telegram 403: Forbidden: bot was blocked by the user".into()
            ))
        );
        assert_eq!(
            d(e(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
            )),
            d(PluginError::Rejected(
                "Telegram 400: Bad Request: chat not found".into()
            ))
        );
        assert!(matches!(
            e(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#),
            PluginError::Rejected(m) if m.contains("-1001234")
        ));
        assert!(matches!(
            e(401, r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
            PluginError::Rejected(m) if m.contains("token was refused") && !m.contains(TOKEN)
        ));
        assert_eq!(
            d(e(502, "<html>Bad Gateway</html>")),
            d(PluginError::Unavailable(
                "Telegram 502: <html>Bad Gateway</html>".into()
            ))
        );
        assert!(matches!(
            e(
                500,
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#
            ),
            PluginError::Unavailable(_)
        ));
        // A description that echoes the token is scrubbed.
        let echoed =
            format!(r#"{{"ok":false,"error_code":404,"description":"Not Found: /bot{TOKEN}/x"}}"#);
        let PluginError::Rejected(m) = e(404, &echoed) else {
            panic!()
        };
        assert!(!m.contains("ABC-DEF1234"), "{m}");
    }

    #[test]
    fn updates_response_mapping() {
        let opts = Options {
            channel: "telegram",
            bot_username: None,
        };
        let body = r#"{"ok":true,"result":[
            {"update_id":10,"message":{"message_id":1,"date":5,"chat":{"id":42,"type":"private"},"from":{"id":42,"first_name":"C"},"text":"hi"}},
            {"update_id":12,"inline_query":{"id":"q"}},
            7
        ]}"#;
        let batch = map_updates_response(&response(200, body), TOKEN, opts).unwrap();
        assert_eq!(batch.next_cursor.as_deref(), Some("13"));
        assert_eq!(batch.events.len(), 3);
        let Event::Message(Message {
            external_id,
            action,
            ..
        }) = &batch.events[0]
        else {
            panic!()
        };
        assert_eq!(
            (external_id.as_str(), *action),
            ("42:1", MessageAction::Created)
        );
        let empty = map_updates_response(&response(200, r#"{"ok":true,"result":[]}"#), TOKEN, opts)
            .unwrap();
        assert_eq!((empty.events.len(), empty.next_cursor), (0, None));
        assert!(matches!(
            map_updates_response(&response(200, r#"{"ok":true,"result":{"can_manage_chat":false}}"#), TOKEN, opts),
            Err(PluginError::Internal(m)) if m.contains("not an array")
        ));
        assert!(matches!(
            map_updates_response(&response(409, r#"{"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}"#), TOKEN, opts),
            Err(PluginError::NotConfigured(m)) if m.contains("deleteWebhook")
        ));
        assert_eq!(
            d(map_updates_response(&response(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":3}}"#), TOKEN, opts).unwrap_err()),
            d(PluginError::RateLimited(Some(3)))
        );
    }

    #[test]
    fn transport_errors_never_show_the_token() {
        let url = method_url("ftp://x", TOKEN, "sendMessage");
        let e = transport_error(HttpError::InvalidUrl(format!("{url}: only http")), TOKEN);
        assert!(matches!(&e, PluginError::NotConfigured(m) if !m.contains(TOKEN)));
        let e = transport_error(HttpError::Failed(format!("connect {url}")), TOKEN);
        assert!(
            matches!(&e, PluginError::Unavailable(m) if !m.contains("ABC-DEF") && m.contains("<bot-token>"))
        );
        let e = transport_error(HttpError::Denied("host not allowed".into()), TOKEN);
        assert!(matches!(&e, PluginError::NotConfigured(m) if m.contains("egress denied")));
    }

    #[test]
    fn receipts_round_trip_through_kv_encoding() {
        let r = DeliveryReceipt {
            external_id: "-1:2".into(),
            url: Some("https://t.me/a/2".into()),
        };
        assert_eq!(d(decode_receipt(&encode_receipt(&r))), d(Some(r)));
        let r = DeliveryReceipt {
            external_id: "42:8".into(),
            url: None,
        };
        assert_eq!(d(decode_receipt(&encode_receipt(&r))), d(Some(r)));
        assert!(decode_receipt(b"garbage").is_none());
        assert!(decode_receipt(b"\n").is_none());
    }
}
