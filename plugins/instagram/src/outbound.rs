//! Where a reply goes on Instagram and the request that sends it.
//!
//! | answering | visibility | request | limit |
//! |---|---|---|---|
//! | direct message | private | `POST /{ig_user_id or me}/messages` `{"recipient":{"id":IGSID},"messaging_type":"RESPONSE","message":{"text":…}}` | 1000 UTF-8 bytes |
//! | direct message | public | refused (`invalid-input`): a DM thread has no public side | — |
//! | comment | public | `POST /{ig-comment-id}/replies` `{"message":…}` | 2200 characters |
//! | comment | private | private reply: Send API with `{"recipient":{"comment_id":…}}` | 1000 UTF-8 bytes |

use meta_graph::connector::Limit;

/// Instagram DM limit in UTF-8 bytes ("Message text must be UTF-8 and be 1000 bytes or less";
/// the same page also says "less than 1000 characters", which the byte rule implies for all
/// but pure-ASCII texts). Private replies to comments are DMs too.
pub const DM: Limit = Limit::bytes(1000, "an Instagram message");
/// Instagram comment limit, in characters.
pub const COMMENT: Limit = Limit::characters(2200, "an Instagram comment");

#[cfg(test)]
mod tests {
    use crate::SPEC;
    use meta_graph::test_support::{RECIPIENT, TEXT, build, json_body as body, reply};
    use serde_json::json;
    use switchboard_sdk::{PluginError, Visibility};

    #[test]
    fn dm_and_comment_routes() {
        let r = build(
            &SPEC,
            "me",
            "IG-TOKEN",
            &reply(Visibility::Private, Some("aWdf1"), &[("kind", "message")]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
        assert_eq!(body(&r)["recipient"], json!({"id": RECIPIENT}));
        let r = build(
            &SPEC,
            "178414",
            "T",
            &reply(Visibility::Private, None, &[("kind", "message")]),
        )
        .unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/178414/messages");
        let extra = [("kind", "comment"), ("comment-id", "17865799348089039")];
        let r = build(
            &SPEC,
            "me",
            "T",
            &reply(Visibility::Public, Some("17865799348089039"), &extra),
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://graph.facebook.com/v21.0/17865799348089039/replies"
        );
        assert_eq!(body(&r), json!({"message": TEXT}));
        let r = build(&SPEC, "me", "T", &reply(Visibility::Private, None, &extra)).unwrap();
        assert_eq!(
            body(&r)["recipient"],
            json!({"comment_id": "17865799348089039"})
        );
        assert!(
            matches!(build(&SPEC, "me", "T", &reply(Visibility::Public, None, &[("kind", "message")])), Err(PluginError::InvalidInput(m)) if m.contains("private"))
        );
        assert!(matches!(
            build(&SPEC, "me", "T", &reply(Visibility::Public, None, &[])),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn dm_limit_is_bytes_and_comment_limit_is_characters() {
        let mut dm = reply(Visibility::Private, None, &[("kind", "message")]);
        dm.text = "a".repeat(1000);
        assert!(build(&SPEC, "me", "T", &dm).is_ok());
        dm.text = "日".repeat(334); // 1002 bytes
        assert!(
            matches!(build(&SPEC, "me", "T", &dm), Err(PluginError::InvalidInput(m)) if m.contains("1002 UTF-8 bytes"))
        );
        let mut c = reply(Visibility::Public, Some("1"), &[("kind", "comment")]);
        c.text = "日".repeat(2200);
        assert!(build(&SPEC, "me", "T", &c).is_ok());
        c.text.push('!');
        assert!(
            matches!(build(&SPEC, "me", "T", &c), Err(PluginError::InvalidInput(m)) if m.contains("2201 characters"))
        );
    }
}
