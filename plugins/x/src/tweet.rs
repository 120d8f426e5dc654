//! Turning X posts and direct messages into normalised messages: v1.1 statuses and direct
//! message events (as Account Activity delivers them) and API v2 tweets and DM events (as
//! `poll` reads them).

use std::collections::HashMap;

use serde_json::Value;
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

/// The channel name stamped on every message.
pub const CHANNEL: &str = "x";
/// Milliseconds between the Unix epoch and X's snowflake epoch (2010-11-04T01:42:54.657Z).
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;
/// Ids above this are snowflakes (carry their creation time); older ones are sequential.
const FIRST_SNOWFLAKE: u64 = 30_000_000_000_000_000;

/// Conversation memory: which conversation a post belongs to, for replies whose payload names
/// only the parent (v1.1 has no `conversation_id`).
pub trait Threads {
    fn conversation_of(&self, tweet_id: &str) -> Option<String>;
    fn remember(&mut self, tweet_id: &str, conversation_key: &str);
}

impl Threads for HashMap<String, String> {
    fn conversation_of(&self, tweet_id: &str) -> Option<String> {
        self.get(tweet_id).cloned()
    }
    fn remember(&mut self, tweet_id: &str, conversation_key: &str) {
        self.insert(tweet_id.to_string(), conversation_key.to_string());
    }
}

/// Parse a body as JSON, tolerating a UTF-8 byte-order mark; errors name line and column.
pub fn parse_json(body: &[u8]) -> Result<Value, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| {
        PluginError::InvalidInput(format!(
            "body is not valid JSON: {e} (expected an X Account Activity delivery)"
        ))
    })
}

/// A string or integer id field as text.
pub fn id_of(value: &Value, key: &str) -> Option<String> {
    match value.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The `id_str` of a v1.1 object, else its `id`.
fn v1_id(value: &Value, base: &str) -> Option<String> {
    id_of(value, &format!("{base}_str")).or_else(|| id_of(value, base))
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Undo the HTML escaping X applies to post text (`&amp;`, `&lt;`, `&gt;`, and quotes).
pub fn unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let known = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#39;", '\''),
            ("&apos;", '\''),
        ];
        match known.iter().find(|(e, _)| tail.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &tail[e.len()..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Creation time of a snowflake id, in epoch ms.
pub fn snowflake_ms(id: &str) -> Option<i64> {
    let n: u64 = id.parse().ok()?;
    (n >= FIRST_SNOWFLAKE).then(|| (n >> 22) as i64 + SNOWFLAKE_EPOCH_MS)
}

/// v1.1 `created_at` (`Wed Oct 10 20:19:24 +0000 2018`) in epoch ms.
pub fn v1_time_ms(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse("%a %b %d %H:%M:%S %z %Y", text)
        .ok()?
        .to_timestamp()
        .ok()
        .map(|t| t.as_millisecond())
}

/// v2 `created_at` (RFC 3339) in epoch ms.
pub fn v2_time_ms(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// An epoch-ms field given as a string or a number.
fn ms_field(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The conversation key of a post: the platform's conversation id, else the remembered
/// conversation of its parent, else the parent, else the post itself.
fn conversation(
    platform: Option<String>,
    id: &str,
    parent: Option<&str>,
    threads: &mut dyn Threads,
) -> String {
    let key = platform
        .or_else(|| parent.and_then(|p| threads.conversation_of(p)))
        .or_else(|| parent.map(String::from))
        .unwrap_or_else(|| id.to_string());
    threads.remember(id, &key);
    key
}

/// Replace each t.co link by its expanded URL and drop the links that only point at attached
/// media (they become attachments).
fn resolve_links(text: &str, urls: &[Value], media_links: &[String]) -> String {
    let mut text = unescape_html(text);
    for link in media_links {
        text = text.replace(link.as_str(), "");
    }
    for u in urls {
        let (Some(short), Some(long)) = (str_of(u, "url"), str_of(u, "expanded_url")) else {
            continue;
        };
        if u.get("media_key").is_some() || media_links.iter().any(|m| m == short) {
            text = text.replace(short, "");
        } else {
            text = text.replace(short, long);
        }
    }
    text.trim_end().to_string()
}

/// The best direct URL of a video: the highest-bitrate MP4 variant.
fn best_variant(variants: Option<&Value>) -> Option<(String, String)> {
    variants?
        .as_array()?
        .iter()
        .filter(|v| {
            v.get("content_type").and_then(Value::as_str) == Some("video/mp4")
                && str_of(v, "url").is_some()
        })
        .max_by_key(|v| v.get("bitrate").and_then(Value::as_u64).unwrap_or(0))
        .map(|v| {
            (
                str_of(v, "url").unwrap_or_default().to_string(),
                "video/mp4".to_string(),
            )
        })
}

/// One media entity (v1.1 `extended_entities.media[]` or v2 `includes.media[]`).
fn media_attachment(m: &Value) -> Attachment {
    let kind = match m.get("type").and_then(Value::as_str) {
        Some("photo") => AttachmentKind::Image,
        Some("video") | Some("animated_gif") => AttachmentKind::Video,
        _ => AttachmentKind::Other,
    };
    let variants = m
        .get("video_info")
        .and_then(|v| v.get("variants"))
        .or_else(|| m.get("variants"));
    let (url, mime) = match best_variant(variants) {
        Some((u, mime)) if kind == AttachmentKind::Video => (Some(u), Some(mime)),
        _ => (
            str_of(m, "media_url_https")
                .or_else(|| str_of(m, "url"))
                .or_else(|| str_of(m, "preview_image_url"))
                .or_else(|| str_of(m, "media_url"))
                .map(String::from),
            None,
        ),
    };
    Attachment {
        kind,
        url,
        mime_type: mime,
        description: str_of(m, "ext_alt_text")
            .or_else(|| str_of(m, "alt_text"))
            .map(String::from),
    }
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Facts shared by every normaliser.
pub struct Context<'a> {
    /// The brand account's user id (`for_user_id`, else config `user_id`).
    pub own_id: Option<&'a str>,
    /// When the platform gives no time and the id is not a snowflake.
    pub now_ms: i64,
}

fn skipped(kind: &str, reason: String) -> Event {
    Event::skipped(Some(kind), &reason)
}

/// A v1.1 status (as in `tweet_create_events`). `origin` is the origin to use when the
/// status addresses the brand; otherwise it is listening if the brand is known, else other.
pub fn v1_status(status: &Value, ctx: &Context, threads: &mut dyn Threads) -> Event {
    let Some(id) = v1_id(status, "id") else {
        return skipped("tweet", "a status without `id_str`".into());
    };
    if status.get("retweeted_status").is_some_and(Value::is_object) {
        return skipped(
            "retweet",
            format!("tweet {id} is a retweet: it carries no text of its own"),
        );
    }
    let user = status.get("user").unwrap_or(&Value::Null);
    let Some(author_id) = v1_id(user, "id") else {
        return skipped("tweet", format!("tweet {id} has no `user.id_str`"));
    };
    if ctx.own_id == Some(author_id.as_str()) {
        return skipped("tweet", format!("tweet {id} is the account's own post"));
    }
    let (raw_text, entities, extended) =
        match status.get("extended_tweet").filter(|e| e.is_object()) {
            Some(ext) => (
                str_of(ext, "full_text").unwrap_or_default(),
                ext.get("entities"),
                ext.get("extended_entities"),
            ),
            None => (
                str_of(status, "full_text")
                    .or_else(|| str_of(status, "text"))
                    .unwrap_or_default(),
                status.get("entities"),
                status.get("extended_entities"),
            ),
        };
    let entities = entities.unwrap_or(&Value::Null);
    let media = {
        let ext = array(extended.and_then(|e| e.get("media")));
        if ext.is_empty() {
            array(entities.get("media"))
        } else {
            ext
        }
    };
    let media_links: Vec<String> = media
        .iter()
        .filter_map(|m| str_of(m, "url").map(String::from))
        .collect();
    let text = resolve_links(raw_text, array(entities.get("urls")), &media_links);
    let attachments: Vec<Attachment> = media.iter().map(media_attachment).collect();

    let parent = v1_id(status, "in_reply_to_status_id");
    let platform_conv = v1_id(status, "conversation_id");
    let conversation_key = conversation(platform_conv, &id, parent.as_deref(), threads);
    let received_at = ms_field(status, "timestamp_ms")
        .or_else(|| str_of(status, "created_at").and_then(v1_time_ms))
        .or_else(|| snowflake_ms(&id))
        .unwrap_or(ctx.now_ms);

    let mentioned: Vec<String> = array(entities.get("user_mentions"))
        .iter()
        .filter_map(|m| v1_id(m, "id"))
        .collect();
    let reply_to_user = v1_id(status, "in_reply_to_user_id");
    let quoted_user = status
        .get("quoted_status")
        .and_then(|q| q.get("user"))
        .and_then(|u| v1_id(u, "id"));
    let addressed = ctx.own_id.is_some_and(|own| {
        reply_to_user.as_deref() == Some(own)
            || quoted_user.as_deref() == Some(own)
            || mentioned.iter().any(|m| m == own)
    });
    let origin = match (addressed, ctx.own_id) {
        (true, _) => Origin::Mention,
        (false, Some(_)) => Origin::Listening,
        (false, None) => Origin::Other,
    };

    // An edited post keeps the id of its first version.
    let initial = status
        .get("edit_history")
        .and_then(|h| id_of(h, "initial_tweet_id"))
        .filter(|first| *first != id);
    let action = if initial.is_some() {
        MessageAction::Edited
    } else {
        MessageAction::Created
    };
    let screen_name = str_of(user, "screen_name");
    let mut extra = vec![("tweet-id".to_string(), id.clone())];
    if let Some(name) = screen_name {
        extra.push((
            "tweet-url".into(),
            format!("https://x.com/{name}/status/{id}"),
        ));
    }
    if let Some(u) = &reply_to_user {
        extra.push(("in-reply-to-user-id".into(), u.clone()));
    }
    if let Some(q) = v1_id(status, "quoted_status_id") {
        extra.push(("quoted-tweet-id".into(), q));
    }
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: initial.unwrap_or_else(|| id.clone()),
        conversation_key,
        in_reply_to: parent,
        author: Author {
            id: author_id,
            handle: screen_name.map(|s| format!("@{s}")),
            display_name: str_of(user, "name").map(String::from),
        },
        text,
        language: str_of(status, "lang")
            .filter(|l| *l != "und")
            .map(String::from),
        visibility: Visibility::Public,
        origin,
        received_at,
        attachments,
        action,
        extra,
    })
}

/// One entry of `tweet_delete_events`.
pub fn v1_delete(event: &Value, ctx: &Context, threads: &mut dyn Threads) -> Event {
    let status = event.get("status").unwrap_or(&Value::Null);
    let (Some(id), Some(user_id)) = (v1_id(status, "id"), v1_id(status, "user_id")) else {
        return skipped(
            "tweet_delete_events",
            "a deletion without `status.id` and `status.user_id`".into(),
        );
    };
    let conversation_key = threads.conversation_of(&id).unwrap_or_else(|| id.clone());
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: id.clone(),
        conversation_key,
        in_reply_to: None,
        author: Author {
            id: user_id,
            handle: None,
            display_name: None,
        },
        text: String::new(),
        language: None,
        visibility: Visibility::Public,
        origin: Origin::Other,
        received_at: ms_field(event, "timestamp_ms").unwrap_or(ctx.now_ms),
        attachments: vec![],
        action: MessageAction::Deleted,
        extra: vec![("tweet-id".into(), id)],
    })
}

/// The key of a one-to-one DM conversation: both user ids, numerically sorted, as X's own
/// `dm_conversation_id` writes them.
pub fn dm_conversation_id(a: &str, b: &str) -> String {
    let key = |s: &str| (s.len(), s.to_string());
    let (lo, hi) = if key(a) <= key(b) { (a, b) } else { (b, a) };
    format!("{lo}-{hi}")
}

/// A user from a users map, as (handle, display name).
fn user_names(users: &HashMap<String, Value>, id: &str) -> (Option<String>, Option<String>) {
    let Some(u) = users.get(id) else {
        return (None, None);
    };
    (
        str_of(u, "screen_name")
            .or_else(|| str_of(u, "username"))
            .map(|s| format!("@{s}")),
        str_of(u, "name").map(String::from),
    )
}

/// A v1.1 direct message event (`direct_message_events[]`, or the `event` of a
/// `direct_messages/events` response).
pub fn v1_dm(event: &Value, users: &HashMap<String, Value>, ctx: &Context) -> Event {
    let kind = str_of(event, "type").unwrap_or("(no type)");
    if kind != "message_create" {
        return skipped(
            kind,
            format!("direct message event of type `{kind}` is not a message"),
        );
    }
    let Some(id) = id_of(event, "id") else {
        return skipped(kind, "a direct message without `id`".into());
    };
    let create = event.get("message_create").unwrap_or(&Value::Null);
    let sender = id_of(create, "sender_id");
    let recipient = create.get("target").and_then(|t| id_of(t, "recipient_id"));
    let (Some(sender), Some(recipient)) = (sender, recipient) else {
        return skipped(
            kind,
            format!("direct message {id} has no sender or recipient id"),
        );
    };
    if ctx.own_id == Some(sender.as_str()) {
        return skipped(
            kind,
            format!("direct message {id} was sent by the account itself"),
        );
    }
    if sender == recipient {
        return skipped(
            kind,
            format!(
                "direct message {id} was sent by user {sender} to itself (as in the response to \
                 the account's own POST direct_messages/events/new): not a customer message"
            ),
        );
    }
    let data = create.get("message_data").unwrap_or(&Value::Null);
    let entities = data.get("entities").unwrap_or(&Value::Null);
    let media: Vec<&Value> = data
        .get("attachment")
        .and_then(|a| a.get("media"))
        .into_iter()
        .collect();
    let media_links: Vec<String> = media
        .iter()
        .filter_map(|m| str_of(m, "url").map(String::from))
        .collect();
    let text = resolve_links(
        str_of(data, "text").unwrap_or_default(),
        array(entities.get("urls")),
        &media_links,
    );
    let conv = dm_conversation_id(&sender, &recipient);
    let (handle, display_name) = user_names(users, &sender);
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: format!("dm:{id}"),
        conversation_key: format!("dm:{conv}"),
        in_reply_to: None,
        author: Author {
            id: sender.clone(),
            handle,
            display_name,
        },
        text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at: ms_field(event, "created_timestamp")
            .or_else(|| snowflake_ms(&id))
            .unwrap_or(ctx.now_ms),
        attachments: media.into_iter().map(media_attachment).collect(),
        action: MessageAction::Created,
        extra: vec![
            ("recipient-id".into(), sender),
            ("dm-conversation-id".into(), conv),
            ("dm-event-id".into(), id),
        ],
    })
}

/// The `includes` of a v2 response, indexed.
#[derive(Default)]
pub struct Includes {
    pub users: HashMap<String, Value>,
    pub media: HashMap<String, Value>,
}

impl Includes {
    pub fn from_response(response: &Value) -> Self {
        let inc = response.get("includes").unwrap_or(&Value::Null);
        let index = |key: &str, field: &str| -> HashMap<String, Value> {
            array(inc.get(key))
                .iter()
                .filter_map(|v| id_of(v, field).map(|k| (k, v.clone())))
                .collect()
        };
        Includes {
            users: index("users", "id"),
            media: index("media", "media_key"),
        }
    }

    fn attachments(&self, item: &Value) -> Vec<Attachment> {
        array(item.get("attachments").and_then(|a| a.get("media_keys")))
            .iter()
            .filter_map(Value::as_str)
            .map(|key| match self.media.get(key) {
                Some(m) => media_attachment(m),
                None => Attachment {
                    kind: AttachmentKind::Other,
                    url: None,
                    mime_type: None,
                    description: Some(format!("media {key} (not in the response's includes)")),
                },
            })
            .collect()
    }
}

/// An API v2 tweet. `origin` is what the source says (mentions timeline → mention, search →
/// listening); a listening hit that addresses the brand is promoted to a mention.
pub fn v2_tweet(
    tweet: &Value,
    includes: &Includes,
    origin: Origin,
    ctx: &Context,
    threads: &mut dyn Threads,
) -> Event {
    let Some(id) = id_of(tweet, "id") else {
        return skipped("tweet", "a v2 tweet without `id`".into());
    };
    let refs = array(tweet.get("referenced_tweets"));
    let ref_of = |kind: &str| {
        refs.iter()
            .find(|r| r.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|r| id_of(r, "id"))
    };
    if ref_of("retweeted").is_some() {
        return skipped(
            "retweet",
            format!("tweet {id} is a retweet: it carries no text of its own"),
        );
    }
    let Some(author_id) = id_of(tweet, "author_id") else {
        return skipped(
            "tweet",
            format!(
                "tweet {id} has no `author_id` (the request did not ask for tweet.fields=author_id), \
                 so it cannot be attributed to a customer"
            ),
        );
    };
    if ctx.own_id == Some(author_id.as_str()) {
        return skipped("tweet", format!("tweet {id} is the account's own post"));
    }
    let (raw_text, entities) = match tweet.get("note_tweet").filter(|n| n.get("text").is_some()) {
        Some(note) => (
            str_of(note, "text").unwrap_or_default(),
            note.get("entities"),
        ),
        None => (
            str_of(tweet, "text").unwrap_or_default(),
            tweet.get("entities"),
        ),
    };
    let entities = entities.unwrap_or(&Value::Null);
    let text = resolve_links(raw_text, array(entities.get("urls")), &[]);
    let parent = ref_of("replied_to");
    let conversation_key = conversation(
        id_of(tweet, "conversation_id"),
        &id,
        parent.as_deref(),
        threads,
    );
    let in_reply_to_user = id_of(tweet, "in_reply_to_user_id");
    let addressed = ctx.own_id.is_some_and(|own| {
        in_reply_to_user.as_deref() == Some(own)
            || array(entities.get("mentions"))
                .iter()
                .any(|m| id_of(m, "id").as_deref() == Some(own))
    });
    let origin = if addressed { Origin::Mention } else { origin };
    let history: Vec<String> = array(tweet.get("edit_history_tweet_ids"))
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let initial = history.first().filter(|first| **first != id).cloned();
    let (handle, display_name) = user_names(&includes.users, &author_id);
    let mut extra = vec![("tweet-id".to_string(), id.clone())];
    if let Some(h) = &handle {
        extra.push((
            "tweet-url".into(),
            format!("https://x.com/{}/status/{id}", &h[1..]),
        ));
    }
    if let Some(u) = in_reply_to_user {
        extra.push(("in-reply-to-user-id".into(), u));
    }
    if let Some(q) = ref_of("quoted") {
        extra.push(("quoted-tweet-id".into(), q));
    }
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: initial.clone().unwrap_or_else(|| id.clone()),
        conversation_key,
        in_reply_to: parent,
        author: Author {
            id: author_id,
            handle,
            display_name,
        },
        text,
        language: str_of(tweet, "lang")
            .filter(|l| *l != "und")
            .map(String::from),
        visibility: Visibility::Public,
        origin,
        received_at: str_of(tweet, "created_at")
            .and_then(v2_time_ms)
            .or_else(|| snowflake_ms(&id))
            .unwrap_or(ctx.now_ms),
        attachments: includes.attachments(tweet),
        action: if initial.is_some() {
            MessageAction::Edited
        } else {
            MessageAction::Created
        },
        extra,
    })
}

/// An API v2 DM event (`GET /2/dm_events`).
pub fn v2_dm(event: &Value, includes: &Includes, ctx: &Context) -> Event {
    let kind = str_of(event, "event_type").unwrap_or("(no event_type)");
    if kind != "MessageCreate" {
        return skipped(kind, format!("DM event of type `{kind}` is not a message"));
    }
    let (Some(id), Some(sender)) = (id_of(event, "id"), id_of(event, "sender_id")) else {
        return skipped(kind, "a DM event without `id` or `sender_id`".into());
    };
    if ctx.own_id == Some(sender.as_str()) {
        return skipped(kind, format!("DM {id} was sent by the account itself"));
    }
    let conv = str_of(event, "dm_conversation_id")
        .map(String::from)
        .or_else(|| ctx.own_id.map(|own| dm_conversation_id(own, &sender)));
    let Some(conv) = conv else {
        return skipped(kind, format!("DM {id} has no `dm_conversation_id`"));
    };
    let text = resolve_links(
        str_of(event, "text").unwrap_or_default(),
        array(event.get("entities").and_then(|e| e.get("urls"))),
        &[],
    );
    let (handle, display_name) = user_names(&includes.users, &sender);
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: format!("dm:{id}"),
        conversation_key: format!("dm:{conv}"),
        in_reply_to: None,
        author: Author {
            id: sender.clone(),
            handle,
            display_name,
        },
        text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at: str_of(event, "created_at")
            .and_then(v2_time_ms)
            .or_else(|| snowflake_ms(&id))
            .unwrap_or(ctx.now_ms),
        attachments: includes.attachments(event),
        action: MessageAction::Created,
        extra: vec![
            ("recipient-id".into(), sender),
            ("dm-conversation-id".into(), conv),
            ("dm-event-id".into(), id),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(own: Option<&str>) -> Context<'_> {
        Context {
            own_id: own,
            now_ms: 7,
        }
    }

    fn message(e: Event) -> Message {
        match e {
            Event::Message(m) => m,
            Event::Skipped(s) => panic!("skipped: {}", s.reason),
        }
    }

    #[test]
    fn html_and_times() {
        assert_eq!(
            unescape_html("Q&amp;A &lt;b&gt; &quot;x&quot; &#39;y&#39; & &foo;"),
            "Q&A <b> \"x\" 'y' & &foo;"
        );
        assert_eq!(
            v1_time_ms("Wed Oct 10 20:19:24 +0000 2018"),
            Some(1_539_202_764_000)
        );
        assert_eq!(
            v2_time_ms("2022-10-07T23:43:14.000Z"),
            Some(1_665_186_194_000)
        );
        // The tweet id of the mentions cassette encodes its creation time.
        assert_eq!(snowflake_ms("1578516295611748353"), Some(1_665_182_586_945));
        assert_eq!(snowflake_ms("20"), None);
        assert_eq!(
            dm_conversation_id("4337869213", "3001969357"),
            "3001969357-4337869213"
        );
        assert_eq!(dm_conversation_id("99", "100"), "99-100");
    }

    #[test]
    fn extended_v1_status_with_links_media_and_reply() {
        let status = json!({
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "id": 1050118621198921728u64, "id_str": "1050118621198921728",
            "text": "@AcmeAir my bag &amp; my coat are lost https://t.co/short1 …",
            "truncated": true,
            "in_reply_to_status_id_str": "1050000000000000000",
            "in_reply_to_user_id_str": "2244994945",
            "user": {"id_str": "6253282", "screen_name": "casey", "name": "Casey Jones"},
            "lang": "en",
            "timestamp_ms": "1539202764123",
            "extended_tweet": {
                "full_text": "@AcmeAir my bag &amp; my coat are lost at LIS &lt;3 https://t.co/short1 https://t.co/pic1",
                "entities": {
                    "urls": [{"url": "https://t.co/short1", "expanded_url": "https://acme.example/claim?a=1&b=2"}],
                    "user_mentions": [{"id_str": "2244994945", "screen_name": "AcmeAir"}]
                },
                "extended_entities": {"media": [{"url": "https://t.co/pic1", "type": "photo",
                    "media_url_https": "https://pbs.twimg.com/media/x.jpg", "ext_alt_text": "a suitcase"}]}
            },
            "entities": {"urls": [], "user_mentions": []}
        });
        let mut threads = HashMap::from([(
            "1050000000000000000".to_string(),
            "1049999999999999999".to_string(),
        )]);
        let m = message(v1_status(&status, &ctx(Some("2244994945")), &mut threads));
        assert_eq!(m.external_id, "1050118621198921728");
        assert_eq!(
            m.text,
            "@AcmeAir my bag & my coat are lost at LIS <3 https://acme.example/claim?a=1&b=2"
        );
        assert_eq!(m.conversation_key, "1049999999999999999");
        assert_eq!(threads["1050118621198921728"], "1049999999999999999");
        assert_eq!(m.in_reply_to.as_deref(), Some("1050000000000000000"));
        assert_eq!(m.author.handle.as_deref(), Some("@casey"));
        assert_eq!(m.author.display_name.as_deref(), Some("Casey Jones"));
        assert_eq!(m.received_at, 1_539_202_764_123);
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(m.attachments[0].description.as_deref(), Some("a suitcase"));
        assert!(m.extra.contains(&(
            "tweet-url".into(),
            "https://x.com/casey/status/1050118621198921728".into()
        )));
    }

    #[test]
    fn own_posts_retweets_and_edits() {
        let own = json!({"id_str": "5", "text": "hi", "user": {"id_str": "1"}});
        assert!(
            matches!(v1_status(&own, &ctx(Some("1")), &mut HashMap::new()), Event::Skipped(s) if s.reason.contains("own post"))
        );
        let rt = json!({"id_str": "6", "text": "RT", "user": {"id_str": "2"}, "retweeted_status": {"id_str": "5"}});
        assert!(
            matches!(v1_status(&rt, &ctx(Some("1")), &mut HashMap::new()), Event::Skipped(s) if s.event_type.as_deref() == Some("retweet"))
        );
        let edited = json!({"id_str": "8", "text": "fixed", "user": {"id_str": "2"},
            "edit_history": {"initial_tweet_id": "7", "edit_tweet_ids": ["7", "8"]}});
        let m = message(v1_status(&edited, &ctx(None), &mut HashMap::new()));
        assert_eq!(
            (m.external_id.as_str(), m.action),
            ("7", MessageAction::Edited)
        );
        assert_eq!(m.origin, Origin::Other);
        assert_eq!(m.received_at, 7, "no time and no snowflake: the clock");
    }

    #[test]
    fn v2_tweet_with_includes() {
        let response = json!({
            "data": [{
                "id": "1578900353814519810", "text": "@AcmeAir refund please &amp; fast https://t.co/abc https://t.co/img",
                "author_id": "2244994945", "conversation_id": "1578900000000000000",
                "created_at": "2022-10-09T00:01:02.000Z", "lang": "en",
                "in_reply_to_user_id": "783214",
                "referenced_tweets": [{"type": "replied_to", "id": "1578899999999999999"}],
                "entities": {"urls": [
                    {"url": "https://t.co/abc", "expanded_url": "https://acme.example/r"},
                    {"url": "https://t.co/img", "expanded_url": "https://x.com/casey/status/1/photo/1", "media_key": "3_1"}
                ], "mentions": [{"username": "AcmeAir", "id": "783214"}]},
                "attachments": {"media_keys": ["3_1"]},
                "edit_history_tweet_ids": ["1578900353814519810"]
            }],
            "includes": {"users": [{"id": "2244994945", "username": "casey", "name": "Casey"}],
                         "media": [{"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/y.jpg"}]}
        });
        let inc = Includes::from_response(&response);
        let m = message(v2_tweet(
            &response["data"][0],
            &inc,
            Origin::Listening,
            &ctx(Some("783214")),
            &mut HashMap::new(),
        ));
        assert_eq!(
            m.text,
            "@AcmeAir refund please & fast https://acme.example/r"
        );
        assert_eq!(m.conversation_key, "1578900000000000000");
        assert_eq!(m.in_reply_to.as_deref(), Some("1578899999999999999"));
        assert_eq!(m.origin, Origin::Mention, "it replies to the brand");
        assert_eq!(m.author.handle.as_deref(), Some("@casey"));
        assert_eq!(m.received_at, 1_665_273_662_000);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://pbs.twimg.com/media/y.jpg")
        );
        let no_author = json!({"id": "1", "text": "x"});
        assert!(
            matches!(v2_tweet(&no_author, &inc, Origin::Mention, &ctx(None), &mut HashMap::new()), Event::Skipped(s) if s.reason.contains("author_id"))
        );
    }

    #[test]
    fn v2_dm_event() {
        let ev = json!({"id": "1582838213082800132", "event_type": "MessageCreate", "text": "card declined",
            "sender_id": "906948460078698496", "dm_conversation_id": "783214-906948460078698496",
            "created_at": "2022-10-19T20:58:00.000Z"});
        let m = message(v2_dm(&ev, &Includes::default(), &ctx(Some("783214"))));
        assert_eq!(m.external_id, "dm:1582838213082800132");
        assert_eq!(m.conversation_key, "dm:783214-906948460078698496");
        assert_eq!(m.visibility, Visibility::Private);
        assert!(
            m.extra
                .contains(&("recipient-id".into(), "906948460078698496".into()))
        );
        let join = json!({"id": "2", "event_type": "ParticipantsJoin"});
        assert!(matches!(
            v2_dm(&join, &Includes::default(), &ctx(None)),
            Event::Skipped(_)
        ));
        let mine =
            json!({"id": "3", "event_type": "MessageCreate", "sender_id": "783214", "text": "hi"});
        assert!(
            matches!(v2_dm(&mine, &Includes::default(), &ctx(Some("783214"))), Event::Skipped(s) if s.reason.contains("itself"))
        );
    }
}
