//! Building the outbound reply request and mapping the endpoint's answer.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

use crate::signature::SignatureScheme;

/// How long to wait for the endpoint's response head.
pub const TIMEOUT_MS: u64 = 15_000;
/// Longest response-body excerpt quoted in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// The JSON body POSTed for a reply.
pub fn reply_body(reply: &OutboundReply) -> Value {
    json!({
        "idempotency_key": reply.idempotency_key,
        "conversation": reply.conversation_key,
        "in_reply_to": reply.in_reply_to,
        "recipient": {
            "id": reply.recipient.id,
            "handle": reply.recipient.handle,
        },
        "text": reply.text,
        "private": reply.visibility == Visibility::Private,
    })
}

/// The signed POST for `reply`.
pub fn build_request(
    url: &str,
    scheme: &SignatureScheme,
    secret: &str,
    reply: &OutboundReply,
) -> Request {
    let body = serde_json::to_vec(&reply_body(reply)).unwrap_or_default();
    let signature = scheme.sign(secret, &body);
    let mut request = Request::post(url, body)
        .header("content-type", "application/json")
        .header("idempotency-key", &reply.idempotency_key)
        .header(&scheme.header, &signature);
    request.timeout_ms = Some(TIMEOUT_MS);
    request
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

/// Map the endpoint's response to a receipt or a typed error.
pub fn map_response(response: &Response) -> Result<DeliveryReceipt, PluginError> {
    let status = response.status;
    let summary = || format!("HTTP {status}: {}", excerpt(&response.body));
    match status {
        200..=299 => receipt(status, &response.body),
        429 => Err(PluginError::RateLimited(response.retry_after_seconds())),
        400 | 401 | 403 | 404 | 410 | 422 => Err(PluginError::Rejected(summary())),
        _ => Err(PluginError::Unavailable(summary())),
    }
}

/// Read `{"id": string|int, "url": optional string}` from a 2xx body.
fn receipt(status: u16, body: &[u8]) -> Result<DeliveryReceipt, PluginError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PluginError::Internal(format!(
            "delivery endpoint answered HTTP {status} but its body is not JSON ({e}); expected \
             {{\"id\": ..., \"url\": ...}}"
        ))
    })?;
    let external_id = match value.get("id") {
        Some(Value::String(s)) if s.len() > crate::parse::MAX_ID_BYTES => {
            return Err(PluginError::Internal(format!(
                "delivery endpoint answered HTTP {status} with an `id` of {} bytes, more than {}",
                s.len(),
                crate::parse::MAX_ID_BYTES
            )));
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(Value::Null) | None | Some(Value::String(_)) => {
            return Err(PluginError::Internal(format!(
                "delivery endpoint answered HTTP {status} without an `id` for the posted \
                 message; expected {{\"id\": ..., \"url\": ...}}"
            )));
        }
        Some(_) => {
            return Err(PluginError::Internal(format!(
                "delivery endpoint answered HTTP {status} with an `id` that is neither a string \
                 nor an integer"
            )));
        }
    };
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(String::from);
    Ok(DeliveryReceipt { external_id, url })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Encoding;
    use switchboard_sdk::Author;

    fn reply(visibility: Visibility, in_reply_to: Option<&str>) -> OutboundReply {
        OutboundReply {
            idempotency_key: "reply-7f3a".into(),
            conversation_key: "thread-9".into(),
            in_reply_to: in_reply_to.map(String::from),
            recipient: Author {
                id: "42".into(),
                handle: Some("@alice".into()),
                display_name: Some("Alice".into()),
            },
            text: "Sorry about your bag — we're on it. ^ana".into(),
            visibility,
            extra: vec![("form".into(), "contact".into())],
        }
    }

    fn scheme() -> SignatureScheme {
        SignatureScheme {
            header: "x-signature-256".into(),
            prefix: "sha256=".into(),
            encoding: Encoding::Hex,
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
    fn request_body_and_headers() {
        let request = build_request(
            "https://crm.example/replies",
            &scheme(),
            "k3y",
            &reply(Visibility::Private, Some("m-1")),
        );
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://crm.example/replies");
        assert_eq!(request.timeout_ms, Some(TIMEOUT_MS));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({
                "idempotency_key": "reply-7f3a",
                "conversation": "thread-9",
                "in_reply_to": "m-1",
                "recipient": {"id": "42", "handle": "@alice"},
                "text": "Sorry about your bag — we're on it. ^ana",
                "private": true,
            })
        );
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("idempotency-key"), "reply-7f3a");
        let signature = header("x-signature-256");
        assert!(
            signature.starts_with("sha256=") && signature.len() == 7 + 64,
            "{signature}"
        );
        // The receiver can check it with the same scheme over the exact bytes sent.
        scheme().verify("k3y", &request.body, &signature).unwrap();
        assert!(scheme().verify("other", &request.body, &signature).is_err());
    }

    #[test]
    fn public_reply_without_parent_has_nulls() {
        let mut r = reply(Visibility::Public, None);
        r.recipient.handle = None;
        let body = reply_body(&r);
        assert_eq!(body["private"], json!(false));
        assert_eq!(body["in_reply_to"], Value::Null);
        assert_eq!(body["recipient"], json!({"id": "42", "handle": null}));
        assert!(body.get("extra").is_none());
    }

    #[test]
    fn ok_response_becomes_a_receipt() {
        let r = map_response(&response(
            200,
            &[],
            r#"{"id": "out-1", "url": "https://crm.example/t/1"}"#,
        ))
        .unwrap();
        assert_eq!(r.external_id, "out-1");
        assert_eq!(r.url.as_deref(), Some("https://crm.example/t/1"));
        let r = map_response(&response(201, &[], r#"{"id": 9001}"#)).unwrap();
        assert_eq!(r.external_id, "9001");
        assert_eq!(r.url, None);
    }

    #[test]
    fn ok_response_without_id_is_internal() {
        assert!(matches!(
            map_response(&response(200, &[], r#"{"ok": true}"#)),
            Err(PluginError::Internal(m)) if m.contains("without an `id`")
        ));
        assert!(matches!(
            map_response(&response(204, &[], "")),
            Err(PluginError::Internal(m)) if m.contains("not JSON")
        ));
        assert!(matches!(
            map_response(&response(200, &[], r#"{"id": "  "}"#)),
            Err(PluginError::Internal(m)) if m.contains("without an `id`")
        ));
        assert!(matches!(
            map_response(&response(200, &[], r#"{"id": [1]}"#)),
            Err(PluginError::Internal(m)) if m.contains("neither a string nor an integer")
        ));
    }

    #[test]
    fn rate_limited_with_and_without_retry_after() {
        assert!(matches!(
            map_response(&response(429, &[("Retry-After", " 30 ")], "slow down")),
            Err(PluginError::RateLimited(Some(30)))
        ));
        assert!(matches!(
            map_response(&response(
                429,
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                ""
            )),
            Err(PluginError::RateLimited(None))
        ));
    }

    #[test]
    fn client_errors_are_rejected_with_excerpt() {
        let long = format!(
            "{{\"error\": \"recipient blocked\",\n \"detail\": \"{}\"}}",
            "x".repeat(500)
        );
        let Err(PluginError::Rejected(message)) = map_response(&response(403, &[], &long)) else {
            panic!("expected rejected")
        };
        assert!(
            message.starts_with("HTTP 403: {\"error\": \"recipient blocked\", \"detail\": \"xxx"),
            "{message}"
        );
        assert_eq!(message.chars().count(), "HTTP 403: ".len() + EXCERPT_CHARS);
        assert!(message.ends_with('…'));
        for status in [400, 401, 404, 410, 422] {
            assert!(
                matches!(map_response(&response(status, &[], "")), Err(PluginError::Rejected(m)) if m == format!("HTTP {status}: (empty body)"))
            );
        }
    }

    #[test]
    fn server_and_other_errors_are_unavailable() {
        assert!(matches!(
            map_response(&response(503, &[], "upstream down")),
            Err(PluginError::Unavailable(m)) if m == "HTTP 503: upstream down"
        ));
        assert!(matches!(
            map_response(&response(302, &[], "")),
            Err(PluginError::Unavailable(_))
        ));
        assert!(matches!(
            map_response(&response(409, &[], "")),
            Err(PluginError::Unavailable(_))
        ));
    }
}
