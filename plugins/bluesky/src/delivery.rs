//! Sending a reply: a public reply is an `app.bsky.feed.post` record created with
//! `com.atproto.repo.createRecord`; a private one is a chat message sent with
//! `chat.bsky.convo.getConvoForMembers` + `chat.bsky.convo.sendMessage` through the chat proxy.

use serde_json::{Map, Value, json};
use switchboard_sdk::{DeliveryReceipt, OutboundReply, PluginError, Visibility};

use crate::facets;
use crate::length;
use crate::post::{self, POST};
use crate::session::Api;
use crate::xrpc::CHAT_PROXY;

/// Longest post text in bytes (the lexicon's `maxLength`).
pub const MAX_POST_BYTES: usize = 3000;
/// Longest chat message, in graphemes and bytes (`chat.bsky.convo.defs#messageInput`).
pub const MAX_CHAT_GRAPHEMES: u32 = 1000;
pub const MAX_CHAT_BYTES: usize = 10_000;

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A strong reference (`com.atproto.repo.strongRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrongRef {
    pub uri: String,
    pub cid: String,
}

impl StrongRef {
    fn to_json(&self) -> Value {
        json!({"uri": self.uri, "cid": self.cid})
    }
}

/// Handles with known DIDs, for mention facets: the recipient and the mentions of the message
/// being answered.
pub fn known_mentions(reply: &OutboundReply) -> Vec<(String, String)> {
    let mut known = Vec::new();
    if let Some(handle) = reply.recipient.handle.as_deref()
        && reply.recipient.id.starts_with("did:")
    {
        known.push((
            handle.trim_start_matches('@').to_string(),
            reply.recipient.id.clone(),
        ));
    }
    if let Some(map) =
        extra(reply, "mentions").and_then(|m| serde_json::from_str::<Map<String, Value>>(m).ok())
    {
        for (h, d) in map {
            if let Some(d) = d.as_str() {
                known.push((h, d.to_string()));
            }
        }
    }
    known
}

/// What the reply answers: `(parent uri, parent cid, root)` from the message's `extra`
/// (`uri`, `cid`, `root-uri`, `root-cid`) and `in-reply-to`.
pub fn thread_of(reply: &OutboundReply) -> (Option<String>, Option<String>, Option<StrongRef>) {
    let parent_uri = reply
        .in_reply_to
        .as_deref()
        .filter(|u| u.starts_with("at://"))
        .or_else(|| extra(reply, "uri"))
        .map(String::from);
    // The cid in `extra` belongs to the message's own uri.
    let parent_cid = match (parent_uri.as_deref(), extra(reply, "uri")) {
        (Some(p), Some(u)) if p == u => extra(reply, "cid").map(String::from),
        (Some(_), None) => extra(reply, "cid").map(String::from),
        _ => None,
    };
    let root = extra(reply, "root-uri")
        .zip(extra(reply, "root-cid"))
        .map(|(uri, cid)| StrongRef {
            uri: uri.into(),
            cid: cid.into(),
        });
    (parent_uri, parent_cid, root)
}

/// The post record for `text`, threaded under `parent` in the thread of `root`.
pub fn post_record(
    text: &str,
    created_at: &str,
    thread: Option<(&StrongRef, &StrongRef)>,
    known: &[(String, String)],
) -> Value {
    let mut record = json!({"$type": POST, "text": text, "createdAt": created_at});
    if let Some((root, parent)) = thread {
        record["reply"] = json!({"root": root.to_json(), "parent": parent.to_json()});
    }
    let facets = facets::build(text, known);
    if !facets.is_empty() {
        record["facets"] = Value::Array(facets);
    }
    record
}

/// The idempotency record key in the key-value store.
fn sent_key(reply: &OutboundReply) -> String {
    format!("sent:{}", reply.idempotency_key)
}

fn receipt_json(r: &DeliveryReceipt) -> String {
    json!({"external_id": r.external_id, "url": r.url}).to_string()
}

fn receipt_from(text: &str) -> Option<DeliveryReceipt> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(DeliveryReceipt {
        external_id: v.get("external_id")?.as_str()?.to_string(),
        url: v.get("url").and_then(Value::as_str).map(String::from),
    })
}

fn iso(now_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Find a post's cid and thread root with `app.bsky.feed.getPosts`.
fn lookup(api: &mut Api, uri: &str) -> Result<(StrongRef, Option<StrongRef>), PluginError> {
    let answer = api.query("app.bsky.feed.getPosts", &[("uris", uri)], None)?;
    let view = answer
        .get("posts")
        .and_then(Value::as_array)
        .and_then(|p| p.first())
        .ok_or_else(|| {
            PluginError::Rejected(format!(
                "the post being answered ({uri}) no longer exists or is not visible"
            ))
        })?;
    let cid = view
        .get("cid")
        .and_then(Value::as_str)
        .ok_or_else(|| PluginError::Unavailable("getPosts answered a post without `cid`".into()))?;
    let root = view.pointer("/record/reply/root").and_then(|r| {
        Some(StrongRef {
            uri: r.get("uri")?.as_str()?.into(),
            cid: r.get("cid")?.as_str()?.into(),
        })
    });
    Ok((
        StrongRef {
            uri: uri.into(),
            cid: cid.into(),
        },
        root,
    ))
}

/// Deliver one reply.
pub fn deliver(api: &mut Api, reply: &OutboundReply) -> Result<DeliveryReceipt, PluginError> {
    if let Some(done) = api
        .store
        .get(&sent_key(reply))
        .and_then(|t| receipt_from(&t))
    {
        // Already sent under this idempotency key: do not post twice.
        return Ok(done);
    }
    let receipt = match reply.visibility {
        Visibility::Public => public_reply(api, reply)?,
        Visibility::Private => private_message(api, reply)?,
    };
    api.store.set(&sent_key(reply), &receipt_json(&receipt));
    Ok(receipt)
}

fn public_reply(api: &mut Api, reply: &OutboundReply) -> Result<DeliveryReceipt, PluginError> {
    let graphemes = length::measure(&reply.text);
    if graphemes > length::MAX_GRAPHEMES || reply.text.len() > MAX_POST_BYTES {
        return Err(PluginError::InvalidInput(format!(
            "the reply is {graphemes} graphemes / {} bytes; a Bluesky post holds at most {} \
             graphemes and {MAX_POST_BYTES} bytes",
            reply.text.len(),
            length::MAX_GRAPHEMES
        )));
    }
    let (parent_uri, parent_cid, root) = thread_of(reply);
    let thread = match parent_uri {
        None => None,
        Some(uri) => {
            let (parent, looked_up_root) = match parent_cid {
                Some(cid) => (StrongRef { uri, cid }, None),
                None => lookup(api, &uri)?,
            };
            // Root: from extra, else from the lookup, else the parent starts the thread.
            let root = root.or(looked_up_root).unwrap_or_else(|| parent.clone());
            Some((root, parent))
        }
    };
    let session = api.session()?;
    let record = post_record(
        &reply.text,
        &iso(api.now_ms),
        thread.as_ref().map(|(r, p)| (r, p)),
        &known_mentions(reply),
    );
    let body = json!({"repo": session.did, "collection": POST, "record": record});
    let answer = api.procedure("com.atproto.repo.createRecord", &body, None)?;
    let uri = answer
        .get("uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| PluginError::Internal("createRecord answered without `uri`".into()))?;
    Ok(DeliveryReceipt {
        external_id: uri.into(),
        url: post::post_url(uri),
    })
}

fn private_message(api: &mut Api, reply: &OutboundReply) -> Result<DeliveryReceipt, PluginError> {
    let graphemes = length::measure(&reply.text);
    if graphemes > MAX_CHAT_GRAPHEMES || reply.text.len() > MAX_CHAT_BYTES {
        return Err(PluginError::InvalidInput(format!(
            "the message is {graphemes} graphemes; a Bluesky chat message holds at most \
             {MAX_CHAT_GRAPHEMES}"
        )));
    }
    let convo_id = match extra(reply, "convo-id") {
        Some(id) => id.to_string(),
        None => {
            let did = reply.recipient.id.as_str();
            if !did.starts_with("did:") {
                return Err(PluginError::InvalidInput(format!(
                    "the recipient id `{did}` is not a DID; a chat needs the member's DID"
                )));
            }
            let answer = api.query(
                "chat.bsky.convo.getConvoForMembers",
                &[("members", did)],
                Some(CHAT_PROXY),
            )?;
            answer
                .pointer("/convo/id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    PluginError::Unavailable(
                        "getConvoForMembers answered without `convo.id`".into(),
                    )
                })?
                .to_string()
        }
    };
    let mut message = json!({"text": reply.text});
    let facets = facets::build(&reply.text, &known_mentions(reply));
    if !facets.is_empty() {
        message["facets"] = Value::Array(facets);
    }
    let answer = api.procedure(
        "chat.bsky.convo.sendMessage",
        &json!({"convoId": convo_id, "message": message}),
        Some(CHAT_PROXY),
    )?;
    let id = answer
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| PluginError::Internal("sendMessage answered without `id`".into()))?;
    Ok(DeliveryReceipt {
        external_id: post::chat_external_id(&convo_id, id),
        url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{answer, jwt, session_answer};
    use std::collections::HashMap;
    use switchboard_sdk::Author;
    use switchboard_sdk::http::{Request, Response};

    const NOW: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

    fn reply(visibility: Visibility, extra: &[(&str, &str)]) -> OutboundReply {
        OutboundReply {
            idempotency_key: "k1".into(),
            conversation_key: "at://did:plc:brand/app.bsky.feed.post/root".into(),
            in_reply_to: Some("at://did:plc:casey/app.bsky.feed.post/p1".into()),
            recipient: Author {
                id: "did:plc:casey".into(),
                handle: Some("casey.bsky.social".into()),
                display_name: None,
            },
            text: "@casey.bsky.social sorry! Claim here: https://acme.example/claims ^Ana".into(),
            visibility,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn run(
        r: &OutboundReply,
        store: &mut HashMap<String, String>,
        serve: &mut dyn FnMut(&Request) -> Response,
        seen: &mut Vec<Request>,
    ) -> Result<DeliveryReceipt, PluginError> {
        let mut send = |req: &Request| {
            if req.url.ends_with("createSession") {
                return Ok(session_answer(
                    &jwt("a", NOW / 1000 + 3600),
                    &jwt("r", NOW / 1000 + 86400),
                ));
            }
            seen.push(req.clone());
            Ok(serve(req))
        };
        let mut api = Api::new(
            "https://pds.example".into(),
            "acme.bsky.social".into(),
            "pw".into(),
            &mut send,
            store,
            NOW,
        );
        deliver(&mut api, r)
    }

    fn body(r: &Request) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_public_reply_is_a_threaded_post_record_with_facets() {
        let r = reply(
            Visibility::Public,
            &[
                ("uri", "at://did:plc:casey/app.bsky.feed.post/p1"),
                ("cid", "bafyp1"),
                ("root-uri", "at://did:plc:brand/app.bsky.feed.post/root"),
                ("root-cid", "bafyroot"),
            ],
        );
        let mut store = HashMap::new();
        let mut seen = Vec::new();
        let receipt = run(
            &r,
            &mut store,
            &mut |_| {
                answer(
                    200,
                    json!({"uri": "at://did:plc:brand/app.bsky.feed.post/3out", "cid": "bafyout"}),
                )
            },
            &mut seen,
        )
        .unwrap();
        assert_eq!(
            receipt.external_id,
            "at://did:plc:brand/app.bsky.feed.post/3out"
        );
        assert_eq!(
            receipt.url.as_deref(),
            Some("https://bsky.app/profile/did:plc:brand/post/3out")
        );
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].url,
            "https://pds.example/xrpc/com.atproto.repo.createRecord"
        );
        let b = body(&seen[0]);
        assert_eq!(b["repo"], "did:plc:brand");
        assert_eq!(b["collection"], "app.bsky.feed.post");
        assert_eq!(b["record"]["createdAt"], "2024-05-01T10:00:00Z");
        assert_eq!(
            b["record"]["reply"],
            json!({"root": {"uri": "at://did:plc:brand/app.bsky.feed.post/root", "cid": "bafyroot"},
                   "parent": {"uri": "at://did:plc:casey/app.bsky.feed.post/p1", "cid": "bafyp1"}})
        );
        let f = b["record"]["facets"].as_array().unwrap();
        assert_eq!(f[0]["features"][0]["did"], "did:plc:casey");
        assert_eq!(f[0]["index"], json!({"byteStart": 0, "byteEnd": 18}));
        assert_eq!(f[1]["features"][0]["uri"], "https://acme.example/claims");

        // Same idempotency key again: no second post.
        let receipt2 = run(&r, &mut store, &mut |_| panic!("posted twice"), &mut seen).unwrap();
        assert_eq!(
            (receipt2.external_id, receipt2.url),
            (receipt.external_id, receipt.url)
        );
    }

    #[test]
    fn a_missing_cid_is_looked_up_and_a_root_post_roots_itself() {
        let r = reply(Visibility::Public, &[]);
        let mut seen = Vec::new();
        run(
            &r,
            &mut HashMap::new(),
            &mut |req| {
                if req.url.contains("getPosts") {
                    answer(200, json!({"posts": [{"uri": "at://did:plc:casey/app.bsky.feed.post/p1", "cid": "bafyp1",
                                                   "record": {"text": "x"}}]}))
                } else {
                    answer(200, json!({"uri": "at://did:plc:brand/app.bsky.feed.post/3out"}))
                }
            },
            &mut seen,
        )
        .unwrap();
        assert!(seen[0].url.contains(
            "app.bsky.feed.getPosts?uris=at%3A%2F%2Fdid%3Aplc%3Acasey%2Fapp.bsky.feed.post%2Fp1"
        ));
        let b = body(&seen[1]);
        assert_eq!(b["record"]["reply"]["root"], b["record"]["reply"]["parent"]);
        assert_eq!(b["record"]["reply"]["parent"]["cid"], "bafyp1");
        // Gone: rejected.
        let err = run(
            &r,
            &mut HashMap::new(),
            &mut |_| answer(200, json!({"posts": []})),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::Rejected(m) if m.contains("no longer exists")));
    }

    #[test]
    fn a_private_reply_opens_the_convo_and_sends_through_the_chat_proxy() {
        let r = reply(Visibility::Private, &[]);
        let mut seen = Vec::new();
        let receipt = run(
            &r,
            &mut HashMap::new(),
            &mut |req| {
                if req.url.contains("getConvoForMembers") {
                    answer(200, json!({"convo": {"id": "c9"}}))
                } else {
                    answer(200, json!({"id": "m7", "rev": "r", "text": "x"}))
                }
            },
            &mut seen,
        )
        .unwrap();
        assert_eq!(receipt.external_id, "chat:c9:m7");
        assert!(
            seen[0]
                .url
                .ends_with("chat.bsky.convo.getConvoForMembers?members=did%3Aplc%3Acasey")
        );
        assert!(seen[1].url.ends_with("chat.bsky.convo.sendMessage"));
        for req in &seen {
            assert!(
                req.headers
                    .contains(&("atproto-proxy".into(), CHAT_PROXY.into()))
            );
        }
        let b = body(&seen[1]);
        assert_eq!(b["convoId"], "c9");
        assert_eq!(b["message"]["text"], r.text);
        // A known convo skips the lookup.
        let mut seen = Vec::new();
        run(
            &reply(Visibility::Private, &[("convo-id", "c1")]),
            &mut HashMap::new(),
            &mut |_| answer(200, json!({"id": "m8"})),
            &mut seen,
        )
        .unwrap();
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn errors_are_typed_and_too_long_text_is_refused_before_sending() {
        let r = reply(
            Visibility::Public,
            &[
                ("cid", "bafyp1"),
                ("uri", "at://did:plc:casey/app.bsky.feed.post/p1"),
            ],
        );
        let err = run(
            &r,
            &mut HashMap::new(),
            &mut |_| Response {
                status: 429,
                headers: vec![("ratelimit-reset".into(), (NOW / 1000 + 90).to_string())],
                body: br#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#.to_vec(),
            },
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::RateLimited(Some(90))));
        let err = run(
            &r,
            &mut HashMap::new(),
            &mut |_| answer(500, json!({"error": "InternalServerError"})),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::Unavailable(_)));
        let mut long = r.clone();
        long.text = "👨‍👩‍👧".repeat(301);
        let err = run(
            &long,
            &mut HashMap::new(),
            &mut |_| panic!("sent"),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(m) if m.contains("301 graphemes")));
    }
}
