//! Polling: which API pages to read, the cursor that remembers how far each source was read,
//! and turning the pages into one batch.
//!
//! Sources, one page (≤ 40 items) each per poll:
//!
//! - `mentions`: `GET /api/v1/notifications?types[]=mention&limit=40&min_id=<cursor>` (mentions
//!   and direct messages addressed to the brand);
//! - `tag:<tag>` for each configured hashtag: `GET /api/v1/timelines/tag/<tag>?limit=40&min_id=…`;
//! - `search:<keyword>` for each configured keyword:
//!   `GET /api/v2/search?q=<keyword>&type=statuses&resolve=false&limit=40&min_id=…` (finds only
//!   what the instance's full-text search covers: posts whose authors opted into search, on
//!   instances with search enabled).
//!
//! `min_id` rather than `since_id`: both return only newer items, but `since_id` returns the
//! newest page (so when more than 40 arrived between two polls, the older ones would be
//! skipped for ever), while `min_id` returns the page right after the cursor, so the next poll
//! continues where this one stopped. The cursor is one JSON object of per-source positions,
//! e.g. `{"mentions":"21","tag:acme":"117020582690282017"}`; a bare id is read as the
//! mentions position. A poll with nothing new returns no cursor (the host keeps the previous).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use switchboard_sdk::http::{HttpError, Request, Response};
use switchboard_sdk::{Event, PluginError, PollBatch};

use crate::delivery::{excerpt, rate_limit_seconds};
use crate::settings::Config;
use crate::status::{Source, Threads, id_cmp, id_of, notification_event, status_event};

/// Items asked for per page (the API's maximum for timelines and search).
pub const PAGE: u32 = 40;
/// Time to wait for each API answer.
pub const TIMEOUT_MS: u64 = 15_000;

/// One place new messages are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Mentions,
    Tag(String),
    Search(String),
}

impl Feed {
    /// The feeds a configuration asks for, mentions first.
    pub fn all(config: &Config) -> Vec<Feed> {
        let mut feeds = vec![Feed::Mentions];
        feeds.extend(config.hashtags.iter().cloned().map(Feed::Tag));
        feeds.extend(config.keywords.iter().cloned().map(Feed::Search));
        feeds
    }

    /// This feed's key in the cursor.
    pub fn key(&self) -> String {
        match self {
            Feed::Mentions => "mentions".into(),
            Feed::Tag(t) => format!("tag:{t}"),
            Feed::Search(k) => format!("search:{k}"),
        }
    }

    /// The page URL after position `min_id`.
    pub fn url(&self, base: &str, min_id: Option<&str>) -> String {
        let mut url = match self {
            Feed::Mentions => {
                format!("{base}/api/v1/notifications?types%5B%5D=mention&limit={PAGE}")
            }
            Feed::Tag(t) => format!("{base}/api/v1/timelines/tag/{}?limit={PAGE}", encode(t)),
            Feed::Search(k) => format!(
                "{base}/api/v2/search?q={}&type=statuses&resolve=false&limit={PAGE}",
                encode(k)
            ),
        };
        if let Some(id) = min_id {
            url.push_str("&min_id=");
            url.push_str(&encode(id));
        }
        url
    }

    fn source(&self) -> Source {
        match self {
            Feed::Mentions => Source::Captured,
            Feed::Tag(t) => Source::Listening {
                via: format!("#{t}"),
            },
            Feed::Search(k) => Source::Listening {
                via: format!("keyword:{k}"),
            },
        }
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Per-feed positions.
pub type Cursor = BTreeMap<String, String>;

/// Read the cursor the host kept: `None`, a JSON object of positions, or a bare mentions id.
pub fn parse_cursor(cursor: Option<&str>) -> Result<Cursor, PluginError> {
    let Some(raw) = cursor.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Cursor::new());
    };
    if !raw.starts_with('{') {
        if raw.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(Cursor::from([("mentions".to_string(), raw.to_string())]));
        }
        return Err(PluginError::InvalidInput(format!(
            "poll cursor `{raw}` is neither a JSON object of positions nor a notification id"
        )));
    }
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| PluginError::InvalidInput(format!("poll cursor is not valid JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| {
        PluginError::InvalidInput("poll cursor must be a JSON object of positions".into())
    })?;
    Ok(obj
        .iter()
        .filter_map(|(k, v)| id_of(Some(v)).map(|id| (k.clone(), id)))
        .collect())
}

/// The GET request for one page.
pub fn page_request(url: &str, token: &str) -> Request {
    let mut request = Request::get(url)
        .bearer(token)
        .header("accept", "application/json");
    request.timeout_ms = Some(TIMEOUT_MS);
    request
}

/// A failed page read as a plugin error.
pub fn page_error(feed: &Feed, response: &Response, now_ms: i64) -> PluginError {
    let status = response.status;
    let what = format!(
        "reading {} answered HTTP {status}: {}",
        feed.key(),
        excerpt(&response.body)
    );
    match status {
        429 => PluginError::RateLimited(rate_limit_seconds(response, now_ms)),
        401 | 403 => PluginError::NotConfigured(format!(
            "{what} (check secret `access-token` and its read scopes)"
        )),
        400 | 404 | 410 | 422 => PluginError::Rejected(what),
        _ => PluginError::Unavailable(what),
    }
}

/// The items of one page, oldest first, with their ids.
fn page_items(feed: &Feed, body: &[u8]) -> Result<Vec<(String, Value)>, PluginError> {
    let bad = |why: &str| {
        PluginError::Unavailable(format!(
            "reading {} answered HTTP 200 but {why}: {}",
            feed.key(),
            excerpt(body)
        ))
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
    let list = match (feed, value) {
        (Feed::Search(_), Value::Object(mut obj)) => match obj.remove("statuses") {
            Some(Value::Array(list)) => list,
            _ => return Err(bad("the body has no `statuses` list")),
        },
        (_, Value::Array(list)) => list,
        _ => return Err(bad("the body is not a JSON list")),
    };
    let mut items: Vec<(String, Value)> = list
        .into_iter()
        .filter_map(|item| id_of(item.get("id")).map(|id| (id, item)))
        .collect();
    items.sort_by(|a, b| id_cmp(&a.0, &b.0));
    Ok(items)
}

/// Read one page of every feed and build the batch. `fetch` performs one GET (the trait impl
/// passes the host's HTTP with the Bearer token; tests pass a fake).
pub fn run(
    config: &Config,
    cursor: Option<&str>,
    fetch: &mut dyn FnMut(&str) -> Result<Response, HttpError>,
    threads: &mut dyn Threads,
    now_ms: i64,
) -> Result<PollBatch, PluginError> {
    let base = config.instance()?;
    let previous = parse_cursor(cursor)?;
    let feeds = Feed::all(config);
    let mut next = Cursor::new();
    let mut moved = false;
    let mut events = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for feed in &feeds {
        let key = feed.key();
        let position = previous.get(&key).cloned();
        let response = fetch(&feed.url(&base, position.as_deref()))?;
        if !(200..=299).contains(&response.status) {
            return Err(page_error(feed, &response, now_ms));
        }
        let items = page_items(feed, &response.body)?;
        let mut newest = position.clone();
        for (id, item) in items {
            if newest.as_deref().is_none_or(|n| id_cmp(&id, n).is_gt()) {
                newest = Some(id.clone());
            }
            let event = match feed {
                Feed::Mentions => notification_event(&item, config, threads),
                _ => status_event(&item, &feed.source(), config, threads),
            };
            // The same status found by two feeds (a mention that also carries the hashtag) is
            // one message: the first feed, mentions, wins.
            if let Event::Message(m) = &event
                && !seen.insert(m.external_id.clone())
            {
                continue;
            }
            events.push(event);
        }
        if newest != position {
            moved = true;
        }
        if let Some(n) = newest {
            next.insert(key, n);
        }
    }
    // Positions of feeds no longer configured are dropped (the cursor stays small).
    if next.len() != previous.len() {
        moved = true;
    }
    let next_cursor = moved.then(|| serde_json::to_string(&next).unwrap_or_default());
    Ok(PollBatch {
        events,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use switchboard_sdk::Origin;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn ok(body: Value) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    fn status(id: &str, acct: &str) -> Value {
        json!({"id": id, "uri": format!("https://m.example/s/{id}"), "created_at": "2024-05-01T10:00:00Z",
               "content": format!("<p>post {id}</p>"), "visibility": "public",
               "account": {"id": "5", "acct": acct}})
    }

    fn mention(nid: &str, sid: &str) -> Value {
        json!({"id": nid, "type": "mention", "account": {"id": "5", "acct": "casey"}, "status": status(sid, "casey")})
    }

    #[test]
    fn urls_and_cursor_parsing() {
        let base = "https://m.example";
        assert_eq!(
            Feed::Mentions.url(base, None),
            "https://m.example/api/v1/notifications?types%5B%5D=mention&limit=40"
        );
        assert_eq!(
            Feed::Tag("café".into()).url(base, Some("99")),
            "https://m.example/api/v1/timelines/tag/caf%C3%A9?limit=40&min_id=99"
        );
        assert_eq!(
            Feed::Search("lost bag".into()).url(base, None),
            "https://m.example/api/v2/search?q=lost%20bag&type=statuses&resolve=false&limit=40"
        );
        assert_eq!(parse_cursor(None).unwrap(), Cursor::new());
        assert_eq!(parse_cursor(Some("21")).unwrap()["mentions"], "21");
        assert_eq!(
            parse_cursor(Some(r#"{"mentions": "21", "tag:acme": 7}"#)).unwrap()["tag:acme"],
            "7"
        );
        assert!(matches!(
            parse_cursor(Some("[1]")),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            parse_cursor(Some("a b")),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn one_page_per_feed_oldest_first_with_per_feed_positions() {
        let c = config(&[
            ("instance", "https://m.example"),
            ("account", "acmecare"),
            ("hashtags", "acme"),
            ("keywords", "refund"),
        ]);
        let mut urls = Vec::new();
        let mut fetch = |url: &str| {
            urls.push(url.to_string());
            Ok(if url.contains("notifications") {
                ok(json!([mention("12", "300"), mention("11", "200")]))
            } else if url.contains("/tag/") {
                // Newest first; one is the brand's own post, one is also a mention.
                ok(json!([
                    status("400", "acmecare"),
                    status("300", "casey"),
                    status("250", "dana")
                ]))
            } else {
                ok(json!({"accounts": [], "statuses": [], "hashtags": []}))
            })
        };
        let batch = run(
            &c,
            Some(r#"{"mentions":"10","tag:acme":"100","tag:gone":"5"}"#),
            &mut fetch,
            &mut HashMap::new(),
            0,
        )
        .unwrap();
        assert_eq!(
            urls,
            vec![
                "https://m.example/api/v1/notifications?types%5B%5D=mention&limit=40&min_id=10",
                "https://m.example/api/v1/timelines/tag/acme?limit=40&min_id=100",
                "https://m.example/api/v2/search?q=refund&type=statuses&resolve=false&limit=40",
            ]
        );
        let summary: Vec<String> = batch
            .events
            .iter()
            .map(|e| match e {
                Event::Message(m) => format!("{} {:?}", m.text, m.origin),
                Event::Skipped(s) => format!("skipped: {}", s.reason),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "post 200 Origin::Mention".to_string(),
                "post 300 Origin::Mention".to_string(),
                "post 250 Origin::Listening".to_string(),
                "skipped: status 400 was written by the brand's own account @acmecare".to_string(),
            ]
        );
        let next: Value = serde_json::from_str(batch.next_cursor.as_deref().unwrap()).unwrap();
        assert_eq!(next, json!({"mentions": "12", "tag:acme": "400"}));
        assert!(matches!(&batch.events[2], Event::Message(m) if m.origin == Origin::Listening));
    }

    #[test]
    fn nothing_new_keeps_the_cursor_and_errors_are_typed() {
        let c = config(&[("instance", "https://m.example")]);
        let batch = run(
            &c,
            Some(r#"{"mentions":"10"}"#),
            &mut |_| Ok(ok(json!([]))),
            &mut HashMap::new(),
            0,
        )
        .unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(batch.next_cursor, None);
        // First poll with nothing at all: nothing to remember either.
        let batch = run(&c, None, &mut |_| Ok(ok(json!([]))), &mut HashMap::new(), 0).unwrap();
        assert_eq!(batch.next_cursor, None);

        let answer = |status: u16, headers: Vec<(String, String)>| {
            move |_: &str| {
                Ok(Response {
                    status,
                    headers: headers.clone(),
                    body: br#"{"error":"nope"}"#.to_vec(),
                })
            }
        };
        let run_with = |status, headers| {
            run(
                &c,
                None,
                &mut answer(status, headers),
                &mut HashMap::new(),
                0,
            )
            .unwrap_err()
        };
        assert!(matches!(
            run_with(429, vec![("retry-after".into(), "12".into())]),
            PluginError::RateLimited(Some(12))
        ));
        assert!(
            matches!(run_with(401, vec![]), PluginError::NotConfigured(m) if m.contains("access-token"))
        );
        assert!(
            matches!(run_with(502, vec![]), PluginError::Unavailable(m) if m.contains("HTTP 502"))
        );
        assert!(matches!(
            run(&c, None, &mut |_| Ok(ok(json!({"not": "a list"}))), &mut HashMap::new(), 0),
            Err(PluginError::Unavailable(m)) if m.contains("not a JSON list")
        ));
        assert!(matches!(
            run(&c, None, &mut |_| Err(HttpError::Failed("connection refused".into())), &mut HashMap::new(), 0),
            Err(PluginError::Unavailable(m)) if m.contains("connection refused")
        ));
        assert!(matches!(
            run(
                &config(&[]),
                None,
                &mut |_| unreachable!(),
                &mut HashMap::new(),
                0
            ),
            Err(PluginError::NotConfigured(_))
        ));
    }
}
