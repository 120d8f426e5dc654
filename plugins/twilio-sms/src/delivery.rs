//! Replies out: `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded
//! `To`, `From`, `Body`, HTTP Basic auth; Twilio's answers mapped to receipts and typed errors.

use base64::Engine as _;
use serde_json::Value;
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError};

/// The real Twilio REST API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Twilio's limit on `Body`, in characters.
pub const MAX_BODY_CHARS: u32 = 1600;
/// How long to wait for Twilio's answer.
pub const TIMEOUT_MS: u64 = 15_000;

fn extra<'a>(reply: &'a OutboundReply, name: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// How Twilio writes a WhatsApp address (`whatsapp:+14155550100`).
pub const WHATSAPP_PREFIX: &str = "whatsapp:";

/// Whether `sid` can go into the URL path as is (Twilio SIDs are `AC` + 32 hex digits).
pub fn is_valid_account_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The sender: config `from_number`, else the brand number the customer wrote to (`twilio-to`).
pub fn sender(from_number: Option<&str>, reply: &OutboundReply) -> Result<String, PluginError> {
    from_number
        .filter(|f| !f.trim().is_empty())
        .or_else(|| extra(reply, "twilio-to"))
        .map(|f| f.trim().to_string())
        .ok_or_else(|| {
            PluginError::NotConfigured(
                "no sender: set config `from_number`, or answer a message that carries extra \
                 `twilio-to`"
                    .into(),
            )
        })
}

/// The recipient: the customer's number (the recipient's id, else extra `twilio-from`).
pub fn recipient(reply: &OutboundReply) -> Result<String, PluginError> {
    Some(reply.recipient.id.trim())
        .filter(|r| !r.is_empty())
        .or_else(|| extra(reply, "twilio-from"))
        .map(String::from)
        .ok_or_else(|| PluginError::InvalidInput("the reply has no recipient phone number".into()))
}

/// The Messages API request.
pub fn build_request(
    api_base: &str,
    account_sid: &str,
    auth_token: &str,
    from: &str,
    reply: &OutboundReply,
) -> Result<Request, PluginError> {
    let to = recipient(reply)?;
    // A WhatsApp conversation is answered from the brand's WhatsApp sender: Twilio needs the
    // same `whatsapp:` prefix on both ends, and a configured `from_number` is written bare.
    let from = match to.strip_prefix(WHATSAPP_PREFIX) {
        Some(_) if !from.starts_with(WHATSAPP_PREFIX) => format!("{WHATSAPP_PREFIX}{from}"),
        _ => from.to_string(),
    };
    let from = from.as_str();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("To", &to)
        .append_pair("From", from)
        .append_pair("Body", &reply.text)
        .finish();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"));
    let mut request = Request::post(
        &format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            api_base.trim_end_matches('/')
        ),
        body,
    )
    .header("content-type", "application/x-www-form-urlencoded")
    .header("accept", "application/json")
    .header("authorization", &format!("Basic {credentials}"));
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok(request)
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// Map Twilio's answer. Errors are `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
pub fn map_response(response: &Response) -> Result<DeliveryReceipt, PluginError> {
    let status = response.status;
    let json = response.json::<Value>().ok();
    if (200..300).contains(&status) {
        let sid = json
            .as_ref()
            .and_then(|v| v.get("sid"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PluginError::Internal(format!(
                    "Twilio answered HTTP {status} without a message `sid`: {}",
                    excerpt(&response.text())
                ))
            })?;
        return Ok(DeliveryReceipt {
            external_id: sid.to_string(),
            url: None,
        });
    }
    let code = json
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_u64);
    let message = json
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(excerpt)
        .unwrap_or_else(|| excerpt(&response.text()));
    let what = match code {
        Some(c) => format!("Twilio error {c} (HTTP {status}): {message}"),
        None => format!("Twilio answered HTTP {status}: {message}"),
    };
    match (status, code) {
        (429, _) | (_, Some(20429)) => {
            Err(PluginError::RateLimited(response.retry_after_seconds()))
        }
        (401, _) | (_, Some(20003)) => Err(PluginError::Rejected(format!(
            "Twilio refused the account SID / auth token: {what}"
        ))),
        (_, Some(21610)) => Err(PluginError::Rejected(format!(
            "the recipient has unsubscribed (replied STOP) from this sender: {what}"
        ))),
        (_, Some(21211 | 21614)) => Err(PluginError::Rejected(format!(
            "the recipient number is not a valid (mobile) number: {what}"
        ))),
        (500..=599, _) => Err(PluginError::Unavailable(what)),
        (400..=499, _) => Err(PluginError::Rejected(what)),
        _ => Err(PluginError::Unavailable(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Author, Visibility};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn reply(extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "r-1".into(),
            conversation_key: "+15005550006|+14155550100".into(),
            in_reply_to: Some("SM1".into()),
            recipient: Author {
                id: "+14155550100".into(),
                handle: None,
                display_name: None,
            },
            text: "Hi! Your order ships today & arrives Friday 📦".into(),
            visibility: Visibility::Private,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("retry-after".into(), "4".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sids_and_senders() {
        assert!(is_valid_account_sid(SID));
        assert!(!is_valid_account_sid("AC/../x"));
        assert!(!is_valid_account_sid("SK0123456789abcdef0123456789abcdef"));
        let r = reply(&[("twilio-to", "+15005550006")]);
        assert_eq!(sender(Some("+18005551212"), &r).unwrap(), "+18005551212");
        assert_eq!(sender(None, &r).unwrap(), "+15005550006");
        assert!(matches!(
            sender(Some(" "), &reply(&[])),
            Err(PluginError::NotConfigured(_))
        ));
    }

    #[test]
    fn request_shape() {
        let req = build_request(
            "https://api.twilio.com/",
            SID,
            "tok",
            "+15005550006",
            &reply(&[]),
        )
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
        );
        let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
        assert_eq!(
            form,
            vec![
                ("To".to_string(), "+14155550100".to_string()),
                ("From".to_string(), "+15005550006".to_string()),
                (
                    "Body".to_string(),
                    "Hi! Your order ships today & arrives Friday 📦".to_string()
                ),
            ]
        );
        let auth = &req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, format!("{SID}:tok").as_bytes());
    }

    #[test]
    fn answers() {
        let receipt = map_response(&response(
            201,
            r#"{"sid":"SMabc","status":"queued","num_segments":"1"}"#,
        ))
        .unwrap();
        assert_eq!((receipt.external_id.as_str(), receipt.url), ("SMabc", None));
        assert!(matches!(
            map_response(&response(201, "{}")),
            Err(PluginError::Internal(_))
        ));
        assert!(matches!(
            map_response(&response(
                429,
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#
            )),
            Err(PluginError::RateLimited(Some(4)))
        ));
        assert!(
            matches!(map_response(&response(401, r#"{"code":20003,"message":"Authenticate","status":401}"#)), Err(PluginError::Rejected(m)) if m.contains("20003"))
        );
        assert!(
            matches!(map_response(&response(400, r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#)), Err(PluginError::Rejected(m)) if m.contains("unsubscribed"))
        );
        assert!(
            matches!(map_response(&response(400, r#"{"code":21211,"message":"The 'To' number 123 is not a valid phone number.","status":400}"#)), Err(PluginError::Rejected(m)) if m.contains("21211"))
        );
        assert!(
            matches!(map_response(&response(400, r#"{"code":21614,"message":"'To' number is not a valid mobile number","status":400}"#)), Err(PluginError::Rejected(m)) if m.contains("mobile"))
        );
        assert!(
            matches!(map_response(&response(503, "Service Unavailable")), Err(PluginError::Unavailable(m)) if m.contains("503"))
        );
    }
}
