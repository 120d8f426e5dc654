//! Where a reply goes on Instagram and the request that sends it.
//!
//! | answering | visibility | request | limit |
//! |---|---|---|---|
//! | direct message | private | `POST /{ig_user_id or me}/messages` `{"recipient":{"id":IGSID},"messaging_type":"RESPONSE","message":{"text":…}}` | 1000 UTF-8 bytes |
//! | direct message | public | refused (`invalid-input`): a DM thread has no public side | — |
//! | comment | public | `POST /{ig-comment-id}/replies` `{"message":…}` | 2200 characters |
//! | comment | private | private reply: Send API with `{"recipient":{"comment_id":…}}` | 1000 UTF-8 bytes |

use meta_graph::graph::{self, Graph, Recipient, node_id};
use switchboard_sdk::http::Request;
use switchboard_sdk::{OutboundReply, PluginError, Visibility};

/// Instagram DM limit in UTF-8 bytes ("Message text must be UTF-8 and be 1000 bytes or less";
/// the same page also says "less than 1000 characters", which the byte rule implies for all
/// but pure-ASCII texts).
pub const DM_MAX_BYTES: u32 = 1000;
/// Instagram comment limit, in characters.
pub const COMMENT_MAX: u32 = 2200;

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// What kind of reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Send API message to an IGSID, or a private reply to a comment.
    Message(Recipient),
    /// Public reply under this comment.
    Reply(String),
}

/// Decide the route from the answered message's `kind` extra and the reply's visibility.
pub fn route(reply: &OutboundReply) -> Result<Route, PluginError> {
    let kind = extra(reply, "kind").unwrap_or("");
    let private = reply.visibility == Visibility::Private;
    let comment = || -> Result<String, PluginError> {
        let id = extra(reply, "comment-id")
            .or(reply.in_reply_to.as_deref())
            .ok_or_else(|| {
                PluginError::InvalidInput(
                    "the reply has neither extra `comment-id` nor `in-reply-to`: no comment to \
                     answer"
                        .into(),
                )
            })?;
        Ok(node_id("comment id", id)?.to_string())
    };
    match (kind, private) {
        ("comment", true) => Ok(Route::Message(Recipient::CommentId(comment()?))),
        ("comment", false) => Ok(Route::Reply(comment()?)),
        ("message", false) => Err(PluginError::InvalidInput(
            "an Instagram direct message is private: it cannot be answered in public".into(),
        )),
        (_, true) => Ok(Route::Message(Recipient::Id(
            node_id("recipient id", &reply.recipient.id)?.to_string(),
        ))),
        (_, false) => Ok(Route::Reply(comment()?)),
    }
}

/// Build the request; an empty text or one over the route's limit is `invalid-input`.
pub fn build(
    graph: &Graph,
    account: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<Request, PluginError> {
    let route = route(reply)?;
    if reply.text.trim().is_empty() {
        return Err(PluginError::InvalidInput("the reply text is empty".into()));
    }
    match &route {
        Route::Message(_) => {
            let bytes = meta_graph::utf8_bytes(&reply.text);
            if bytes > DM_MAX_BYTES {
                return Err(PluginError::InvalidInput(format!(
                    "the reply is {bytes} UTF-8 bytes; an Instagram message allows {DM_MAX_BYTES}"
                )));
            }
        }
        Route::Reply(_) => {
            let chars = meta_graph::char_count(&reply.text);
            if chars > COMMENT_MAX {
                return Err(PluginError::InvalidInput(format!(
                    "the reply is {chars} characters; an Instagram comment allows {COMMENT_MAX}"
                )));
            }
        }
    }
    Ok(match route {
        Route::Message(recipient) => {
            graph::send_message_request(graph, account, token, &recipient, &reply.text)
        }
        Route::Reply(comment) => {
            graph::comment_request(graph, &comment, "replies", token, &reply.text)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use switchboard_sdk::Author;

    fn reply(
        visibility: Visibility,
        in_reply_to: Option<&str>,
        extra: &[(&str, &str)],
    ) -> OutboundReply {
        OutboundReply {
            idempotency_key: "r-1".into(),
            conversation_key: "c".into(),
            in_reply_to: in_reply_to.map(String::from),
            recipient: Author {
                id: "IGSID7".into(),
                handle: Some("@casey".into()),
                display_name: None,
            },
            text: "We're on it! ^ana".into(),
            visibility,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn graph() -> Graph {
        Graph::from_lookup(|_| None).unwrap()
    }

    fn body(r: &Request) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn dm_and_comment_routes() {
        let r = build(
            &graph(),
            "me",
            "IG-TOKEN",
            &reply(Visibility::Private, Some("aWdf1"), &[("kind", "message")]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer IG-TOKEN".into()))
        );
        assert_eq!(
            body(&r),
            json!({"recipient": {"id": "IGSID7"}, "messaging_type": "RESPONSE", "message": {"text": "We're on it! ^ana"}})
        );
        let r = build(
            &graph(),
            "178414",
            "T",
            &reply(Visibility::Private, None, &[("kind", "message")]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/178414/messages");
        let extra = [("kind", "comment"), ("comment-id", "17865799348089039")];
        let r = build(
            &graph(),
            "me",
            "T",
            &reply(Visibility::Public, Some("17865799348089039"), &extra),
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://graph.facebook.com/v21.0/17865799348089039/replies"
        );
        assert_eq!(body(&r), json!({"message": "We're on it! ^ana"}));
        let r = build(
            &graph(),
            "me",
            "T",
            &reply(Visibility::Private, None, &extra),
        )
        .unwrap();
        assert_eq!(
            body(&r)["recipient"],
            json!({"comment_id": "17865799348089039"})
        );
        assert!(
            matches!(build(&graph(), "me", "T", &reply(Visibility::Public, None, &[("kind", "message")])), Err(PluginError::InvalidInput(m)) if m.contains("private"))
        );
        assert!(matches!(
            build(&graph(), "me", "T", &reply(Visibility::Public, None, &[])),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn dm_limit_is_bytes_and_comment_limit_is_characters() {
        let mut dm = reply(Visibility::Private, None, &[("kind", "message")]);
        dm.text = "a".repeat(1000);
        assert!(build(&graph(), "me", "T", &dm).is_ok());
        dm.text = "日".repeat(334); // 1002 bytes
        assert!(
            matches!(build(&graph(), "me", "T", &dm), Err(PluginError::InvalidInput(m)) if m.contains("1002 UTF-8 bytes"))
        );
        let mut c = reply(Visibility::Public, Some("1"), &[("kind", "comment")]);
        c.text = "日".repeat(2200);
        assert!(build(&graph(), "me", "T", &c).is_ok());
        c.text.push('!');
        assert!(
            matches!(build(&graph(), "me", "T", &c), Err(PluginError::InvalidInput(m)) if m.contains("2201 characters"))
        );
    }
}
