//! Decoding Telegram `Update` objects (webhook bodies and `getUpdates` results) into events.
//!
//! A body as a whole must be JSON (else `invalid-input` with the parser's line and column); an
//! update that cannot be used becomes a skipped event that says why, so one odd update never
//! fails a batch.

use serde_json::{Map, Value};
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest text the host accepts from a connector, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// The update types that carry a message, and whether they are edits.
pub const MESSAGE_UPDATES: [(&str, bool); 6] = [
    ("message", false),
    ("edited_message", true),
    ("channel_post", false),
    ("edited_channel_post", true),
    ("business_message", false),
    ("edited_business_message", true),
];

/// What the normaliser needs besides the update itself.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Channel name stamped on messages.
    pub channel: &'a str,
    /// The bot's username without `@`, for mention detection; `None` if not configured.
    pub bot_username: Option<&'a str>,
}

/// Decode a webhook body: one `Update` object.
///
/// A Bot API method response (`{"ok": …, "result": …}`) or a bare `Message` object is
/// recognised and skipped with a reason; any other JSON is `invalid-input`.
pub fn parse_body(body: &[u8], opts: Options<'_>) -> Result<Vec<Event>, PluginError> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(PluginError::InvalidInput(format!(
            "request body must be a Telegram Update object, got {}",
            kind(&value)
        )));
    };
    if object.contains_key("update_id") {
        return Ok(parse_update(&object, opts));
    }
    if object.contains_key("ok") {
        return Ok(vec![Event::skipped(
            None,
            "a Bot API method response (`ok`/`result`), not an Update: webhooks deliver Update \
             objects; getUpdates responses are read by `poll`",
        )]);
    }
    if object.contains_key("message_id") && object.contains_key("chat") {
        return Ok(vec![Event::skipped(
            Some("message"),
            "a bare Message object (as returned by sendMessage), not an Update: it has no \
             `update_id`, and webhooks deliver Message objects only inside an Update",
        )]);
    }
    Err(PluginError::InvalidInput(
        "request body is a JSON object without `update_id`: not a Telegram Update".into(),
    ))
}

/// The `update_id` of an update, if it is an integer.
pub fn update_id(update: &Map<String, Value>) -> Option<i64> {
    update.get("update_id").and_then(Value::as_i64)
}

/// Decode one `Update` into zero or more events (one per message; a deletion of several
/// business messages gives one event per message id).
pub fn parse_update(update: &Map<String, Value>, opts: Options<'_>) -> Vec<Event> {
    let Some((kind, payload)) = update
        .iter()
        .find(|(k, v)| k.as_str() != "update_id" && !v.is_null())
    else {
        return vec![Event::skipped(
            None,
            "the update carries nothing besides `update_id`",
        )];
    };
    let kind = kind.as_str();
    if let Some((_, edit)) = MESSAGE_UPDATES.iter().find(|(name, _)| *name == kind) {
        let Value::Object(message) = payload else {
            return vec![Event::skipped(
                Some(kind),
                &format!("`{kind}` is {}, not a Message object", self::kind(payload)),
            )];
        };
        return vec![
            normalise(message, kind, *edit, opts).unwrap_or_else(|problem| {
                Event::skipped(Some(kind), &format!("`{kind}` cannot be used: {problem}"))
            }),
        ];
    }
    if kind == "deleted_business_messages" {
        return deleted_business_messages(payload, opts).unwrap_or_else(|problem| {
            vec![Event::skipped(
                Some(kind),
                &format!("`{kind}` cannot be used: {problem}"),
            )]
        });
    }
    vec![Event::skipped(Some(kind), &skip_reason(kind))]
}

/// Why an update type that is not a message is skipped.
pub fn skip_reason(kind: &str) -> String {
    let why = match kind {
        "inline_query" => {
            "an inline query is text typed after the bot's name in inline mode, answered with \
             answerInlineQuery; it is not a message"
        }
        "chosen_inline_result" => "an inline result a user picked is not a message",
        "callback_query" => "a button press on an inline keyboard is not a message",
        "shipping_query" | "pre_checkout_query" | "purchased_paid_media" => {
            "payment flow updates are not messages"
        }
        "poll" | "poll_answer" => "poll state changes and votes are not messages",
        "my_chat_member" | "chat_member" => "membership changes are not messages",
        "chat_join_request" => "a request to join a chat is not a message",
        "message_reaction" | "message_reaction_count" => "reactions are not messages",
        "chat_boost" | "removed_chat_boost" => "chat boosts are not messages",
        "business_connection" => {
            "a business account connecting or disconnecting the bot is not a message"
        }
        "guest_message" => {
            "a guest-mode query is answered with answerGuestQuery (an inline result posted by \
             the bot), not with sendMessage; this connector does not handle guest mode"
        }
        "managed_bot" => "a managed-bot notice is not a message",
        _ => "this update type is not a message this connector handles",
    };
    format!("update type `{kind}`: {why}")
}

/// A JSON value's kind, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type Problem = String;

fn int(obj: &Map<String, Value>, name: &str, path: &str) -> Result<i64, Problem> {
    match obj.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("`{path}` must be an integer, got {n}")),
        None | Some(Value::Null) => Err(format!("required field `{path}` is missing")),
        Some(other) => Err(format!("`{path}` must be an integer, got {}", kind(other))),
    }
}

fn opt_int(obj: &Map<String, Value>, name: &str) -> Option<i64> {
    obj.get(name).and_then(Value::as_i64)
}

fn opt_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn opt_obj<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    obj.get(name).and_then(Value::as_object)
}

/// `first_name last_name`, or the chat's `title`.
fn display_name(obj: &Map<String, Value>) -> Option<String> {
    let parts: Vec<&str> = [opt_str(obj, "first_name"), opt_str(obj, "last_name")]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        opt_str(obj, "title").map(String::from)
    } else {
        Some(parts.join(" "))
    }
}

/// A `User` or `Chat` object as an author.
fn author_of(obj: &Map<String, Value>, path: &str) -> Result<Author, Problem> {
    Ok(Author {
        id: int(obj, "id", &format!("{path}.id"))?.to_string(),
        handle: opt_str(obj, "username").map(|u| format!("@{u}")),
        display_name: display_name(obj),
    })
}

/// The chat type; a chat without `type` (some documentation samples) is `private` when its id
/// is positive (user ids are positive, group and channel ids negative), else `group`.
fn chat_type(chat: &Map<String, Value>, chat_id: i64) -> String {
    match opt_str(chat, "type") {
        Some(t) => t.to_string(),
        None if chat_id > 0 => "private".into(),
        None => "group".into(),
    }
}

/// Keys of a Message object that describe it rather than being its content; the first key
/// not in this list names a content-less (service) message in its skip reason.
const METADATA_KEYS: &[&str] = &[
    "message_id",
    "message_thread_id",
    "direct_messages_topic",
    "from",
    "sender_chat",
    "sender_boost_count",
    "sender_business_bot",
    "sender_tag",
    "date",
    "business_connection_id",
    "chat",
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_signature",
    "forward_sender_name",
    "forward_date",
    "is_topic_message",
    "is_automatic_forward",
    "reply_to_message",
    "external_reply",
    "quote",
    "reply_to_story",
    "reply_to_checklist_task_id",
    "via_bot",
    "edit_date",
    "has_protected_content",
    "is_from_offline",
    "is_paid_post",
    "media_group_id",
    "author_signature",
    "paid_star_count",
    "entities",
    "caption_entities",
    "link_preview_options",
    "effect_id",
    "show_caption_above_media",
    "has_media_spoiler",
    "reply_markup",
    "guest_query_id",
];

/// Decode one Message object of update type `kind`.
pub fn normalise(
    m: &Map<String, Value>,
    kind: &str,
    edit: bool,
    opts: Options<'_>,
) -> Result<Event, Problem> {
    let message_id = int(m, "message_id", "message_id")?;
    let chat = opt_obj(m, "chat").ok_or("required object `chat` is missing")?;
    let chat_id = int(chat, "id", "chat.id")?;
    let chat_type = chat_type(chat, chat_id);
    let private = chat_type == "private";

    // Text or caption, with its entities.
    let (raw_text, entities) = match (opt_str(m, "text"), opt_str(m, "caption")) {
        (Some(t), _) => (t, m.get("entities")),
        (None, Some(c)) => (c, m.get("caption_entities")),
        (None, None) => ("", None),
    };
    let mut text = resolve_entities(raw_text, entities);
    if text.is_empty() {
        text = structured_text(m).unwrap_or_default();
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "its text is {} bytes long, more than {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    let attachments = attachments(m);
    if text.is_empty() && attachments.is_empty() {
        let content = m
            .keys()
            .find(|k| !METADATA_KEYS.contains(&k.as_str()))
            .map(|k| format!("`{k}`"))
            .unwrap_or_else(|| "nothing".into());
        return Ok(Event::skipped(
            Some(kind),
            &format!(
                "a message with no text, caption or supported media (it carries {content}): \
                 service messages and such content are not customer messages"
            ),
        ));
    }

    let author = if let Some(sender_chat) = opt_obj(m, "sender_chat") {
        // Sent on behalf of a chat (channel posts, anonymous group admins, linked channels).
        author_of(sender_chat, "sender_chat")?
    } else if let Some(from) = opt_obj(m, "from") {
        author_of(from, "from")?
    } else if kind.ends_with("channel_post") {
        author_of(chat, "chat")?
    } else {
        return Err("neither `from` nor `sender_chat` names the sender".into());
    };

    // Forum topics: a message in a topic carries `is_topic_message` and the topic's
    // `message_thread_id`. Outside topics `message_thread_id` can name a reply thread (e.g. a
    // reply in a forum's General topic), which is not a separate conversation.
    let topic = if m.get("is_topic_message").and_then(Value::as_bool) == Some(true) {
        opt_int(m, "message_thread_id")
    } else {
        None
    };
    let conversation_key = match topic {
        Some(t) => format!("{chat_id}:{t}"),
        None => chat_id.to_string(),
    };

    // In a topic, a message that answers nothing carries the topic's creation message as
    // `reply_to_message`: that is not a reply.
    let reply = opt_obj(m, "reply_to_message").filter(|r| !r.contains_key("forum_topic_created"));
    let in_reply_to = reply.and_then(|r| {
        let id = opt_int(r, "message_id")?;
        let reply_chat = opt_obj(r, "chat")
            .and_then(|c| opt_int(c, "id"))
            .unwrap_or(chat_id);
        Some(format!("{reply_chat}:{id}"))
    });

    let origin = if private {
        Origin::DirectMessage
    } else if mentions_bot(raw_text, entities, opts.bot_username)
        || replies_to_bot(reply, opts.bot_username)
    {
        Origin::Mention
    } else if chat_type == "group" || chat_type == "supergroup" {
        Origin::Listening
    } else {
        Origin::Other
    };

    let date = int(m, "date", "date")?;
    let seconds = if edit {
        opt_int(m, "edit_date").unwrap_or(date)
    } else {
        date
    };

    let mut extra = vec![
        ("chat-id".to_string(), chat_id.to_string()),
        ("chat-type".to_string(), chat_type.clone()),
    ];
    if let Some(t) = topic {
        extra.push(("message-thread-id".into(), t.to_string()));
    }
    if let Some(b) = opt_str(m, "business_connection_id") {
        extra.push(("business-connection-id".into(), b.to_string()));
    }

    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: opts.channel.to_string(),
        external_id: format!("{chat_id}:{message_id}"),
        conversation_key,
        in_reply_to,
        author,
        text,
        // `from.language_code` is the sender's app language, not the message's: not used.
        language: None,
        visibility: if private {
            Visibility::Private
        } else {
            Visibility::Public
        },
        origin,
        received_at: seconds.saturating_mul(1000),
        attachments,
        action: if edit {
            MessageAction::Edited
        } else {
            MessageAction::Created
        },
        extra,
    }))
}

/// `deleted_business_messages`: one deletion event per message id.
///
/// Telegram does not say who wrote the deleted messages; the author is the business chat's
/// other party (in a private chat the chat id is that user's id).
fn deleted_business_messages(payload: &Value, opts: Options<'_>) -> Result<Vec<Event>, Problem> {
    let obj = payload.as_object().ok_or("not an object")?;
    let chat = opt_obj(obj, "chat").ok_or("required object `chat` is missing")?;
    let chat_id = int(chat, "id", "chat.id")?;
    let chat_type = chat_type(chat, chat_id);
    let ids = obj
        .get("message_ids")
        .and_then(Value::as_array)
        .ok_or("required array `message_ids` is missing")?;
    let author = author_of(chat, "chat")?;
    let mut extra = vec![
        ("chat-id".to_string(), chat_id.to_string()),
        ("chat-type".to_string(), chat_type.clone()),
    ];
    if let Some(b) = opt_str(obj, "business_connection_id") {
        extra.push(("business-connection-id".into(), b.to_string()));
    }
    Ok(ids
        .iter()
        .map(|id| match id.as_i64() {
            Some(id) => Event::Message(Message {
                tenant: String::new(),
                channel: opts.channel.to_string(),
                external_id: format!("{chat_id}:{id}"),
                conversation_key: chat_id.to_string(),
                in_reply_to: None,
                author: author.clone(),
                text: String::new(),
                language: None,
                visibility: if chat_type == "private" {
                    Visibility::Private
                } else {
                    Visibility::Public
                },
                origin: if chat_type == "private" {
                    Origin::DirectMessage
                } else {
                    Origin::Other
                },
                // Telegram gives no deletion time: 0 lets the host stamp its clock.
                received_at: 0,
                attachments: Vec::new(),
                action: MessageAction::Deleted,
                extra: extra.clone(),
            }),
            None => Event::skipped(
                Some("deleted_business_messages"),
                &format!("message id {id} is not an integer"),
            ),
        })
        .collect())
}

/// A UTF-16 position is a character boundary (not inside a surrogate pair).
fn is_boundary(units: &[u16], i: usize) -> bool {
    i == 0 || i == units.len() || (i < units.len() && !(0xDC00..=0xDFFF).contains(&units[i]))
}

/// The UTF-16 range `[offset, offset+length)` of entity `e`, if it is valid for `units`.
fn entity_range(units: &[u16], e: &Map<String, Value>) -> Option<(usize, usize)> {
    let offset = usize::try_from(e.get("offset")?.as_u64()?).ok()?;
    let length = usize::try_from(e.get("length")?.as_u64()?).ok()?;
    let end = offset.checked_add(length)?;
    (end <= units.len() && is_boundary(units, offset) && is_boundary(units, end))
        .then_some((offset, end))
}

/// The text an entity covers.
fn entity_text(units: &[u16], e: &Map<String, Value>) -> Option<String> {
    let (start, end) = entity_range(units, e)?;
    String::from_utf16(&units[start..end]).ok()
}

fn entity_list(entities: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    entities
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// Resolve Telegram markup in `text`: offsets and lengths of entities count UTF-16 code units.
///
/// `text_link` entities (a label pointing at a hidden URL) become `label (url)`, unless the
/// label already is the URL. Mentions (`@handle`), visible URLs, hashtags, commands and
/// formatting are plain text already and stay as they are. Entities with offsets outside the
/// text or inside a surrogate pair are ignored.
pub fn resolve_entities(text: &str, entities: Option<&Value>) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut inserts: Vec<(usize, String)> = entity_list(entities)
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("text_link"))
        .filter_map(|e| {
            let (start, end) = entity_range(&units, e)?;
            let url = opt_str(e, "url")?;
            let label = String::from_utf16(&units[start..end]).ok()?;
            (label.trim() != url).then(|| (end, format!(" ({url})")))
        })
        .collect();
    if inserts.is_empty() {
        return text.to_string();
    }
    inserts.sort_by_key(|(pos, _)| *pos);
    let mut out = String::with_capacity(text.len() + 64);
    let mut cursor = 0;
    for (pos, insert) in inserts {
        out.push_str(&String::from_utf16_lossy(&units[cursor..pos]));
        out.push_str(&insert);
        cursor = pos;
    }
    out.push_str(&String::from_utf16_lossy(&units[cursor..]));
    out
}

/// Whether `text` mentions `@bot`: a `mention` entity, a `/command@bot`, a `text_mention` of
/// the bot, or (for texts without entities) `@bot` as a whole word. Case-insensitive.
pub fn mentions_bot(text: &str, entities: Option<&Value>, bot: Option<&str>) -> bool {
    let Some(bot) = bot.filter(|b| !b.is_empty()) else {
        return false;
    };
    let units: Vec<u16> = text.encode_utf16().collect();
    let by_entity = entity_list(entities).any(|e| match e.get("type").and_then(Value::as_str) {
        Some("mention") => entity_text(&units, e).is_some_and(|t| {
            t.strip_prefix('@')
                .is_some_and(|h| h.eq_ignore_ascii_case(bot))
        }),
        Some("bot_command") => entity_text(&units, e).is_some_and(|t| {
            t.rsplit_once('@')
                .is_some_and(|(_, h)| h.eq_ignore_ascii_case(bot))
        }),
        Some("text_mention") => opt_obj(e, "user")
            .and_then(|u| opt_str(u, "username"))
            .is_some_and(|u| u.eq_ignore_ascii_case(bot)),
        _ => false,
    });
    by_entity || mentions_as_word(text, bot)
}

/// `@bot` in `text` not preceded or followed by a username character.
fn mentions_as_word(text: &str, bot: &str) -> bool {
    let lower = text.to_lowercase();
    let needle = format!("@{}", bot.to_lowercase());
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    lower.match_indices(&needle).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Whether the replied-to message was written by the bot.
fn replies_to_bot(reply: Option<&Map<String, Value>>, bot: Option<&str>) -> bool {
    let Some(bot) = bot.filter(|b| !b.is_empty()) else {
        return false;
    };
    reply
        .and_then(|r| opt_obj(r, "from"))
        .and_then(|f| opt_str(f, "username"))
        .is_some_and(|u| u.eq_ignore_ascii_case(bot))
}

/// Text for content that has no `text`: a poll's question and options, a checklist's tasks.
fn structured_text(m: &Map<String, Value>) -> Option<String> {
    let lines = |head: &str, items: Option<&Value>, bullet: &str| {
        let mut out = vec![head.to_string()];
        out.extend(
            items
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .map(|t| format!("{bullet}{t}")),
        );
        out.join("\n")
    };
    if let Some(poll) = opt_obj(m, "poll") {
        return Some(lines(
            opt_str(poll, "question").unwrap_or_default(),
            poll.get("options"),
            "- ",
        ));
    }
    if let Some(list) = opt_obj(m, "checklist") {
        return Some(lines(
            opt_str(list, "title").unwrap_or_default(),
            list.get("tasks"),
            "- [ ] ",
        ));
    }
    None
}

/// `label (file_id: …)`: Telegram gives no URL for a file without a getFile call (whose
/// download URL embeds the bot token), so the file id is what a later stage can use.
fn file_description(label: Option<String>, obj: &Map<String, Value>) -> Option<String> {
    let id = opt_str(obj, "file_id").map(|id| format!("file_id: {id}"));
    match (label.filter(|l| !l.is_empty()), id) {
        (Some(l), Some(id)) => Some(format!("{l} ({id})")),
        (Some(l), None) => Some(l),
        (None, id) => id,
    }
}

fn file_attachment(
    kind: AttachmentKind,
    obj: &Map<String, Value>,
    label: Option<String>,
) -> Attachment {
    Attachment {
        kind,
        url: None,
        mime_type: opt_str(obj, "mime_type").map(String::from),
        description: file_description(label, obj),
    }
}

/// Media carried by a message.
pub fn attachments(m: &Map<String, Value>) -> Vec<Attachment> {
    let mut out = Vec::new();
    if let Some(sizes) = m.get("photo").and_then(Value::as_array) {
        // Sizes come smallest first; the last is the original.
        if let Some(largest) = sizes.iter().filter_map(Value::as_object).next_back() {
            let label = match (opt_int(largest, "width"), opt_int(largest, "height")) {
                (Some(w), Some(h)) => format!("photo {w}x{h}"),
                _ => "photo".into(),
            };
            out.push(file_attachment(AttachmentKind::Image, largest, Some(label)));
        }
    }
    let animation = opt_obj(m, "animation");
    if let Some(a) = animation {
        let label = opt_str(a, "file_name").unwrap_or("animation").to_string();
        out.push(file_attachment(AttachmentKind::Video, a, Some(label)));
    }
    if let Some(v) = opt_obj(m, "video") {
        let label = opt_str(v, "file_name").unwrap_or("video").to_string();
        out.push(file_attachment(AttachmentKind::Video, v, Some(label)));
    }
    if let Some(v) = opt_obj(m, "video_note") {
        out.push(file_attachment(
            AttachmentKind::Video,
            v,
            Some("video note".into()),
        ));
    }
    if let Some(a) = opt_obj(m, "audio") {
        let label = match (opt_str(a, "performer"), opt_str(a, "title")) {
            (Some(p), Some(t)) => Some(format!("{p} – {t}")),
            (None, Some(t)) => Some(t.to_string()),
            _ => opt_str(a, "file_name").map(String::from),
        };
        out.push(file_attachment(AttachmentKind::Audio, a, label));
    }
    if let Some(v) = opt_obj(m, "voice") {
        let label = match opt_int(v, "duration") {
            Some(d) => format!("voice message, {d} s"),
            None => "voice message".into(),
        };
        out.push(file_attachment(AttachmentKind::Audio, v, Some(label)));
    }
    // An animation also sets `document` for backward compatibility: report it once.
    if let (Some(d), None) = (opt_obj(m, "document"), animation) {
        let label = opt_str(d, "file_name").map(String::from);
        out.push(file_attachment(AttachmentKind::File, d, label));
    }
    if let Some(s) = opt_obj(m, "sticker") {
        let flag = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
        // Telegram's sticker formats: static WEBP, animated TGS, video WEBM.
        let mime = if flag("is_animated") {
            "application/x-tgsticker"
        } else if flag("is_video") {
            "video/webm"
        } else {
            "image/webp"
        };
        let label = [
            opt_str(s, "emoji").map(String::from),
            Some("sticker".to_string()),
            opt_str(s, "set_name").map(|n| format!("from set {n}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let mut a = file_attachment(AttachmentKind::Sticker, s, Some(label));
        a.mime_type = Some(mime.into());
        out.push(a);
    }
    // A venue also sets `location`: report the venue.
    let venue = opt_obj(m, "venue");
    let location = venue
        .and_then(|v| opt_obj(v, "location"))
        .or_else(|| opt_obj(m, "location"));
    if let Some(loc) = location {
        let coords = match (
            loc.get("latitude").and_then(Value::as_f64),
            loc.get("longitude").and_then(Value::as_f64),
        ) {
            (Some(lat), Some(lon)) => Some(format!("geo:{lat},{lon}")),
            _ => None,
        };
        let description = venue
            .map(|v| {
                [opt_str(v, "title"), opt_str(v, "address")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|d| !d.is_empty())
            .or_else(|| Some("location".into()));
        out.push(Attachment {
            kind: AttachmentKind::Location,
            url: coords,
            mime_type: None,
            description,
        });
    }
    if let Some(c) = opt_obj(m, "contact") {
        let name = display_name(c).unwrap_or_default();
        let phone = opt_str(c, "phone_number").unwrap_or_default();
        out.push(Attachment {
            kind: AttachmentKind::Other,
            url: None,
            mime_type: None,
            description: Some(format!("contact: {name} {phone}").trim().to_string()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OPTS: Options<'static> = Options {
        channel: "telegram",
        bot_username: Some("AcmeCareBot"),
    };

    fn one(update: Value) -> Event {
        let events = parse_update(update.as_object().unwrap(), OPTS);
        assert_eq!(events.len(), 1, "{events:?}");
        events.into_iter().next().unwrap()
    }

    fn message(update: Value) -> Message {
        match one(update) {
            Event::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn skipped(update: Value) -> (Option<String>, String) {
        match one(update) {
            Event::Skipped(s) => (s.event_type, s.reason),
            other => panic!("expected skipped, got {other:?}"),
        }
    }

    fn private_chat() -> Value {
        json!({"id": 42, "type": "private", "first_name": "Casey", "username": "casey"})
    }

    fn group_chat() -> Value {
        json!({"id": -100123, "type": "supergroup", "title": "Acme fans"})
    }

    fn user() -> Value {
        json!({"id": 42, "is_bot": false, "first_name": "Casey", "last_name": "Jones",
               "username": "casey", "language_code": "en"})
    }

    #[test]
    fn private_text_message() {
        let m = message(json!({"update_id": 1, "message": {
            "message_id": 7, "date": 1_700_000_000, "chat": private_chat(), "from": user(),
            "text": "Where is my order?"}}));
        assert_eq!(m.channel, "telegram");
        assert_eq!(m.external_id, "42:7");
        assert_eq!(m.conversation_key, "42");
        assert_eq!(m.in_reply_to, None);
        assert_eq!(m.author.id, "42");
        assert_eq!(m.author.handle.as_deref(), Some("@casey"));
        assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
        assert_eq!(m.text, "Where is my order?");
        assert_eq!(m.language, None);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.received_at, 1_700_000_000_000);
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(
            m.extra,
            vec![
                ("chat-id".to_string(), "42".to_string()),
                ("chat-type".to_string(), "private".to_string())
            ]
        );
    }

    #[test]
    fn edited_message_uses_edit_date() {
        let m = message(json!({"update_id": 2, "edited_message": {
            "message_id": 7, "date": 1_700_000_000, "edit_date": 1_700_000_060,
            "chat": private_chat(), "from": user(), "text": "Where is order 12?"}}));
        assert_eq!(m.action, MessageAction::Edited);
        assert_eq!(m.external_id, "42:7");
        assert_eq!(m.received_at, 1_700_000_060_000);
    }

    #[test]
    fn group_origin_mention_reply_and_listening() {
        let base = |text: &str, entities: Value, reply: Value| {
            json!({"update_id": 3, "message": {
                "message_id": 9, "date": 1, "chat": group_chat(), "from": user(),
                "text": text, "entities": entities, "reply_to_message": reply}})
        };
        let m = message(base(
            "hi @acmecarebot help",
            json!([{"type": "mention", "offset": 3, "length": 12}]),
            Value::Null,
        ));
        assert_eq!(
            (m.visibility, m.origin),
            (Visibility::Public, Origin::Mention)
        );
        let m = message(base(
            "/help@AcmeCareBot",
            json!([{"type": "bot_command", "offset": 0, "length": 17}]),
            Value::Null,
        ));
        assert_eq!(m.origin, Origin::Mention);
        // A reply to the bot's own message.
        let m = message(base(
            "thanks",
            Value::Null,
            json!({"message_id": 5, "date": 1, "chat": group_chat(),
                   "from": {"id": 1, "is_bot": true, "first_name": "Acme", "username": "AcmeCareBot"}}),
        ));
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.in_reply_to.as_deref(), Some("-100123:5"));
        // Not addressed to the bot: listening. `@acmecarebotx` and `me@acmecarebot` are not it.
        let m = message(base(
            "my parcel is late @acmecarebotx me@acmecarebot",
            Value::Null,
            Value::Null,
        ));
        assert_eq!(m.origin, Origin::Listening);
        // A channel post that does not address the bot: other.
        let m = message(json!({"update_id": 4, "channel_post": {
            "message_id": 3, "date": 1,
            "chat": {"id": -100999, "type": "channel", "title": "Acme news", "username": "acmenews"},
            "sender_chat": {"id": -100999, "type": "channel", "title": "Acme news", "username": "acmenews"},
            "text": "New store hours"}}));
        assert_eq!(m.origin, Origin::Other);
        assert_eq!(m.author.id, "-100999");
        assert_eq!(m.author.handle.as_deref(), Some("@acmenews"));
        assert_eq!(m.author.display_name.as_deref(), Some("Acme news"));
        assert_eq!(m.visibility, Visibility::Public);
    }

    #[test]
    fn without_bot_username_nothing_counts_as_a_mention() {
        let update = json!({"update_id": 3, "message": {
            "message_id": 9, "date": 1, "chat": group_chat(), "from": user(),
            "text": "hi @AcmeCareBot", "entities": [{"type": "mention", "offset": 3, "length": 12}]}});
        let events = parse_update(
            update.as_object().unwrap(),
            Options {
                channel: "telegram",
                bot_username: None,
            },
        );
        let [Event::Message(m)] = events.as_slice() else {
            panic!()
        };
        assert_eq!(m.origin, Origin::Listening);
    }

    #[test]
    fn text_link_after_emoji_uses_utf16_offsets() {
        // "😡" is one code point but two UTF-16 units; "é" is one unit. The link label "here"
        // starts at UTF-16 offset 2+1+7 = 10 ("😡 " = 3 units, "Refund " = 7).
        let text = "😡 Refund here, é @casey";
        let entities = json!([
            {"type": "text_link", "offset": 10, "length": 4, "url": "https://acme.example/refund"},
            {"type": "mention", "offset": 18, "length": 6}
        ]);
        assert_eq!(
            resolve_entities(text, Some(&entities)),
            "😡 Refund here (https://acme.example/refund), é @casey"
        );
        let units: Vec<u16> = text.encode_utf16().collect();
        let mention = entity_text(&units, entities[1].as_object().unwrap()).unwrap();
        assert_eq!(mention, "@casey");
        // Counting bytes or code points instead would cut the label elsewhere.
        assert_ne!(&text[10..14], "here");
    }

    #[test]
    fn text_links_several_nested_and_invalid() {
        let text = "a👨‍👩‍👧b docs";
        // The family emoji is 5 code points and 8 UTF-16 units.
        let entities = json!([
            {"type": "bold", "offset": 0, "length": 10},
            {"type": "text_link", "offset": 11, "length": 4, "url": "https://d.example"},
            {"type": "text_link", "offset": 0, "length": 1, "url": "https://a.example"},
            // Inside a surrogate pair: ignored.
            {"type": "text_link", "offset": 2, "length": 1, "url": "https://bad.example"},
            // Past the end: ignored.
            {"type": "text_link", "offset": 14, "length": 9, "url": "https://bad.example"},
            // Label is the URL already: nothing added.
            {"type": "text_link", "offset": 9, "length": 1, "url": "b"},
            {"type": "text_link", "offset": 0, "length": 2, "url": 5}
        ]);
        assert_eq!(
            resolve_entities(text, Some(&entities)),
            "a (https://a.example)👨‍👩‍👧b docs (https://d.example)"
        );
        assert_eq!(resolve_entities(text, None), text);
        assert_eq!(resolve_entities("", Some(&json!("not a list"))), "");
    }

    #[test]
    fn caption_entities_and_mention_in_caption() {
        let m = message(json!({"update_id": 5, "message": {
        "message_id": 11, "date": 1, "chat": group_chat(), "from": user(),
        "photo": [
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
            {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 853}
        ],
        "caption": "🧳 broken @AcmeCareBot see",
        "caption_entities": [
            {"type": "mention", "offset": 10, "length": 12},
            {"type": "text_link", "offset": 23, "length": 3, "url": "https://img.example/1"}
        ]}}));
        assert_eq!(m.text, "🧳 broken @AcmeCareBot see (https://img.example/1)");
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.kind, AttachmentKind::Image);
        assert_eq!(a.url, None);
        assert_eq!(
            a.description.as_deref(),
            Some("photo 1280x853 (file_id: big)")
        );
    }

    #[test]
    fn media_kinds() {
        let m = message(json!({"update_id": 6, "message": {
            "message_id": 12, "date": 1, "chat": private_chat(), "from": user(),
            "animation": {"file_id": "an", "file_name": "fail.mp4", "mime_type": "video/mp4"},
            "document": {"file_id": "an", "file_name": "fail.mp4", "mime_type": "video/mp4"},
            "voice": {"file_id": "vo", "duration": 4, "mime_type": "audio/ogg"},
            "sticker": {"file_id": "st", "emoji": "😢", "set_name": "sad", "is_animated": true},
            "venue": {"location": {"latitude": 41.5, "longitude": 12.25}, "title": "Shop", "address": "Via Roma 1"},
            "location": {"latitude": 41.5, "longitude": 12.25},
            "contact": {"phone_number": "+3912345", "first_name": "Ana"}
        }}));
        let kinds: Vec<_> = m.attachments.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            vec![
                AttachmentKind::Video,
                AttachmentKind::Audio,
                AttachmentKind::Sticker,
                AttachmentKind::Location,
                AttachmentKind::Other
            ]
        );
        assert_eq!(
            m.attachments[0].description.as_deref(),
            Some("fail.mp4 (file_id: an)")
        );
        assert_eq!(
            m.attachments[1].description.as_deref(),
            Some("voice message, 4 s (file_id: vo)")
        );
        assert_eq!(
            m.attachments[2].mime_type.as_deref(),
            Some("application/x-tgsticker")
        );
        assert_eq!(
            m.attachments[2].description.as_deref(),
            Some("😢 sticker from set sad (file_id: st)")
        );
        assert_eq!(m.attachments[3].url.as_deref(), Some("geo:41.5,12.25"));
        assert_eq!(
            m.attachments[3].description.as_deref(),
            Some("Shop, Via Roma 1")
        );
        assert_eq!(
            m.attachments[4].description.as_deref(),
            Some("contact: Ana +3912345")
        );
        assert_eq!(m.text, "");
    }

    #[test]
    fn forum_topic_message_and_general_topic_reply() {
        let chat = json!({"id": -1001, "type": "supergroup", "is_forum": true, "title": "T"});
        // In a topic: the topic's creation message is not a reply.
        let m = message(json!({"update_id": 7, "message": {
            "message_id": 70, "date": 1, "chat": chat, "from": user(), "text": "aaaa",
            "message_thread_id": 33, "is_topic_message": true,
            "reply_to_message": {"message_id": 33, "date": 1, "chat": chat,
                                  "forum_topic_created": {"name": "x", "icon_color": 1}}}}));
        assert_eq!(m.conversation_key, "-1001:33");
        assert_eq!(m.in_reply_to, None);
        assert!(
            m.extra
                .contains(&("message-thread-id".to_string(), "33".to_string()))
        );
        // A reply in General: `message_thread_id` without `is_topic_message` is not a topic.
        let m = message(json!({"update_id": 8, "message": {
            "message_id": 68, "date": 1, "chat": chat, "from": user(), "text": "bbbb",
            "message_thread_id": 66,
            "reply_to_message": {"message_id": 66, "date": 1, "chat": chat, "text": "aaaaaa"}}}));
        assert_eq!(m.conversation_key, "-1001");
        assert_eq!(m.in_reply_to.as_deref(), Some("-1001:66"));
        assert!(m.extra.iter().all(|(k, _)| k != "message-thread-id"));
    }

    #[test]
    fn business_message_and_deletions() {
        let m = message(json!({"update_id": 9, "business_message": {
            "message_id": 5, "date": 10, "business_connection_id": "bc-1",
            "chat": private_chat(), "from": user(), "text": "hello shop"}}));
        assert_eq!(m.origin, Origin::DirectMessage);
        assert!(
            m.extra
                .contains(&("business-connection-id".to_string(), "bc-1".to_string()))
        );
        let events = parse_update(
            json!({"update_id": 10, "deleted_business_messages": {
                "business_connection_id": "bc-1", "chat": private_chat(), "message_ids": [5, 6, "x"]}})
            .as_object()
            .unwrap(),
            OPTS,
        );
        assert_eq!(events.len(), 3);
        let Event::Message(d) = &events[1] else {
            panic!()
        };
        assert_eq!(d.external_id, "42:6");
        assert_eq!(d.action, MessageAction::Deleted);
        assert_eq!(d.text, "");
        assert_eq!(d.author.id, "42");
        assert!(matches!(&events[2], Event::Skipped(s) if s.reason.contains("not an integer")));
    }

    #[test]
    fn poll_and_checklist_become_text() {
        let m = message(json!({"update_id": 11, "message": {
            "message_id": 1, "date": 1, "chat": private_chat(), "from": user(),
            "checklist": {"title": "Daily", "tasks": [{"id": 1, "text": "Apples"}, {"id": 2, "text": "Pears"}]}}}));
        assert_eq!(m.text, "Daily\n- [ ] Apples\n- [ ] Pears");
        let m = message(json!({"update_id": 12, "message": {
            "message_id": 2, "date": 1, "chat": private_chat(), "from": user(),
            "poll": {"id": "p", "question": "Best?", "options": [{"text": "A", "voter_count": 0}]}}}));
        assert_eq!(m.text, "Best?\n- A");
    }

    #[test]
    fn service_messages_and_other_updates_are_skipped() {
        let (t, reason) = skipped(json!({"update_id": 1, "message": {
            "message_id": 1, "date": 1, "chat": private_chat(), "from": user(),
            "left_chat_member": user()}}));
        assert_eq!(t.as_deref(), Some("message"));
        assert!(reason.contains("`left_chat_member`"), "{reason}");
        let (t, reason) = skipped(json!({"update_id": 1, "inline_query": {"id": "1"}}));
        assert_eq!(t.as_deref(), Some("inline_query"));
        assert!(reason.contains("not a message"));
        let (t, reason) = skipped(json!({"update_id": 1, "brand_new_thing": {}}));
        assert_eq!(t.as_deref(), Some("brand_new_thing"));
        assert!(reason.contains("not a message this connector handles"));
        let (t, _) = skipped(json!({"update_id": 1}));
        assert_eq!(t, None);
        // `null` payloads are ignored when finding the update type.
        let (t, _) = skipped(json!({"update_id": 1, "message": null, "poll": {"id": "p"}}));
        assert_eq!(t.as_deref(), Some("poll"));
    }

    #[test]
    fn malformed_messages_are_skipped_not_failed() {
        for (update, needle) in [
            (
                json!({"update_id": 1, "message": {"date": 1, "chat": private_chat()}}),
                "`message_id`",
            ),
            (
                json!({"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "x"}}),
                "`chat`",
            ),
            (
                json!({"update_id": 1, "message": {"message_id": 1, "chat": {"id": "42"}, "text": "x"}}),
                "`chat.id` must be an integer",
            ),
            (
                json!({"update_id": 1, "message": {"message_id": 1, "chat": private_chat(), "text": "x"}}),
                "`from`",
            ),
            (
                json!({"update_id": 1, "message": {"message_id": 1, "chat": private_chat(), "from": user(), "text": "x"}}),
                "`date`",
            ),
            (json!({"update_id": 1, "message": "hello"}), "a string"),
        ] {
            let (t, reason) = skipped(update);
            assert_eq!(t.as_deref(), Some("message"));
            assert!(reason.contains(needle), "{reason} lacks {needle}");
        }
    }

    #[test]
    fn chat_without_type_is_inferred_from_its_id() {
        let m = message(json!({"update_id": 1, "message": {
            "message_id": 1, "date": 1, "chat": {"id": 5, "first_name": "T"}, "from": user(), "text": "/start"}}));
        assert_eq!(m.visibility, Visibility::Private);
        let m = message(json!({"update_id": 1, "message": {
            "message_id": 1, "date": 1, "chat": {"id": -5, "title": "G"}, "from": user(), "text": "hey"}}));
        assert_eq!(
            (m.visibility, m.origin),
            (Visibility::Public, Origin::Listening)
        );
    }

    #[test]
    fn bodies_other_than_updates() {
        assert!(matches!(
            parse_body(b"{\"update_id\": 1,", OPTS),
            Err(PluginError::InvalidInput(m)) if m.contains("line 1 column")
        ));
        assert!(matches!(
            parse_body(b"[1]", OPTS),
            Err(PluginError::InvalidInput(m)) if m.contains("an array")
        ));
        assert!(matches!(
            parse_body(b"{\"foo\": 1}", OPTS),
            Err(PluginError::InvalidInput(m)) if m.contains("without `update_id`")
        ));
        let events = parse_body(b"{\"ok\": true, \"result\": {}}", OPTS).unwrap();
        assert!(matches!(&events[..], [Event::Skipped(s)] if s.reason.contains("method response")));
        let events = parse_body(
            b"{\"message_id\": 1, \"chat\": {\"id\": 1}, \"date\": 1}",
            OPTS,
        )
        .unwrap();
        assert!(matches!(&events[..], [Event::Skipped(s)] if s.reason.contains("bare Message")));
        // A BOM is tolerated.
        let mut body = BOM.to_vec();
        body.extend_from_slice(br#"{"update_id": 1, "inline_query": {"id": "1"}}"#);
        assert_eq!(parse_body(&body, OPTS).unwrap().len(), 1);
    }
}
