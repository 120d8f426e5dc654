//! Polling: Bluesky has no push webhooks for accounts, so inbound is pulled.
//!
//! Sources, read through the brand's session:
//!
//! - `notifications`: `app.bsky.notification.listNotifications?limit=100` — mentions, replies
//!   and quotes become messages; likes, reposts, follows and other reasons are skipped with a
//!   reason;
//! - `search:<term>` for each configured keyword and `#hashtag`:
//!   `app.bsky.feed.searchPosts?q=<term>&sort=latest&limit=100` (origin `listening`);
//! - `dms` (unless config `direct_messages` is false): `chat.bsky.convo.listConvos`, then
//!   `chat.bsky.convo.getMessages` for each conversation with something new, both through the
//!   PDS with header `atproto-proxy: did:web:api.bsky.chat#bsky_chat`.
//!
//! These APIs page from newest to oldest with an opaque `cursor` and have no "since id", so the
//! durable poll cursor keeps, per source, the newest `indexedAt` (`sentAt` for DMs) already
//! returned (`since`). A poll reads pages from the newest down to `since`, at most
//! [`MAX_PAGES`] pages; if there is more, the API's page cursor and the old `since` are kept
//! as `backlog` and the next poll of that source continues there before reading new items
//! again, so nothing is skipped. The first poll of a source (no `since`) reads one page, and
//! for DMs only the unread messages. Events come oldest first; the brand's own posts are
//! skipped; a post found by two sources is reported once (as the first source saw it:
//! notifications come first). The poll cursor is one JSON object, e.g.
//! `{"notifications":{"since":"2024-05-01T10:00:01.000Z"},"search:refund":{"since":"…"}}`. A
//! poll with nothing new returns no cursor (the host keeps the previous one).

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use switchboard_sdk::{Event, Origin, PluginError, PollBatch};

use crate::post::{self, Own};
use crate::session::Api;
use crate::settings::Config;
use crate::xrpc::{self, timestamp_ms};

/// Items asked for per page (the APIs' maximum).
pub const PAGE: &str = "100";
/// Pages read per source per poll.
pub const MAX_PAGES: usize = 3;
/// Stop reading further sources once a batch holds this many events (the host accepts 10,000).
pub const SOFT_EVENT_LIMIT: usize = 9_000;

/// Where one source stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// Timestamp of the newest item already returned.
    pub since: Option<String>,
    /// `(API page cursor, stop at this timestamp)` of older items still to read.
    pub backlog: Option<(String, String)>,
}

impl SourceState {
    fn from_json(v: &Value) -> SourceState {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
        SourceState {
            since: s("/since"),
            backlog: s("/backlog/page").zip(s("/backlog/until")),
        }
    }
    fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        if let Some(s) = &self.since {
            o.insert("since".into(), json!(s));
        }
        if let Some((page, until)) = &self.backlog {
            o.insert("backlog".into(), json!({"page": page, "until": until}));
        }
        Value::Object(o)
    }
}

/// The poll cursor: per-source states by source key.
pub type Cursor = BTreeMap<String, SourceState>;

/// Read the host's cursor (a JSON object of source states).
pub fn parse_cursor(raw: Option<&str>) -> Result<Cursor, PluginError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(Cursor::new());
    };
    let v: Value = serde_json::from_str(raw).map_err(|e| {
        PluginError::InvalidInput(format!("poll cursor is not JSON ({e}): `{raw}`"))
    })?;
    let Value::Object(map) = v else {
        return Err(PluginError::InvalidInput(
            "poll cursor must be a JSON object of per-source positions".into(),
        ));
    };
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), SourceState::from_json(v)))
        .collect())
}

fn cursor_text(cursor: &Cursor) -> String {
    let map: serde_json::Map<String, Value> = cursor
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    Value::Object(map).to_string()
}

/// One paged source.
struct Paged<'a> {
    nsid: &'a str,
    params: Vec<(&'a str, String)>,
    list_key: &'a str,
    time_key: &'a str,
    proxy: Option<&'a str>,
}

fn item_ms(item: &Value, key: &str) -> Option<i64> {
    item.get(key).and_then(Value::as_str).and_then(timestamp_ms)
}

/// Read one source according to its state; returns the new items (oldest first) and state.
fn read_paged(
    api: &mut Api,
    src: &Paged,
    state: &SourceState,
) -> Result<(Vec<Value>, SourceState), PluginError> {
    let (mut page, stop) = match &state.backlog {
        Some((page, until)) => (Some(page.clone()), Some(until.clone())),
        None => (None, state.since.clone()),
    };
    let stop_ms = stop.as_deref().and_then(timestamp_ms);
    let first_poll = state.since.is_none() && state.backlog.is_none();
    let mut items: Vec<Value> = Vec::new();
    let mut reached = false;
    let mut next_page = None;
    for _ in 0..MAX_PAGES {
        let mut params: Vec<(&str, &str)> =
            src.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(p) = &page {
            params.push(("cursor", p));
        }
        let answer = api.query(src.nsid, &params, src.proxy)?;
        let list = answer
            .get(src.list_key)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PluginError::Unavailable(format!(
                    "{}: the answer has no `{}` list",
                    src.nsid, src.list_key
                ))
            })?;
        for item in list {
            if let (Some(stop), Some(t)) = (stop_ms, item_ms(item, src.time_key))
                && t <= stop
            {
                reached = true;
                break;
            }
            items.push(item.clone());
        }
        next_page = answer
            .get("cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(String::from);
        if reached || first_poll || list.is_empty() || next_page.is_none() {
            reached = true;
            break;
        }
        page = next_page.clone();
    }
    let mut new = state.clone();
    match &state.backlog {
        Some((_, until)) => {
            new.backlog = (!reached)
                .then(|| next_page.clone().map(|p| (p, until.clone())))
                .flatten();
        }
        None => {
            let newest = items
                .iter()
                .filter_map(|i| {
                    let raw = i.get(src.time_key).and_then(Value::as_str)?;
                    Some((timestamp_ms(raw)?, raw.to_string()))
                })
                .max_by_key(|(ms, _)| *ms);
            if let Some((ms, raw)) = newest
                && stop_ms.is_none_or(|s| ms > s)
            {
                new.since = Some(raw);
            }
            if !reached && let (Some(p), Some(until)) = (next_page, state.since.clone()) {
                new.backlog = Some((p, until));
            }
        }
    }
    items.reverse();
    Ok((items, new))
}

/// Run one poll.
pub fn run(config: &Config, cursor: Option<&str>, api: &mut Api) -> Result<PollBatch, PluginError> {
    let old = parse_cursor(cursor)?;
    let session = api.session()?;
    let own = Own {
        did: Some(session.did.clone()),
        handle: config.handle(),
    };
    let mut next = old.clone();
    // Sources no longer configured are forgotten.
    next.retain(|k, _| {
        k == "notifications"
            || k == "dms"
            || k.strip_prefix("search:")
                .is_some_and(|t| config.search_terms().iter().any(|s| s == t))
    });
    let mut events: Vec<Event> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut push = |events: &mut Vec<Event>, e: Event| {
        if let Event::Message(m) = &e
            && !seen.insert(m.external_id.clone())
        {
            return;
        }
        events.push(e);
    };

    // Mentions, replies and quotes.
    let key = "notifications".to_string();
    let src = Paged {
        nsid: "app.bsky.notification.listNotifications",
        params: vec![("limit", PAGE.into())],
        list_key: "notifications",
        time_key: "indexedAt",
        proxy: None,
    };
    let (items, state) = read_paged(api, &src, old.get(&key).unwrap_or(&Default::default()))?;
    for n in &items {
        push(&mut events, post::notification_event(&own, n));
    }
    next.insert(key, state);

    // Keyword and hashtag listening.
    for term in config.search_terms() {
        if events.len() >= SOFT_EVENT_LIMIT {
            break;
        }
        let key = format!("search:{term}");
        let src = Paged {
            nsid: "app.bsky.feed.searchPosts",
            params: vec![
                ("q", term.clone()),
                ("sort", "latest".into()),
                ("limit", PAGE.into()),
            ],
            list_key: "posts",
            time_key: "indexedAt",
            proxy: None,
        };
        let (items, state) = read_paged(api, &src, old.get(&key).unwrap_or(&Default::default()))?;
        for view in &items {
            push(
                &mut events,
                post::view_event_with(
                    &own,
                    view,
                    Some(Origin::Listening),
                    vec![("listening-term".into(), term.clone())],
                ),
            );
        }
        next.insert(key, state);
    }

    // Direct messages.
    if config.direct_messages && events.len() < SOFT_EVENT_LIMIT {
        let state = old.get("dms").cloned().unwrap_or_default();
        match read_dms(api, &own, &state) {
            Ok((dm_events, state)) => {
                for e in dm_events {
                    push(&mut events, e);
                }
                next.insert("dms".into(), state);
            }
            // A token without DM access must not stop mentions and listening.
            Err(PluginError::Rejected(reason)) => events.push(Event::skipped(
                Some("chat.bsky.convo"),
                &format!(
                    "direct messages were not read: {reason} (does the app password allow \
                     direct messages? set config `direct_messages` to false to stop trying)"
                ),
            )),
            Err(e) => return Err(e),
        }
    }

    let next_cursor = (next != old).then(|| cursor_text(&next));
    Ok(PollBatch {
        events,
        next_cursor,
    })
}

/// New chat messages since `state.since`, oldest first.
fn read_dms(
    api: &mut Api,
    own: &Own,
    state: &SourceState,
) -> Result<(Vec<Event>, SourceState), PluginError> {
    let proxy = Some(xrpc::CHAT_PROXY);
    let since_ms = state.since.as_deref().and_then(timestamp_ms);
    let convos = api.query("chat.bsky.convo.listConvos", &[("limit", "100")], proxy)?;
    let mut collected: Vec<(i64, Event)> = Vec::new();
    let mut newest: Option<(i64, String)> = None;
    for convo in convos
        .get("convos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = convo.get("id").and_then(Value::as_str) else {
            continue;
        };
        let last_ms = convo
            .pointer("/lastMessage/sentAt")
            .and_then(Value::as_str)
            .and_then(timestamp_ms);
        let unread = convo
            .get("unreadCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let wanted = match since_ms {
            Some(s) => last_ms.is_some_and(|l| l > s),
            None => unread > 0,
        };
        if !wanted {
            continue;
        }
        let members = post::members(convo);
        let answer = api.query(
            "chat.bsky.convo.getMessages",
            &[("convoId", id), ("limit", PAGE)],
            proxy,
        )?;
        let messages = answer
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, msg) in messages.iter().enumerate() {
            let sent = msg.get("sentAt").and_then(Value::as_str);
            let ms = sent.and_then(timestamp_ms).unwrap_or(0);
            let new = match since_ms {
                Some(s) => ms > s,
                None => (i as u64) < unread,
            };
            if !new {
                continue;
            }
            if let Some(raw) = sent
                && newest.as_ref().is_none_or(|(n, _)| ms > *n)
            {
                newest = Some((ms, raw.to_string()));
            }
            collected.push((ms, post::chat_event(own, id, &members, msg)));
        }
    }
    collected.sort_by_key(|(ms, _)| *ms);
    let mut new_state = state.clone();
    if let Some((_, raw)) = newest {
        new_state.since = Some(raw);
    }
    Ok((collected.into_iter().map(|(_, e)| e).collect(), new_state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{answer, jwt, session_answer};
    use crate::settings::tests::config;
    use std::collections::HashMap;
    use switchboard_sdk::http::{Request, Response};

    const NOW: i64 = 1_714_600_000_000;

    fn view(id: &str, author: &str, at: &str, text: &str) -> Value {
        json!({"uri": format!("at://did:plc:{author}/app.bsky.feed.post/{id}"), "cid": format!("cid{id}"),
               "author": {"did": format!("did:plc:{author}"), "handle": format!("{author}.bsky.social")},
               "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": at},
               "indexedAt": at})
    }

    fn notification(id: &str, reason: &str, at: &str) -> Value {
        let mut v = view(id, "casey", at, &format!("{reason} {id}"));
        v["reason"] = json!(reason);
        v
    }

    fn query_of(url: &str) -> HashMap<String, String> {
        let q = url.split_once('?').map_or("", |(_, q)| q);
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    fn run_with(
        cfg: &Config,
        cursor: Option<&str>,
        serve: &mut dyn FnMut(&str, &HashMap<String, String>) -> Response,
        urls: &mut Vec<String>,
    ) -> Result<PollBatch, PluginError> {
        let mut store: HashMap<String, String> = HashMap::new();
        let mut send = |r: &Request| {
            if r.url.ends_with("createSession") {
                return Ok(session_answer(
                    &jwt("a", NOW / 1000 + 3600),
                    &jwt("r", NOW / 1000 + 86400),
                ));
            }
            urls.push(r.url.clone());
            let nsid = r
                .url
                .split("/xrpc/")
                .nth(1)
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_string();
            if nsid.starts_with("chat.") {
                assert!(
                    r.headers
                        .contains(&("atproto-proxy".into(), xrpc::CHAT_PROXY.into()))
                );
            }
            Ok(serve(&nsid, &query_of(&r.url)))
        };
        let mut api = Api::new(
            "https://pds.example".into(),
            "acme.bsky.social".into(),
            "pw".into(),
            &mut send,
            &mut store,
            NOW,
        );
        run(cfg, cursor, &mut api)
    }

    fn summary(batch: &PollBatch) -> Vec<String> {
        batch
            .events
            .iter()
            .map(|e| match e {
                Event::Message(m) => format!(
                    "{} {}",
                    m.text,
                    format!("{:?}", m.origin).trim_start_matches("Origin::")
                ),
                Event::Skipped(s) => format!("skipped: {}", s.reason),
            })
            .collect()
    }

    #[test]
    fn first_poll_reads_one_page_per_source_oldest_first() {
        let cfg = config(&[
            ("handle", "acme.bsky.social"),
            ("keywords", "refund"),
            ("direct_messages", "false"),
        ]);
        let mut urls = Vec::new();
        let batch = run_with(
            &cfg,
            None,
            &mut |nsid, _q| match nsid {
                "app.bsky.notification.listNotifications" => answer(
                    200,
                    json!({
                    "notifications": [
                        notification("n3", "like", "2024-05-01T10:03:00.000Z"),
                        notification("n2", "reply", "2024-05-01T10:02:00.000Z"),
                        notification("n1", "mention", "2024-05-01T10:01:00.000Z"),
                    ], "cursor": "older"}),
                ),
                _ => answer(
                    200,
                    json!({"posts": [
                        view("s2", "brand", "2024-05-01T09:59:00.000Z", "our refund policy"),
                        notification("n1", "mention", "2024-05-01T10:01:00.000Z"),
                        view("s1", "dana", "2024-05-01T09:00:00.000Z", "refund please"),
                    ]}),
                ),
            },
            &mut urls,
        )
        .unwrap();
        assert_eq!(
            urls,
            vec![
                "https://pds.example/xrpc/app.bsky.notification.listNotifications?limit=100",
                "https://pds.example/xrpc/app.bsky.feed.searchPosts?q=refund&sort=latest&limit=100",
            ]
        );
        assert_eq!(
            summary(&batch),
            vec![
                "mention n1 Mention",
                "reply n2 Comment",
                "skipped: a like is a reaction, not a message",
                "refund please Listening",
                // s2 is by did:plc:brand, the session's DID.
                "skipped: post at://did:plc:brand/app.bsky.feed.post/s2 was written by the brand's own account",
            ]
        );
        let next: Value = serde_json::from_str(batch.next_cursor.as_deref().unwrap()).unwrap();
        assert_eq!(
            next,
            json!({"notifications": {"since": "2024-05-01T10:03:00.000Z"},
                   "search:refund": {"since": "2024-05-01T10:01:00.000Z"}})
        );
    }

    #[test]
    fn later_polls_stop_at_since_and_keep_a_backlog_when_pages_run_out() {
        let cfg = config(&[("direct_messages", "false")]);
        let cursor = r#"{"notifications":{"since":"2024-05-01T10:00:00.000Z"}}"#;
        let mut urls = Vec::new();
        // Every page is full of new items: after MAX_PAGES the rest becomes the backlog.
        let mut page_no = 0;
        let batch = run_with(
            &cfg,
            Some(cursor),
            &mut |_, q| {
                page_no += 1;
                let minute = 60 - page_no;
                answer(200, json!({"notifications": [
                    notification(&format!("p{page_no}"), "mention", &format!("2024-05-01T11:{minute:02}:00.000Z"))],
                    "cursor": format!("c{page_no}"), "echo": q.get("cursor")}))
            },
            &mut urls,
        )
        .unwrap();
        assert_eq!(urls.len(), MAX_PAGES);
        assert!(urls[1].ends_with("&cursor=c1"));
        assert_eq!(summary(&batch)[0], "mention p3 Mention");
        let next = parse_cursor(batch.next_cursor.as_deref()).unwrap();
        assert_eq!(
            next["notifications"],
            SourceState {
                since: Some("2024-05-01T11:59:00.000Z".into()),
                backlog: Some(("c3".into(), "2024-05-01T10:00:00.000Z".into())),
            }
        );

        // Next poll: the backlog is read down to its `until`, then cleared.
        let mut urls = Vec::new();
        let batch = run_with(
            &cfg,
            batch.next_cursor.as_deref(),
            &mut |_, _| {
                answer(
                    200,
                    json!({"notifications": [
                    notification("old-new", "quote", "2024-05-01T10:30:00.000Z"),
                    notification("seen", "mention", "2024-05-01T10:00:00.000Z"),
                ], "cursor": "c9"}),
                )
            },
            &mut urls,
        )
        .unwrap();
        assert!(urls[0].ends_with("cursor=c3"));
        assert_eq!(summary(&batch), vec!["quote old-new Mention"]);
        let next = parse_cursor(batch.next_cursor.as_deref()).unwrap();
        assert_eq!(next["notifications"].backlog, None);
        assert_eq!(
            next["notifications"].since.as_deref(),
            Some("2024-05-01T11:59:00.000Z")
        );

        // Nothing new: no cursor.
        let batch = run_with(
            &cfg,
            Some(cursor),
            &mut |_, _| {
                answer(200, json!({"notifications": [notification("seen", "mention", "2024-05-01T10:00:00.000Z")]}))
            },
            &mut Vec::new(),
        )
        .unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(batch.next_cursor, None);
    }

    #[test]
    fn direct_messages_are_read_through_the_chat_proxy() {
        let cfg = config(&[]);
        let cursor = r#"{"notifications":{"since":"2024-05-01T10:00:00.000Z"},"dms":{"since":"2024-05-01T10:00:00.000Z"}}"#;
        let mut urls = Vec::new();
        let batch = run_with(
            &cfg,
            Some(cursor),
            &mut |nsid, q| match nsid {
                "app.bsky.notification.listNotifications" => answer(200, json!({"notifications": []})),
                "chat.bsky.convo.listConvos" => answer(200, json!({"convos": [
                    {"id": "c1", "unreadCount": 1, "members": [
                        {"did": "did:plc:brand", "handle": "acme.bsky.social"},
                        {"did": "did:plc:casey", "handle": "casey.bsky.social", "displayName": "Casey"}],
                     "lastMessage": {"sentAt": "2024-05-01T10:05:00.000Z"}},
                    {"id": "c2", "unreadCount": 0, "members": [],
                     "lastMessage": {"sentAt": "2024-05-01T09:00:00.000Z"}}]})),
                "chat.bsky.convo.getMessages" => {
                    assert_eq!(q["convoId"], "c1");
                    answer(200, json!({"messages": [
                        {"$type": "chat.bsky.convo.defs#messageView", "id": "m3", "text": "thanks",
                         "sender": {"did": "did:plc:brand"}, "sentAt": "2024-05-01T10:05:00.000Z"},
                        {"$type": "chat.bsky.convo.defs#messageView", "id": "m2", "text": "card 4111…",
                         "sender": {"did": "did:plc:casey"}, "sentAt": "2024-05-01T10:04:00.000Z"},
                        {"$type": "chat.bsky.convo.defs#messageView", "id": "m1", "text": "old",
                         "sender": {"did": "did:plc:casey"}, "sentAt": "2024-05-01T09:59:00.000Z"}]}))
                }
                other => panic!("unexpected {other}"),
            },
            &mut urls,
        )
        .unwrap();
        assert_eq!(urls.len(), 3);
        assert_eq!(
            summary(&batch),
            vec![
                "card 4111… DirectMessage",
                "skipped: a message the brand's own account sent"
            ]
        );
        let Event::Message(m) = &batch.events[0] else {
            panic!()
        };
        assert_eq!(m.author.display_name.as_deref(), Some("Casey"));
        let next = parse_cursor(batch.next_cursor.as_deref()).unwrap();
        assert_eq!(
            next["dms"].since.as_deref(),
            Some("2024-05-01T10:05:00.000Z")
        );
    }

    #[test]
    fn chat_refusals_do_not_stop_the_poll_but_other_errors_do() {
        let cfg = config(&[]);
        let batch = run_with(
            &cfg,
            None,
            &mut |nsid, _| match nsid {
                "app.bsky.notification.listNotifications" => {
                    answer(200, json!({"notifications": []}))
                }
                _ => answer(
                    403,
                    json!({"error": "InvalidToken", "message": "Bad token scope"}),
                ),
            },
            &mut Vec::new(),
        )
        .unwrap();
        assert!(
            matches!(&batch.events[..], [Event::Skipped(s)] if s.reason.contains("direct messages were not read") && s.reason.contains("Bad token scope"))
        );
        let err = run_with(
            &cfg,
            None,
            &mut |_, _| Response {
                status: 429,
                headers: vec![("ratelimit-reset".into(), (NOW / 1000 + 30).to_string())],
                body: br#"{"error":"RateLimitExceeded"}"#.to_vec(),
            },
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::RateLimited(Some(30))));
        let err = run_with(
            &cfg,
            None,
            &mut |_, _| answer(503, json!({})),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::Unavailable(m) if m.contains("HTTP 503")));
        assert!(matches!(
            parse_cursor(Some("[1]")),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            parse_cursor(Some("{oops")),
            Err(PluginError::InvalidInput(m)) if m.contains("line 1 column 2")
        ));
    }
}
