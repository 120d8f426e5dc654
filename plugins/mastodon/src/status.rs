//! Mastodon API entities (Status, Notification) to normalised messages, and the decoding of
//! captured entities sent to `handle-webhook`.

use std::collections::HashMap;

use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

use crate::html;
use crate::settings::Config;

/// The channel name stamped on every message.
pub const CHANNEL: &str = "mastodon";
/// Longest id the host accepts, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest text the host accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most events the host accepts in one batch.
pub const MAX_EVENTS: usize = 10_000;
/// Host name used in ids when neither `instance` nor the status tells one.
pub const UNKNOWN_HOST: &str = "unknown-instance";

/// Remembers which conversation a status belongs to, so that a reply to a reply lands in the
/// conversation of the root post (Mastodon's API does not give the root of a thread).
pub trait Threads {
    fn conversation_of(&self, status_id: &str) -> Option<String>;
    fn remember(&mut self, status_id: &str, conversation_key: &str);
}

impl Threads for HashMap<String, String> {
    fn conversation_of(&self, status_id: &str) -> Option<String> {
        self.get(status_id).cloned()
    }
    fn remember(&mut self, status_id: &str, conversation_key: &str) {
        self.insert(status_id.to_string(), conversation_key.to_string());
    }
}

/// How a status reached the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `mention` notification (with its notification id).
    Mention { notification_id: String },
    /// A hashtag timeline (`#tag`) or a keyword search (`keyword:refund`).
    Listening { via: String },
    /// A captured Status entity with no context: origin from its mentions.
    Captured,
}

/// An id that Mastodon gives as a string (numbers tolerated).
pub fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

fn str_of<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Order of Mastodon ids: numeric strings compared by value (shorter is smaller), and
/// same-length ids (Snowflake or flake ids) lexicographically.
pub fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

/// `created_at` in epoch milliseconds; absent is 0 (the host fills in its clock).
fn timestamp(value: Option<&Value>, field: &str) -> Result<i64, String> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s
            .trim()
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| format!("`{field}` is not an RFC 3339 timestamp (`{s}`): {e}")),
        Some(_) => Err(format!("`{field}` is not a string")),
    }
}

fn attachment_kind(media_type: &str) -> AttachmentKind {
    match media_type {
        "image" => AttachmentKind::Image,
        "gifv" | "video" => AttachmentKind::Video,
        "audio" => AttachmentKind::Audio,
        "unknown" => AttachmentKind::File,
        _ => AttachmentKind::Other,
    }
}

/// A MediaAttachment entity as an attachment.
pub fn media_attachment(media: &Value) -> Attachment {
    Attachment {
        kind: attachment_kind(str_of(media, "type").unwrap_or("unknown")),
        url: str_of(media, "url")
            .or_else(|| str_of(media, "remote_url"))
            .map(String::from),
        mime_type: None,
        description: str_of(media, "description").map(String::from),
    }
}

/// The host part used to namespace instance-local ids.
fn id_host(config: &Config, status: &Value) -> String {
    config
        .instance_host()
        .or_else(|| {
            str_of(status, "uri")
                .or_else(|| str_of(status, "url"))
                .map(crate::settings::host_of)
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| UNKNOWN_HOST.to_string())
}

fn is_own(config: &Config, account: &Value) -> bool {
    str_of(account, "acct").is_some_and(|acct| config.is_own(acct))
}

/// Turn one Status entity into an event. Problems skip the status with a reason; they never
/// fail the batch.
pub fn status_event(
    status: &Value,
    source: &Source,
    config: &Config,
    threads: &mut dyn Threads,
) -> Event {
    match status_message(status, source, config, threads) {
        Ok(event) => event,
        Err(reason) => Event::skipped(Some("status"), &reason),
    }
}

fn status_message(
    status: &Value,
    source: &Source,
    config: &Config,
    threads: &mut dyn Threads,
) -> Result<Event, String> {
    if !status.is_object() {
        return Err("a status must be a JSON object".into());
    }
    let id = id_of(status.get("id")).ok_or("status without an `id`")?;
    if status.get("reblog").is_some_and(|r| !r.is_null()) {
        return Ok(Event::skipped(
            Some("reblog"),
            &format!("status {id} is a boost of another post, not a message to the brand"),
        ));
    }
    let account = status
        .get("account")
        .filter(|a| a.is_object())
        .ok_or_else(|| format!("status {id} has no `account`"))?;
    let account_id =
        id_of(account.get("id")).ok_or_else(|| format!("status {id}: account without an `id`"))?;
    let acct = str_of(account, "acct")
        .or_else(|| str_of(account, "username"))
        .ok_or_else(|| format!("status {id}: account without an `acct`"))?;
    if is_own(config, account) {
        return Ok(Event::skipped(
            Some("status"),
            &format!("status {id} was written by the brand's own account @{acct}"),
        ));
    }
    let host = id_host(config, status);

    let external_id = str_of(status, "uri")
        .filter(|u| u.len() <= MAX_ID_BYTES)
        .map(String::from)
        .unwrap_or_else(|| format!("{host}:{id}"));
    if external_id.len() > MAX_ID_BYTES || id.len() > MAX_ID_BYTES / 2 {
        return Err(format!("status id is longer than {MAX_ID_BYTES} bytes"));
    }

    // Text: the content warning in front, then the HTML content resolved.
    let body = status
        .get("content")
        .and_then(Value::as_str)
        .map(html::to_text)
        .unwrap_or_default();
    let text = match str_of(status, "spoiler_text") {
        Some(cw) if body.is_empty() => format!("CW: {cw}"),
        Some(cw) => format!("CW: {cw}\n\n{body}"),
        None => body,
    };
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "status {id}: text of {} bytes is longer than the host's limit of {MAX_TEXT_BYTES}",
            text.len()
        ));
    }

    let raw_visibility = str_of(status, "visibility").unwrap_or("public");
    let private = raw_visibility == "direct";
    let mentions: Vec<String> = status
        .get("mentions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| str_of(m, "acct").map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let origin = if private {
        Origin::DirectMessage
    } else {
        match source {
            Source::Mention { .. } => Origin::Mention,
            Source::Listening { .. } => Origin::Listening,
            Source::Captured if mentions.iter().any(|m| config.is_own(m)) => Origin::Mention,
            Source::Captured if config.account().is_some() => Origin::Listening,
            Source::Captured => Origin::Other,
        }
    };

    // Threading: Mastodon's entity has no thread root; an explicit `conversation_id` wins,
    // else the conversation of the parent as remembered, else the parent itself.
    let in_reply_to = id_of(status.get("in_reply_to_id"));
    let conversation_key = id_of(status.get("conversation_id"))
        .or_else(|| {
            in_reply_to.as_deref().map(|parent| {
                threads
                    .conversation_of(parent)
                    .unwrap_or_else(|| parent.to_string())
            })
        })
        .unwrap_or_else(|| id.clone());
    let conversation_key = if conversation_key.len() > MAX_ID_BYTES {
        id.clone()
    } else {
        conversation_key
    };

    let received_at = timestamp(status.get("created_at"), "created_at")
        .map_err(|e| format!("status {id}: {e}"))?;
    let edited_at = str_of(status, "edited_at");

    let mut attachments: Vec<Attachment> = status
        .get("media_attachments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|m| m.is_object())
                .map(media_attachment)
                .collect()
        })
        .unwrap_or_default();
    if let Some(card) = status.get("card").filter(|c| c.is_object())
        && let Some(url) = str_of(card, "url")
    {
        attachments.push(Attachment {
            kind: AttachmentKind::Link,
            url: Some(url.to_string()),
            mime_type: None,
            description: str_of(card, "title").map(String::from),
        });
    }

    let mut extra: Vec<(String, String)> = vec![
        ("status-id".into(), id.clone()),
        ("instance".into(), host.clone()),
        ("mastodon-visibility".into(), raw_visibility.to_string()),
    ];
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            extra.push((k.to_string(), v.to_string()));
        }
    };
    put("status-url", str_of(status, "url"));
    put(
        "in-reply-to-account-id",
        id_of(status.get("in_reply_to_account_id")).as_deref(),
    );
    put("edited-at", edited_at);
    if status.get("sensitive").and_then(Value::as_bool) == Some(true) {
        put("sensitive", Some("true"));
    }
    if !mentions.is_empty() {
        put("mentions", Some(&mentions.join(",")));
    }
    match source {
        Source::Mention { notification_id } => put("notification-id", Some(notification_id)),
        Source::Listening { via } => put("listening-source", Some(via)),
        Source::Captured => {}
    }
    if let Some(poll) = status.get("poll").filter(|p| p.is_object()) {
        put("poll-id", id_of(poll.get("id")).as_deref());
        let options: Vec<&str> = poll
            .get("options")
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(|o| str_of(o, "title")).collect())
            .unwrap_or_default();
        put("poll-options", Some(&options.join(" | ")));
        put("poll-expires-at", str_of(poll, "expires_at"));
        if poll.get("multiple").and_then(Value::as_bool) == Some(true) {
            put("poll-multiple", Some("true"));
        }
    }
    if let Some(quote) = status.get("quote").filter(|q| q.is_object()) {
        // Mastodon 4.5 wraps the quoted status: {"state": "accepted", "quoted_status": {...}}.
        let quoted = quote
            .get("quoted_status")
            .filter(|q| q.is_object())
            .unwrap_or(quote);
        put("quote-state", str_of(quote, "state"));
        put("quote-status-id", id_of(quoted.get("id")).as_deref());
        put("quote-uri", str_of(quoted, "uri"));
        put("quote-url", str_of(quoted, "url"));
    }
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    threads.remember(&id, &conversation_key);
    Ok(Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id,
        conversation_key,
        in_reply_to,
        author: Author {
            id: format!("{account_id}@{host}"),
            handle: Some(format!("@{acct}")),
            display_name: str_of(account, "display_name").map(String::from),
        },
        text,
        language: str_of(status, "language").map(String::from),
        visibility: if private {
            Visibility::Private
        } else {
            Visibility::Public
        },
        origin,
        received_at,
        attachments,
        action: if edited_at.is_some() {
            MessageAction::Edited
        } else {
            MessageAction::Created
        },
        extra,
    }))
}

/// Turn one Notification entity into an event: `mention` notifications carry a status,
/// every other type is skipped.
pub fn notification_event(
    notification: &Value,
    config: &Config,
    threads: &mut dyn Threads,
) -> Event {
    let kind = str_of(notification, "type").unwrap_or("unknown");
    let Some(notification_id) = id_of(notification.get("id")) else {
        return Event::skipped(Some(kind), "notification without an `id`");
    };
    if kind != "mention" {
        return Event::skipped(
            Some(kind),
            &format!("`{kind}` notifications are not messages; only mentions are"),
        );
    }
    let Some(status) = notification.get("status").filter(|s| s.is_object()) else {
        return Event::skipped(
            Some(kind),
            &format!("mention notification {notification_id} carries no status"),
        );
    };
    status_event(
        status,
        &Source::Mention { notification_id },
        config,
        threads,
    )
}

/// What a JSON value looks like among Mastodon's entities.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    Notification,
    Status,
    Account,
    MediaAttachment,
    SearchResults,
    AdminWebhook,
    Unknown,
}

pub fn shape(value: &Value) -> Shape {
    let Some(obj) = value.as_object() else {
        return Shape::Unknown;
    };
    let has = |k: &str| obj.contains_key(k);
    if has("event") && has("object") {
        Shape::AdminWebhook
    } else if has("content") && has("account") {
        Shape::Status
    } else if has("type") && has("account") && has("id") {
        Shape::Notification
    } else if has("acct") && has("username") {
        Shape::Account
    } else if has("type") && (has("preview_url") || has("blurhash")) {
        Shape::MediaAttachment
    } else if has("statuses") && (has("accounts") || has("hashtags")) {
        Shape::SearchResults
    } else {
        Shape::Unknown
    }
}

/// Parse a body as JSON, tolerating a UTF-8 byte-order mark; errors name the position.
pub fn parse_json(body: &[u8]) -> Result<Value, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidInput(format!(
            "body is not valid JSON: {e} (expected a Mastodon Notification or Status entity)"
        ))
    })
}

/// Decode one captured entity (or a JSON array of them, as the API lists them) into events.
pub fn decode_captured(
    value: &Value,
    config: &Config,
    threads: &mut dyn Threads,
) -> Result<Vec<Event>, PluginError> {
    match value {
        Value::Array(items) => {
            if items.len() > MAX_EVENTS {
                return Err(PluginError::InvalidInput(format!(
                    "{} entities in one body, more than {MAX_EVENTS}",
                    items.len()
                )));
            }
            // The API lists newest first; hand them over oldest first.
            let mut items: Vec<&Value> = items.iter().collect();
            items.sort_by(|a, b| {
                id_cmp(
                    &id_of(a.get("id")).unwrap_or_default(),
                    &id_of(b.get("id")).unwrap_or_default(),
                )
            });
            Ok(items
                .into_iter()
                .map(|item| match entity_event(item, config, threads) {
                    Ok(event) => event,
                    Err(reason) => Event::skipped(None, &reason),
                })
                .collect())
        }
        Value::Object(_) if shape(value) == Shape::SearchResults => {
            let statuses = value.get("statuses").cloned().unwrap_or(Value::Null);
            match statuses {
                Value::Array(_) => decode_captured(&statuses, config, threads),
                _ => Err(PluginError::InvalidInput(
                    "search results whose `statuses` is not a list".into(),
                )),
            }
        }
        _ => entity_event(value, config, threads)
            .map(|e| vec![e])
            .map_err(PluginError::InvalidInput),
    }
}

fn entity_event(
    value: &Value,
    config: &Config,
    threads: &mut dyn Threads,
) -> Result<Event, String> {
    Ok(match shape(value) {
        Shape::Notification => notification_event(value, config, threads),
        Shape::Status => status_event(value, &Source::Captured, config, threads),
        Shape::Account => Event::skipped(
            Some("account"),
            "an Account entity describes a person, it is not a message",
        ),
        Shape::MediaAttachment => Event::skipped(
            Some("media-attachment"),
            "a MediaAttachment on its own is not a message (it is read as part of a status)",
        ),
        Shape::AdminWebhook => Event::skipped(
            str_of(value, "event"),
            "Mastodon admin webhooks are not supported: this connector polls the brand's \
             notifications and listening timelines",
        ),
        Shape::SearchResults | Shape::Unknown => {
            return Err(
                "JSON that is not a Mastodon Notification or Status entity (expected `type` and \
                 `account`, or `content` and `account`)"
                    .into(),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn brand() -> Config {
        config(&[
            ("instance", "https://mastodon.social"),
            ("account", "acmecare"),
        ])
    }

    fn status(id: &str) -> Value {
        json!({
            "id": id,
            "created_at": "2019-11-23T07:49:01.940Z",
            "in_reply_to_id": null,
            "sensitive": false,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": format!("https://remote.example/users/casey/statuses/{id}"),
            "url": format!("https://remote.example/@casey/{id}"),
            "content": "<p><span class=\"h-card\"><a href=\"https://mastodon.social/@acmecare\" class=\"u-url mention\">@<span>acmecare</span></a></span> my bag is lost &amp; I&#39;m upset</p>",
            "account": {"id": "971724", "username": "casey", "acct": "casey@remote.example", "display_name": "Casey Jones"},
            "media_attachments": [],
            "mentions": [{"id": "1", "username": "acmecare", "acct": "acmecare", "url": "https://mastodon.social/@acmecare"}],
            "edited_at": null,
            "reblog": null,
            "poll": null,
            "card": null
        })
    }

    fn msg(event: Event) -> Message {
        match event {
            Event::Message(m) => m,
            Event::Skipped(s) => panic!("skipped: {s:?}"),
        }
    }

    #[test]
    fn a_mention_is_normalised() {
        let mut threads = HashMap::new();
        let n = json!({"id": "34975861", "type": "mention", "created_at": "2019-11-23T07:49:02.064Z",
                       "account": {"id": "971724", "acct": "casey@remote.example"}, "status": status("103186126728896492")});
        let m = msg(notification_event(&n, &brand(), &mut threads));
        assert_eq!(m.channel, "mastodon");
        assert_eq!(m.tenant, "");
        assert_eq!(
            m.external_id,
            "https://remote.example/users/casey/statuses/103186126728896492"
        );
        assert_eq!(m.conversation_key, "103186126728896492");
        assert_eq!(m.in_reply_to, None);
        assert_eq!(m.author.id, "971724@mastodon.social");
        assert_eq!(m.author.handle.as_deref(), Some("@casey@remote.example"));
        assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
        assert_eq!(m.text, "@acmecare my bag is lost & I'm upset");
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.received_at, 1_574_495_341_940);
        assert_eq!(m.action, MessageAction::Created);
        let extra: HashMap<_, _> = m.extra.iter().cloned().collect();
        assert_eq!(extra["status-id"], "103186126728896492");
        assert_eq!(extra["notification-id"], "34975861");
        assert_eq!(extra["instance"], "mastodon.social");
        assert_eq!(extra["mentions"], "acmecare");
        assert_eq!(threads["103186126728896492"], "103186126728896492");
    }

    #[test]
    fn direct_messages_cw_edits_media_and_threads() {
        let mut threads: HashMap<String, String> = HashMap::new();
        threads.insert("500".into(), "100".into());
        let mut s = status("600");
        s["visibility"] = json!("direct");
        s["in_reply_to_id"] = json!("500");
        s["spoiler_text"] = json!("card details");
        s["edited_at"] = json!("2019-11-23T08:00:00.000Z");
        s["language"] = Value::Null;
        s["media_attachments"] = json!([
            {"id": "1", "type": "image", "url": "https://files.example/a.png", "description": "receipt"},
            {"id": "2", "type": "gifv", "url": null, "remote_url": "https://r.example/b.mp4"},
            {"id": "3", "type": "audio", "url": "https://files.example/c.mp3"},
            {"id": "4", "type": "unknown", "url": "https://files.example/d.bin"}
        ]);
        s["card"] = json!({"url": "https://acme.example/help", "title": "Help centre"});
        let m = msg(status_event(
            &s,
            &Source::Mention {
                notification_id: "9".into(),
            },
            &brand(),
            &mut threads,
        ));
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(
            m.conversation_key, "100",
            "the remembered root of the parent"
        );
        assert_eq!(m.in_reply_to.as_deref(), Some("500"));
        assert_eq!(threads["600"], "100");
        assert!(m.text.starts_with("CW: card details\n\n@acmecare my bag"));
        assert_eq!(m.action, MessageAction::Edited);
        assert_eq!(m.language, None);
        let kinds: Vec<_> = m.attachments.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            vec![
                AttachmentKind::Image,
                AttachmentKind::Video,
                AttachmentKind::Audio,
                AttachmentKind::File,
                AttachmentKind::Link
            ]
        );
        assert_eq!(m.attachments[0].description.as_deref(), Some("receipt"));
        assert_eq!(
            m.attachments[1].url.as_deref(),
            Some("https://r.example/b.mp4")
        );
        assert_eq!(m.attachments[4].description.as_deref(), Some("Help centre"));

        // A parent the connector never saw: the parent is the conversation.
        let mut s = status("700");
        s["in_reply_to_id"] = json!("650");
        let m = msg(status_event(
            &s,
            &Source::Captured,
            &brand(),
            &mut HashMap::new(),
        ));
        assert_eq!(m.conversation_key, "650");
        assert_eq!(m.origin, Origin::Mention, "it mentions the brand");
        // An explicit conversation id wins.
        s["conversation_id"] = json!("42");
        let m = msg(status_event(
            &s,
            &Source::Captured,
            &brand(),
            &mut HashMap::new(),
        ));
        assert_eq!(m.conversation_key, "42");
    }

    #[test]
    fn own_posts_boosts_and_broken_statuses_are_skipped() {
        let mut own = status("1");
        own["account"]["acct"] = json!("AcmeCare");
        assert!(matches!(
            status_event(&own, &Source::Listening { via: "#acme".into() }, &brand(), &mut HashMap::new()),
            Event::Skipped(s) if s.reason.contains("brand's own account @AcmeCare")
        ));
        let mut boost = status("2");
        boost["reblog"] = status("3");
        assert!(matches!(
            status_event(&boost, &Source::Captured, &brand(), &mut HashMap::new()),
            Event::Skipped(s) if s.event_type.as_deref() == Some("reblog")
        ));
        let mut bad_time = status("4");
        bad_time["created_at"] = json!("yesterday");
        assert!(matches!(
            status_event(&bad_time, &Source::Captured, &brand(), &mut HashMap::new()),
            Event::Skipped(s) if s.reason.contains("RFC 3339")
        ));
        let mut no_account = status("5");
        no_account["account"] = Value::Null;
        assert!(matches!(
            status_event(&no_account, &Source::Captured, &brand(), &mut HashMap::new()),
            Event::Skipped(s) if s.reason.contains("no `account`")
        ));
        let mut long_uri = status("6");
        long_uri["uri"] = json!(format!("https://x.example/{}", "a".repeat(2000)));
        let m = msg(status_event(
            &long_uri,
            &Source::Captured,
            &brand(),
            &mut HashMap::new(),
        ));
        assert_eq!(m.external_id, "mastodon.social:6");
        let n = json!({"id": "7", "type": "favourite", "account": {"id": "1", "acct": "x"}});
        assert!(matches!(
            notification_event(&n, &brand(), &mut HashMap::new()),
            Event::Skipped(s) if s.event_type.as_deref() == Some("favourite")
        ));
    }

    #[test]
    fn listening_and_captured_origins() {
        let mut s = status("8");
        s["mentions"] = json!([]);
        let listening = Source::Listening {
            via: "#acme".into(),
        };
        let m = msg(status_event(&s, &listening, &brand(), &mut HashMap::new()));
        assert_eq!(m.origin, Origin::Listening);
        assert!(
            m.extra
                .contains(&("listening-source".into(), "#acme".into()))
        );
        let m = msg(status_event(
            &s,
            &Source::Captured,
            &config(&[]),
            &mut HashMap::new(),
        ));
        assert_eq!(m.origin, Origin::Other);
        // Without `instance`, ids are namespaced by the status' own host.
        assert_eq!(m.author.id, "971724@remote.example");
    }

    #[test]
    fn bodies_are_classified_or_refused_with_a_position() {
        let err = parse_json(b"{\n  \"id\": 1,\n  // ...\n}").unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidInput(m) if m.contains("line 3 column 3")),
            "{err:?}"
        );
        assert_eq!(parse_json(b"\xEF\xBB\xBF[]").unwrap(), json!([]));
        let c = brand();
        let events = decode_captured(
            &json!([status("20"), status("10"), {"nonsense": true}]),
            &c,
            &mut HashMap::new(),
        )
        .unwrap();
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0], Event::Skipped(s) if s.reason.contains("not a Mastodon")));
        assert!(
            matches!(&events[1], Event::Message(m) if m.extra.contains(&("status-id".into(), "10".into())))
        );
        assert!(
            matches!(decode_captured(&json!({"x": 1}), &c, &mut HashMap::new()), Err(PluginError::InvalidInput(m)) if m.contains("not a Mastodon"))
        );
        let account = json!({"id": "1", "username": "noiob", "acct": "noiob@awoo.space"});
        assert!(matches!(
            &decode_captured(&account, &c, &mut HashMap::new()).unwrap()[0],
            Event::Skipped(s) if s.event_type.as_deref() == Some("account")
        ));
        let search = json!({"accounts": [], "statuses": [status("30")], "hashtags": []});
        assert!(matches!(
            &decode_captured(&search, &c, &mut HashMap::new()).unwrap()[0],
            Event::Message(_)
        ));
        assert_eq!(id_cmp("9", "10"), std::cmp::Ordering::Less);
    }
}
