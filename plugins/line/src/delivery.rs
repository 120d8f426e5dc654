//! Replies out: `POST /v2/bot/message/reply` while the reply token is fresh, otherwise
//! `POST /v2/bot/message/push` with an `X-Line-Retry-Key`; LINE's answers mapped to receipts and
//! typed errors.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

/// The real Messaging API.
pub const DEFAULT_API_BASE: &str = "https://api.line.me";
/// Default age (seconds after the event's timestamp) up to which the reply token is used.
pub const DEFAULT_REPLY_WINDOW_SECONDS: i64 = 50;
/// How long to wait for LINE's answer.
pub const TIMEOUT_MS: u64 = 15_000;
/// Namespace of the name-based (v5) UUIDs used as retry keys.
const RETRY_KEY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c69_6e65_2d72_6574_7279_2d6b_6579_0001);

fn extra<'a>(reply: &'a OutboundReply, name: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The `X-Line-Retry-Key` for an idempotency key: the key itself when it already is a UUID,
/// else a name-based UUID derived from it, so every retry of one reply carries the same key.
pub fn retry_key(idempotency_key: &str) -> String {
    match uuid::Uuid::try_parse(idempotency_key) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => uuid::Uuid::new_v5(&RETRY_KEY_NAMESPACE, idempotency_key.as_bytes())
            .hyphenated()
            .to_string(),
    }
}

/// How a reply goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through the reply token of the message being answered.
    Reply { token: String },
    /// As a push message to a user, group or room id.
    Push { to: String },
}

/// Where the push goes: the chat the message came from (`line-to`), else the conversation key.
pub fn push_target(reply: &OutboundReply) -> Result<String, PluginError> {
    extra(reply, "line-to")
        .map(String::from)
        .or_else(|| Some(reply.conversation_key.clone()).filter(|c| !c.is_empty()))
        .ok_or_else(|| {
            PluginError::InvalidInput(
                "no LINE chat to send to: neither extra `line-to` nor a conversation key".into(),
            )
        })
}

/// Whether the message being answered came from a group or multi-person chat (`room`).
fn from_group(reply: &OutboundReply) -> bool {
    matches!(extra(reply, "line-source-type"), Some("group" | "room"))
}

/// Reply while the token is fresh — event time known, current time known, age under the window
/// — and push otherwise (no token, standby mode, unknown clock, or too old). A private answer to
/// a group message goes to the member alone, by push: the reply token and the group id would
/// show it to the whole group.
pub fn route(
    reply: &OutboundReply,
    now_ms: Option<i64>,
    window_seconds: i64,
) -> Result<Route, PluginError> {
    if reply.visibility == Visibility::Private && from_group(reply) {
        let user = reply.recipient.id.as_str();
        if user.is_empty() || user.starts_with("unknown-member-of:") {
            return Err(PluginError::Rejected(
                "cannot answer privately: the group member has not shared their LINE profile, \
                 so there is no user id to write to"
                    .into(),
            ));
        }
        return Ok(Route::Push {
            to: user.to_string(),
        });
    }
    let fresh = extra(reply, "line-reply-token").and_then(|token| {
        let at: i64 = extra(reply, "line-event-timestamp")?.parse().ok()?;
        let age = now_ms? - at;
        (0..window_seconds.saturating_mul(1000))
            .contains(&age)
            .then(|| token.to_string())
    });
    match fresh {
        Some(token) => Ok(Route::Reply { token }),
        None => Ok(Route::Push {
            to: push_target(reply)?,
        }),
    }
}

fn text_message(reply: &OutboundReply) -> Value {
    let mut m = json!({"type": "text", "text": reply.text});
    // Quote the customer's message when LINE gave a quote token for it.
    if let Some(q) = extra(reply, "line-quote-token") {
        m["quoteToken"] = Value::String(q.to_string());
    }
    m
}

/// The HTTP request for `route`.
pub fn build_request(api_base: &str, token: &str, route: &Route, reply: &OutboundReply) -> Request {
    let base = api_base.trim_end_matches('/');
    let mut request = match route {
        Route::Reply { token: reply_token } => Request::post_json(
            &format!("{base}/v2/bot/message/reply"),
            &json!({"replyToken": reply_token, "messages": [text_message(reply)]}),
        ),
        Route::Push { to } => Request::post_json(
            &format!("{base}/v2/bot/message/push"),
            &json!({"to": to, "messages": [text_message(reply)]}),
        )
        // Only push (not reply) accepts a retry key; a retry after an accepted push gets 409.
        .header("x-line-retry-key", &retry_key(&reply.idempotency_key)),
    }
    .bearer(token);
    request.timeout_ms = Some(TIMEOUT_MS);
    request
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// LINE's error message (`{"message": "…", "details": [...]}`), or the raw body.
fn message_of(response: &Response) -> String {
    response
        .json::<Value>()
        .ok()
        .and_then(|v| {
            let mut m = v.get("message")?.as_str()?.to_string();
            if let Some(details) = v.get("details").and_then(Value::as_array) {
                for d in details.iter().take(3) {
                    if let Some(dm) = d.get("message").and_then(Value::as_str) {
                        m.push_str(&format!("; {dm}"));
                        if let Some(p) = d.get("property").and_then(Value::as_str) {
                            m.push_str(&format!(" ({p})"));
                        }
                    }
                }
            }
            Some(m)
        })
        .unwrap_or_else(|| response.text())
}

/// What LINE answered.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered(DeliveryReceipt),
    /// The reply token was refused (expired or already used): push instead, if allowed.
    ReplyTokenRefused,
    Failed(PluginError),
}

fn receipt_from(response: &Response, route: &Route, retry: &str) -> DeliveryReceipt {
    let id = response
        .json::<Value>()
        .ok()
        .and_then(|v| {
            v.pointer("/sentMessages/0/id").and_then(|id| {
                id.as_str()
                    .map(String::from)
                    .or_else(|| id.as_u64().map(|n| n.to_string()))
            })
        })
        .filter(|id| !id.is_empty());
    let external_id = id
        .or_else(|| {
            response
                .header("x-line-accepted-request-id")
                .or_else(|| response.header("x-line-request-id"))
                .filter(|s| !s.is_empty())
                .map(|r| format!("request:{r}"))
        })
        .unwrap_or_else(|| match route {
            Route::Push { .. } => format!("retry-key:{retry}"),
            Route::Reply { .. } => "reply".to_string(),
        });
    DeliveryReceipt {
        external_id,
        url: None,
    }
}

/// Map LINE's answer to one request.
pub fn map_response(response: &Response, route: &Route, reply: &OutboundReply) -> Outcome {
    let retry = retry_key(&reply.idempotency_key);
    let status = response.status;
    if (200..300).contains(&status) {
        return Outcome::Delivered(receipt_from(response, route, &retry));
    }
    let message = excerpt(&message_of(response));
    match status {
        // The retry key was already accepted: the message went out on an earlier attempt.
        409 if matches!(route, Route::Push { .. }) => {
            Outcome::Delivered(receipt_from(response, route, &retry))
        }
        429 => Outcome::Failed(PluginError::RateLimited(response.retry_after_seconds())),
        400 if matches!(route, Route::Reply { .. })
            && message.to_ascii_lowercase().contains("reply token") =>
        {
            Outcome::ReplyTokenRefused
        }
        401 => Outcome::Failed(PluginError::Rejected(format!(
            "LINE refused the channel access token (HTTP 401): {message}"
        ))),
        403 => Outcome::Failed(PluginError::Rejected(format!(
            "LINE refused the request (HTTP 403, the channel is not allowed to do this): {message}"
        ))),
        400 | 404 | 410 | 413 | 422 => Outcome::Failed(PluginError::Rejected(format!(
            "LINE refused the message (HTTP {status}): {message}"
        ))),
        _ => Outcome::Failed(PluginError::Unavailable(format!(
            "LINE answered HTTP {status}: {message}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::Author;

    fn reply(extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "reply-42".into(),
            conversation_key: "Cgroup1".into(),
            in_reply_to: Some("325708".into()),
            recipient: Author {
                id: "U1".into(),
                handle: None,
                display_name: None,
            },
            text: "Sorry about that 🍎".into(),
            visibility: Visibility::Private,
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
    fn retry_keys_are_stable_uuids() {
        let a = retry_key("reply-42");
        assert_eq!(a, retry_key("reply-42"));
        assert_ne!(a, retry_key("reply-43"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5"); // version 5, name-based
        assert_eq!(
            retry_key("123E4567-E89B-12D3-A456-426614174000"),
            "123e4567-e89b-12d3-a456-426614174000"
        );
    }

    #[test]
    fn a_private_answer_to_a_group_goes_to_the_member_alone() {
        let mut r = reply(&[
            ("line-reply-token", "tok"),
            ("line-event-timestamp", "1000000"),
            ("line-to", "Cgroup1"),
            ("line-source-type", "group"),
        ]);
        assert_eq!(
            route(&r, Some(1_000_001), 50).unwrap(),
            Route::Push { to: "U1".into() }
        );
        // In public, the group is answered as usual.
        r.visibility = Visibility::Public;
        assert_eq!(
            route(&r, Some(1_000_001), 50).unwrap(),
            Route::Reply {
                token: "tok".into()
            }
        );
        r.visibility = Visibility::Private;
        r.recipient.id = "unknown-member-of:Cgroup1".into();
        assert!(
            matches!(route(&r, None, 50), Err(PluginError::Rejected(m)) if m.contains("profile"))
        );
    }

    #[test]
    fn routes_by_token_age() {
        let r = reply(&[
            ("line-reply-token", "tok"),
            ("line-event-timestamp", "1000000"),
            ("line-to", "Cgroup1"),
        ]);
        let reply_route = Route::Reply {
            token: "tok".into(),
        };
        let push = Route::Push {
            to: "Cgroup1".into(),
        };
        assert_eq!(
            route(&r, Some(1_000_000 + 49_999), 50).unwrap(),
            reply_route
        );
        assert_eq!(route(&r, Some(1_000_000 + 50_000), 50).unwrap(), push);
        assert_eq!(route(&r, None, 50).unwrap(), push); // no clock: push
        assert_eq!(route(&r, Some(999_000), 50).unwrap(), push); // clock behind the event
        // No token (e.g. standby mode): push to the conversation.
        let r = reply(&[]);
        assert_eq!(
            route(&r, Some(0), 50).unwrap(),
            Route::Push {
                to: "Cgroup1".into()
            }
        );
        let mut r = reply(&[]);
        r.conversation_key.clear();
        assert!(matches!(
            route(&r, None, 50),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn request_shapes() {
        let r = reply(&[("line-quote-token", "q-1")]);
        let req = build_request(
            "https://api.line.me/",
            "TOKEN",
            &Route::Reply {
                token: "tok".into(),
            },
            &r,
        );
        assert_eq!(req.url, "https://api.line.me/v2/bot/message/reply");
        assert_eq!(req.method, "POST");
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"replyToken": "tok", "messages": [{"type": "text", "text": "Sorry about that 🍎", "quoteToken": "q-1"}]})
        );
        assert!(
            req.headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == "Bearer TOKEN")
        );
        assert!(!req.headers.iter().any(|(k, _)| k == "x-line-retry-key"));

        let req = build_request(
            "https://api.line.me",
            "TOKEN",
            &Route::Push { to: "U9".into() },
            &reply(&[]),
        );
        assert_eq!(req.url, "https://api.line.me/v2/bot/message/push");
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"to": "U9", "messages": [{"type": "text", "text": "Sorry about that 🍎"}]})
        );
        assert!(
            req.headers
                .iter()
                .any(|(k, v)| k == "x-line-retry-key" && *v == retry_key("reply-42"))
        );
    }

    #[test]
    fn answers_map_to_receipts_and_errors() {
        let r = reply(&[]);
        let push = Route::Push { to: "U9".into() };
        let reply_route = Route::Reply { token: "t".into() };
        let ok = response(
            200,
            &[],
            r#"{"sentMessages":[{"id":"461230966842064897","quoteToken":"x"}]}"#,
        );
        assert!(matches!(map_response(&ok, &push, &r),
            Outcome::Delivered(d) if d.external_id == "461230966842064897" && d.url.is_none()));
        let dup = response(
            409,
            &[("x-line-accepted-request-id", "req-7")],
            r#"{"message":"The retry key is already accepted"}"#,
        );
        assert!(matches!(map_response(&dup, &push, &r),
            Outcome::Delivered(d) if d.external_id == "request:req-7"));
        let dup_bare = response(409, &[], "");
        assert!(matches!(map_response(&dup_bare, &push, &r),
            Outcome::Delivered(d) if d.external_id == format!("retry-key:{}", retry_key("reply-42"))));
        // A 409 on reply is not a retry-key answer.
        assert!(matches!(
            map_response(&dup_bare, &reply_route, &r),
            Outcome::Failed(PluginError::Unavailable(_))
        ));
        let limited = response(
            429,
            &[("retry-after", "3")],
            r#"{"message":"Too Many Requests"}"#,
        );
        assert!(matches!(
            map_response(&limited, &push, &r),
            Outcome::Failed(PluginError::RateLimited(Some(3)))
        ));
        let refused = response(400, &[], r#"{"message":"Invalid reply token"}"#);
        assert!(matches!(
            map_response(&refused, &reply_route, &r),
            Outcome::ReplyTokenRefused
        ));
        // The same text on push is an ordinary refusal.
        assert!(matches!(
            map_response(&refused, &push, &r),
            Outcome::Failed(PluginError::Rejected(_))
        ));
        let auth = response(401, &[], r#"{"message":"Authentication failed"}"#);
        assert!(matches!(map_response(&auth, &push, &r),
            Outcome::Failed(PluginError::Rejected(m)) if m.contains("access token") && m.contains("Authentication failed")));
        let invalid = response(
            400,
            &[],
            r#"{"message":"The request body has 1 error(s)","details":[{"message":"Length must be between 0 and 5000","property":"messages[0].text"}]}"#,
        );
        assert!(matches!(map_response(&invalid, &push, &r),
            Outcome::Failed(PluginError::Rejected(m)) if m.contains("messages[0].text")));
        assert!(
            matches!(map_response(&response(503, &[], "busy"), &push, &r),
            Outcome::Failed(PluginError::Unavailable(m)) if m.contains("503"))
        );
    }
}
