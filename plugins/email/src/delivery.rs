//! Replies out through the provider that received the mail, with the threading headers that
//! make the customer's client file the reply under their message:
//! `In-Reply-To: <their Message-ID>`, `References: <their References> <their Message-ID>`, and
//! the subject `Re: <their subject>` (no second `Re:`).
//!
//! - Postmark: `POST {api}/email`, JSON, `X-Postmark-Server-Token`; `Headers` [{Name, Value}].
//! - Mailgun: `POST {api}/v3/{domain}/messages`, form, Basic `api:<key>`; `h:In-Reply-To`,
//!   `h:References`.
//! - SendGrid: `POST {api}/v3/mail/send`, JSON, Bearer; a `headers` object. Answers 202 with the
//!   id in `X-Message-Id`.

use base64::Engine as _;
use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError};

use crate::Provider;
use crate::email::{MAX_REFERENCES, is_address, parse_ids};

/// How long to wait for the provider's answer.
pub const TIMEOUT_MS: u64 = 20_000;

fn extra<'a>(reply: &'a OutboundReply, name: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A header value with line breaks and other controls removed (no header injection from a
/// customer's subject).
fn header_safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The reply's subject: the customer's with one `Re: ` in front.
pub fn subject(reply: &OutboundReply) -> String {
    let original = header_safe(extra(reply, "email-subject").unwrap_or(""));
    if original.is_empty() {
        return "Re: your message".into();
    }
    let lower = original.to_lowercase();
    if ["re:", "re :", "aw:", "sv:", "antw:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        original
    } else {
        format!("Re: {original}")
    }
}

/// `In-Reply-To` and `References` values (bracketed ids), if the answered message had an id.
pub fn threading(reply: &OutboundReply) -> Option<(String, String)> {
    let id = extra(reply, "email-message-id")
        .or(reply.in_reply_to.as_deref())
        .map(|i| i.trim_start_matches('<').trim_end_matches('>').trim())
        .filter(|i| {
            !i.is_empty() && !i.contains(char::is_whitespace) && !i.contains(char::is_control)
        })?;
    let mut refs: Vec<String> = extra(reply, "email-references")
        .map(parse_ids)
        .unwrap_or_default();
    refs.retain(|r| r != id);
    refs.push(id.to_string());
    if refs.len() > MAX_REFERENCES {
        let tail = refs.split_off(refs.len() - (MAX_REFERENCES - 1));
        refs.truncate(1);
        refs.extend(tail);
    }
    let bracket = |i: &str| format!("<{i}>");
    Some((
        bracket(id),
        refs.iter()
            .map(|r| bracket(r))
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// The customer's address: the `Reply-To` of an authenticated sender (extra `email-reply-to`,
/// set only then), else the recipient's id (their `From`).
pub fn recipient(reply: &OutboundReply) -> Result<String, PluginError> {
    if let Some(r) = extra(reply, "email-reply-to").filter(|r| is_address(r)) {
        return Ok(r.to_lowercase());
    }
    let to = reply.recipient.id.trim().to_lowercase();
    if is_address(&to) {
        Ok(to)
    } else {
        Err(PluginError::InvalidInput(
            "the reply's recipient is not an e-mail address".into(),
        ))
    }
}

/// The sender: config `from_address`, else the first address the customer wrote to.
pub fn sender(from_address: Option<&str>, reply: &OutboundReply) -> Result<String, PluginError> {
    from_address
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(String::from)
        .or_else(|| {
            extra(reply, "email-to")
                .and_then(|t| t.split(',').map(str::trim).find(|a| is_address(a)))
                .map(String::from)
        })
        .map(|f| header_safe(&f))
        .ok_or_else(|| {
            PluginError::NotConfigured(
                "no sender: set config `from_address`, or answer a message that carries extra \
                 `email-to`"
                    .into(),
            )
        })
}

/// `Name <addr>` into (name, addr); a bare address has no name.
pub fn split_mailbox(mailbox: &str) -> (Option<String>, String) {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = mailbox[..open].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                mailbox[open + 1..close].trim().to_string(),
            )
        }
        _ => (None, mailbox.trim().to_string()),
    }
}

/// Credentials and addressing for one send.
pub struct Send<'a> {
    pub provider: Provider,
    pub api_base: &'a str,
    /// Postmark server token, Mailgun API key or SendGrid API key.
    pub api_key: &'a str,
    /// Mailgun's sending domain.
    pub domain: Option<&'a str>,
    pub from: &'a str,
    /// Postmark message stream (`outbound` by default).
    pub message_stream: Option<&'a str>,
}

/// The provider's send request.
pub fn build_request(send: &Send<'_>, reply: &OutboundReply) -> Result<Request, PluginError> {
    let to = recipient(reply)?;
    let subject = subject(reply);
    let threading = threading(reply);
    let base = send.api_base.trim_end_matches('/');
    let mut request = match send.provider {
        Provider::Postmark => {
            let mut body = json!({
                "From": send.from,
                "To": to,
                "Subject": subject,
                "TextBody": reply.text,
                "MessageStream": send.message_stream.unwrap_or("outbound"),
            });
            if let Some((irt, refs)) = &threading {
                body["Headers"] = json!([
                    {"Name": "In-Reply-To", "Value": irt},
                    {"Name": "References", "Value": refs},
                ]);
            }
            Request::post_json(&format!("{base}/email"), &body)
                .header("accept", "application/json")
                .header("x-postmark-server-token", send.api_key)
        }
        Provider::Mailgun => {
            let domain = send
                .domain
                .filter(|d| {
                    !d.is_empty()
                        && d.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                })
                .ok_or_else(|| {
                    PluginError::NotConfigured(
                        "config `domain` (the Mailgun sending domain) is missing or not a domain"
                            .into(),
                    )
                })?;
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("from", send.from)
                .append_pair("to", &to)
                .append_pair("subject", &subject)
                .append_pair("text", &reply.text);
            if let Some((irt, refs)) = &threading {
                form.append_pair("h:In-Reply-To", irt)
                    .append_pair("h:References", refs);
            }
            let credentials =
                base64::engine::general_purpose::STANDARD.encode(format!("api:{}", send.api_key));
            Request::post(&format!("{base}/v3/{domain}/messages"), form.finish())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .header("authorization", &format!("Basic {credentials}"))
        }
        Provider::Sendgrid => {
            // SendGrid wants the bare address and the name apart.
            let (from_name, from_email) = split_mailbox(send.from);
            let mut from = json!({"email": from_email});
            if let Some(name) = from_name {
                from["name"] = json!(name);
            }
            let mut body = json!({
                "personalizations": [{"to": [{"email": to}]}],
                "from": from,
                "subject": subject,
                "content": [{"type": "text/plain", "value": reply.text}],
            });
            if let Some((irt, refs)) = &threading {
                body["headers"] = json!({"In-Reply-To": irt, "References": refs});
            }
            Request::post_json(&format!("{base}/v3/mail/send"), &body).bearer(send.api_key)
        }
    };
    request.timeout_ms = Some(TIMEOUT_MS);
    Ok(request)
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(300).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The provider's explanation, from its error body.
fn error_text(provider: Provider, json: Option<&Value>, raw: &str) -> String {
    let found = json.and_then(|v| match provider {
        Provider::Postmark => Some(format!(
            "ErrorCode {}: {}",
            v.get("ErrorCode")?,
            v.get("Message").and_then(Value::as_str).unwrap_or("")
        )),
        Provider::Mailgun => v.get("message").and_then(Value::as_str).map(String::from),
        Provider::Sendgrid => {
            let msgs: Vec<&str> = v
                .get("errors")?
                .as_array()?
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect();
            (!msgs.is_empty()).then(|| msgs.join("; "))
        }
    });
    excerpt(&found.unwrap_or_else(|| raw.to_string()))
}

/// Map the provider's answer to a receipt or a typed error.
pub fn map_response(
    provider: Provider,
    response: &Response,
) -> Result<DeliveryReceipt, PluginError> {
    let status = response.status;
    let json = response.json::<Value>().ok();
    let name = provider.display_name();
    if (200..300).contains(&status) {
        let id = match provider {
            Provider::Postmark => json
                .as_ref()
                .and_then(|v| v.get("MessageID"))
                .and_then(Value::as_str)
                .map(String::from),
            Provider::Mailgun => json
                .as_ref()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(|i| i.trim_start_matches('<').trim_end_matches('>').to_string()),
            Provider::Sendgrid => response.header("x-message-id").map(String::from),
        }
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| {
            PluginError::Internal(format!(
                "{name} answered HTTP {status} without a message id: {}",
                excerpt(&response.text())
            ))
        })?;
        return Ok(DeliveryReceipt {
            external_id: id,
            url: None,
        });
    }
    // Postmark reports most refusals as HTTP 422 with an `ErrorCode`; 406 is an inactive
    // (bounced, unsubscribed or spam-complaining) recipient, 10 a bad server token.
    let postmark_code = (provider == Provider::Postmark)
        .then(|| json.as_ref()?.get("ErrorCode")?.as_u64())
        .flatten();
    let what = format!(
        "{name} answered HTTP {status}: {}",
        error_text(provider, json.as_ref(), &response.text())
    );
    match (status, postmark_code) {
        (429, _) => Err(PluginError::RateLimited(response.retry_after_seconds())),
        (401 | 403, _) | (_, Some(10)) => Err(PluginError::Rejected(format!(
            "{name} refused the API credentials: {what}"
        ))),
        (_, Some(406)) => Err(PluginError::Rejected(format!(
            "the recipient is inactive at {name} (bounced, unsubscribed or marked spam): {what}"
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

    fn reply(extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "r-1".into(),
            conversation_key: "root@example.com".into(),
            in_reply_to: Some("c@example.com".into()),
            recipient: Author {
                id: "Jane@Example.com".into(),
                handle: None,
                display_name: None,
            },
            text: "We're on it.".into(),
            visibility: Visibility::Private,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn subject_and_threading() {
        let r = reply(&[
            ("email-subject", "Order #1234\r\nBcc: evil@x.example"),
            ("email-message-id", "c@example.com"),
            ("email-references", "root@example.com b@acme.example"),
        ]);
        assert_eq!(subject(&r), "Re: Order #1234 Bcc: evil@x.example");
        assert_eq!(
            subject(&reply(&[("email-subject", "RE: Order")])),
            "RE: Order"
        );
        assert_eq!(subject(&reply(&[])), "Re: your message");
        let (irt, refs) = threading(&r).unwrap();
        assert_eq!(irt, "<c@example.com>");
        assert_eq!(refs, "<root@example.com> <b@acme.example> <c@example.com>");
        // Only the message id known: References is that id alone.
        let (_, refs) = threading(&reply(&[])).unwrap();
        assert_eq!(refs, "<c@example.com>");
    }

    #[test]
    fn senders_and_recipients() {
        let r = reply(&[("email-to", "care@acme.example, other@acme.example")]);
        assert_eq!(sender(None, &r).unwrap(), "care@acme.example");
        assert_eq!(
            sender(Some("help@acme.example"), &r).unwrap(),
            "help@acme.example"
        );
        assert!(matches!(
            sender(None, &reply(&[])),
            Err(PluginError::NotConfigured(_))
        ));
        assert_eq!(recipient(&r).unwrap(), "jane@example.com");
        let via = reply(&[("email-reply-to", "Orders@Example.com")]);
        assert_eq!(recipient(&via).unwrap(), "orders@example.com");
        assert_eq!(
            split_mailbox("\"Acme Care\" <care@acme.example>"),
            (
                Some("Acme Care".to_string()),
                "care@acme.example".to_string()
            )
        );
        assert_eq!(
            split_mailbox("care@acme.example"),
            (None, "care@acme.example".to_string())
        );
    }

    #[test]
    fn answers_are_mapped() {
        let resp = |status, body: &str| Response {
            status,
            headers: vec![("retry-after".into(), "7".into())],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            map_response(
                Provider::Postmark,
                &resp(
                    200,
                    r#"{"ErrorCode":0,"Message":"OK","MessageID":"b7bc2f4a"}"#
                )
            )
            .unwrap()
            .external_id,
            "b7bc2f4a"
        );
        assert!(
            matches!(map_response(Provider::Postmark, &resp(422, r#"{"ErrorCode":406,"Message":"You tried to send to a recipient that has been marked as inactive."}"#)), Err(PluginError::Rejected(m)) if m.contains("inactive"))
        );
        assert!(matches!(
            map_response(Provider::Mailgun, &resp(429, "")),
            Err(PluginError::RateLimited(Some(7)))
        ));
        assert!(matches!(
            map_response(Provider::Sendgrid, &resp(503, "")),
            Err(PluginError::Unavailable(_))
        ));
        assert!(matches!(
            map_response(Provider::Sendgrid, &resp(202, "")),
            Err(PluginError::Internal(_))
        ));
    }
}
