//! WhatsApp Cloud API webhook bodies (object `whatsapp_business_account`) into events.

use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "whatsapp";

/// Limits the host enforces on connector output.
const MAX_ID_BYTES: usize = 1024;
const MAX_TEXT_BYTES: usize = 1024 * 1024;
const MAX_EVENTS: usize = 10_000;

/// Parse one webhook body (a leading UTF-8 BOM is ignored) into events.
///
/// A body that is not JSON, not an object, or has no `object`/`entry` is `invalid-input`. A
/// body for another Meta product (`object` other than `whatsapp_business_account`) is one
/// skipped event. Everything the body carries becomes a message or a skipped event with a reason.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidInput(format!(
            "body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(root) = json.as_object() else {
        return Err(PluginError::InvalidInput(
            "body is not a JSON object: a WhatsApp webhook is `{\"object\": ..., \"entry\": [...]}`"
                .into(),
        ));
    };
    let (Some(object), Some(entries)) = (root.get("object"), root.get("entry")) else {
        return Err(PluginError::InvalidInput(
            "not a WhatsApp Cloud API webhook: `object` and `entry` are required".into(),
        ));
    };
    let Some(object) = object.as_str() else {
        return Err(PluginError::InvalidInput("`object` is not a string".into()));
    };
    if object != "whatsapp_business_account" {
        return Ok(vec![Event::skipped(
            Some(object),
            &format!(
                "object `{object}` is not a WhatsApp Business Account webhook (another Meta \
                 product sent to this endpoint)"
            ),
        )]);
    }
    let Some(entries) = entries.as_array() else {
        return Err(PluginError::InvalidInput("`entry` is not an array".into()));
    };
    let mut events = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let waba_id = id_text(&entry["id"]);
        let Some(changes) = entry["changes"].as_array() else {
            events.push(Event::skipped(
                None,
                &format!("entry at index {i} has no `changes` array"),
            ));
            continue;
        };
        for change in changes {
            parse_change(change, waba_id.as_deref(), &mut events);
        }
    }
    if events.len() > MAX_EVENTS {
        return Err(PluginError::InvalidInput(format!(
            "the body carries {} events; at most {MAX_EVENTS} are accepted per delivery",
            events.len()
        )));
    }
    Ok(events)
}

/// A string, or an integer written as a string; blank is `None`.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str().filter(|s| !s.trim().is_empty())
}

/// Facts of one `changes[].value` shared by its messages.
struct Context<'a> {
    value: &'a Value,
    waba_id: Option<&'a str>,
    phone_number_id: Option<&'a str>,
    display_phone_number: Option<&'a str>,
}

fn parse_change(change: &Value, waba_id: Option<&str>, events: &mut Vec<Event>) {
    let field = change["field"].as_str().unwrap_or("");
    let value = &change["value"];
    if !value.is_object() {
        events.push(Event::skipped(
            Some(field).filter(|f| !f.is_empty()),
            "change has no `value` object",
        ));
        return;
    }
    if field == "smb_message_echoes" || value.get("message_echoes").is_some() {
        let echoes = value["message_echoes"].as_array().map_or(0, Vec::len);
        for _ in 0..echoes.max(1) {
            events.push(Event::skipped(
                Some("smb_message_echoes"),
                "echo of a message the business itself sent from the WhatsApp Business app: \
                 not a customer message",
            ));
        }
        return;
    }
    let has_messages = ["messages", "statuses", "errors"]
        .iter()
        .any(|k| value.get(*k).is_some());
    if field != "messages" && !has_messages {
        let what = if field.is_empty() { "(none)" } else { field };
        events.push(Event::skipped(
            Some(field).filter(|f| !f.is_empty()),
            &format!(
                "change field `{what}` is an account or business notification, not a customer \
                 message"
            ),
        ));
        return;
    }
    let ctx = Context {
        value,
        waba_id,
        phone_number_id: str_field(&value["metadata"], "phone_number_id"),
        display_phone_number: str_field(&value["metadata"], "display_phone_number"),
    };
    let before = events.len();
    for message in value["messages"].as_array().into_iter().flatten() {
        events.push(parse_message(&ctx, message));
    }
    for status in value["statuses"].as_array().into_iter().flatten() {
        events.push(status_event(status));
    }
    for error in value["errors"].as_array().into_iter().flatten() {
        events.push(Event::skipped(
            Some("errors"),
            &format!(
                "the platform reported an error instead of a message: {}",
                error_text(error)
            ),
        ));
    }
    if events.len() == before {
        events.push(Event::skipped(
            Some("messages"),
            "`messages` change with no messages, statuses or errors",
        ));
    }
}

fn status_event(status: &Value) -> Event {
    let state = status["status"].as_str().unwrap_or("unknown");
    let id = status["id"].as_str().unwrap_or("?");
    let mut reason = format!(
        "delivery status `{state}` of outgoing message {id}: statuses are not customer messages"
    );
    if let Some(errors) = status["errors"].as_array().filter(|e| !e.is_empty()) {
        let list: Vec<String> = errors.iter().map(error_text).collect();
        reason.push_str(&format!(" (errors: {})", list.join("; ")));
    }
    Event::skipped(Some(format!("status:{state}").as_str()), &reason)
}

/// `131051 Messagetypeunknown: Messagetypeiscurrentlynotsupported.`
fn error_text(e: &Value) -> String {
    let code = e["code"]
        .as_i64()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "?".into());
    let title = e["title"]
        .as_str()
        .or_else(|| e["message"].as_str())
        .unwrap_or("");
    let details = e["error_data"]["details"].as_str().unwrap_or("");
    let mut s = format!("code {code}");
    if !title.is_empty() {
        s.push_str(&format!(" {title}"));
    }
    if !details.is_empty() && details != title {
        s.push_str(&format!(": {details}"));
    }
    s
}

/// Undo the `\/` that some senders leave in MIME types (`video\/mp4`).
fn mime(v: &Value) -> Option<String> {
    str_field(v, "mime_type").map(|m| m.replace("\\/", "/"))
}

/// What a message's content normalises to.
#[derive(Default)]
struct Content {
    text: String,
    attachments: Vec<Attachment>,
    extra: Vec<(String, String)>,
}

/// The content of a message of type `kind` (`text`, `image`, ...), or why it is skipped.
fn content(kind: &str, m: &Value) -> Result<Content, String> {
    let body = &m[kind];
    let mut c = Content::default();
    match kind {
        "text" => {
            c.text = body["body"]
                .as_str()
                .ok_or("text message without `text.body`")?
                .to_string();
        }
        // `voice` is how the On-Premises API sends a voice note (the Cloud API sends `audio`
        // with `voice: true`): the same media object, so the same attachment.
        "image" | "video" | "audio" | "voice" | "document" | "sticker" => {
            if !body.is_object() {
                return Err(format!("{kind} message without a `{kind}` object"));
            }
            let caption = str_field(body, "caption").map(String::from);
            c.text = caption.clone().unwrap_or_default();
            let description = match kind {
                "document" => str_field(body, "filename").map(String::from).or(caption),
                _ => caption,
            };
            c.attachments.push(Attachment {
                kind: match kind {
                    "image" => AttachmentKind::Image,
                    "video" => AttachmentKind::Video,
                    "audio" | "voice" => AttachmentKind::Audio,
                    "sticker" => AttachmentKind::Sticker,
                    _ => AttachmentKind::File,
                },
                url: str_field(body, "url").map(String::from),
                mime_type: mime(body),
                description,
            });
            if let Some(id) = id_text(&body["id"]) {
                c.extra.push(("media-id".into(), id));
            }
            if kind == "voice" || body["voice"].as_bool() == Some(true) {
                c.extra.push(("voice".into(), "true".into()));
            }
            if body["animated"].as_bool() == Some(true) {
                c.extra.push(("animated".into(), "true".into()));
            }
        }
        "location" => {
            let (lat, long) = (body["latitude"].as_f64(), body["longitude"].as_f64());
            let mut parts: Vec<String> = ["name", "address"]
                .iter()
                .filter_map(|k| str_field(body, k).map(String::from))
                .collect();
            if let (Some(lat), Some(long)) = (lat, long) {
                parts.push(format!("({lat}, {long})"));
            }
            if parts.is_empty() {
                return Err("location message without coordinates".into());
            }
            c.attachments.push(Attachment {
                kind: AttachmentKind::Location,
                url: str_field(body, "url").map(String::from),
                mime_type: None,
                description: Some(parts.join(", ")),
            });
        }
        "contacts" => {
            let cards = m["contacts"]
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or("contacts message without contact cards")?;
            for card in cards {
                let name = str_field(&card["name"], "formatted_name")
                    .or_else(|| str_field(&card["name"], "first_name"))
                    .unwrap_or("(no name)");
                let phones: Vec<&str> = card["phones"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| str_field(p, "phone"))
                    .collect();
                let description = if phones.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}: {}", phones.join(", "))
                };
                c.attachments.push(Attachment {
                    kind: AttachmentKind::Other,
                    url: None,
                    mime_type: Some("text/vcard".into()),
                    description: Some(description),
                });
            }
        }
        "interactive" => {
            let itype = body["type"].as_str().unwrap_or("");
            let reply = &body[itype];
            match itype {
                "button_reply" | "list_reply" => {
                    c.text = str_field(reply, "title")
                        .ok_or_else(|| format!("interactive {itype} without a title"))?
                        .to_string();
                    if let Some(id) = id_text(&reply["id"]) {
                        c.extra.push(("reply-id".into(), id));
                    }
                    if let Some(d) = str_field(reply, "description") {
                        c.extra.push(("reply-description".into(), d.into()));
                    }
                }
                "nfm_reply" => {
                    c.text = reply["body"].as_str().unwrap_or("").to_string();
                    if let Some(r) = str_field(reply, "response_json") {
                        c.extra.push(("flow-response".into(), r.into()));
                    }
                }
                other => {
                    return Err(format!("interactive reply type `{other}` is not handled"));
                }
            }
            c.extra.push(("interactive-type".into(), itype.into()));
        }
        "button" => {
            c.text = str_field(body, "text")
                .ok_or("button message without `button.text`")?
                .to_string();
            if let Some(p) = str_field(body, "payload") {
                c.extra.push(("button-payload".into(), p.into()));
            }
        }
        "reaction" => {
            let emoji = body["emoji"].as_str().unwrap_or("");
            let on = body["message_id"].as_str().unwrap_or("?");
            return Err(if emoji.is_empty() {
                format!("reaction removed from {on}: reactions are not messages")
            } else {
                format!("reaction {emoji} to {on}: reactions are not messages")
            });
        }
        "system" => {
            let stype = body["type"].as_str().unwrap_or("unknown");
            return Err(format!(
                "system notice `{stype}` (e.g. the customer changed number or id): not a \
                 customer message"
            ));
        }
        "unsupported" | "unknown" => {
            return Err(format!(
                "message type the Cloud API does not support{}",
                errors_suffix(m)
            ));
        }
        other => {
            return Err(format!("message type `{other}` is not handled"));
        }
    }
    Ok(c)
}

fn errors_suffix(m: &Value) -> String {
    match m["errors"].as_array().filter(|e| !e.is_empty()) {
        Some(errors) => {
            let list: Vec<String> = errors.iter().map(error_text).collect();
            format!(" ({})", list.join("; "))
        }
        None => String::new(),
    }
}

fn parse_message(ctx: &Context, m: &Value) -> Event {
    let kind = m["type"].as_str().unwrap_or("");
    let event_type = (!kind.is_empty()).then_some(kind);
    let skip = |reason: &str| Event::skipped(event_type, reason);
    let Some(id) = str_field(m, "id") else {
        return skip("message without an `id`");
    };
    if m["errors"].as_array().is_some_and(|e| !e.is_empty()) && kind != "unsupported" {
        return skip(&format!(
            "the platform could not deliver this message's content{}",
            errors_suffix(m)
        ));
    }
    // edit and revoke refer to an earlier message: they reuse its id.
    let (external_id, action, content) = match kind {
        "edit" => {
            let edit = &m["edit"];
            let Some(original) = str_field(edit, "original_message_id") else {
                return skip("edit without `edit.original_message_id`");
            };
            let inner = &edit["message"];
            let inner_kind = inner["type"].as_str().unwrap_or("");
            match content(inner_kind, inner) {
                Ok(c) => (original, MessageAction::Edited, c),
                Err(reason) => return skip(&format!("edit of {original}: {reason}")),
            }
        }
        "revoke" => {
            let Some(original) = str_field(&m["revoke"], "original_message_id") else {
                return skip("revoke without `revoke.original_message_id`");
            };
            (original, MessageAction::Deleted, Content::default())
        }
        _ => match content(kind, m) {
            Ok(c) => (id, MessageAction::Created, c),
            Err(reason) => return skip(&reason),
        },
    };
    let Some(phone_number_id) = ctx.phone_number_id else {
        return skip("change without `metadata.phone_number_id`: no conversation to place it in");
    };
    let wa_id = str_field(m, "from");
    let user_id = str_field(m, "from_user_id");
    let Some(author_id) = wa_id.or(user_id) else {
        return skip("message without a sender (`from` or `from_user_id`)");
    };
    let group_id = str_field(m, "group_id");

    if external_id.len() > MAX_ID_BYTES || author_id.len() > MAX_ID_BYTES {
        return skip("message or sender id longer than 1024 bytes");
    }
    if content.text.len() > MAX_TEXT_BYTES {
        return skip("message text longer than 1 MiB");
    }

    // The sender's profile: the contact whose wa_id or user_id is the sender's.
    let contact = ctx.value["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            (wa_id.is_some() && str_field(c, "wa_id") == wa_id)
                || (user_id.is_some() && str_field(c, "user_id") == user_id)
        });
    let profile = contact.map(|c| &c["profile"]);
    let display_name = profile.and_then(|p| str_field(p, "name")).map(String::from);
    let handle = profile
        .and_then(|p| str_field(p, "username"))
        .map(String::from);
    let user_id = user_id.or_else(|| contact.and_then(|c| str_field(c, "user_id")));

    // An edit's quoted message is in the edited content; anything else's in its own context.
    let context = if kind == "edit" {
        &m["edit"]["message"]["context"]
    } else {
        &m["context"]
    };
    let in_reply_to = str_field(context, "id")
        .filter(|r| r.len() <= MAX_ID_BYTES)
        .map(String::from);

    let peer = group_id.unwrap_or(author_id);
    let mut extra: Vec<(String, String)> = vec![
        ("phone-number-id".into(), phone_number_id.into()),
        ("message-type".into(), kind.into()),
    ];
    let mut push = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            extra.push((k.into(), v.into()));
        }
    };
    push("display-phone-number", ctx.display_phone_number);
    push("waba-id", ctx.waba_id);
    push("wa-id", wa_id);
    // WhatsApp verified this number when the customer signed up: the host may use it to see
    // that the same person also writes by SMS (one customer, many channels).
    let verified = wa_id
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        .map(|w| format!("+{w}"));
    push("verified-phone", verified.as_deref());
    push("user-id", user_id);
    push("group-id", group_id);
    if kind == "edit" || kind == "revoke" {
        push("event-id", Some(id));
    }
    if context["forwarded"].as_bool() == Some(true) {
        push("forwarded", Some("true"));
    }
    push(
        "referral-source-url",
        str_field(&m["referral"], "source_url"),
    );
    extra.extend(content.extra);

    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: external_id.into(),
        conversation_key: format!("{phone_number_id}:{peer}"),
        in_reply_to,
        author: Author {
            id: author_id.into(),
            handle,
            display_name,
        },
        text: content.text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at: timestamp_ms(&m["timestamp"]),
        attachments: content.attachments,
        action,
        extra,
    })
}

/// `timestamp` in seconds (string or number) as epoch ms; 0 (the host's clock) when absent.
fn timestamp_ms(v: &Value) -> i64 {
    let secs = match v {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    secs.filter(|s| *s > 0)
        .and_then(|s| s.checked_mul(1000))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wrap(value: Value) -> Vec<u8> {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "waba-1", "changes": [
            {"field": "messages", "value": value}
        ]}]})
        .to_string()
        .into_bytes()
    }

    fn value(messages: Value) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106"},
            "contacts": [{"profile": {"name": "Casey Jones"}, "wa_id": "4915"}],
            "messages": messages
        })
    }

    fn one(messages: Value) -> Event {
        let mut events = parse_body(&wrap(value(messages))).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn message(e: Event) -> Message {
        match e {
            Event::Message(m) => m,
            Event::Skipped(s) => panic!("skipped: {}", s.reason),
        }
    }

    fn extra<'a>(m: &'a Message, key: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn text_message_is_normalised() {
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.A", "timestamp": "1653253313",
            "type": "text", "text": {"body": "Where is my order? 📦"},
            "context": {"from": "15550001111", "id": "wamid.Q"}}]),
        ));
        assert_eq!(m.external_id, "wamid.A");
        assert_eq!(m.conversation_key, "106:4915");
        assert_eq!(m.in_reply_to.as_deref(), Some("wamid.Q"));
        assert_eq!(m.author.id, "4915");
        assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
        assert_eq!(m.author.handle, None);
        assert_eq!(m.text, "Where is my order? 📦");
        assert_eq!(m.received_at, 1_653_253_313_000);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(m.channel, "whatsapp");
        assert_eq!(m.tenant, "");
        assert_eq!(extra(&m, "phone-number-id"), Some("106"));
        assert_eq!(extra(&m, "wa-id"), Some("4915"));
        assert_eq!(extra(&m, "verified-phone"), Some("+4915"));
        assert_eq!(extra(&m, "waba-id"), Some("waba-1"));
        assert_eq!(extra(&m, "message-type"), Some("text"));
    }

    #[test]
    fn media_location_and_contacts() {
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.I", "timestamp": 1,
            "type": "image", "image": {"caption": "broken", "mime_type": "image\\/jpeg", "id": "77"}}]),
        ));
        assert_eq!(m.text, "broken");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.attachments[0].description.as_deref(), Some("broken"));
        assert_eq!(extra(&m, "media-id"), Some("77"));
        assert_eq!(m.received_at, 1000);

        let m = message(one(
            json!([{"from": "4915", "id": "wamid.S", "type": "sticker",
            "sticker": {"mime_type": "image/webp", "id": "5", "animated": false}}]),
        ));
        assert_eq!(m.attachments[0].kind, AttachmentKind::Sticker);
        assert_eq!(m.text, "");
        assert_eq!(m.received_at, 0);

        let m = message(one(
            json!([{"from": "4915", "id": "wamid.L", "timestamp": "2",
            "type": "location", "location": {"latitude": 38.7, "longitude": -9.1,
            "name": "Store", "address": "Rua 1"}}]),
        ));
        assert_eq!(m.attachments[0].kind, AttachmentKind::Location);
        assert_eq!(
            m.attachments[0].description.as_deref(),
            Some("Store, Rua 1, (38.7, -9.1)")
        );

        let m = message(one(
            json!([{"from": "4915", "id": "wamid.C", "type": "contacts",
            "contacts": [{"name": {"formatted_name": "Ana"}, "phones": [{"phone": "+351 1"}]}]}]),
        ));
        assert_eq!(m.attachments[0].description.as_deref(), Some("Ana: +351 1"));
    }

    /// The On-Premises API's voice note: `type: voice` with a `voice` media object.
    #[test]
    fn an_on_premises_voice_message_is_a_voice_note() {
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.V", "timestamp": "1653253313", "type": "voice",
            "voice": {"file": "/usr/local/wamedia/shared/463e/b7ec/ff4e4d9bb1101879cbd411b2",
            "id": "463eb7ec-ff4e-4d9b-b110-1879cbd411b2", "mime_type": "audio/ogg; codecs=opus",
            "sha256": "fa9e1807d936b7cebe63654ea3a7912b1fa9479220258d823590521ef53b0710"}}]),
        ));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Audio);
        assert_eq!(
            m.attachments[0].mime_type.as_deref(),
            Some("audio/ogg; codecs=opus")
        );
        assert_eq!(extra(&m, "voice"), Some("true"));
        assert_eq!(
            extra(&m, "media-id"),
            Some("463eb7ec-ff4e-4d9b-b110-1879cbd411b2")
        );
        assert_eq!(m.text, "");
    }

    #[test]
    fn interactive_and_button_replies_become_text() {
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.B", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}}]),
        ));
        assert_eq!(m.text, "Yes");
        assert_eq!(extra(&m, "reply-id"), Some("yes-1"));
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.T", "type": "button",
            "button": {"text": "Stop promotions", "payload": "STOP"}}]),
        ));
        assert_eq!(m.text, "Stop promotions");
        assert_eq!(extra(&m, "button-payload"), Some("STOP"));
    }

    #[test]
    fn edits_and_revokes_reuse_the_original_id() {
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.E", "timestamp": "5",
            "type": "edit", "edit": {"original_message_id": "wamid.O",
            "message": {"type": "text", "text": {"body": "fixed"}, "context": {"id": "wamid.Q"}}}}]),
        ));
        assert_eq!(m.external_id, "wamid.O");
        assert_eq!(m.action, MessageAction::Edited);
        assert_eq!(m.text, "fixed");
        assert_eq!(m.in_reply_to.as_deref(), Some("wamid.Q"));
        assert_eq!(extra(&m, "event-id"), Some("wamid.E"));
        let m = message(one(
            json!([{"from": "4915", "id": "wamid.R", "type": "revoke",
            "revoke": {"original_message_id": "wamid.O"}}]),
        ));
        assert_eq!(
            (m.external_id.as_str(), m.action),
            ("wamid.O", MessageAction::Deleted)
        );
        assert_eq!(m.text, "");
    }

    #[test]
    fn reactions_unsupported_and_unknown_are_skipped_with_reasons() {
        let cases = [
            (
                json!({"from": "4915", "id": "w1", "type": "reaction",
                "reaction": {"message_id": "wamid.X", "emoji": "👍"}}),
                "reaction 👍 to wamid.X",
            ),
            (
                json!({"from": "4915", "id": "w2", "type": "unsupported",
                "errors": [{"code": 131051, "title": "Message type unknown"}]}),
                "131051",
            ),
            (
                json!({"from": "4915", "id": "w3", "type": "order", "order": {}}),
                "`order` is not handled",
            ),
            (
                json!({"from": "4915", "type": "text", "text": {"body": "x"}}),
                "without an `id`",
            ),
            (
                json!({"id": "w4", "type": "text", "text": {"body": "x"}}),
                "without a sender",
            ),
            (
                json!({"from": "4915", "id": "w5", "type": "text"}),
                "without `text.body`",
            ),
        ];
        for (m, needle) in cases {
            match one(json!([m])) {
                Event::Skipped(s) => assert!(s.reason.contains(needle), "{}", s.reason),
                Event::Message(m) => panic!("not skipped: {m:?}"),
            }
        }
    }

    #[test]
    fn statuses_other_fields_and_other_objects_are_skipped() {
        let mut v = value(json!([]));
        v["statuses"] = json!([{"id": "wamid.S", "status": "failed",
            "errors": [{"code": 131047, "title": "Re-engagement message"}]}]);
        v.as_object_mut().unwrap().remove("messages");
        let events = parse_body(&wrap(v)).unwrap();
        assert!(matches!(&events[..], [Event::Skipped(s)]
            if s.event_type.as_deref() == Some("status:failed") && s.reason.contains("131047")));

        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}}]}]}"#;
        let events = parse_body(body).unwrap();
        assert!(
            matches!(&events[..], [Event::Skipped(s)] if s.event_type.as_deref() == Some("account_update"))
        );

        let events = parse_body(br#"{"object":"page","entry":[]}"#).unwrap();
        assert!(matches!(&events[..], [Event::Skipped(s)] if s.reason.contains("`page`")));
    }

    #[test]
    fn a_batch_keeps_every_event_in_order() {
        let events = parse_body(&wrap(value(json!([
            {"from": "4915", "id": "w1", "type": "text", "text": {"body": "one"}},
            {"from": "4915", "id": "w2", "type": "reaction", "reaction": {"message_id": "w1", "emoji": ""}},
            {"from": "4915", "id": "w3", "type": "text", "text": {"body": "three"}}
        ]))))
        .unwrap();
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0], Event::Message(m) if m.text == "one"));
        assert!(matches!(&events[1], Event::Skipped(s) if s.reason.contains("removed")));
        assert!(matches!(&events[2], Event::Message(m) if m.text == "three"));
    }

    #[test]
    fn bad_bodies_are_invalid_input() {
        let err = parse_body(b"{\"object\": ").unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(m) if m.contains("line 1, column")));
        assert!(matches!(
            parse_body(b"[]"),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(parse_body(br#"{"text": {"object": "x"}}"#),
            Err(PluginError::InvalidInput(m)) if m.contains("`object` and `entry`")));
        // A BOM is tolerated.
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend(wrap(value(json!([]))));
        assert!(parse_body(&body).is_ok());
    }
}
