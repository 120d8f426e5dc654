//! Posting a reply: `POST /api/v1/statuses`, and mapping the instance's answer.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

use crate::settings::ReplyVisibility;
use crate::status::MAX_ID_BYTES;

/// Time to wait for the instance's answer.
pub const TIMEOUT_MS: u64 = 15_000;
/// Longest response excerpt quoted in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// The start of a body, whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
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

/// Seconds to wait after a 429: `Retry-After` (seconds), else Mastodon's `X-RateLimit-Reset`
/// (an ISO 8601 time) minus `now_ms`, rounded up, at least 1.
pub fn rate_limit_seconds(response: &Response, now_ms: i64) -> Option<u32> {
    if let Some(secs) = response.retry_after_seconds() {
        return Some(secs);
    }
    let reset = response
        .header("x-ratelimit-reset")?
        .trim()
        .parse::<jiff::Timestamp>()
        .ok()?;
    let wait_ms = reset.as_millisecond().saturating_sub(now_ms).max(0);
    let secs = (wait_ms + 999) / 1000;
    Some(u32::try_from(secs).unwrap_or(u32::MAX).max(1))
}

/// The recipient's `@acct`, from the handle the connector gave the author.
fn recipient_mention(reply: &OutboundReply) -> Option<String> {
    let handle = reply
        .recipient
        .handle
        .as_deref()?
        .trim()
        .trim_start_matches('@');
    (!handle.is_empty() && !handle.contains(char::is_whitespace)).then(|| format!("@{handle}"))
}

/// The status text: the reply, starting with the customer's `@acct` unless it already does.
pub fn status_text(reply: &OutboundReply) -> Result<String, PluginError> {
    let mention = recipient_mention(reply).ok_or_else(|| {
        PluginError::InvalidInput(
            "the recipient has no Mastodon handle: a reply must mention the customer's @acct \
             (a direct message reaches only the accounts it mentions)"
                .into(),
        )
    })?;
    let text = reply.text.trim_start();
    let already = text
        .get(..mention.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(&mention))
        && text[mention.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || matches!(c, ',' | ':' | '.' | '!' | '?'));
    Ok(if already {
        text.to_string()
    } else {
        format!("{mention} {text}")
    })
}

/// The instance-local id of the status being answered: `status-id` from the message's extra,
/// else `in_reply_to` when it is a bare id or this connector's `host:id` fallback.
pub fn reply_target(reply: &OutboundReply) -> Option<String> {
    if let Some((_, id)) = reply
        .extra
        .iter()
        .find(|(k, v)| k == "status-id" && !v.trim().is_empty())
    {
        return Some(id.trim().to_string());
    }
    let parent = reply.in_reply_to.as_deref()?.trim();
    let id = parent.rsplit_once(':').map_or(parent, |(_, id)| id);
    (!id.is_empty() && !parent.contains('/') && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| id.to_string())
}

/// The JSON body of the status.
pub fn status_body(
    reply: &OutboundReply,
    public_visibility: ReplyVisibility,
) -> Result<Value, PluginError> {
    let in_reply_to_id = reply_target(reply);
    if in_reply_to_id.is_none() && reply.in_reply_to.is_some() {
        return Err(PluginError::InvalidInput(format!(
            "cannot thread the reply: `{}` is not a status id of this instance and the message \
             extra has no `status-id`",
            reply.in_reply_to.as_deref().unwrap_or_default()
        )));
    }
    let visibility = match reply.visibility {
        Visibility::Private => "direct",
        Visibility::Public => public_visibility.as_str(),
    };
    let mut body = json!({
        "status": status_text(reply)?,
        "visibility": visibility,
    });
    if let Some(id) = in_reply_to_id {
        body["in_reply_to_id"] = json!(id);
    }
    Ok(body)
}

/// The authenticated POST for `reply`.
pub fn build_request(
    base: &str,
    token: &str,
    reply: &OutboundReply,
    public_visibility: ReplyVisibility,
) -> Result<Request, PluginError> {
    let body = status_body(reply, public_visibility)?;
    let mut request = Request::post_json(&format!("{base}/api/v1/statuses"), &body)
        .bearer(token)
        .header("accept", "application/json")
        .header("idempotency-key", &reply.idempotency_key);
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok(request)
}

/// A successful post: the receipt and the new status' instance-local id.
#[derive(Debug)]
pub struct Posted {
    pub receipt: DeliveryReceipt,
    pub status_id: String,
}

/// Map the instance's answer to a receipt or a typed error.
pub fn map_response(response: &Response, now_ms: i64) -> Result<Posted, PluginError> {
    let status = response.status;
    let summary = || format!("HTTP {status}: {}", excerpt(&response.body));
    match status {
        200..=299 => posted(status, &response.body),
        429 => Err(PluginError::RateLimited(rate_limit_seconds(
            response, now_ms,
        ))),
        400 | 401 | 403 | 404 | 410 | 422 => Err(PluginError::Rejected(summary())),
        _ => Err(PluginError::Unavailable(summary())),
    }
}

fn posted(status: u16, body: &[u8]) -> Result<Posted, PluginError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PluginError::Internal(format!(
            "the instance answered HTTP {status} but its body is not a Status ({e})"
        ))
    })?;
    let status_id = crate::status::id_of(value.get("id")).ok_or_else(|| {
        PluginError::Internal(format!(
            "the instance answered HTTP {status} without the posted status' `id`"
        ))
    })?;
    let text = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_ID_BYTES)
    };
    Ok(Posted {
        receipt: DeliveryReceipt {
            // The same kind of id inbound messages carry: the status URI.
            external_id: text("uri").map_or_else(|| status_id.clone(), String::from),
            url: text("url").map(String::from),
        },
        status_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::Author;

    fn reply(text: &str, visibility: Visibility) -> OutboundReply {
        OutboundReply {
            idempotency_key: "reply-7f3a".into(),
            conversation_key: "103186126728896492".into(),
            in_reply_to: Some("https://remote.example/users/casey/statuses/9".into()),
            recipient: Author {
                id: "971724@mastodon.social".into(),
                handle: Some("@casey@remote.example".into()),
                display_name: Some("Casey".into()),
            },
            text: text.into(),
            visibility,
            extra: vec![("status-id".into(), "103186126728896492".into())],
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
    fn request_shape() {
        let r = reply("Sorry about your bag. ^ana", Visibility::Public);
        let request = build_request(
            "https://mastodon.social",
            "t0k",
            &r,
            ReplyVisibility::Public,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://mastodon.social/api/v1/statuses");
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("authorization"), Some("Bearer t0k"));
        assert_eq!(header("idempotency-key"), Some("reply-7f3a"));
        assert_eq!(header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"status": "@casey@remote.example Sorry about your bag. ^ana",
                   "in_reply_to_id": "103186126728896492", "visibility": "public"})
        );
        let private = status_body(
            &reply("Please DM us", Visibility::Private),
            ReplyVisibility::Unlisted,
        )
        .unwrap();
        assert_eq!(private["visibility"], "direct");
        let unlisted = status_body(&r, ReplyVisibility::Unlisted).unwrap();
        assert_eq!(unlisted["visibility"], "unlisted");
    }

    #[test]
    fn the_mention_is_added_once() {
        let t = |text: &str| status_text(&reply(text, Visibility::Public)).unwrap();
        assert_eq!(
            t("@Casey@Remote.example thanks!"),
            "@Casey@Remote.example thanks!"
        );
        assert_eq!(
            t("@casey@remote.example, thanks"),
            "@casey@remote.example, thanks"
        );
        assert_eq!(
            t("@casey@remote.examplex hi"),
            "@casey@remote.example @casey@remote.examplex hi"
        );
        assert_eq!(t("  thanks"), "@casey@remote.example thanks");
        let mut r = reply("hi", Visibility::Public);
        r.recipient.handle = Some("casey".into());
        assert_eq!(status_text(&r).unwrap(), "@casey hi");
        r.recipient.handle = None;
        assert!(
            matches!(status_text(&r), Err(PluginError::InvalidInput(m)) if m.contains("handle"))
        );
    }

    #[test]
    fn reply_targets() {
        let mut r = reply("x", Visibility::Public);
        assert_eq!(reply_target(&r).as_deref(), Some("103186126728896492"));
        r.extra.clear();
        assert_eq!(reply_target(&r), None);
        assert!(
            matches!(status_body(&r, ReplyVisibility::Public), Err(PluginError::InvalidInput(m)) if m.contains("cannot thread"))
        );
        r.in_reply_to = Some("555".into());
        assert_eq!(reply_target(&r).as_deref(), Some("555"));
        r.in_reply_to = Some("mastodon.social:556".into());
        assert_eq!(reply_target(&r).as_deref(), Some("556"));
        r.in_reply_to = None;
        let body = status_body(&r, ReplyVisibility::Public).unwrap();
        assert!(body.get("in_reply_to_id").is_none());
    }

    #[test]
    fn answers_are_mapped() {
        let ok = map_response(
            &response(200, &[], r#"{"id": "1099", "uri": "https://mastodon.social/users/acmecare/statuses/1099", "url": "https://mastodon.social/@acmecare/1099"}"#),
            0,
        )
        .unwrap();
        assert_eq!(ok.status_id, "1099");
        assert_eq!(
            ok.receipt.external_id,
            "https://mastodon.social/users/acmecare/statuses/1099"
        );
        assert_eq!(
            ok.receipt.url.as_deref(),
            Some("https://mastodon.social/@acmecare/1099")
        );
        let bare = map_response(&response(200, &[], r#"{"id": "5"}"#), 0).unwrap();
        assert_eq!(
            (bare.receipt.external_id.as_str(), bare.receipt.url),
            ("5", None)
        );
        assert!(matches!(
            map_response(&response(200, &[], "<html>"), 0),
            Err(PluginError::Internal(_))
        ));

        assert!(matches!(
            map_response(&response(429, &[("Retry-After", "30")], ""), 0),
            Err(PluginError::RateLimited(Some(30)))
        ));
        let reset = response(
            429,
            &[("X-RateLimit-Reset", "2024-05-01T10:00:00.000Z")],
            "",
        );
        // 2024-05-01T10:00:00Z is 1_714_557_600_000 ms; 90.5 s before the reset -> 91 s.
        assert_eq!(
            rate_limit_seconds(&reset, 1_714_557_600_000 - 90_500),
            Some(91)
        );
        // A reset already past: the minimum wait.
        assert_eq!(rate_limit_seconds(&reset, 1_800_000_000_000), Some(1));
        assert!(matches!(
            map_response(&reset, 1_714_557_600_000 - 5_000),
            Err(PluginError::RateLimited(Some(5)))
        ));
        assert!(matches!(
            map_response(&response(429, &[], ""), 0),
            Err(PluginError::RateLimited(None))
        ));
        for s in [401, 403, 404, 422] {
            assert!(matches!(
                map_response(&response(s, &[], r#"{"error":"The access token is invalid"}"#), 0),
                Err(PluginError::Rejected(m)) if m.starts_with(&format!("HTTP {s}: ")) && m.contains("token is invalid")
            ));
        }
        assert!(
            matches!(map_response(&response(503, &[], ""), 0), Err(PluginError::Unavailable(m)) if m == "HTTP 503: (empty body)")
        );
        assert_eq!(
            excerpt(&"x".repeat(500).into_bytes()).chars().count(),
            EXCERPT_CHARS
        );
    }
}
