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

use meta_graph::connector::Limit;

/// Messenger text limit, in characters (also private replies to comments and posts).
pub const MESSENGER: Limit = Limit::characters(2000, "a Messenger message");
/// Facebook comment limit, in characters.
pub const COMMENT: Limit = Limit::characters(8000, "a Facebook comment");

#[cfg(test)]
mod tests {
    use crate::SPEC;
    use meta_graph::test_support::{RECIPIENT, TEXT, build, json_body as body, reply};
    use serde_json::json;
    use switchboard_sdk::{PluginError, Visibility};

    #[test]
    fn messenger_reply_goes_to_the_psid() {
        let r = build(
            &SPEC,
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
        assert_eq!(body(&r)["recipient"], json!({"id": RECIPIENT}));
        assert!(matches!(
            build(&SPEC, "me", "T", &reply(Visibility::Public, Some("m.1"), &[("kind", "message")])),
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
            &SPEC,
            "111",
            "T",
            &reply(Visibility::Public, Some("901_903"), &extra),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/901_903/comments");
        assert_eq!(body(&r), json!({"message": TEXT}));
        let r = build(
            &SPEC,
            "111",
            "T",
            &reply(Visibility::Private, Some("901_903"), &extra),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/111/messages");
        assert_eq!(body(&r)["recipient"], json!({"comment_id": "901_903"}));
        let post = [("kind", "post"), ("post-id", "123_930")];
        let r = build(&SPEC, "me", "T", &reply(Visibility::Public, None, &post)).unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/123_930/comments");
        let r = build(&SPEC, "me", "T", &reply(Visibility::Private, None, &post)).unwrap();
        assert_eq!(body(&r)["recipient"], json!({"post_id": "123_930"}));
        // Without extras a public reply goes under in-reply-to.
        let r = build(
            &SPEC,
            "me",
            "T",
            &reply(Visibility::Public, Some("5_6"), &[]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/5_6/comments");
        assert!(matches!(
            build(&SPEC, "me", "T", &reply(Visibility::Public, None, &[])),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            build(
                &SPEC,
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
        assert!(build(&SPEC, "me", "T", &long).is_ok());
        long.text.push('!');
        assert!(
            matches!(build(&SPEC, "me", "T", &long), Err(PluginError::InvalidInput(m)) if m.contains("2001 characters") && m.contains("2000"))
        );
        let mut comment = reply(Visibility::Public, Some("c"), &[("kind", "comment")]);
        comment.text = "x".repeat(8000);
        assert!(build(&SPEC, "me", "T", &comment).is_ok());
        comment.text.push('x');
        assert!(
            matches!(build(&SPEC, "me", "T", &comment), Err(PluginError::InvalidInput(m)) if m.contains("8000"))
        );
        comment.text = "  ".into();
        assert!(
            matches!(build(&SPEC, "me", "T", &comment), Err(PluginError::InvalidInput(m)) if m.contains("empty"))
        );
    }
}
