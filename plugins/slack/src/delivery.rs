//! Replies out through Slack's Web API: where a reply goes, the requests, and the answers.
//!
//! A reply is posted with `chat.postMessage` (docs.slack.dev/reference/methods/chat.postMessage)
//! as JSON with a bearer token. A private reply to a customer who wrote in a channel first
//! opens a direct-message channel with `conversations.open`
//! (docs.slack.dev/reference/methods/conversations.open). Slack answers most failures with
//! HTTP 200 and `{"ok": false, "error": "<code>"}`, so the `error` code decides the mapping.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

use crate::markup;

/// How long to wait for Slack's response head.
pub const TIMEOUT_MS: u64 = 15_000;
/// Longest response-body excerpt quoted in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Error codes that will not go away by retrying: the channel is gone or closed to the app,
/// the token is invalid, revoked or lacks a scope, or the message itself is unacceptable.
pub const PERMANENT_ERRORS: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "token_revoked",
    "account_inactive",
    "not_authed",
    "token_expired",
    "missing_scope",
    "no_permission",
    "restricted_action",
    "ekm_access_denied",
    "msg_too_long",
    "no_text",
    "cannot_dm_bot",
    "user_not_found",
    "user_disabled",
    "user_not_visible",
];

/// Where one reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Post in `channel`, threaded under `thread_ts` when given.
    Channel {
        channel: String,
        thread_ts: Option<String>,
    },
    /// Open (or reuse) the direct-message channel with `user`, then post there.
    DirectMessage { user: String },
}

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// Decide where `reply` goes, from the facts the inbound message carried.
///
/// The channel is the message's `channel` extra (else the part of the conversation key before
/// `:`). Public replies thread under the root of the customer's thread: the conversation key's
/// `ts` part (the thread root, or the message itself when it started no thread). A private
/// reply to a message that was not already a direct message goes to a new direct-message
/// channel with the recipient.
pub fn target(reply: &OutboundReply) -> Result<Target, PluginError> {
    let (key_channel, key_ts) = match reply.conversation_key.split_once(':') {
        Some((c, t)) if !c.is_empty() && !t.is_empty() => (Some(c), Some(t)),
        _ => (None, None),
    };
    let channel = extra(reply, "channel").or(key_channel).ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "cannot tell which Slack channel to reply in: no `channel` extra and the \
             conversation key `{}` is not `<channel>:<ts>`",
            reply.conversation_key
        ))
    })?;
    let already_direct = match extra(reply, "channel-type") {
        Some(t) => t == "im" || t == "mpim",
        None => channel.starts_with('D'),
    };
    if reply.visibility == Visibility::Private && !already_direct {
        if reply.recipient.id.trim().is_empty() {
            return Err(PluginError::InvalidInput(
                "a private reply needs the recipient's Slack user id".into(),
            ));
        }
        return Ok(Target::DirectMessage {
            user: reply.recipient.id.clone(),
        });
    }
    let thread_ts = extra(reply, "thread-ts")
        .or(key_ts)
        .or_else(|| {
            reply
                .in_reply_to
                .as_deref()
                .and_then(|r| r.split_once(':'))
                .map(|(_, ts)| ts)
        })
        .map(String::from);
    Ok(Target::Channel {
        channel: channel.to_string(),
        thread_ts,
    })
}

fn post(url: &str, token: &str, body: &Value) -> Request {
    let mut request = Request::post(url, serde_json::to_vec(body).unwrap_or_default())
        // Slack warns (`missing_charset`) about JSON without a charset.
        .header("content-type", "application/json; charset=utf-8")
        .bearer(token);
    request.timeout_ms = Some(TIMEOUT_MS);
    request
}

/// `POST {api_base}/chat.postMessage` with `{channel, text, thread_ts}`. The text is escaped
/// (`&`, `<`, `>`) so Slack shows it as written.
pub fn post_message_request(
    api_base: &str,
    token: &str,
    channel: &str,
    thread_ts: Option<&str>,
    text: &str,
) -> Request {
    let mut body = json!({ "channel": channel, "text": markup::escape(text) });
    if let Some(ts) = thread_ts {
        body["thread_ts"] = json!(ts);
    }
    post(&format!("{api_base}/chat.postMessage"), token, &body)
}

/// `POST {api_base}/conversations.open` with `{users}`.
pub fn open_dm_request(api_base: &str, token: &str, user: &str) -> Request {
    post(
        &format!("{api_base}/conversations.open"),
        token,
        &json!({ "users": user }),
    )
}

/// The start of a response body, whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(empty body)".into();
    }
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Check a Web API answer: the JSON body when `ok` is true, else a typed error.
///
/// - HTTP 429, or `ok: false` with `ratelimited`: `rate-limited` (with `Retry-After` seconds);
/// - `ok: false` with a code in [`PERMANENT_ERRORS`]: `rejected`;
/// - `ok: false` with any other code, 5xx, or a body that is not JSON: `unavailable`;
/// - HTTP 400, 401, 403, 404, 410: `rejected`.
pub fn check(method: &str, response: &Response) -> Result<Value, PluginError> {
    let status = response.status;
    let summary = || format!("{method}: HTTP {status}: {}", excerpt(&response.body));
    match status {
        429 => return Err(PluginError::RateLimited(response.retry_after_seconds())),
        200..=299 => {}
        400 | 401 | 403 | 404 | 410 => return Err(PluginError::Rejected(summary())),
        _ => return Err(PluginError::Unavailable(summary())),
    }
    let value: Value = serde_json::from_slice(&response.body).map_err(|_| {
        PluginError::Unavailable(format!(
            "{method}: HTTP {status} with a body that is not JSON: {}",
            excerpt(&response.body)
        ))
    })?;
    if value.get("ok") == Some(&Value::Bool(true)) {
        return Ok(value);
    }
    let code = value
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("(no error code)");
    match code {
        "ratelimited" | "rate_limited" => {
            Err(PluginError::RateLimited(response.retry_after_seconds()))
        }
        c if PERMANENT_ERRORS.contains(&c) => Err(PluginError::Rejected(format!(
            "{method}: Slack refused the request: {c}"
        ))),
        c => Err(PluginError::Unavailable(format!(
            "{method}: Slack answered ok=false: {c}"
        ))),
    }
}

/// The direct-message channel id from a `conversations.open` answer.
pub fn opened_channel(value: &Value) -> Result<String, PluginError> {
    value
        .pointer("/channel/id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            PluginError::Internal("conversations.open answered ok without `channel.id`".into())
        })
}

/// The receipt from a `chat.postMessage` answer: `<channel>:<ts>`, the same form as inbound
/// message ids. `channel` is used when the answer does not name one.
pub fn receipt(value: &Value, channel: &str) -> Result<DeliveryReceipt, PluginError> {
    let ts = value
        .get("ts")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            PluginError::Internal("chat.postMessage answered ok without the message `ts`".into())
        })?;
    let channel = value
        .get("channel")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(channel);
    Ok(DeliveryReceipt {
        external_id: format!("{channel}:{ts}"),
        url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::Author;

    fn reply(visibility: Visibility, extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "reply-1".into(),
            conversation_key: "C123:1700000000.000100".into(),
            in_reply_to: Some("C123:1700000050.000200".into()),
            recipient: Author {
                id: "U42".into(),
                handle: None,
                display_name: None,
            },
            text: "Sorry <3 — R&D is on it. ^ana".into(),
            visibility,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn public_reply_threads_under_the_thread_root() {
        let r = reply(
            Visibility::Public,
            &[("channel", "C123"), ("channel-type", "channel")],
        );
        assert_eq!(
            target(&r).unwrap(),
            Target::Channel {
                channel: "C123".into(),
                thread_ts: Some("1700000000.000100".into())
            }
        );
        // Without extras the conversation key alone is enough.
        let mut bare = reply(Visibility::Public, &[]);
        bare.extra.clear();
        assert_eq!(target(&bare).unwrap(), target(&r).unwrap());
    }

    #[test]
    fn private_reply_moves_to_a_dm_unless_already_there() {
        let r = reply(
            Visibility::Private,
            &[("channel", "C123"), ("channel-type", "channel")],
        );
        assert_eq!(
            target(&r).unwrap(),
            Target::DirectMessage { user: "U42".into() }
        );
        let mut dm = reply(
            Visibility::Private,
            &[("channel", "D999"), ("channel-type", "im")],
        );
        dm.conversation_key = "D999:1700000000.000100".into();
        assert_eq!(
            target(&dm).unwrap(),
            Target::Channel {
                channel: "D999".into(),
                thread_ts: Some("1700000000.000100".into())
            }
        );
    }

    #[test]
    fn no_channel_is_invalid_input() {
        let mut r = reply(Visibility::Public, &[]);
        r.conversation_key = "thread-9".into();
        assert!(matches!(target(&r), Err(PluginError::InvalidInput(m)) if m.contains("thread-9")));
    }

    #[test]
    fn post_message_request_shape() {
        let req = post_message_request(
            "https://slack.com/api",
            "xoxb-1",
            "C123",
            Some("1700000000.000100"),
            "Sorry <3 — R&D is on it.",
        );
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://slack.com/api/chat.postMessage");
        assert_eq!(req.timeout_ms, Some(TIMEOUT_MS));
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(headers.contains(&("authorization", "Bearer xoxb-1")));
        assert!(headers.contains(&("content-type", "application/json; charset=utf-8")));
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"channel": "C123", "text": "Sorry &lt;3 — R&amp;D is on it.",
                   "thread_ts": "1700000000.000100"})
        );
        let unthreaded = post_message_request("https://x/api", "t", "D1", None, "hi");
        let body: Value = serde_json::from_slice(&unthreaded.body).unwrap();
        assert_eq!(body, json!({"channel": "D1", "text": "hi"}));
        let open = open_dm_request("https://x/api", "t", "U42");
        assert_eq!(open.url, "https://x/api/conversations.open");
        assert_eq!(
            serde_json::from_slice::<Value>(&open.body).unwrap(),
            json!({"users": "U42"})
        );
    }

    #[test]
    fn ok_answers_become_receipts() {
        let v = check(
            "chat.postMessage",
            &response(
                200,
                &[],
                r#"{"ok":true,"channel":"C123","ts":"1700000100.000300"}"#,
            ),
        )
        .unwrap();
        let r = receipt(&v, "ignored").unwrap();
        assert_eq!(r.external_id, "C123:1700000100.000300");
        assert_eq!(r.url, None);
        assert_eq!(
            receipt(&json!({"ok": true, "ts": "1.2"}), "D1")
                .unwrap()
                .external_id,
            "D1:1.2"
        );
        assert!(matches!(
            receipt(&json!({"ok": true}), "D1"),
            Err(PluginError::Internal(_))
        ));
        assert_eq!(
            opened_channel(&json!({"ok": true, "channel": {"id": "D77"}})).unwrap(),
            "D77"
        );
        assert!(opened_channel(&json!({"ok": true})).is_err());
    }

    #[test]
    fn rate_limits() {
        assert!(matches!(
            check("m", &response(429, &[("Retry-After", "30")], "")),
            Err(PluginError::RateLimited(Some(30)))
        ));
        assert!(matches!(
            check("m", &response(429, &[], "")),
            Err(PluginError::RateLimited(None))
        ));
        assert!(matches!(
            check(
                "m",
                &response(
                    200,
                    &[("retry-after", "5")],
                    r#"{"ok":false,"error":"ratelimited"}"#
                )
            ),
            Err(PluginError::RateLimited(Some(5)))
        ));
    }

    #[test]
    fn permanent_and_transient_codes() {
        for code in [
            "channel_not_found",
            "not_in_channel",
            "is_archived",
            "invalid_auth",
            "token_revoked",
            "account_inactive",
        ] {
            let body = format!(r#"{{"ok":false,"error":"{code}"}}"#);
            assert!(matches!(
                check("chat.postMessage", &response(200, &[], &body)),
                Err(PluginError::Rejected(m))
                    if m == format!("chat.postMessage: Slack refused the request: {code}")
            ));
        }
        assert!(matches!(
            check(
                "m",
                &response(200, &[], r#"{"ok":false,"error":"internal_error"}"#)
            ),
            Err(PluginError::Unavailable(m)) if m == "m: Slack answered ok=false: internal_error"
        ));
        assert!(matches!(
            check("m", &response(200, &[], r#"{"ok":false}"#)),
            Err(PluginError::Unavailable(m)) if m.contains("(no error code)")
        ));
        assert!(matches!(
            check("m", &response(503, &[], "upstream down")),
            Err(PluginError::Unavailable(m)) if m == "m: HTTP 503: upstream down"
        ));
        assert!(matches!(
            check("m", &response(200, &[], "<html>")),
            Err(PluginError::Unavailable(m)) if m.contains("not JSON")
        ));
        assert!(matches!(
            check("m", &response(404, &[], "no such method")),
            Err(PluginError::Rejected(m)) if m.contains("404")
        ));
    }
}
