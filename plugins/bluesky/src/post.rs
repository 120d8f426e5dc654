//! Normalising what Bluesky returns (post views, records, notifications, search and feed
//! answers, threads, Jetstream commit events, chat messages) into Switchboard messages.

use serde_json::{Map, Value, json};
use switchboard_sdk::{
    Attachment, AttachmentKind, Author, Event, Message, MessageAction, Origin, PluginError,
    Visibility,
};

use crate::facets;
use crate::xrpc::timestamp_ms;

/// The channel name stamped on messages.
pub const CHANNEL: &str = "bluesky";
/// The record type of a post.
pub const POST: &str = "app.bsky.feed.post";
/// Longest id the host accepts, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest text the host accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Most events the host accepts in one batch.
pub const MAX_EVENTS: usize = 10_000;

/// Who the brand is, to recognise its own posts and posts addressed to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    /// The brand account's DID, once a session has told it.
    pub did: Option<String>,
    /// The brand account's handle (config `handle`), lowercased.
    pub handle: Option<String>,
}

impl Own {
    fn is(&self, did: &str, handle: Option<&str>) -> bool {
        self.did.as_deref() == Some(did)
            || matches!((self.handle.as_deref(), handle), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
            || self.handle.as_deref() == Some(did)
    }
    fn is_did(&self, did: &str) -> bool {
        self.did.as_deref() == Some(did)
    }
}

/// The repository (DID) and record key of an `at://did/collection/rkey` URI.
pub fn split_at_uri(uri: &str) -> Option<(&str, &str, &str)> {
    let rest = uri.strip_prefix("at://")?;
    let mut parts = rest.splitn(3, '/');
    let repo = parts.next().filter(|s| !s.is_empty())?;
    let collection = parts.next().filter(|s| !s.is_empty())?;
    let rkey = parts.next().filter(|s| !s.is_empty() && !s.contains('/'))?;
    Some((repo, collection, rkey))
}

/// The bsky.app link of a post.
pub fn post_url(uri: &str) -> Option<String> {
    let (repo, collection, rkey) = split_at_uri(uri)?;
    (collection == POST).then(|| format!("https://bsky.app/profile/{repo}/post/{rkey}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// One post to normalise, from whichever payload carried it.
#[derive(Debug, Clone)]
pub struct PostInput<'a> {
    pub uri: &'a str,
    pub cid: Option<&'a str>,
    pub author_did: &'a str,
    pub handle: Option<&'a str>,
    pub display_name: Option<&'a str>,
    /// The `app.bsky.feed.post` record.
    pub record: &'a Value,
    /// The hydrated embed of a post view (CDN URLs), if the payload has one.
    pub embed_view: Option<&'a Value>,
    pub indexed_at: Option<&'a str>,
}

impl<'a> PostInput<'a> {
    /// From a post view (`app.bsky.feed.defs#postView`, also a notification's fields).
    pub fn from_view(view: &'a Value) -> Result<Self, String> {
        let uri = str_at(view, &["uri"]).ok_or("the post view has no `uri`")?;
        let record = view
            .get("record")
            .filter(|r| r.is_object())
            .ok_or("the post view has no `record`")?;
        let author_did = str_at(view, &["author", "did"])
            .or_else(|| split_at_uri(uri).map(|(repo, _, _)| repo))
            .ok_or("the post has no author DID")?;
        Ok(PostInput {
            uri,
            cid: str_at(view, &["cid"]),
            author_did,
            handle: str_at(view, &["author", "handle"]),
            display_name: str_at(view, &["author", "displayName"]),
            record,
            embed_view: view.get("embed").filter(|e| e.is_object()),
            indexed_at: str_at(view, &["indexedAt"]),
        })
    }

    /// From a repository record (`{uri, cid, value}`, as `com.atproto.repo.getRecord` answers).
    pub fn from_repo_record(v: &'a Value) -> Result<Self, String> {
        let uri = str_at(v, &["uri"]).ok_or("the record has no `uri`")?;
        let (repo, _, _) =
            split_at_uri(uri).ok_or_else(|| format!("`{uri}` is not an at:// record URI"))?;
        Ok(PostInput {
            uri,
            cid: str_at(v, &["cid"]),
            author_did: repo,
            handle: None,
            display_name: None,
            record: v.get("value").ok_or("the record has no `value`")?,
            embed_view: None,
            indexed_at: None,
        })
    }
}

/// The `$type` of a record or view, if any.
fn type_of(v: &Value) -> Option<&str> {
    v.get("$type").and_then(Value::as_str)
}

/// Attachments (and quote facts) of an embed, record form or hydrated view form.
fn embed_attachments(embed: &Value, atts: &mut Vec<Attachment>, extra: &mut Vec<(String, String)>) {
    let kind = type_of(embed).unwrap_or("");
    let base = kind.strip_suffix("#view").unwrap_or(kind);
    let non_empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    match base {
        "app.bsky.embed.images" => {
            for img in embed
                .get("images")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                atts.push(Attachment {
                    kind: AttachmentKind::Image,
                    url: non_empty(img.get("fullsize")),
                    mime_type: non_empty(img.pointer("/image/mimeType")),
                    description: non_empty(img.get("alt")),
                });
            }
        }
        "app.bsky.embed.video" => atts.push(Attachment {
            kind: AttachmentKind::Video,
            url: non_empty(embed.get("playlist")),
            mime_type: non_empty(embed.pointer("/video/mimeType")),
            description: non_empty(embed.get("alt")),
        }),
        "app.bsky.embed.external" => {
            if let Some(ext) = embed.get("external") {
                atts.push(Attachment {
                    kind: AttachmentKind::Link,
                    url: non_empty(ext.get("uri")),
                    mime_type: None,
                    description: non_empty(ext.get("title"))
                        .or_else(|| non_empty(ext.get("description"))),
                });
            }
        }
        "app.bsky.embed.record" => {
            // Record form: {record: {uri, cid}}; view form: {record: viewRecord | viewNotFound…}.
            if let Some(uri) = non_empty(embed.pointer("/record/uri")) {
                extra.push(("quote-uri".into(), uri));
            }
        }
        "app.bsky.embed.recordWithMedia" => {
            if let Some(media) = embed.get("media") {
                embed_attachments(media, atts, extra);
            }
            // Record form {record: {$type: embed.record, record: {uri, cid}}}; view form
            // {record: {record: viewRecord}} (the inner view often has no `$type`).
            if let Some(uri) = non_empty(embed.pointer("/record/record/uri")) {
                extra.push(("quote-uri".into(), uri));
            }
        }
        _ => {}
    }
}

/// Normalise one post. `Err` is the reason to skip it.
pub fn post_message(
    p: &PostInput,
    origin: Origin,
    action: MessageAction,
    mut extra: Vec<(String, String)>,
) -> Result<Message, String> {
    if p.uri.len() > MAX_ID_BYTES {
        return Err(format!("post URI is longer than {MAX_ID_BYTES} bytes"));
    }
    if split_at_uri(p.uri).is_none() {
        return Err(format!("`{}` is not an at:// record URI", p.uri));
    }
    if let Some(t) = type_of(p.record)
        && t != POST
    {
        return Err(format!("record type `{t}` is not a post"));
    }
    let raw_text = match p.record.get("text") {
        Some(Value::String(s)) => s.as_str(),
        None | Some(Value::Null) if action == MessageAction::Deleted => "",
        _ => return Err(format!("post {} has no `text`", p.uri)),
    };
    let resolved = facets::resolve(raw_text, p.record.get("facets"));
    if resolved.text.len() > MAX_TEXT_BYTES {
        return Err(format!("post {} is longer than 1 MiB", p.uri));
    }
    let root_uri = str_at(p.record, &["reply", "root", "uri"]);
    let parent_uri = str_at(p.record, &["reply", "parent", "uri"]);
    let conversation_key = root_uri.unwrap_or(p.uri);
    if conversation_key.len() > MAX_ID_BYTES || parent_uri.is_some_and(|u| u.len() > MAX_ID_BYTES) {
        return Err(format!(
            "post {}: thread URIs longer than {MAX_ID_BYTES} bytes",
            p.uri
        ));
    }
    let langs: Vec<&str> = p
        .record
        .get("langs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    let received_at = str_at(p.record, &["createdAt"])
        .and_then(timestamp_ms)
        .or_else(|| p.indexed_at.and_then(timestamp_ms))
        .unwrap_or(0);

    let mut attachments = Vec::new();
    let mut embed_extra = Vec::new();
    if let Some(embed) = p.embed_view.or_else(|| p.record.get("embed")) {
        embed_attachments(embed, &mut attachments, &mut embed_extra);
    }

    let mut facts: Vec<(String, String)> = vec![("uri".into(), p.uri.into())];
    if let Some(cid) = p.cid {
        facts.push(("cid".into(), cid.into()));
    }
    let root_cid = str_at(p.record, &["reply", "root", "cid"]);
    let parent_cid = str_at(p.record, &["reply", "parent", "cid"]);
    match (root_uri, root_cid) {
        (Some(u), c) => {
            facts.push(("root-uri".into(), u.into()));
            if let Some(c) = c {
                facts.push(("root-cid".into(), c.into()));
            }
        }
        // The post starts its own thread.
        (None, _) => {
            facts.push(("root-uri".into(), p.uri.into()));
            if let Some(c) = p.cid {
                facts.push(("root-cid".into(), c.into()));
            }
        }
    }
    if let Some(c) = parent_cid {
        facts.push(("parent-cid".into(), c.into()));
    }
    facts.push(("author-did".into(), p.author_did.into()));
    if let Some(url) = post_url(p.uri) {
        facts.push(("post-url".into(), url));
    }
    if !resolved.mentions.is_empty() {
        let map: Map<String, Value> = resolved
            .mentions
            .iter()
            .map(|(h, d)| (h.clone(), Value::String(d.clone())))
            .collect();
        facts.push(("mentions".into(), Value::Object(map).to_string()));
    }
    if !resolved.links.is_empty() {
        facts.push(("links".into(), resolved.links.join(" ")));
    }
    if !resolved.tags.is_empty() {
        facts.push(("tags".into(), resolved.tags.join(" ")));
    }
    if langs.len() > 1 {
        facts.push(("langs".into(), langs.join(",")));
    }
    if resolved.ignored > 0 {
        facts.push(("ignored-facets".into(), resolved.ignored.to_string()));
    }
    facts.extend(embed_extra);
    facts.append(&mut extra);

    Ok(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id: p.uri.into(),
        conversation_key: conversation_key.into(),
        in_reply_to: parent_uri.map(String::from),
        author: Author {
            id: p.author_did.into(),
            handle: p.handle.map(String::from),
            display_name: p.display_name.map(String::from),
        },
        text: resolved.text,
        language: langs.first().map(|l| l.to_string()),
        visibility: Visibility::Public,
        origin,
        received_at,
        attachments,
        action,
        extra: facts,
    })
}

/// Where a captured post stands towards the brand: a mention (facet or quote of the brand), a
/// comment (reply to one of the brand's posts), or other.
fn origin_towards(own: &Own, p: &PostInput) -> Origin {
    let resolved = facets::resolve(
        p.record.get("text").and_then(Value::as_str).unwrap_or(""),
        p.record.get("facets"),
    );
    if resolved.mentions.iter().any(|(h, d)| own.is(d, Some(h))) {
        return Origin::Mention;
    }
    let parent_repo = str_at(p.record, &["reply", "parent", "uri"])
        .and_then(split_at_uri)
        .map(|(repo, _, _)| repo);
    if parent_repo.is_some_and(|r| own.is_did(r)) {
        return Origin::Comment;
    }
    let quoted = p
        .record
        .pointer("/embed/record/uri")
        .or_else(|| p.record.pointer("/embed/record/record/uri"))
        .and_then(Value::as_str)
        .and_then(split_at_uri);
    if quoted.is_some_and(|(repo, _, _)| own.is_did(repo)) {
        return Origin::Mention;
    }
    Origin::Other
}

/// Normalise a post unless it is the brand's own; `origin` `None` means "work it out".
pub fn post_event(
    own: &Own,
    p: &PostInput,
    origin: Option<Origin>,
    action: MessageAction,
    extra: Vec<(String, String)>,
) -> Event {
    if own.is(p.author_did, p.handle) {
        return Event::skipped(
            Some(POST),
            &format!("post {} was written by the brand's own account", p.uri),
        );
    }
    let origin = origin.unwrap_or_else(|| origin_towards(own, p));
    match post_message(p, origin, action, extra) {
        Ok(m) => Event::Message(m),
        Err(reason) => Event::skipped(Some(POST), &reason),
    }
}

/// Why a notification reason is not a message.
fn not_a_message(reason: &str) -> String {
    match reason {
        "like" | "like-via-repost" => "a like is a reaction, not a message".into(),
        "repost" | "repost-via-repost" => "a repost shares a post without adding words".into(),
        "follow" => "a follow is not a message".into(),
        "starterpack-joined" => "joining a starter pack is not a message".into(),
        "verified" | "unverified" => "a verification change is not a message".into(),
        "subscribed-post" => {
            "a post by an account the brand subscribed to does not address the brand".into()
        }
        other => format!("notification reason `{other}` is not a message"),
    }
}

/// One notification (`app.bsky.notification.listNotifications#notification`).
pub fn notification_event(own: &Own, n: &Value) -> Event {
    let reason = n.get("reason").and_then(Value::as_str).unwrap_or("");
    let origin = match reason {
        "mention" | "quote" => Origin::Mention,
        "reply" => Origin::Comment,
        "" => return Event::skipped(None, "the notification has no `reason`"),
        other => return Event::skipped(Some(other), &not_a_message(other)),
    };
    match PostInput::from_view(n) {
        Ok(p) => post_event(
            own,
            &p,
            Some(origin),
            MessageAction::Created,
            vec![("notification-reason".into(), reason.into())],
        ),
        Err(e) => Event::skipped(Some(reason), &format!("{reason} notification: {e}")),
    }
}

/// One Jetstream event (`{"did", "time_us", "kind": "commit", "commit": {...}}`), as a relay
/// subscribed to `app.bsky.feed.post` would forward it.
pub fn jetstream_event(own: &Own, v: &Value) -> Event {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "commit" {
        return Event::skipped(
            Some(kind),
            &format!("Jetstream `{kind}` events carry no post"),
        );
    }
    let (Some(did), Some(commit)) = (str_at(v, &["did"]), v.get("commit")) else {
        return Event::skipped(Some("commit"), "the commit event has no `did` or `commit`");
    };
    let collection = str_at(commit, &["collection"]).unwrap_or("");
    if collection != POST {
        return Event::skipped(
            Some(collection),
            &format!("a `{collection}` record is not a post"),
        );
    }
    let Some(rkey) = str_at(commit, &["rkey"]) else {
        return Event::skipped(Some(collection), "the commit has no `rkey`");
    };
    let uri = format!("at://{did}/{POST}/{rkey}");
    let action = match str_at(commit, &["operation"]).unwrap_or("") {
        "create" => MessageAction::Created,
        "update" => MessageAction::Edited,
        "delete" => MessageAction::Deleted,
        other => {
            return Event::skipped(Some(collection), &format!("unknown operation `{other}`"));
        }
    };
    let empty = json!({});
    let record = commit.get("record").unwrap_or(&empty);
    let time = v.get("time_us").and_then(Value::as_i64).map(|us| us / 1000);
    let p = PostInput {
        uri: &uri,
        cid: str_at(commit, &["cid"]),
        author_did: did,
        handle: None,
        display_name: None,
        record,
        embed_view: None,
        indexed_at: None,
    };
    match post_event(own, &p, None, action, vec![]) {
        Event::Message(mut m) => {
            if m.received_at == 0 {
                m.received_at = time.unwrap_or(0);
            }
            Event::Message(m)
        }
        other => other,
    }
}

/// One thread (`app.bsky.feed.getPostThread`'s `thread`): the post, its parents and replies.
fn thread_events(own: &Own, root: &Value, out: &mut Vec<Event>) {
    let mut stack: Vec<&Value> = vec![root];
    // Parents first (oldest first), then the post and its replies.
    let mut parents = Vec::new();
    let mut p = root.get("parent");
    while let Some(node) = p {
        parents.push(node);
        p = node.get("parent");
    }
    for node in parents.into_iter().rev() {
        thread_node(own, node, out);
    }
    while let Some(node) = stack.pop() {
        thread_node(own, node, out);
        if let Some(replies) = node.get("replies").and_then(Value::as_array) {
            stack.extend(replies.iter().rev());
        }
    }
}

fn thread_node(own: &Own, node: &Value, out: &mut Vec<Event>) {
    let t = type_of(node).unwrap_or("app.bsky.feed.defs#threadViewPost");
    match t {
        "app.bsky.feed.defs#threadViewPost" => match node.get("post") {
            Some(view) => out.push(view_event(own, view, None)),
            None => out.push(Event::skipped(Some(t), "thread node without `post`")),
        },
        "app.bsky.feed.defs#notFoundPost" => out.push(Event::skipped(
            Some(t),
            "the post was not found (deleted, or never existed)",
        )),
        "app.bsky.feed.defs#blockedPost" => out.push(Event::skipped(
            Some(t),
            "the post is hidden by a block between the accounts",
        )),
        other => out.push(Event::skipped(Some(other), "unknown thread node type")),
    }
}

/// A post view as an event.
pub fn view_event(own: &Own, view: &Value, origin: Option<Origin>) -> Event {
    view_event_with(own, view, origin, vec![])
}

/// A post view as an event, with extra facts.
pub fn view_event_with(
    own: &Own,
    view: &Value,
    origin: Option<Origin>,
    extra: Vec<(String, String)>,
) -> Event {
    match PostInput::from_view(view) {
        Ok(p) => post_event(own, &p, origin, MessageAction::Created, extra),
        Err(e) => Event::skipped(Some(POST), &e),
    }
}

/// Decode a captured JSON payload into events. Unknown shapes are `invalid-input`.
pub fn decode_captured(value: &Value, own: &Own) -> Result<Vec<Event>, PluginError> {
    let mut out = Vec::new();
    decode_into(value, own, &mut out, 0)?;
    if out.len() > MAX_EVENTS {
        return Err(PluginError::InvalidInput(format!(
            "{} events in one body; at most {MAX_EVENTS}",
            out.len()
        )));
    }
    Ok(out)
}

const BARE_RECORD: &str = "a bare app.bsky.feed.post record carries no at:// URI, CID or \
                           author (they live in the repository path), so it cannot be stored \
                           or answered: send it as {uri, cid, value} \
                           (com.atproto.repo.getRecord), a post view, or a Jetstream commit \
                           event";

fn decode_into(
    v: &Value,
    own: &Own,
    out: &mut Vec<Event>,
    depth: usize,
) -> Result<(), PluginError> {
    let unknown = || {
        PluginError::InvalidInput(
            "not a Bluesky payload this connector knows: expected a post view, a \
             {uri, cid, value} record, a notification list, a search/feed/thread answer or a \
             Jetstream commit event"
                .into(),
        )
    };
    if let Value::Array(items) = v {
        if depth > 0 {
            return Err(unknown());
        }
        for item in items {
            decode_into(item, own, out, depth + 1)?;
        }
        return Ok(());
    }
    let Value::Object(obj) = v else {
        return Err(unknown());
    };
    let list = |k: &str| obj.get(k).and_then(Value::as_array);
    if obj.contains_key("lexicon") && obj.contains_key("defs") {
        let id = obj.get("id").and_then(Value::as_str).unwrap_or("?");
        out.push(Event::skipped(
            Some(id),
            &format!("`{id}` is a lexicon schema document, not a post"),
        ));
    } else if let Some(ns) = list("notifications") {
        out.extend(ns.iter().map(|n| notification_event(own, n)));
    } else if let Some(posts) = list("posts") {
        // app.bsky.feed.searchPosts (or getPosts).
        out.extend(posts.iter().map(|p| view_event(own, p, None)));
    } else if let Some(feed) = list("feed") {
        for item in feed {
            match item.get("post") {
                Some(view) => out.push(view_event(own, view, None)),
                None => out.push(Event::skipped(None, "feed item without `post`")),
            }
        }
    } else if let Some(thread) = obj.get("thread") {
        thread_events(own, thread, out);
    } else if let Some(records) = list("records") {
        for r in records {
            out.push(repo_record_event(own, r));
        }
    } else if obj.get("kind").is_some() && obj.get("did").is_some() {
        out.push(jetstream_event(own, v));
    } else if obj.contains_key("uri") && obj.contains_key("author") && obj.contains_key("record") {
        out.push(view_event(own, v, None));
    } else if obj.contains_key("uri") && obj.contains_key("value") {
        out.push(repo_record_event(own, v));
    } else if type_of(v) == Some(POST) {
        out.push(Event::skipped(Some(POST), BARE_RECORD));
    } else if let Some(t) = type_of(v) {
        out.push(Event::skipped(
            Some(t),
            &format!("a `{t}` object is not a post"),
        ));
    } else {
        return Err(unknown());
    }
    Ok(())
}

fn repo_record_event(own: &Own, r: &Value) -> Event {
    match PostInput::from_repo_record(r) {
        Ok(p) => post_event(own, &p, None, MessageAction::Created, vec![]),
        Err(e) => Event::skipped(Some(POST), &e),
    }
}

/// A member of a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub did: String,
    pub handle: Option<String>,
    pub display_name: Option<String>,
}

/// The members of a `chat.bsky.convo.defs#convoView`.
pub fn members(convo: &Value) -> Vec<Member> {
    convo
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(Member {
                did: str_at(m, &["did"])?.to_string(),
                handle: str_at(m, &["handle"]).map(String::from),
                display_name: str_at(m, &["displayName"]).map(String::from),
            })
        })
        .collect()
}

/// The external id of a chat message.
pub fn chat_external_id(convo_id: &str, message_id: &str) -> String {
    format!("chat:{convo_id}:{message_id}")
}

/// One chat message (`chat.bsky.convo.defs#messageView` or `#deletedMessageView`).
pub fn chat_event(own: &Own, convo_id: &str, members: &[Member], msg: &Value) -> Event {
    const T: &str = "chat.bsky.convo.defs#messageView";
    let t = type_of(msg).unwrap_or(T);
    let action = match t {
        T => MessageAction::Created,
        "chat.bsky.convo.defs#deletedMessageView" => MessageAction::Deleted,
        other => return Event::skipped(Some(other), "not a chat message"),
    };
    let (Some(id), Some(sender)) = (str_at(msg, &["id"]), str_at(msg, &["sender", "did"])) else {
        return Event::skipped(Some(t), "chat message without `id` or `sender.did`");
    };
    if own.is_did(sender) {
        return Event::skipped(Some(t), "a message the brand's own account sent");
    }
    let external_id = chat_external_id(convo_id, id);
    if external_id.len() > MAX_ID_BYTES {
        return Event::skipped(Some(t), "chat message id is too long");
    }
    let resolved = facets::resolve(
        msg.get("text").and_then(Value::as_str).unwrap_or(""),
        msg.get("facets"),
    );
    if resolved.text.len() > MAX_TEXT_BYTES {
        return Event::skipped(Some(t), "chat message longer than 1 MiB");
    }
    let member = members.iter().find(|m| m.did == sender);
    let mut attachments = Vec::new();
    let mut extra = vec![
        ("convo-id".to_string(), convo_id.to_string()),
        ("message-id".to_string(), id.to_string()),
        ("author-did".to_string(), sender.to_string()),
    ];
    if let Some(embed) = msg.get("embed") {
        embed_attachments(embed, &mut attachments, &mut extra);
    }
    if !resolved.links.is_empty() {
        extra.push(("links".into(), resolved.links.join(" ")));
    }
    Event::Message(Message {
        tenant: String::new(),
        channel: CHANNEL.into(),
        external_id,
        conversation_key: format!("chat:{convo_id}"),
        in_reply_to: None,
        author: Author {
            id: sender.into(),
            handle: member.and_then(|m| m.handle.clone()),
            display_name: member.and_then(|m| m.display_name.clone()),
        },
        text: resolved.text,
        language: None,
        visibility: Visibility::Private,
        origin: Origin::DirectMessage,
        received_at: str_at(msg, &["sentAt"]).and_then(timestamp_ms).unwrap_or(0),
        attachments,
        action,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra<'a>(m: &'a Message, k: &str) -> Option<&'a str> {
        m.extra
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    fn only(events: Vec<Event>) -> Message {
        match <[Event; 1]>::try_from(events) {
            Ok([Event::Message(m)]) => m,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn brand() -> Own {
        Own {
            did: Some("did:plc:brand".into()),
            handle: Some("acme.bsky.social".into()),
        }
    }

    fn reply_view() -> Value {
        let text = "@acme.bsky.social my bag 🧳 never came: acme.example/cla…";
        let m_end = "@acme.bsky.social".len();
        let l_start = text.find("acme.example").unwrap();
        json!({
            "uri": "at://did:plc:casey/app.bsky.feed.post/3kreply",
            "cid": "bafyreply",
            "author": {"did": "did:plc:casey", "handle": "casey.bsky.social", "displayName": "Casey"},
            "record": {
                "$type": POST,
                "text": text,
                "createdAt": "2024-05-01T10:00:00.000Z",
                "langs": ["en", "fr"],
                "facets": [
                    {"index": {"byteStart": 0, "byteEnd": m_end},
                     "features": [{"$type": facets::MENTION, "did": "did:plc:brand"}]},
                    {"index": {"byteStart": l_start, "byteEnd": text.len()},
                     "features": [{"$type": facets::LINK, "uri": "https://acme.example/claims/123"}]}
                ],
                "reply": {
                    "root": {"uri": "at://did:plc:brand/app.bsky.feed.post/3kroot", "cid": "bafyroot"},
                    "parent": {"uri": "at://did:plc:brand/app.bsky.feed.post/3kparent", "cid": "bafyparent"}
                }
            },
            "indexedAt": "2024-05-01T10:00:01.000Z"
        })
    }

    #[test]
    fn a_reply_view_is_fully_normalised() {
        let m = only(decode_captured(&reply_view(), &brand()).unwrap());
        assert_eq!(
            m.external_id,
            "at://did:plc:casey/app.bsky.feed.post/3kreply"
        );
        assert_eq!(
            m.conversation_key,
            "at://did:plc:brand/app.bsky.feed.post/3kroot"
        );
        assert_eq!(
            m.in_reply_to.as_deref(),
            Some("at://did:plc:brand/app.bsky.feed.post/3kparent")
        );
        assert_eq!(m.author.id, "did:plc:casey");
        assert_eq!(m.author.handle.as_deref(), Some("casey.bsky.social"));
        assert_eq!(m.author.display_name.as_deref(), Some("Casey"));
        assert_eq!(
            m.text,
            "@acme.bsky.social my bag 🧳 never came: https://acme.example/claims/123"
        );
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.received_at, 1_714_557_600_000);
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(extra(&m, "cid"), Some("bafyreply"));
        assert_eq!(extra(&m, "root-cid"), Some("bafyroot"));
        assert_eq!(extra(&m, "parent-cid"), Some("bafyparent"));
        assert_eq!(extra(&m, "langs"), Some("en,fr"));
        assert_eq!(
            extra(&m, "mentions"),
            Some(r#"{"acme.bsky.social":"did:plc:brand"}"#)
        );
        assert_eq!(
            extra(&m, "post-url"),
            Some("https://bsky.app/profile/did:plc:casey/post/3kreply")
        );
    }

    #[test]
    fn notifications_keep_mentions_replies_quotes_and_skip_the_rest() {
        let mut reply = reply_view();
        reply["reason"] = json!("reply");
        let body = json!({"notifications": [
            reply,
            {"reason": "like", "uri": "at://did:plc:x/app.bsky.feed.like/1"},
            {"reason": "follow"},
            {"reason": "repost"},
            {"reason": "mention", "uri": "at://did:plc:brand/app.bsky.feed.post/own",
             "author": {"did": "did:plc:brand", "handle": "acme.bsky.social"},
             "record": {"$type": POST, "text": "hi", "createdAt": "2024-05-01T10:00:00Z"}}
        ], "cursor": "abc"});
        let events = decode_captured(&body, &brand()).unwrap();
        assert_eq!(events.len(), 5);
        assert!(
            matches!(&events[0], Event::Message(m) if m.origin == Origin::Comment && extra(m, "notification-reason") == Some("reply"))
        );
        assert!(
            matches!(&events[1], Event::Skipped(s) if s.event_type.as_deref() == Some("like") && s.reason.contains("reaction"))
        );
        assert!(matches!(&events[2], Event::Skipped(s) if s.reason == "a follow is not a message"));
        assert!(matches!(&events[3], Event::Skipped(s) if s.reason.contains("repost")));
        assert!(
            matches!(&events[4], Event::Skipped(s) if s.reason.contains("brand's own account"))
        );
    }

    #[test]
    fn jetstream_commits_give_created_edited_and_deleted() {
        let create = json!({"did": "did:plc:casey", "time_us": 1_725_911_162_329_308_i64, "kind": "commit",
            "commit": {"rev": "r", "operation": "create", "collection": POST, "rkey": "3l3",
                       "cid": "bafy1", "record": {"$type": POST, "text": "hello @acme", "createdAt": "2024-09-09T19:46:02.102Z"}}});
        let m = only(decode_captured(&create, &brand()).unwrap());
        assert_eq!(m.external_id, "at://did:plc:casey/app.bsky.feed.post/3l3");
        assert_eq!(m.action, MessageAction::Created);
        assert_eq!(m.origin, Origin::Other);
        let delete = json!({"did": "did:plc:casey", "time_us": 1_725_911_162_329_308_i64, "kind": "commit",
            "commit": {"rev": "r", "operation": "delete", "collection": POST, "rkey": "3l3"}});
        let m = only(decode_captured(&delete, &brand()).unwrap());
        assert_eq!(m.action, MessageAction::Deleted);
        assert_eq!(m.text, "");
        assert_eq!(m.external_id, "at://did:plc:casey/app.bsky.feed.post/3l3");
        assert_eq!(m.received_at, 1_725_911_162_329);
        let like = json!({"did": "did:plc:casey", "kind": "commit",
            "commit": {"operation": "create", "collection": "app.bsky.feed.like", "rkey": "1"}});
        assert!(
            matches!(&decode_captured(&like, &brand()).unwrap()[0], Event::Skipped(s) if s.reason.contains("not a post"))
        );
        let identity = json!({"did": "did:plc:casey", "kind": "identity"});
        assert!(matches!(
            &decode_captured(&identity, &brand()).unwrap()[0],
            Event::Skipped(_)
        ));
    }

    #[test]
    fn bare_records_schemas_and_unknown_shapes() {
        let bare = json!({"$type": POST, "text": "Hello World!", "createdAt": "2023-08-07T05:31:12.156888Z"});
        assert!(
            matches!(&decode_captured(&bare, &Own::default()).unwrap()[0], Event::Skipped(s) if s.reason.contains("no at:// URI"))
        );
        let schema = json!({"lexicon": 1, "id": "app.bsky.feed.defs", "defs": {}});
        assert!(
            matches!(&decode_captured(&schema, &Own::default()).unwrap()[0], Event::Skipped(s) if s.event_type.as_deref() == Some("app.bsky.feed.defs"))
        );
        assert!(matches!(
            decode_captured(&json!({"hello": 1}), &Own::default()),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            decode_captured(&json!([[1]]), &Own::default()),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            decode_captured(&json!("text"), &Own::default()),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn embeds_become_attachments() {
        let view = json!({
            "uri": "at://did:plc:casey/app.bsky.feed.post/3k",
            "author": {"did": "did:plc:casey"},
            "record": {"$type": POST, "text": "", "createdAt": "2024-05-01T10:00:00Z",
                       "embed": {"$type": "app.bsky.embed.images", "images": [
                           {"alt": "torn bag", "image": {"$type": "blob", "mimeType": "image/jpeg"}},
                           {"alt": "", "image": {"$type": "blob", "mimeType": "image/png"}}]}}
        });
        let m = only(decode_captured(&view, &Own::default()).unwrap());
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(m.attachments[0].description.as_deref(), Some("torn bag"));
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.attachments[1].description, None);
        assert_eq!(m.author.handle, None);
    }

    #[test]
    fn chat_messages() {
        let members = vec![Member {
            did: "did:plc:casey".into(),
            handle: Some("casey.bsky.social".into()),
            display_name: Some("Casey".into()),
        }];
        let msg = json!({"$type": "chat.bsky.convo.defs#messageView", "id": "m1", "rev": "r1",
                         "text": "my card number leaked", "sender": {"did": "did:plc:casey"},
                         "sentAt": "2024-05-01T10:00:00.000Z"});
        let Event::Message(m) = chat_event(&brand(), "c1", &members, &msg) else {
            panic!()
        };
        assert_eq!(m.external_id, "chat:c1:m1");
        assert_eq!(m.conversation_key, "chat:c1");
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.origin, Origin::DirectMessage);
        assert_eq!(m.author.handle.as_deref(), Some("casey.bsky.social"));
        assert_eq!(extra(&m, "convo-id"), Some("c1"));
        let deleted = json!({"$type": "chat.bsky.convo.defs#deletedMessageView", "id": "m2",
                             "rev": "r2", "sender": {"did": "did:plc:casey"}, "sentAt": "2024-05-01T10:00:00Z"});
        assert!(
            matches!(chat_event(&brand(), "c1", &members, &deleted), Event::Message(m) if m.action == MessageAction::Deleted)
        );
        let own = json!({"id": "m3", "text": "hi", "sender": {"did": "did:plc:brand"}});
        assert!(matches!(
            chat_event(&brand(), "c1", &members, &own),
            Event::Skipped(_)
        ));
    }
}
