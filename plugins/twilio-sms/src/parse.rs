//! Twilio's messaging webhook (a form-encoded POST) into a normalised event.

use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "sms";
/// The channel of messages Twilio relays from WhatsApp (declared as an extra channel).
pub const WHATSAPP_CHANNEL: &str = "whatsapp";
/// How Twilio writes a WhatsApp address.
pub use crate::delivery::WHATSAPP_PREFIX;
/// Most media items Twilio attaches to one MMS.
pub const MAX_MEDIA: usize = 10;
const MAX_ID_BYTES: usize = 1024;
const MAX_TEXT_BYTES: usize = 1 << 20;

/// The decoded form fields, in request order (`+` is a space, `%XX` decoded).
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The top-level fields of a (verified) JSON body, read like form fields: strings as they are,
/// numbers and booleans as written; nested values are not Twilio messaging fields and are left
/// out.
pub fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, PluginError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("the JSON body does not parse: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(PluginError::InvalidInput(
            "the JSON body is not an object of fields".into(),
        ));
    };
    Ok(object
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            serde_json::Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect())
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn non_empty<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    field(params, name).filter(|v| !v.trim().is_empty())
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, PluginError> {
    let v = non_empty(params, name).ok_or_else(|| {
        PluginError::InvalidInput(format!(
            "form field `{name}` is missing: not a Twilio messaging webhook"
        ))
    })?;
    if v.len() > MAX_ID_BYTES {
        return Err(PluginError::InvalidInput(format!(
            "form field `{name}` is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(v)
}

fn kind_of(mime: Option<&str>) -> AttachmentKind {
    let mime = mime.unwrap_or("").to_ascii_lowercase();
    match mime.split('/').next().unwrap_or("") {
        "image" => AttachmentKind::Image,
        "video" => AttachmentKind::Video,
        "audio" => AttachmentKind::Audio,
        "" => AttachmentKind::Other,
        _ => AttachmentKind::File,
    }
}

/// The conversation of a brand number (`To`) and a customer (`From`).
pub fn conversation_key(to: &str, from: &str) -> String {
    format!("{to}|{from}")
}

/// Turn the (verified) form fields of one webhook into its one event.
pub fn parse(params: &[(String, String)]) -> Result<Event, PluginError> {
    if let Some(status) = non_empty(params, "MessageStatus") {
        return Ok(Event::skipped(
            Some("status-callback"),
            &format!(
                "delivery status callback (`MessageStatus={status}`) for an outbound message: \
                 not a customer message"
            ),
        ));
    }
    if non_empty(params, "CallSid").is_some() {
        return Ok(Event::skipped(
            Some("voice-call"),
            "a voice call webhook: this connector handles messages only",
        ));
    }
    let sid = required(params, "MessageSid")?;
    let from = required(params, "From")?;
    let to = required(params, "To")?;
    if to.len() + from.len() + 1 > MAX_ID_BYTES {
        return Err(PluginError::InvalidInput(format!(
            "`To` and `From` together are longer than {MAX_ID_BYTES} bytes"
        )));
    }
    let body = field(params, "Body").unwrap_or("");
    if body.len() > MAX_TEXT_BYTES {
        return Err(PluginError::InvalidInput(
            "`Body` is longer than 1 MiB".into(),
        ));
    }
    let declared = field(params, "NumMedia")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    let attachments = (0..declared)
        .filter_map(|i| {
            let url = non_empty(params, &format!("MediaUrl{i}"))?;
            let mime = non_empty(params, &format!("MediaContentType{i}"));
            Some(Attachment {
                kind: kind_of(mime),
                url: Some(url.to_string()),
                mime_type: mime.map(String::from),
                description: None,
            })
        })
        .collect();
    let mut extra = vec![
        ("twilio-to".to_string(), to.to_string()),
        ("twilio-from".to_string(), from.to_string()),
        // The author id is the customer's phone number: personal data the host should treat as
        // such (mask in logs, never show to third-party plugins without need).
        ("author-id-kind".to_string(), "phone-number".to_string()),
        (
            "personal-data".to_string(),
            "author.id conversation-key twilio-from".to_string(),
        ),
    ];
    // Twilio carries WhatsApp on the same webhook, with `whatsapp:` before both numbers: those
    // messages belong on the `whatsapp` channel, where the tenant's hours and policy for
    // WhatsApp apply, and their number is as verified as an SMS sender's.
    let whatsapp = from.strip_prefix(WHATSAPP_PREFIX);
    let number = whatsapp.unwrap_or(from);
    // The carrier's sender number (a signed Twilio request says so): the host links it to the
    // same number verified on another channel. Alphanumeric senders are not phone numbers.
    if number.starts_with('+')
        && number.len() > 7
        && number[1..].bytes().all(|b| b.is_ascii_digit())
    {
        extra.push(("verified-phone".to_string(), number.to_string()));
    }
    for (name, key) in [
        ("AccountSid", "twilio-account-sid"),
        ("MessagingServiceSid", "twilio-messaging-service-sid"),
        ("NumSegments", "twilio-num-segments"),
        ("FromCountry", "twilio-from-country"),
    ] {
        if let Some(v) = non_empty(params, name) {
            extra.push((key.to_string(), v.to_string()));
        }
    }
    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: if whatsapp.is_some() {
            WHATSAPP_CHANNEL
        } else {
            CHANNEL
        }
        .into(),
        external_id: sid.to_string(),
        conversation_key: conversation_key(to, from),
        in_reply_to: None,
        author: Author {
            id: from.to_string(),
            handle: None,
            display_name: None,
        },
        text: body.to_string(),
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        // Twilio's messaging webhook carries no timestamp: 0 lets the host stamp its own clock.
        received_at: 0,
        attachments,
        action: MessageAction::Created,
        extra,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn extra<'a>(m: &'a Message, k: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn form_decoding() {
        let f = form(b"Body=Hola+%C2%BFqu%C3%A9+tal%3F+%F0%9F%98%80&From=%2B34600111222");
        assert_eq!(
            f,
            p(&[("Body", "Hola ¿qué tal? 😀"), ("From", "+34600111222")])
        );
    }

    #[test]
    fn sms_and_mms() {
        let Event::Message(m) = parse(&p(&[
            ("MessageSid", "SM1"),
            ("AccountSid", "AC1"),
            ("From", "+14155550100"),
            ("To", "+15005550006"),
            ("Body", "Where is my order?"),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(m.external_id, "SM1");
        assert_eq!(m.conversation_key, "+15005550006|+14155550100");
        assert_eq!(m.author.id, "+14155550100");
        assert_eq!(m.text, "Where is my order?");
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.received_at, 0);
        assert_eq!(extra(&m, "twilio-account-sid"), Some("AC1"));
        assert_eq!(extra(&m, "author-id-kind"), Some("phone-number"));
        assert_eq!(extra(&m, "verified-phone"), Some("+14155550100"));

        let Event::Message(m) = parse(&p(&[
            ("MessageSid", "MM2"),
            ("From", "+14155550100"),
            ("To", "+15005550006"),
            ("Body", ""),
            ("NumMedia", "3"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m/1"),
            ("MediaContentType1", "text/vcard"),
            ("MediaUrl2", "https://api.twilio.com/m/2"),
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(m.text, "");
        let kinds: Vec<_> = m.attachments.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AttachmentKind::Image,
                AttachmentKind::File,
                AttachmentKind::Other
            ]
        );
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("image/jpeg"));
    }

    #[test]
    fn callbacks_and_malformed_forms() {
        assert!(matches!(
            parse(&p(&[("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("From", "+1"), ("To", "+2")])),
            Ok(Event::Skipped(s)) if s.event_type.as_deref() == Some("status-callback") && s.reason.contains("delivered")
        ));
        assert!(matches!(
            parse(&p(&[("CallSid", "CA1"), ("From", "+1"), ("To", "+2")])),
            Ok(Event::Skipped(s)) if s.event_type.as_deref() == Some("voice-call")
        ));
        assert!(matches!(
            parse(&p(&[("From", "+1"), ("To", "+2"), ("Body", "x")])),
            Err(PluginError::InvalidInput(m)) if m.contains("`MessageSid`")
        ));
        assert!(matches!(
            parse(&p(&[("MessageSid", "SM1"), ("To", "+2")])),
            Err(PluginError::InvalidInput(m)) if m.contains("`From`")
        ));
    }
}
