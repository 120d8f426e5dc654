//! Facebook Page connector: Messenger conversations and Page comments in, replies out through
//! the Graph API.
//!
//! Plugin name `facebook`; channel `facebook`; display name "Facebook". Egress:
//! `graph.facebook.com`. Built on the shared [`meta_graph`] crate.
//!
//! # Config and secrets
//!
//! | config key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://graph.facebook.com` | Graph API base URL (tests point it at a loopback mock) |
//! | `graph_version` | `v21.0` | Graph API version in every path (`vN.M`) |
//! | `page_id` | `me` | the page that sends Messenger replies (`/{page_id}/messages`); `me` is the page the token belongs to |
//!
//! Secrets: `app-secret` (the Meta app secret that signs deliveries; required for `POST`),
//! `verify-token` (the token set in the app's webhook settings; required for the handshake),
//! `page-access-token` (a Page access token with `pages_messaging`, `pages_manage_engagement`,
//! `pages_read_user_content`; required for `deliver`). Values may be given bare or as JSON
//! strings.
//!
//! # Inbound (`handle-webhook`)
//!
//! **Handshake**: `GET ?hub.mode=subscribe&hub.verify_token=<t>&hub.challenge=<c>` answers
//! `200 text/plain <c>` when `<t>` equals `verify-token` (constant time); otherwise
//! `unauthorized` (the host refuses the request, which is the 403 Meta expects).
//!
//! **Verification**: every `POST` must carry `X-Hub-Signature-256: sha256=<hex
//! HMAC-SHA256(app-secret, raw body)>`, checked in constant time over the bytes as received,
//! before anything is parsed. Missing or wrong → `unauthorized`; no `app-secret` →
//! `not-configured`.
//!
//! **Body**: JSON (a UTF-8 BOM is ignored; anything else, e.g. commented documentation
//! examples, is `invalid-input` naming the line and column). A body without the
//! `{"object", "entry"}` envelope that is a recognisable documentation fragment (a single
//! entry or messaging event) or a Graph API object becomes one skipped event saying so; an
//! `object` other than `page` becomes one skipped event. Each entry may batch many events:
//!
//! - `messaging[]` (Messenger, private, origin direct-message): `message` → created (text,
//!   attachments, `quick_reply.payload` → extra `quick-reply-payload`, `reply_to.mid` →
//!   in-reply-to); `message.is_deleted` → deleted; `message_edit` → edited (same `mid`);
//!   `is_echo` or a message from the page itself → skipped (the page's own); `reaction`,
//!   `delivery`, `read`, `postback`, `optin`, `referral`, handover and payment events →
//!   skipped with their type and reason. external-id = `mid`; conversation-key =
//!   `<page id>:<PSID>`; author id = PSID (webhooks carry no name); received-at = `timestamp`.
//! - `standby[]` → skipped (another app owns the thread).
//! - `changes[]` with field `feed`: item `comment` (verb `add`/`edited`/`remove` →
//!   created/edited/deleted; public, origin comment; external-id = `comment_id`;
//!   conversation-key = `post_id`; in-reply-to = `parent_id`, else `post_id`); items `post`,
//!   `status`, `photo`, `video` (visitor posts: public, origin mention; external-id and
//!   conversation-key = `post_id`); photos and links → attachments; author from `from` or
//!   `sender_id`/`sender_name`; received-at = `created_time` (seconds), else the entry `time`.
//!   Written by the page itself (author id = page id) → skipped; verbs `hide`/`unhide`/`mute`
//!   and items `reaction`, `like`, `share`, `event`, `album` → skipped. Fields `mention` (no
//!   author in the notification), `ratings` and anything else → skipped.
//!
//! `extra` keys: `kind` (`message`, `comment` or `post`), `page-id`, `comment-id`, `post-id`,
//! `parent-id`, `quick-reply-payload`, `num-edit`. An event that breaks the host's limits
//! (ids over 1024 bytes, text over 1 MiB) is skipped, never failing the batch.
//!
//! # Outbound (`deliver`)
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
//!
//! The route follows the answered message's `kind` extra and the reply's visibility. The page
//! token travels as `Authorization: Bearer`. A public reply to a Messenger message, an empty text or a text over
//! the route's limit is `invalid-input`. Graph answers map as documented in [`meta_graph`]
//! (429 and rate-limit codes → `rate-limited`; 190 token, 10/200 permission, 551 unavailable
//! person, 24-hour window → `rejected`; 1/2/5xx → `unavailable`). A delivered reply's id is
//! remembered under its idempotency key in the plugin's key-value store, so a retried key
//! returns the first receipt instead of posting twice.
//!
//! # Channel
//!
//! No polling. Capabilities: public replies, private messages, threading, webhooks, edits,
//! deletions. **Length rule**: `measure` cannot tell which kind of reply a text is for, so it
//! applies the stricter of Facebook's two limits: 2000 characters (Unicode scalar values, the
//! Messenger limit); comments allow 8000 and `deliver` checks that limit for comment routes.

pub mod inbound;

use meta_graph::connector::{Answerable, Limit, Spec};
use meta_graph::graph::Recipient;

/// What makes the shared Meta connector the Facebook Page connector.
pub const SPEC: Spec = Spec {
    name: inbound::CHANNEL,
    version: env!("CARGO_PKG_VERSION"),
    display_name: "Facebook",
    description: "Facebook Page: Messenger conversations and Page comments in, replies out via \
                  the Graph API",
    egress: &["graph.facebook.com"],
    object: "page",
    connector: "the Facebook Page connector",
    account_key: "page-id",
    account_noun: "page",
    thread_noun: "Messenger thread",
    account_config: "page_id",
    token_secret: "page-access-token",
    token_purpose: "the Page access token replies are sent with",
    // Messenger text limit, in characters (also private replies to comments and posts).
    private_limit: Limit::characters(2000, "a Messenger message"),
    // Facebook comment limit, in characters.
    public_limit: Limit::characters(8000, "a Facebook comment"),
    length_description: "2000 characters (Messenger; the stricter limit, as measure cannot tell \
                         the reply kind); Page comments allow 8000",
    answerable: &[
        Answerable {
            kind: "comment",
            id_key: "comment-id",
            private: Recipient::CommentId,
        },
        Answerable {
            kind: "post",
            id_key: "post-id",
            private: Recipient::PostId,
        },
    ],
    reply_edge: "comments",
    private_only: "a Messenger conversation is private: it cannot be answered in public",
    fallback_id_key: None,
    change_event: inbound::change_event,
};

meta_graph::export_network!(Facebook, Page, SPEC);

#[cfg(test)]
mod tests {
    use super::*;
    use meta_graph::connector::{channel_info, handle, plugin_info};
    use meta_graph::test_support::signed_post;
    use switchboard_sdk::prelude::*;

    #[test]
    fn handle_signs_parses_and_answers_the_handshake() {
        let body = br#"{"object":"page","entry":[{"id":"1","time":1458692752478,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1458692752478,"message":{"mid":"m.1","text":"hi"}}]}]}"#;
        let request = signed_post("https://sb.example/hooks/facebook", "s3", body);
        let WebhookOutcome::Events(events) = handle(&SPEC, &request, Some("s3"), None).unwrap()
        else {
            panic!("expected events")
        };
        assert!(
            matches!(events.as_slice(), [Event::Message(m)] if m.text == "hi" && m.conversation_key == "1:2")
        );
        assert!(matches!(
            handle(&SPEC, &request, Some("other"), None),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info(&SPEC);
        assert_eq!(c.channel, "facebook");
        assert_eq!(c.length_rule.max, 2000);
        assert_eq!(c.length_rule.unit, LengthUnit::Characters);
        assert!(c.length_rule.description.contains("8000"));
        assert_eq!(c.capabilities.len(), 6);
        assert!(!c.capabilities.contains(&Capability::Polling));
        let p = plugin_info(&SPEC);
        assert_eq!(p.name, "facebook");
        assert_eq!(p.egress, vec!["graph.facebook.com".to_string()]);
        assert_eq!(p.config_keys.join(" "), "api_base graph_version page_id");
        assert_eq!(
            p.secrets.join(" "),
            "app-secret verify-token page-access-token"
        );
        assert_eq!(<Facebook as ChannelAdapter>::measure("héllo 🧳".into()), 7);
    }

    /// Where replies go and their limits.
    mod deliver {
        use crate::SPEC;
        use meta_graph::test_support::{RECIPIENT, TEXT, build, json_body as body, refusal, reply};
        use serde_json::json;
        use switchboard_sdk::{PluginError, Visibility};

        #[test]
        fn messenger_reply_goes_to_the_psid() {
            let answer = reply(
                Visibility::Private,
                Some("m.1"),
                &[("kind", "message"), ("page-id", "111")],
            );
            let r = build(&SPEC, "me", "PAGE-TOKEN", &answer).unwrap();
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
            let answer = reply(Visibility::Public, Some("901_903"), &extra);
            let r = build(&SPEC, "111", "T", &answer).unwrap();
            assert_eq!(r.url, "https://graph.facebook.com/v21.0/901_903/comments");
            assert_eq!(body(&r), json!({"message": TEXT}));
            let answer = reply(Visibility::Private, Some("901_903"), &extra);
            let r = build(&SPEC, "111", "T", &answer).unwrap();
            assert_eq!(r.url, "https://graph.facebook.com/v21.0/111/messages");
            assert_eq!(body(&r)["recipient"], json!({"comment_id": "901_903"}));
            let post = [("kind", "post"), ("post-id", "123_930")];
            let answer = reply(Visibility::Public, None, &post);
            let r = build(&SPEC, "me", "T", &answer).unwrap();
            assert_eq!(r.url, "https://graph.facebook.com/v21.0/123_930/comments");
            let answer = reply(Visibility::Private, None, &post);
            let r = build(&SPEC, "me", "T", &answer).unwrap();
            assert_eq!(body(&r)["recipient"], json!({"post_id": "123_930"}));
            // Without extras a public reply goes under in-reply-to.
            let answer = reply(Visibility::Public, Some("5_6"), &[]);
            let r = build(&SPEC, "me", "T", &answer).unwrap();
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
            let m = refusal(&SPEC, &long);
            assert!(m.contains("2001 characters") && m.contains("2000"), "{m}");
            let mut comment = reply(Visibility::Public, Some("c"), &[("kind", "comment")]);
            comment.text = "x".repeat(8000);
            assert!(build(&SPEC, "me", "T", &comment).is_ok());
            comment.text.push('x');
            let m = refusal(&SPEC, &comment);
            assert!(m.contains("8000"), "{m}");
            comment.text = "  ".into();
            let m = refusal(&SPEC, &comment);
            assert!(m.contains("empty"), "{m}");
        }
    }
}
