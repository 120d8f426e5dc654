//! MIME with `mail-parser`: a raw RFC 5322 message into an [`Email`], and a
//! `multipart/form-data` body (Mailgun's and SendGrid's webhooks) into its fields.
//!
//! `multipart/form-data` (RFC 7578) is MIME multipart, so the same parser reads it: the body is
//! given a `Content-Type` header carrying the request's boundary and each part's
//! `Content-Disposition: form-data; name=…` names the field. Field values are the part's raw
//! bytes (a SendGrid `email` field is a whole MIME message, parsed again on its own).

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};

use crate::email::{Email, EmailAttachment};

/// One `multipart/form-data` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    /// File name, for file uploads (attachments).
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// The part's body bytes, undecoded.
    pub value: Vec<u8>,
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200 && !b.contains(['\r', '\n']))
    })
}

/// The fields of a `multipart/form-data` body; `None` when it is not one.
pub fn form_data(boundary: &str, body: &[u8]) -> Option<Vec<FormField>> {
    let mut raw = format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/form-data; boundary=\"{boundary}\"\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let message = MessageParser::default().parse(&raw)?;
    let raw = message.raw_message();
    let fields = message
        .parts
        .iter()
        .skip(1)
        .filter_map(|part| {
            let disposition = part.content_disposition()?;
            let name = disposition.attribute("name")?.to_string();
            let start = usize::try_from(part.offset_body).ok()?;
            let end = usize::try_from(part.offset_end).ok()?;
            let mut value = raw.get(start..end.max(start))?;
            // The boundary line's CRLF belongs to the delimiter, not the value.
            value = value
                .strip_suffix(b"\r\n")
                .or_else(|| value.strip_suffix(b"\n"))
                .unwrap_or(value);
            Some(FormField {
                name,
                filename: disposition.attribute("filename").map(String::from),
                content_type: part.content_type().map(|c| match c.subtype() {
                    Some(s) => format!("{}/{s}", c.ctype()),
                    None => c.ctype().to_string(),
                }),
                value: value.to_vec(),
            })
        })
        .collect::<Vec<_>>();
    (!fields.is_empty()).then_some(fields)
}

/// The ids of a `Message-ID`/`In-Reply-To`/`References` header value (mail-parser strips the
/// angle brackets).
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    }
}

fn first_address(a: Option<&Address<'_>>) -> Option<(String, Option<String>)> {
    let addr = a?.first()?;
    Some((
        addr.address()?.to_string(),
        addr.name()
            .map(String::from)
            .filter(|n| !n.trim().is_empty()),
    ))
}

/// A raw message into an [`Email`]; `None` when it has no headers at all.
pub fn parse_message(raw: &[u8]) -> Option<Email> {
    let message = MessageParser::default().parse(raw)?;
    let (from, from_name) = first_address(message.from())
        .or_else(|| first_address(message.sender()))
        .unwrap_or_default();
    let to = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(String::from))
        .collect();
    let text = message
        .text_bodies()
        .filter(|p| !p.is_text_html())
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .next();
    let html = message
        .html_bodies()
        .filter_map(|p| match &p.body {
            PartType::Html(t) => Some(t.to_string()),
            _ => None,
        })
        .next();
    let attachments = message
        .attachments()
        .map(|p| EmailAttachment {
            filename: p.attachment_name().map(String::from),
            content_type: p.content_type().map(|c| match c.subtype() {
                Some(s) => format!("{}/{s}", c.ctype()),
                None => c.ctype().to_string(),
            }),
            size: Some(p.len()),
        })
        .collect();
    let headers = message
        .headers_raw()
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    Some(Email {
        from,
        from_name,
        reply_to: first_address(message.reply_to()).map(|(a, _)| a),
        to,
        subject: message.subject().map(String::from),
        message_id: message.message_id().map(String::from),
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        date_ms: message
            .date()
            .map(|d| d.to_timestamp().saturating_mul(1000)),
        text,
        html,
        attachments,
        headers,
        ..Email::default()
    })
}

/// Plain text of an HTML body (tags dropped, entities decoded, block elements as line breaks).
pub fn html_to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_data_fields_keep_raw_bytes() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nHello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nFrom: a@b.c\r\nSubject: x\r\n\r\nbody\r\n--XyZ\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--XyZ--\r\n";
        let fields = form_data("XyZ", body).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["subject", "email", "attachment1"]);
        assert_eq!(fields[0].value, b"Hello");
        assert_eq!(fields[1].value, b"From: a@b.c\r\nSubject: x\r\n\r\nbody");
        assert_eq!(fields[2].filename.as_deref(), Some("a.pdf"));
        assert_eq!(fields[2].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn threading_headers_lose_their_brackets() {
        let raw = b"From: Jane <jane@example.com>\r\nTo: care@acme.example\r\nMessage-ID: <b@example.com>\r\nIn-Reply-To: <a@acme.example>\r\nReferences: <root@acme.example> <a@acme.example>\r\nSubject: Re: order\r\n\r\nhi\r\n";
        let e = parse_message(raw).unwrap();
        assert_eq!(e.from, "jane@example.com");
        assert_eq!(e.from_name.as_deref(), Some("Jane"));
        assert_eq!(e.message_id.as_deref(), Some("b@example.com"));
        assert_eq!(e.in_reply_to.as_deref(), Some("a@acme.example"));
        assert_eq!(e.references, ["root@acme.example", "a@acme.example"]);
        assert_eq!(e.text.as_deref().map(str::trim), Some("hi"));
    }
}
