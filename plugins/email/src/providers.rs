//! Each provider's inbound webhook body into an [`Email`].
//!
//! - **Postmark** inbound webhook: JSON (`FromFull`, `ToFull`, `CcFull`, `Subject`, `MessageID`,
//!   `Date`, `TextBody`, `HtmlBody`, `Headers` [{`Name`,`Value`}], `Attachments`
//!   [{`Name`,`ContentType`,`ContentLength`}], optional `RawEmail`).
//! - **Mailgun** routes (`forward()`): a form, urlencoded or `multipart/form-data` when there are
//!   attachments, with `from`, `recipient`, `subject`, `body-plain`, `body-html`,
//!   `message-headers` (JSON [[name, value], …]), `Message-Id`, `In-Reply-To`, `References`,
//!   `attachment-N` files; or `body-mime` (the raw message) when the route URL ends in `mime`.
//! - **SendGrid** Inbound Parse: `multipart/form-data`; with "POST the raw, full MIME message"
//!   the message is the `email` field, else parsed fields `from`, `to`, `subject`, `text`,
//!   `html`, `headers` (raw header block), `charsets` (JSON: each field's charset), `dkim`,
//!   `SPF`, `attachment-info` and the attachment files.

use serde_json::Value;
use switchboard_sdk::PluginError;

use crate::email::{Email, EmailAttachment, header, thread_from_headers};
use crate::mime::{self, FormField};

/// Largest webhook body accepted (providers cap inbound mail near here: Postmark 35 MB total,
/// SendGrid 30 MB, Mailgun 25 MB; the host's own request limit is usually lower).
pub const MAX_BODY_BYTES: usize = 40 * 1024 * 1024;

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Postmark's JSON.
pub fn postmark(body: &[u8]) -> Result<Email, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("Postmark body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(PluginError::InvalidInput(
            "Postmark body is not a JSON object".into(),
        ));
    }
    // Postmark can include the raw message (`RawEmail`, an option on the inbound stream); it is
    // the most faithful source of the threading headers, so it is read when present.
    let raw = s(&v, "RawEmail").and_then(|r| mime::parse_message(r.as_bytes()));
    let from_full = v.get("FromFull");
    let addresses = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| s(x, "Email")).collect())
            .unwrap_or_default()
    };
    let headers: Vec<(String, String)> = v
        .get("Headers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| Some((s(h, "Name")?, s(h, "Value").unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    let attachments = v
        .get("Attachments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| EmailAttachment {
                    filename: s(x, "Name"),
                    content_type: s(x, "ContentType"),
                    size: x
                        .get("ContentLength")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok()),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut email = Email {
        from: from_full
            .and_then(|f| s(f, "Email"))
            .or_else(|| s(&v, "From"))
            .unwrap_or_default(),
        from_name: from_full
            .and_then(|f| s(f, "Name"))
            .or_else(|| s(&v, "FromName")),
        reply_to: s(&v, "ReplyTo").map(|r| address_and_name(&r).0),
        to: [addresses("ToFull"), addresses("CcFull")].concat(),
        subject: s(&v, "Subject"),
        date_ms: s(&v, "Date")
            .and_then(|d| mail_parser::DateTime::parse_rfc822(&d))
            .map(|d| d.to_timestamp().saturating_mul(1000)),
        text: v.get("TextBody").and_then(Value::as_str).map(String::from),
        html: s(&v, "HtmlBody"),
        attachments,
        headers,
        provider_id: s(&v, "MessageID"),
        ..Email::default()
    };
    if let Some(raw) = raw {
        email.message_id = raw.message_id;
        email.in_reply_to = raw.in_reply_to;
        email.references = raw.references;
    }
    thread_from_headers(&mut email);
    Ok(email)
}

/// The form fields of a Mailgun or SendGrid request, whichever encoding it used.
pub fn form_fields(content_type: Option<&str>, body: &[u8]) -> Result<Vec<FormField>, PluginError> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        let boundary = mime::boundary(content_type.unwrap_or("")).ok_or_else(|| {
            PluginError::InvalidInput("multipart/form-data without a boundary".into())
        })?;
        return mime::form_data(&boundary, body).ok_or_else(|| {
            PluginError::InvalidInput("multipart/form-data body has no fields".into())
        });
    }
    if ct.starts_with("application/x-www-form-urlencoded") || ct.is_empty() {
        return Ok(form_urlencoded::parse(body)
            .map(|(k, v)| FormField {
                name: k.into_owned(),
                filename: None,
                content_type: None,
                value: v.into_owned().into_bytes(),
            })
            .collect());
    }
    Err(PluginError::InvalidInput(format!(
        "content type `{ct}` is not a form: expected multipart/form-data or \
         application/x-www-form-urlencoded"
    )))
}

/// The text value of a form field (UTF-8, invalid bytes replaced).
pub fn field(fields: &[FormField], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name == name && f.filename.is_none())
        .map(|f| String::from_utf8_lossy(&f.value).trim().to_string())
        .filter(|v| !v.is_empty())
}

fn file_attachments(fields: &[FormField]) -> Vec<EmailAttachment> {
    fields
        .iter()
        .filter(|f| f.filename.is_some())
        .map(|f| EmailAttachment {
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            size: Some(f.value.len()),
        })
        .collect()
}

fn address_and_name(raw: &str) -> (String, Option<String>) {
    // `Jane Doe <jane@example.com>` or a bare address.
    let header = format!("From: {raw}\r\n\r\n");
    mime::parse_message(header.as_bytes())
        .filter(|e| !e.from.is_empty())
        .map(|e| (e.from, e.from_name))
        .unwrap_or_else(|| (raw.trim().to_string(), None))
}

fn address_list(raw: &str) -> Vec<String> {
    let header = format!("To: {raw}\r\n\r\n");
    mime::parse_message(header.as_bytes())
        .map(|e| e.to)
        .unwrap_or_default()
}

/// Mailgun's (already verified) form.
pub fn mailgun(fields: &[FormField]) -> Result<Email, PluginError> {
    if let Some(raw) = fields.iter().find(|f| f.name == "body-mime") {
        return mime::parse_message(&raw.value).ok_or_else(|| {
            PluginError::InvalidInput("Mailgun `body-mime` is not a message".into())
        });
    }
    let headers: Vec<(String, String)> = field(fields, "message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(&h).ok())
        .unwrap_or_default();
    let from_raw = field(fields, "from")
        .or_else(|| header(&headers, "from").map(String::from))
        .or_else(|| field(fields, "sender"))
        .ok_or_else(|| {
            PluginError::InvalidInput("Mailgun form has no `from`: not an inbound message".into())
        })?;
    let (from, from_name) = address_and_name(&from_raw);
    let mut to = field(fields, "To")
        .or_else(|| header(&headers, "to").map(String::from))
        .map(|t| address_list(&t))
        .unwrap_or_default();
    if to.is_empty()
        && let Some(r) = field(fields, "recipient")
    {
        to = address_list(&r);
    }
    if let Some(cc) = field(fields, "Cc").or_else(|| header(&headers, "cc").map(String::from)) {
        to.extend(address_list(&cc));
    }
    let mut email = Email {
        from,
        from_name,
        to,
        // Route posts may carry these only inside `message-headers`.
        subject: field(fields, "subject").or_else(|| header(&headers, "subject").map(String::from)),
        message_id: field(fields, "Message-Id"),
        in_reply_to: field(fields, "In-Reply-To")
            .and_then(|v| crate::email::parse_ids(&v).into_iter().next()),
        references: field(fields, "References")
            .map(|v| crate::email::parse_ids(&v))
            .unwrap_or_default(),
        date_ms: field(fields, "Date")
            .or_else(|| header(&headers, "date").map(String::from))
            .and_then(|d| mail_parser::DateTime::parse_rfc822(&d))
            .map(|d| d.to_timestamp().saturating_mul(1000)),
        text: field(fields, "body-plain"),
        html: field(fields, "body-html"),
        attachments: file_attachments(fields),
        headers,
        ..Email::default()
    };
    thread_from_headers(&mut email);
    Ok(email)
}

/// A SendGrid parsed field decoded with the charset SendGrid reports for it in `charsets`.
fn sendgrid_text(fields: &[FormField], charsets: &Value, name: &str) -> Option<String> {
    let f = fields
        .iter()
        .find(|f| f.name == name && f.filename.is_none())?;
    let charset = charsets
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("utf-8");
    let text = match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decode) if !charset.eq_ignore_ascii_case("utf-8") => decode(&f.value),
        _ => String::from_utf8_lossy(&f.value).into_owned(),
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// SendGrid's form (raw or parsed). The `dkim` field is returned for sender authentication.
pub fn sendgrid(fields: &[FormField]) -> Result<(Email, Option<String>), PluginError> {
    let dkim = field(fields, "dkim");
    if let Some(raw) = fields.iter().find(|f| f.name == "email") {
        let email = mime::parse_message(&raw.value)
            .ok_or_else(|| PluginError::InvalidInput("SendGrid `email` is not a message".into()))?;
        return Ok((email, dkim));
    }
    let charsets: Value = field(fields, "charsets")
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let raw_headers = sendgrid_text(fields, &charsets, "headers").unwrap_or_default();
    let parsed_headers = mime::parse_message(format!("{raw_headers}\r\n\r\n").as_bytes());
    let from_raw = sendgrid_text(fields, &charsets, "from").ok_or_else(|| {
        PluginError::InvalidInput(
            "SendGrid form has neither `email` nor `from`: not an Inbound Parse post".into(),
        )
    })?;
    let (from, from_name) = address_and_name(&from_raw);
    let mut email = Email {
        from,
        from_name,
        to: ["to", "cc"]
            .iter()
            .filter_map(|k| sendgrid_text(fields, &charsets, k))
            .flat_map(|t| address_list(&t))
            .collect(),
        subject: sendgrid_text(fields, &charsets, "subject"),
        text: sendgrid_text(fields, &charsets, "text"),
        html: sendgrid_text(fields, &charsets, "html"),
        attachments: file_attachments(fields),
        ..Email::default()
    };
    if let Some(h) = parsed_headers {
        email.message_id = h.message_id;
        email.in_reply_to = h.in_reply_to;
        email.references = h.references;
        email.date_ms = h.date_ms;
        email.headers = h.headers;
    }
    Ok((email, dkim))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, value: &[u8]) -> FormField {
        FormField {
            name: name.into(),
            filename: None,
            content_type: None,
            value: value.to_vec(),
        }
    }

    #[test]
    fn sendgrid_parsed_fields_use_their_charsets() {
        let fields = vec![
            f("from", b"Jos\xe9 <jose@example.com>"),
            f("text", b"\xbfD\xf3nde est\xe1 mi pedido?"),
            f("charsets", br#"{"from":"iso-8859-1","text":"iso-8859-1"}"#),
            f(
                "headers",
                b"Message-ID: <m1@example.com>\nIn-Reply-To: <r@acme.example>",
            ),
        ];
        let (e, _) = sendgrid(&fields).unwrap();
        assert_eq!(e.text.as_deref(), Some("¿Dónde está mi pedido?"));
        assert_eq!(e.from, "jose@example.com");
        assert_eq!(e.message_id.as_deref(), Some("m1@example.com"));
        assert_eq!(e.in_reply_to.as_deref(), Some("r@acme.example"));
    }

    #[test]
    fn not_json_or_not_a_form_is_invalid_input() {
        assert!(matches!(
            postmark(b"{nope"),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(postmark(b"[]"), Err(PluginError::InvalidInput(_))));
        assert!(matches!(
            form_fields(Some("application/json"), b"{}"),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(mailgun(&[]), Err(PluginError::InvalidInput(_))));
    }
}
