//! Outbound: public replies (`POST /2/tweets`) and direct messages
//! (`POST /2/dm_conversations/with/:participant_id/messages`), and the mapping of X's answers.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

/// How long to wait for X's response head.
pub const TIMEOUT_MS: u64 = 15_000;

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// What a reply becomes on X.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Tweet,
    DirectMessage,
}

/// The request for `reply`, and what kind of post it makes.
pub fn build_request(
    api_base: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<(Request, Kind), PluginError> {
    let (url, body, kind) = match reply.visibility {
        Visibility::Public => {
            let parent = extra(reply, "tweet-id")
                .map(String::from)
                .or_else(|| reply.in_reply_to.clone());
            let mut body = json!({ "text": reply.text });
            match parent {
                Some(p) if p.starts_with("dm:") => {
                    return Err(PluginError::InvalidInput(format!(
                        "a public reply cannot answer direct message {p}; reply privately, or \
                         post without `in-reply-to`"
                    )));
                }
                Some(p) => body["reply"] = json!({ "in_reply_to_tweet_id": p }),
                None => {}
            }
            (format!("{api_base}/2/tweets"), body, Kind::Tweet)
        }
        Visibility::Private => {
            let conversation = extra(reply, "dm-conversation-id");
            let url = match conversation {
                // A group conversation id has no `a-b` form: post into the conversation.
                Some(c) if !c.contains('-') => {
                    format!("{api_base}/2/dm_conversations/{c}/messages")
                }
                _ => {
                    let participant = extra(reply, "recipient-id").unwrap_or(&reply.recipient.id);
                    if participant.is_empty() || !participant.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(PluginError::InvalidInput(format!(
                            "a direct message needs the recipient's numeric X user id, got \
                             `{participant}`"
                        )));
                    }
                    format!("{api_base}/2/dm_conversations/with/{participant}/messages")
                }
            };
            (url, json!({ "text": reply.text }), Kind::DirectMessage)
        }
    };
    let mut request = Request::post_json(&url, &body).bearer(token);
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok((request, kind))
}

/// X's explanation of a refusal: v2 `detail`/`title`, v1.1 `errors[].message`, or the body.
pub fn platform_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let get = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(d) = get("detail")
            .or_else(|| get("title"))
            .or_else(|| get("error_description"))
        {
            return d.to_string();
        }
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            let messages: Vec<&str> = errors
                .iter()
                .filter_map(|e| {
                    e.get("message")
                        .or_else(|| e.get("detail"))
                        .and_then(Value::as_str)
                })
                .collect();
            if !messages.is_empty() {
                return messages.join("; ");
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        "(empty body)".into()
    } else {
        collapsed.chars().take(200).collect()
    }
}

/// An HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`) in epoch seconds.
fn http_date_seconds(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", text.trim())
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// Seconds to wait after a 429: `retry-after`, else `x-rate-limit-reset` (epoch seconds) minus
/// the response's own `date`; none if neither can be worked out.
pub fn retry_after(response: &Response) -> Option<u32> {
    if let Some(s) = response.retry_after_seconds() {
        return Some(s);
    }
    let reset: i64 = response.header("x-rate-limit-reset")?.trim().parse().ok()?;
    let now = http_date_seconds(response.header("date")?)?;
    u32::try_from((reset - now).max(0)).ok()
}

/// Map X's answer to a receipt or a typed error.
pub fn map_response(response: &Response, kind: &Kind) -> Result<DeliveryReceipt, PluginError> {
    let status = response.status;
    let detail = || platform_detail(&response.body);
    match status {
        200..=299 => receipt(&response.body, kind),
        429 => Err(PluginError::RateLimited(retry_after(response))),
        401 => Err(PluginError::Rejected(format!(
            "X refused the access token (HTTP 401: {}); renew the secret `access-token`",
            detail()
        ))),
        403 => Err(PluginError::Rejected(format!(
            "X refused the post (HTTP 403): {}",
            detail()
        ))),
        400 | 404 | 409 | 410 | 422 => Err(PluginError::Rejected(format!(
            "X refused the request (HTTP {status}): {}",
            detail()
        ))),
        _ => Err(PluginError::Unavailable(format!(
            "X answered HTTP {status}: {}",
            detail()
        ))),
    }
}

fn receipt(body: &[u8], kind: &Kind) -> Result<DeliveryReceipt, PluginError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PluginError::Internal(format!(
            "X accepted the post but its answer is not JSON: {e}"
        ))
    })?;
    let data = value.get("data").unwrap_or(&Value::Null);
    let id = |k: &str| crate::tweet::id_of(data, k);
    match kind {
        Kind::Tweet => match id("id") {
            Some(id) => Ok(DeliveryReceipt {
                url: Some(format!("https://x.com/i/web/status/{id}")),
                external_id: id,
            }),
            None => Err(PluginError::Internal(
                "X accepted the post but its answer has no `data.id`".into(),
            )),
        },
        Kind::DirectMessage => match id("dm_event_id") {
            Some(id) => Ok(DeliveryReceipt {
                external_id: format!("dm:{id}"),
                url: None,
            }),
            None => Err(PluginError::Internal(
                "X accepted the direct message but its answer has no `data.dm_event_id`".into(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::Author;

    fn reply(
        visibility: Visibility,
        in_reply_to: Option<&str>,
        extra: &[(&str, &str)],
    ) -> OutboundReply {
        OutboundReply {
            idempotency_key: "k1".into(),
            conversation_key: "c".into(),
            in_reply_to: in_reply_to.map(String::from),
            recipient: Author {
                id: "9".into(),
                handle: Some("@casey".into()),
                display_name: None,
            },
            text: "Sorry! ^ana".into(),
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
    fn public_reply_shape() {
        let (r, kind) = build_request(
            "https://api.x.com",
            "tok",
            &reply(Visibility::Public, Some("123"), &[]),
        )
        .unwrap();
        assert_eq!(kind, Kind::Tweet);
        assert_eq!(r.url, "https://api.x.com/2/tweets");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer tok".into()))
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"text": "Sorry! ^ana", "reply": {"in_reply_to_tweet_id": "123"}})
        );
        // The latest version of an edited post is the one replied to.
        let (r, _) = build_request(
            "b",
            "t",
            &reply(Visibility::Public, Some("1"), &[("tweet-id", "2")]),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap()["reply"]["in_reply_to_tweet_id"],
            "2"
        );
        let (r, _) = build_request("b", "t", &reply(Visibility::Public, None, &[])).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"text": "Sorry! ^ana"})
        );
        assert!(build_request("b", "t", &reply(Visibility::Public, Some("dm:5"), &[])).is_err());
    }

    #[test]
    fn dm_shape() {
        let (r, kind) = build_request(
            "https://api.x.com",
            "tok",
            &reply(
                Visibility::Private,
                Some("dm:5"),
                &[("recipient-id", "3001969357")],
            ),
        )
        .unwrap();
        assert_eq!(kind, Kind::DirectMessage);
        assert_eq!(
            r.url,
            "https://api.x.com/2/dm_conversations/with/3001969357/messages"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"text": "Sorry! ^ana"})
        );
        let (r, _) = build_request("b", "t", &reply(Visibility::Private, None, &[])).unwrap();
        assert_eq!(r.url, "b/2/dm_conversations/with/9/messages");
        let (r, _) = build_request(
            "b",
            "t",
            &reply(
                Visibility::Private,
                None,
                &[("dm-conversation-id", "1582838213082800132")],
            ),
        )
        .unwrap();
        assert_eq!(r.url, "b/2/dm_conversations/1582838213082800132/messages");
        let mut bad = reply(Visibility::Private, None, &[]);
        bad.recipient.id = "@casey".into();
        assert!(matches!(
            build_request("b", "t", &bad),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn answers() {
        let ok = map_response(
            &response(
                201,
                &[],
                r#"{"data":{"id":"1445880548472328192","text":"hi"}}"#,
            ),
            &Kind::Tweet,
        )
        .unwrap();
        assert_eq!(ok.external_id, "1445880548472328192");
        assert_eq!(
            ok.url.as_deref(),
            Some("https://x.com/i/web/status/1445880548472328192")
        );
        let dm = map_response(
            &response(
                201,
                &[],
                r#"{"data":{"dm_conversation_id":"1-2","dm_event_id":"77"}}"#,
            ),
            &Kind::DirectMessage,
        )
        .unwrap();
        assert_eq!(dm.external_id, "dm:77");
        assert!(matches!(
            map_response(&response(429, &[("retry-after", "12")], ""), &Kind::Tweet),
            Err(PluginError::RateLimited(Some(12)))
        ));
        assert!(matches!(
            map_response(
                &response(
                    429,
                    &[
                        ("x-rate-limit-reset", "1700000900"),
                        ("date", "Tue, 14 Nov 2023 22:13:20 GMT")
                    ],
                    ""
                ),
                &Kind::Tweet
            ),
            Err(PluginError::RateLimited(Some(900)))
        ));
        assert!(matches!(
            map_response(
                &response(429, &[("x-rate-limit-reset", "1700000900")], ""),
                &Kind::Tweet
            ),
            Err(PluginError::RateLimited(None))
        ));
        let dup = r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        assert!(
            matches!(map_response(&response(403, &[], dup), &Kind::Tweet), Err(PluginError::Rejected(m)) if m.contains("duplicate content"))
        );
        assert!(
            matches!(map_response(&response(401, &[], r#"{"title":"Unauthorized","status":401}"#), &Kind::Tweet), Err(PluginError::Rejected(m)) if m.contains("access token"))
        );
        assert!(
            matches!(map_response(&response(503, &[], "down"), &Kind::Tweet), Err(PluginError::Unavailable(m)) if m.contains("503"))
        );
        assert!(
            matches!(map_response(&response(400, &[], r#"{"errors":[{"message":"bad id"}]}"#), &Kind::Tweet), Err(PluginError::Rejected(m)) if m.contains("bad id"))
        );
        assert!(matches!(
            map_response(&response(200, &[], "{}"), &Kind::Tweet),
            Err(PluginError::Internal(_))
        ));
    }
}
