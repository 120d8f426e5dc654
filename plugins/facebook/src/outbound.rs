//! Where a reply goes on Facebook and the request that sends it.
//!
//! | answering | visibility | request | limit |
//! |---|---|---|---|
//! | Messenger message | private | `POST /{page}/messages` `{"recipient":{"id":PSID},"messaging_type":"RESPONSE","message":{"text":…}}` | 2000 characters |
//! | Messenger message | public | refused (`invalid-input`): a Messenger thread has no public side | — |
//! | comment | public | `POST /{comment-id}/comments` `{"message":…}` | 8000 characters |
//! | comment | private | private reply: Send API with `{"recipient":{"comment_id":…}}` | 2000 characters |
//! | visitor post | public | `POST /{post-id}/comments` `{"message":…}` | 8000 characters |
//! | visitor post | private | private reply: Send API with `{"recipient":{"post_id":…}}` | 2000 characters |
//!
//! `{page}` is config `page_id`, or `me` (the page the token belongs to).

use meta_graph::graph::{self, Graph, Recipient, node_id};
use switchboard_sdk::http::Request;
use switchboard_sdk::{OutboundReply, PluginError, Visibility};

/// Messenger text limit, in characters.
pub const MESSENGER_MAX: u32 = 2000;
/// Facebook comment limit, in characters.
pub const COMMENT_MAX: u32 = 8000;

fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// What kind of reply, decided from the answered message's `extra` and the reply's visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Send API message to a PSID (or a private reply to a comment / post).
    Message(Recipient),
    /// Public comment under this comment or post.
    Comment(String),
}

/// Decide the route. The answered message's `kind` extra (`message`, `comment`, `post`) comes
/// back in the reply; without it, a private reply goes to the recipient's PSID and a public one
/// under `in-reply-to`.
pub fn route(reply: &OutboundReply) -> Result<Route, PluginError> {
    let kind = extra(reply, "kind").unwrap_or("");
    let target = |key: &str| -> Result<String, PluginError> {
        let id = extra(reply, key)
            .or(reply.in_reply_to.as_deref())
            .ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "the reply has neither extra `{key}` nor `in-reply-to`: no {kind} to answer"
                ))
            })?;
        Ok(node_id(key, id)?.to_string())
    };
    let private = reply.visibility == Visibility::Private;
    match (kind, private) {
        ("comment", true) => Ok(Route::Message(Recipient::CommentId(target("comment-id")?))),
        ("comment", false) => Ok(Route::Comment(target("comment-id")?)),
        ("post", true) => Ok(Route::Message(Recipient::PostId(target("post-id")?))),
        ("post", false) => Ok(Route::Comment(target("post-id")?)),
        ("message", false) => Err(PluginError::InvalidInput(
            "a Messenger conversation is private: it cannot be answered in public".into(),
        )),
        (_, true) => Ok(Route::Message(Recipient::Id(
            node_id("recipient id", &reply.recipient.id)?.to_string(),
        ))),
        (_, false) => {
            let id = reply.in_reply_to.as_deref().ok_or_else(|| {
                PluginError::InvalidInput(
                    "a public reply needs the comment or post it answers (`in-reply-to`)".into(),
                )
            })?;
            Ok(Route::Comment(node_id("in-reply-to", id)?.to_string()))
        }
    }
}

/// The limit that applies to a route, in characters.
pub fn limit(route: &Route) -> u32 {
    match route {
        Route::Message(_) => MESSENGER_MAX,
        Route::Comment(_) => COMMENT_MAX,
    }
}

/// Build the request for `reply`; a text over the route's limit or an empty text is
/// `invalid-input` (Graph would refuse it).
pub fn build(
    graph: &Graph,
    page: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<Request, PluginError> {
    let route = route(reply)?;
    let length = meta_graph::char_count(&reply.text);
    if reply.text.trim().is_empty() {
        return Err(PluginError::InvalidInput("the reply text is empty".into()));
    }
    if length > limit(&route) {
        let what = match route {
            Route::Message(_) => "a Messenger message",
            Route::Comment(_) => "a Facebook comment",
        };
        return Err(PluginError::InvalidInput(format!(
            "the reply is {length} characters; {what} allows {}",
            limit(&route)
        )));
    }
    Ok(match route {
        Route::Message(recipient) => {
            graph::send_message_request(graph, page, token, &recipient, &reply.text)
        }
        Route::Comment(object) => {
            graph::comment_request(graph, &object, "comments", token, &reply.text)
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
            conversation_key: "111:222".into(),
            in_reply_to: in_reply_to.map(String::from),
            recipient: Author {
                id: "222".into(),
                handle: None,
                display_name: None,
            },
            text: "Sorry about that — fixed. ^ana".into(),
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
    fn messenger_reply_goes_to_the_psid() {
        let r = build(
            &graph(),
            "me",
            "PAGE-TOKEN",
            &reply(
                Visibility::Private,
                Some("m.1"),
                &[("kind", "message"), ("page-id", "111")],
            ),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer PAGE-TOKEN".into()))
        );
        assert_eq!(
            body(&r),
            json!({"recipient": {"id": "222"}, "messaging_type": "RESPONSE", "message": {"text": "Sorry about that — fixed. ^ana"}})
        );
        assert!(matches!(
            build(&graph(), "me", "T", &reply(Visibility::Public, Some("m.1"), &[("kind", "message")])),
            Err(PluginError::InvalidInput(m)) if m.contains("private")
        ));
    }

    #[test]
    fn comment_replies_public_and_private() {
        let extra = [
            ("kind", "comment"),
            ("comment-id", "901_903"),
            ("post-id", "123_901"),
        ];
        let r = build(
            &graph(),
            "111",
            "T",
            &reply(Visibility::Public, Some("901_903"), &extra),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/901_903/comments");
        assert_eq!(
            body(&r),
            json!({"message": "Sorry about that — fixed. ^ana"})
        );
        let r = build(
            &graph(),
            "111",
            "T",
            &reply(Visibility::Private, Some("901_903"), &extra),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/111/messages");
        assert_eq!(body(&r)["recipient"], json!({"comment_id": "901_903"}));
        let post = [("kind", "post"), ("post-id", "123_930")];
        let r = build(&graph(), "me", "T", &reply(Visibility::Public, None, &post)).unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/123_930/comments");
        let r = build(
            &graph(),
            "me",
            "T",
            &reply(Visibility::Private, None, &post),
        )
        .unwrap();
        assert_eq!(body(&r)["recipient"], json!({"post_id": "123_930"}));
        // Without extras a public reply goes under in-reply-to.
        let r = build(
            &graph(),
            "me",
            "T",
            &reply(Visibility::Public, Some("5_6"), &[]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/5_6/comments");
        assert!(matches!(
            build(&graph(), "me", "T", &reply(Visibility::Public, None, &[])),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            build(
                &graph(),
                "me",
                "T",
                &reply(Visibility::Public, Some("a/b"), &[])
            ),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn limits_depend_on_the_route() {
        let mut long = reply(Visibility::Private, Some("m"), &[("kind", "message")]);
        long.text = "é".repeat(2000);
        assert!(build(&graph(), "me", "T", &long).is_ok());
        long.text.push('!');
        assert!(
            matches!(build(&graph(), "me", "T", &long), Err(PluginError::InvalidInput(m)) if m.contains("2001 characters") && m.contains("2000"))
        );
        let mut comment = reply(Visibility::Public, Some("c"), &[("kind", "comment")]);
        comment.text = "x".repeat(8000);
        assert!(build(&graph(), "me", "T", &comment).is_ok());
        comment.text.push('x');
        assert!(
            matches!(build(&graph(), "me", "T", &comment), Err(PluginError::InvalidInput(m)) if m.contains("8000"))
        );
        comment.text = "  ".into();
        assert!(
            matches!(build(&graph(), "me", "T", &comment), Err(PluginError::InvalidInput(m)) if m.contains("empty"))
        );
    }
}
