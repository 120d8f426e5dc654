//! Polling over API v2: the brand's mentions timeline, recent search for listening, and
//! (optionally) DM events.
//!
//! The cursor is JSON: `{"mentions": "<newest id>", "search": "<newest id>", "dm": "<newest
//! id>"}`. Mentions and search are read with `since_id`; DM events have no `since_id`, so the
//! newest event id seen is remembered and older events are dropped. Each source reads at most
//! [`MAX_PAGES`] pages of 100 per poll, following `meta.next_token`; what is left is read on
//! the next poll only for DMs (a `since_id` timeline jumps to its newest id, so a burst of more
//! than 500 posts between two polls loses the oldest ones: poll more often than that).

use std::collections::HashSet;

use serde_json::{Value, json};
use switchboard_sdk::http::{HttpError, Request, Response};
use switchboard_sdk::{Event, Origin, PluginError, PollBatch};

use crate::settings::Config;
use crate::tweet::{self, Context, Includes, Threads};

/// Pages read per source per poll.
pub const MAX_PAGES: usize = 5;

const TWEET_FIELDS: &str = "tweet.fields=author_id,conversation_id,created_at,entities,\
in_reply_to_user_id,lang,referenced_tweets,attachments,note_tweet,edit_history_tweet_ids\
&expansions=author_id,attachments.media_keys&user.fields=name,username\
&media.fields=type,url,preview_image_url,alt_text,variants&max_results=100";

const DM_FIELDS: &str = "event_types=MessageCreate&dm_event.fields=id,text,event_type,created_at,\
dm_conversation_id,sender_id,participant_ids,attachments,entities\
&expansions=sender_id,attachments.media_keys&user.fields=name,username\
&media.fields=type,url,preview_image_url,alt_text,variants&max_results=100";

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A GET with the Bearer token.
pub fn page_request(url: &str, token: &str) -> Request {
    let mut r = Request::get(url).bearer(token);
    r.timeout_ms = Some(crate::delivery::TIMEOUT_MS);
    r
}

/// The positions read so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cursor {
    pub mentions: Option<String>,
    pub search: Option<String>,
    pub dm: Option<String>,
}

impl Cursor {
    pub fn parse(raw: Option<&str>) -> Result<Cursor, PluginError> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Cursor::default());
        };
        let v: Value = serde_json::from_str(raw).map_err(|e| {
            PluginError::InvalidInput(format!("poll cursor is not this connector's JSON: {e}"))
        })?;
        let get = |k: &str| tweet::id_of(&v, k);
        Ok(Cursor {
            mentions: get("mentions"),
            search: get("search"),
            dm: get("dm"),
        })
    }

    pub fn to_json(&self) -> String {
        json!({"mentions": self.mentions, "search": self.search, "dm": self.dm}).to_string()
    }
}

/// The larger of two numeric ids.
fn max_id(a: Option<String>, b: Option<&str>) -> Option<String> {
    let key = |s: &str| (s.len(), s.to_string());
    match (a, b) {
        (Some(a), Some(b)) => Some(if key(b) > key(&a) { b.to_string() } else { a }),
        (a, b) => a.or_else(|| b.map(String::from)),
    }
}

fn id_greater(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

fn status_error(response: &Response, what: &str) -> PluginError {
    let detail = crate::delivery::platform_detail(&response.body);
    match response.status {
        429 => PluginError::RateLimited(crate::delivery::retry_after(response)),
        401 | 403 => PluginError::Rejected(format!(
            "X refused to read {what} (HTTP {}): {detail}",
            response.status
        )),
        400 | 404 => PluginError::Rejected(format!(
            "X refused the {what} request (HTTP {}): {detail}",
            response.status
        )),
        s => PluginError::Unavailable(format!("X answered HTTP {s} reading {what}: {detail}")),
    }
}

/// GET `url` and decode its JSON.
fn get_json(
    fetch: &mut dyn FnMut(&str) -> Result<Response, HttpError>,
    url: &str,
    what: &str,
) -> Result<Value, PluginError> {
    let response = fetch(url)?;
    if !(200..300).contains(&response.status) {
        return Err(status_error(&response, what));
    }
    let body = response
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&response.body);
    serde_json::from_slice(body)
        .map_err(|e| PluginError::Unavailable(format!("X's {what} answer is not JSON: {e}")))
}

/// Read one timeline (mentions or search) with `since_id`; returns the tweets' events and the
/// new newest id.
#[allow(clippy::too_many_arguments)]
fn timeline(
    fetch: &mut dyn FnMut(&str) -> Result<Response, HttpError>,
    base_url: &str,
    since: Option<&str>,
    origin: Origin,
    what: &str,
    ctx: &Context,
    threads: &mut dyn Threads,
    out: &mut Vec<(String, Event)>,
) -> Result<Option<String>, PluginError> {
    let mut newest = since.map(String::from);
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let sep = if base_url.ends_with('?') { "" } else { "&" };
        let mut url = format!("{base_url}{sep}{TWEET_FIELDS}");
        if let Some(s) = since {
            url.push_str(&format!("&since_id={}", encode(s)));
        }
        if let Some(t) = &token {
            url.push_str(&format!("&pagination_token={}", encode(t)));
        }
        let page = get_json(fetch, &url, what)?;
        let meta = page.get("meta").unwrap_or(&Value::Null);
        newest = max_id(newest, meta.get("newest_id").and_then(Value::as_str));
        let includes = Includes::from_response(&page);
        for t in page
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = tweet::id_of(t, "id").unwrap_or_default();
            newest = max_id(
                newest,
                Some(&id).filter(|s| !s.is_empty()).map(String::as_str),
            );
            out.push((id, tweet::v2_tweet(t, &includes, origin, ctx, threads)));
        }
        token = meta
            .get("next_token")
            .and_then(Value::as_str)
            .map(String::from);
        if token.is_none() {
            break;
        }
    }
    Ok(newest)
}

/// One poll: every configured source, oldest first, each post once.
pub fn run(
    config: &Config,
    cursor: Option<&str>,
    fetch: &mut dyn FnMut(&str) -> Result<Response, HttpError>,
    threads: &mut dyn Threads,
    now_ms: i64,
) -> Result<PollBatch, PluginError> {
    let base = config.api_base()?;
    let user = config.require_user_id()?;
    let cursor = Cursor::parse(cursor)?;
    let ctx = Context {
        own_id: Some(user),
        now_ms,
    };
    let mut found: Vec<(String, Event)> = Vec::new();
    let mut next = cursor.clone();

    next.mentions = timeline(
        fetch,
        &format!("{base}/2/users/{user}/mentions?"),
        cursor.mentions.as_deref(),
        Origin::Mention,
        "the mentions timeline",
        &ctx,
        threads,
        &mut found,
    )?;
    if let Some(query) = config.search_query() {
        next.search = timeline(
            fetch,
            &format!("{base}/2/tweets/search/recent?query={}", encode(&query)),
            cursor.search.as_deref(),
            Origin::Listening,
            "recent search",
            &ctx,
            threads,
            &mut found,
        )?;
    }
    if config.poll_direct_messages {
        let mut token: Option<String> = None;
        'pages: for _ in 0..MAX_PAGES {
            let mut url = format!("{base}/2/dm_events?{DM_FIELDS}");
            if let Some(t) = &token {
                url.push_str(&format!("&pagination_token={}", encode(t)));
            }
            let page = get_json(fetch, &url, "DM events")?;
            let includes = Includes::from_response(&page);
            for ev in page
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = tweet::id_of(ev, "id").unwrap_or_default();
                if let Some(seen) = cursor.dm.as_deref()
                    && !id_greater(&id, seen)
                {
                    break 'pages;
                }
                next.dm = max_id(next.dm, Some(id.as_str()).filter(|s| !s.is_empty()));
                found.push((id, tweet::v2_dm(ev, &includes, &ctx)));
            }
            token = page
                .get("meta")
                .and_then(|m| m.get("next_token"))
                .and_then(Value::as_str)
                .map(String::from);
            if token.is_none() {
                break;
            }
        }
    }

    // A post found by both mentions and search is reported once (first seen: the mention).
    let mut seen = HashSet::new();
    found.retain(|(id, e)| match e {
        Event::Message(m) => seen.insert(m.external_id.clone()) || id.is_empty(),
        Event::Skipped(_) => true,
    });
    // Oldest first (ids are time-ordered snowflakes).
    found.sort_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
    Ok(PollBatch {
        events: found
            .into_iter()
            .map(|(_, e)| e)
            .take(crate::activity::MAX_EVENTS)
            .collect(),
        next_cursor: (next != cursor).then(|| next.to_json()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn ok(body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn cursor_round_trip_and_errors() {
        let c = Cursor {
            mentions: Some("5".into()),
            search: None,
            dm: Some("7".into()),
        };
        assert_eq!(Cursor::parse(Some(&c.to_json())).unwrap(), c);
        assert_eq!(Cursor::parse(None).unwrap(), Cursor::default());
        assert!(matches!(
            Cursor::parse(Some("nope")),
            Err(PluginError::InvalidInput(_))
        ));
        assert_eq!(
            encode("(acme OR \"lost bag\") -is:retweet"),
            "%28acme%20OR%20%22lost%20bag%22%29%20-is%3Aretweet"
        );
        assert_eq!(
            max_id(Some("99".into()), Some("100")).as_deref(),
            Some("100")
        );
    }

    #[test]
    fn mentions_search_and_dms_merge() {
        let cfg = config(&[
            ("user_id", "783214"),
            ("listen_keywords", "acme"),
            ("poll_direct_messages", "true"),
            ("api_base", "http://m"),
        ]);
        let mut urls = Vec::new();
        let mut fetch = |url: &str| {
            urls.push(url.to_string());
            if url.contains("/mentions?") {
                ok(
                    r#"{"data":[{"id":"20","text":"@acme hi","author_id":"9"}],"meta":{"newest_id":"20","result_count":1}}"#,
                )
            } else if url.contains("/search/recent") {
                ok(
                    r#"{"data":[{"id":"20","text":"@acme hi","author_id":"9"},{"id":"15","text":"acme is late","author_id":"8","lang":"en"}],"meta":{"newest_id":"20"}}"#,
                )
            } else {
                ok(
                    r#"{"data":[{"id":"30","event_type":"MessageCreate","text":"dm","sender_id":"9","dm_conversation_id":"9-783214"},{"id":"10","event_type":"MessageCreate","text":"old","sender_id":"9","dm_conversation_id":"9-783214"}]}"#,
                )
            }
        };
        let cursor = Cursor {
            mentions: Some("12".into()),
            search: None,
            dm: Some("10".into()),
        }
        .to_json();
        let batch = run(&cfg, Some(&cursor), &mut fetch, &mut HashMap::new(), 0).unwrap();
        assert!(urls[0].starts_with("http://m/2/users/783214/mentions?tweet.fields=author_id,"));
        assert!(urls[0].ends_with("&since_id=12"));
        assert!(
            urls[1]
                .starts_with("http://m/2/tweets/search/recent?query=%28acme%29%20-is%3Aretweet&")
        );
        assert!(urls[2].starts_with("http://m/2/dm_events?event_types=MessageCreate"));
        let summary: Vec<(String, Origin)> = batch
            .events
            .iter()
            .map(|e| match e {
                Event::Message(m) => (m.external_id.clone(), m.origin),
                Event::Skipped(s) => panic!("{}", s.reason),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("15".to_string(), Origin::Listening),
                ("20".to_string(), Origin::Mention),
                ("dm:30".to_string(), Origin::DirectMessage),
            ]
        );
        let next = Cursor::parse(batch.next_cursor.as_deref()).unwrap();
        assert_eq!(
            next,
            Cursor {
                mentions: Some("20".into()),
                search: Some("20".into()),
                dm: Some("30".into())
            }
        );
    }

    #[test]
    fn errors_and_paging() {
        let cfg = config(&[("user_id", "1")]);
        let mut fetch = |_: &str| {
            Ok(Response {
                status: 429,
                headers: vec![("retry-after".into(), "60".into())],
                body: vec![],
            })
        };
        assert!(matches!(
            run(&cfg, None, &mut fetch, &mut HashMap::new(), 0),
            Err(PluginError::RateLimited(Some(60)))
        ));
        let mut fetch = |_: &str| {
            Ok(Response {
                status: 401,
                headers: vec![],
                body: br#"{"title":"Unauthorized"}"#.to_vec(),
            })
        };
        assert!(
            matches!(run(&cfg, None, &mut fetch, &mut HashMap::new(), 0), Err(PluginError::Rejected(m)) if m.contains("Unauthorized"))
        );
        let mut calls = 0;
        let mut fetch = |url: &str| {
            calls += 1;
            if url.contains("pagination_token=abc") {
                ok(r#"{"meta":{"result_count":0}}"#)
            } else {
                ok(
                    r#"{"data":[{"id":"3","text":"x","author_id":"2"}],"meta":{"newest_id":"3","next_token":"abc"}}"#,
                )
            }
        };
        let batch = run(&cfg, None, &mut fetch, &mut HashMap::new(), 0).unwrap();
        assert_eq!(calls, 2);
        assert_eq!(batch.events.len(), 1);
        assert!(matches!(
            run(
                &config(&[]),
                None,
                &mut |_: &str| ok("{}"),
                &mut HashMap::new(),
                0
            ),
            Err(PluginError::NotConfigured(_))
        ));
    }
}
