//! XRPC plumbing: URLs, the chat proxy header, timestamps and mapping error answers to typed
//! plugin errors.

use serde_json::Value;
use switchboard_sdk::PluginError;
use switchboard_sdk::http::{Request, Response};

/// Time to wait for each API answer.
pub const TIMEOUT_MS: u64 = 15_000;
/// The service DID the PDS forwards `chat.bsky.*` calls to.
pub const CHAT_PROXY: &str = "did:web:api.bsky.chat#bsky_chat";
/// Longest response excerpt quoted in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// `<base>/xrpc/<nsid>?<query>` with the query form-encoded.
pub fn url(base: &str, nsid: &str, query: &[(&str, &str)]) -> String {
    let mut url = format!("{base}/xrpc/{nsid}");
    if !query.is_empty() {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        url.push('?');
        url.push_str(&q);
    }
    url
}

/// A GET request with the connector's timeout.
pub fn get(url: &str) -> Request {
    let mut r = Request::get(url).header("accept", "application/json");
    r.timeout_ms = Some(TIMEOUT_MS);
    r
}

/// A JSON POST request with the connector's timeout.
pub fn post(url: &str, body: &Value) -> Request {
    let mut r = Request::post_json(url, body).header("accept", "application/json");
    r.timeout_ms = Some(TIMEOUT_MS);
    r
}

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

/// The XRPC error name and message of an error answer (`{"error": "…", "message": "…"}`).
pub fn error_of(response: &Response) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(&response.body) else {
        return (None, None);
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    (s("error"), s("message"))
}

/// Whether an answer says the access token is missing, invalid or expired (the PDS answers
/// `400 ExpiredToken` / `400 InvalidToken` or `401 AuthRequired`/`AuthenticationRequired`).
pub fn is_auth_failure(response: &Response) -> bool {
    let (error, message) = error_of(response);
    // "Bad token scope": the token is valid but lacks a permission; logging in again with the
    // same app password cannot help (and would spend the strict createSession rate limit).
    if message.is_some_and(|m| m.to_ascii_lowercase().contains("scope")) {
        return false;
    }
    if response.status == 401 {
        return true;
    }
    if response.status == 400 {
        return matches!(
            error.as_deref(),
            Some("ExpiredToken" | "InvalidToken" | "AuthRequired" | "AuthenticationRequired")
        );
    }
    false
}

/// Seconds to wait after a 429: `Retry-After`, else the PDS's `ratelimit-reset` (Unix epoch
/// seconds) minus now, rounded up, at least 1.
pub fn rate_limit_seconds(response: &Response, now_ms: i64) -> Option<u32> {
    if let Some(secs) = response.retry_after_seconds() {
        return Some(secs);
    }
    let reset: i64 = response.header("ratelimit-reset")?.trim().parse().ok()?;
    // Small values are a delay in seconds rather than an epoch time.
    let wait_s = if reset > 1_000_000_000 {
        let wait_ms = reset.saturating_mul(1000).saturating_sub(now_ms).max(0);
        (wait_ms + 999) / 1000
    } else {
        reset.max(0)
    };
    Some(u32::try_from(wait_s).unwrap_or(u32::MAX).max(1))
}

/// `"HTTP 400 InvalidRequest: message"`, or with a body excerpt when it is not an XRPC error.
pub fn describe(response: &Response) -> String {
    match error_of(response) {
        (Some(e), Some(m)) => format!("HTTP {} {e}: {m}", response.status),
        (Some(e), None) => format!("HTTP {} {e}", response.status),
        _ => format!("HTTP {}: {}", response.status, excerpt(&response.body)),
    }
}

/// Map an answer: 2xx → its JSON body (an empty body is `{}`); 429 or `RateLimitExceeded` →
/// `rate-limited`; token failures → `rejected` (the caller has already tried to log in again);
/// other 4xx → `rejected`; 5xx and anything else → `unavailable`.
pub fn check(response: &Response, what: &str, now_ms: i64) -> Result<Value, PluginError> {
    let status = response.status;
    if (200..300).contains(&status) {
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        return serde_json::from_slice(&response.body).map_err(|e| {
            PluginError::Unavailable(format!("{what}: the answer is not JSON ({e})"))
        });
    }
    let (error, _) = error_of(response);
    if status == 429 || error.as_deref() == Some("RateLimitExceeded") {
        return Err(PluginError::RateLimited(rate_limit_seconds(
            response, now_ms,
        )));
    }
    if is_auth_failure(response) {
        return Err(PluginError::Rejected(format!(
            "{what}: the session was refused even after logging in again ({})",
            describe(response)
        )));
    }
    if (400..500).contains(&status) {
        return Err(PluginError::Rejected(format!(
            "{what}: {}",
            describe(response)
        )));
    }
    Err(PluginError::Unavailable(format!(
        "{what}: {}",
        describe(response)
    )))
}

/// Milliseconds since the epoch of an AT Protocol datetime. Accepts RFC 3339 with `Z` or an
/// offset, and (seen in the wild) a datetime without offset, read as UTC.
pub fn timestamp_ms(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(ts) = raw.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil = raw.parse::<jiff::civil::DateTime>().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
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
    fn urls_are_form_encoded() {
        assert_eq!(
            url(
                "https://bsky.social",
                "app.bsky.feed.searchPosts",
                &[("q", "#acme lost bag"), ("limit", "100")]
            ),
            "https://bsky.social/xrpc/app.bsky.feed.searchPosts?q=%23acme+lost+bag&limit=100"
        );
        assert_eq!(
            url(
                "http://127.0.0.1:9",
                "com.atproto.server.createSession",
                &[]
            ),
            "http://127.0.0.1:9/xrpc/com.atproto.server.createSession"
        );
    }

    #[test]
    fn answers_map_to_typed_errors() {
        let now = 1_700_000_000_000;
        assert_eq!(
            check(&answer(200, &[], r#"{"uri": "at://x"}"#), "w", now).unwrap()["uri"],
            "at://x"
        );
        assert!(check(&answer(200, &[], ""), "w", now).unwrap().is_object());
        assert!(matches!(
            check(
                &answer(429, &[("ratelimit-reset", "1700000042")], "{}"),
                "w",
                now
            ),
            Err(PluginError::RateLimited(Some(42)))
        ));
        assert!(matches!(
            check(&answer(429, &[("retry-after", "7")], "{}"), "w", now),
            Err(PluginError::RateLimited(Some(7)))
        ));
        assert!(matches!(
            check(&answer(429, &[], "{}"), "w", now),
            Err(PluginError::RateLimited(None))
        ));
        assert!(matches!(
            check(&answer(400, &[], r#"{"error":"ExpiredToken","message":"Token has expired"}"#), "post", now),
            Err(PluginError::Rejected(m)) if m.contains("ExpiredToken") && m.starts_with("post:")
        ));
        assert!(matches!(
            check(&answer(400, &[], r#"{"error":"InvalidRequest","message":"recipient has disabled incoming messages"}"#), "w", now),
            Err(PluginError::Rejected(m)) if m.contains("HTTP 400 InvalidRequest: recipient has disabled")
        ));
        assert!(matches!(
            check(&answer(502, &[], "<html>bad gateway</html>"), "w", now),
            Err(PluginError::Unavailable(m)) if m.contains("HTTP 502: <html>bad gateway</html>")
        ));
        assert!(matches!(
            check(&answer(200, &[], "nope"), "w", now),
            Err(PluginError::Unavailable(m)) if m.contains("not JSON")
        ));
    }

    #[test]
    fn auth_failures_are_recognised() {
        assert!(is_auth_failure(&answer(401, &[], "")));
        assert!(is_auth_failure(&answer(
            400,
            &[],
            r#"{"error":"ExpiredToken"}"#
        )));
        assert!(!is_auth_failure(&answer(
            400,
            &[],
            r#"{"error":"InvalidRequest"}"#
        )));
        assert!(!is_auth_failure(&answer(403, &[], "")));
        assert!(!is_auth_failure(&answer(
            400,
            &[],
            r#"{"error":"InvalidToken","message":"Bad token scope"}"#
        )));
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            timestamp_ms("2023-08-07T05:31:12.156888Z"),
            Some(1_691_386_272_156)
        );
        assert_eq!(
            timestamp_ms("2024-02-22T19:58:13.903293+00:00"),
            Some(1_708_631_893_903)
        );
        // No offset: read as UTC.
        assert_eq!(
            timestamp_ms("2023-07-21T01:33:51.481951"),
            Some(1_689_903_231_481)
        );
        assert_eq!(timestamp_ms("yesterday"), None);
    }
}
