//! Replies out through `POST /{graph-version}/{phone-number-id}/messages`, and the Cloud API's
//! answers mapped to the contract's errors.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

use meta_graph::error::{self, GraphError};
use meta_graph::graph::{self, Graph};

/// Longest text body the Cloud API accepts, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Where and to whom a reply goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub phone_number_id: String,
    pub recipient: Recipient,
}

/// The addressee of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    /// A phone number / wa_id: `"to"`.
    Phone(String),
    /// A business-scoped user id (`US.1349…`) of a customer whose phone number is hidden:
    /// `"recipient"`.
    UserId(String),
    /// A WhatsApp group: `"recipient_type": "group", "to": <group id>`.
    Group(String),
}

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    meta_graph::connector::extra(reply, key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A path segment we are willing to put in a URL: ids are digits, letters, `.`, `_`, `-`.
fn safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A business-scoped user id: two-letter country code, a dot, then the id.
fn is_bsuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_uppercase() && b[2] == b'.'
}

/// Work out the sending phone number and the addressee from the reply's `extra` (what the
/// inbound message carried), its conversation key (`<phone-number-id>:<peer>`), its recipient,
/// and the configured fallback `phone_number_id`.
pub fn target(reply: &OutboundReply, fallback_phone: Option<&str>) -> Result<Target, PluginError> {
    let (key_phone, key_peer) = reply
        .conversation_key
        .split_once(':')
        .map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let phone_number_id = extra(reply, "phone-number-id")
        .or(key_phone.filter(|p| !p.is_empty()))
        .or(fallback_phone)
        .ok_or_else(|| {
            PluginError::NotConfigured(
                "no business phone number to send from: the reply carries no `phone-number-id` \
                 and config `phone_number_id` is not set"
                    .into(),
            )
        })?;
    if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) || phone_number_id.is_empty() {
        return Err(PluginError::InvalidInput(format!(
            "phone number id `{phone_number_id}` is not numeric"
        )));
    }
    let recipient = if let Some(group) = extra(reply, "group-id") {
        Recipient::Group(group.into())
    } else if let Some(wa_id) = extra(reply, "wa-id") {
        Recipient::Phone(wa_id.into())
    } else {
        let id = Some(reply.recipient.id.trim())
            .filter(|s| !s.is_empty())
            .or(key_peer.filter(|p| !p.is_empty()))
            .or(extra(reply, "user-id"))
            .ok_or_else(|| PluginError::InvalidInput("the reply has no recipient".into()))?;
        if is_bsuid(id) {
            Recipient::UserId(id.into())
        } else {
            Recipient::Phone(id.into())
        }
    };
    let addressee = match &recipient {
        Recipient::Phone(s) | Recipient::UserId(s) | Recipient::Group(s) => s,
    };
    if !safe_id(addressee.trim_start_matches('+')) && !addressee.contains('@') {
        return Err(PluginError::InvalidInput(format!(
            "recipient `{addressee}` is not a WhatsApp id"
        )));
    }
    Ok(Target {
        phone_number_id: phone_number_id.into(),
        recipient,
    })
}

/// The JSON body of a text reply; `context.message_id` makes it a quoted (threaded) reply.
pub fn body(target: &Target, reply: &OutboundReply) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "type": "text",
        "text": {"body": reply.text, "preview_url": false},
    });
    match &target.recipient {
        Recipient::Phone(to) => {
            body["recipient_type"] = "individual".into();
            body["to"] = to.as_str().into();
        }
        Recipient::UserId(id) => {
            body["recipient_type"] = "individual".into();
            body["recipient"] = id.as_str().into();
        }
        Recipient::Group(group) => {
            body["recipient_type"] = "group".into();
            body["to"] = group.as_str().into();
        }
    }
    if let Some(quoted) = reply.in_reply_to.as_deref().filter(|q| !q.is_empty()) {
        body["context"] = json!({"message_id": quoted});
    }
    body
}

/// Check what the Cloud API would refuse anyway, before spending a request on it.
pub fn check(reply: &OutboundReply) -> Result<(), PluginError> {
    if reply.visibility == Visibility::Public {
        return Err(PluginError::Rejected(
            "WhatsApp has no public replies: every WhatsApp message is a private chat message; \
             send the reply with private visibility"
                .into(),
        ));
    }
    if reply.text.trim().is_empty() {
        return Err(PluginError::InvalidInput("the reply text is empty".into()));
    }
    let chars = reply.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(PluginError::InvalidInput(format!(
            "the reply is {chars} characters; WhatsApp text messages allow at most \
             {MAX_TEXT_CHARS}"
        )));
    }
    Ok(())
}

/// The full request: `POST {api_base}/{graph_version}/{phone_number_id}/messages`, bearer
/// token, JSON body, 15 s timeout.
pub fn build_request(
    graph: &Graph,
    access_token: &str,
    reply: &OutboundReply,
    fallback_phone: Option<&str>,
) -> Result<Request, PluginError> {
    check(reply)?;
    let target = target(reply, fallback_phone)?;
    let url = graph.url(&format!("{}/messages", target.phone_number_id));
    Ok(graph::post_json(&url, access_token, &body(&target, reply)))
}

/// WhatsApp Cloud API error codes, then Meta's common ones, then the HTTP status.
pub fn map_error(e: &GraphError, retry_after: Option<u32>) -> PluginError {
    if e.status == 429 {
        return PluginError::RateLimited(retry_after);
    }
    match e.code {
        Some(131047) => PluginError::Rejected(format!(
            "outside the 24-hour customer service window: the customer last wrote more than 24 \
             hours ago, so only an approved template message can reach them ({})",
            e.summary()
        )),
        // Cloud API throughput, pair rate, spam rate limits; WABA-level rate limit.
        Some(130429 | 131056 | 131048 | 80007) => PluginError::RateLimited(retry_after),
        Some(131026) => PluginError::Rejected(format!(
            "the message is undeliverable to this customer (not on WhatsApp, old app, or \
             blocked the business) ({})",
            e.summary()
        )),
        Some(131051) => {
            PluginError::Rejected(format!("unsupported message type ({})", e.summary()))
        }
        Some(131000 | 131016 | 133004) => PluginError::Unavailable(e.summary()),
        Some(131031) => {
            PluginError::Rejected(format!("the business account is locked ({})", e.summary()))
        }
        _ => error::map_error(e, retry_after),
    }
}

/// Map the Cloud API's answer: 2xx with `messages[0].id` → receipt; otherwise the error.
pub fn map_response(response: &Response) -> Result<DeliveryReceipt, PluginError> {
    if (200..300).contains(&response.status) {
        let json: Value = serde_json::from_slice(&response.body).map_err(|e| {
            PluginError::Internal(format!("the Cloud API answered success with non-JSON: {e}"))
        })?;
        let id = json["messages"][0]["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PluginError::Internal(
                    "the Cloud API answered success without `messages[0].id`".into(),
                )
            })?;
        return Ok(DeliveryReceipt {
            external_id: id.into(),
            url: None,
        });
    }
    let e = GraphError::parse(response.status, &response.body);
    Err(map_error(&e, response.retry_after_seconds()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta_graph::test_support::header;
    use switchboard_sdk::Author;

    fn reply(extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "k1".into(),
            conversation_key: "106:4915".into(),
            in_reply_to: Some("wamid.Q".into()),
            recipient: Author {
                id: "4915".into(),
                handle: None,
                display_name: Some("Casey".into()),
            },
            text: "Sorry about that, Casey. ^Ana".into(),
            visibility: Visibility::Private,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A Cloud API answer.
    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        meta_graph::test_support::response(status, headers, body)
    }

    #[test]
    fn builds_the_documented_request() {
        let r = build_request(
            &Graph::from_lookup(|_| None).unwrap(),
            "EAAG",
            &reply(&[("phone-number-id", "777"), ("wa-id", "4915")]),
            None,
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/777/messages");
        assert_eq!(header(&r, "authorization"), Some("Bearer EAAG"));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "4915", "type": "text",
                "text": {"body": "Sorry about that, Casey. ^Ana", "preview_url": false},
                "context": {"message_id": "wamid.Q"}})
        );
    }

    #[test]
    fn targets_come_from_extra_then_the_conversation_key_then_config() {
        let t = target(&reply(&[]), None).unwrap();
        assert_eq!(t.phone_number_id, "106");
        assert_eq!(t.recipient, Recipient::Phone("4915".into()));
        let mut r = reply(&[]);
        r.conversation_key = "thread".into();
        assert_eq!(target(&r, Some("555")).unwrap().phone_number_id, "555");
        assert!(matches!(
            target(&r, None),
            Err(PluginError::NotConfigured(_))
        ));
        let g = target(&reply(&[("group-id", "120363418770915618@g.us")]), None).unwrap();
        assert_eq!(
            g.recipient,
            Recipient::Group("120363418770915618@g.us".into())
        );
        let mut r = reply(&[]);
        r.recipient.id = "US.13491208655302741918".into();
        let t = target(&r, None).unwrap();
        assert_eq!(
            t.recipient,
            Recipient::UserId("US.13491208655302741918".into())
        );
        let body = body(&t, &r);
        assert_eq!(body["recipient"], "US.13491208655302741918");
        assert!(body.get("to").is_none());
        let mut r = reply(&[("phone-number-id", "1/../2")]);
        r.recipient.id = "x".into();
        assert!(matches!(
            target(&r, None),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn public_empty_and_overlong_replies_are_refused_before_sending() {
        let mut r = reply(&[]);
        r.visibility = Visibility::Public;
        assert!(
            matches!(check(&r), Err(PluginError::Rejected(m)) if m.contains("no public replies"))
        );
        let mut r = reply(&[]);
        r.text = "  ".into();
        assert!(matches!(check(&r), Err(PluginError::InvalidInput(_))));
        r.text = "é".repeat(4096);
        assert!(check(&r).is_ok());
        r.text.push('!');
        assert!(matches!(check(&r), Err(PluginError::InvalidInput(m)) if m.contains("4097")));
        // No context without a message to quote.
        let mut r = reply(&[]);
        r.in_reply_to = None;
        let t = target(&r, None).unwrap();
        assert!(body(&t, &r).get("context").is_none());
    }

    #[test]
    fn maps_answers() {
        let ok = response(
            200,
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"4915","wa_id":"4915"}],"messages":[{"id":"wamid.OUT"}]}"#,
            &[],
        );
        assert_eq!(map_response(&ok).unwrap().external_id, "wamid.OUT");
        assert!(matches!(
            map_response(&response(200, "{}", &[])),
            Err(PluginError::Internal(_))
        ));
        let err = |code: i64, status: u16| {
            map_response(&response(
                status,
                &format!(r#"{{"error":{{"message":"m{code}","code":{code}}}}}"#),
                &[("retry-after", "30")],
            ))
            .unwrap_err()
        };
        assert!(
            matches!(err(131047, 400), PluginError::Rejected(m) if m.contains("24-hour customer service window") && m.contains("131047"))
        );
        for code in [130429, 131056, 4, 80007] {
            assert!(
                matches!(err(code, 400), PluginError::RateLimited(Some(30))),
                "{code}"
            );
        }
        assert!(matches!(err(1, 429), PluginError::RateLimited(Some(30))));
        assert!(matches!(err(190, 401), PluginError::Rejected(m) if m.contains("token")));
        assert!(
            matches!(err(131026, 400), PluginError::Rejected(m) if m.contains("undeliverable"))
        );
        assert!(matches!(err(131051, 400), PluginError::Rejected(_)));
        for code in [131000, 1, 2] {
            assert!(
                matches!(err(code, 500), PluginError::Unavailable(_)),
                "{code}"
            );
        }
        assert!(matches!(
            map_response(&response(503, "upstream down", &[])),
            Err(PluginError::Unavailable(m)) if m == "HTTP 503"
        ));
        assert!(matches!(err(100, 400), PluginError::Rejected(m) if m.contains("m100")));
    }
}
