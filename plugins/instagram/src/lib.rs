//! Instagram connector: Instagram Direct messages and comments on the account's media in,
//! replies out through the Graph API (Instagram Messaging via a linked Facebook Page, or the
//! Instagram API with Instagram Login when `api_base` is `https://graph.instagram.com`).
//!
//! Plugin name `instagram`; channel `instagram`; display name "Instagram". Egress:
//! `graph.facebook.com`, `graph.instagram.com`. Built on the shared [`meta_graph`] crate.
//!
//! # Config and secrets
//!
//! | config key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://graph.facebook.com` | Graph API base URL (`https://graph.instagram.com` for Instagram Login tokens; tests use a loopback mock) |
//! | `graph_version` | `v21.0` | Graph API version in every path (`vN.M`) |
//! | `ig_user_id` | `me` | the account that sends messages (`/{ig_user_id}/messages`); `me` is the account or page the token belongs to |
//!
//! Secrets: `app-secret` (signs deliveries; required for `POST`), `verify-token` (the
//! handshake), `access-token` (a Page access token with `instagram_manage_messages` and
//! `instagram_manage_comments`, or an Instagram user token; required for `deliver`).
//!
//! # Inbound (`handle-webhook`)
//!
//! Handshake, `X-Hub-Signature-256` verification and JSON handling exactly as for Facebook
//! (see [`meta_graph`]): `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` →
//! `200 text/plain <challenge>` or `unauthorized`; unsigned or mis-signed `POST` →
//! `unauthorized`; not JSON → `invalid-input` with line and column. Graph API objects (a
//! conversation or message as the API returns them) and documentation fragments become one
//! skipped event saying what they are; an `object` other than `instagram` is skipped.
//!
//! - `messaging[]` (Direct, private, origin direct-message): `message` → created (text,
//!   attachments incl. `ig_reel`/`share`, `reply_to.mid` → in-reply-to, `reply_to.story` →
//!   extra `reply-to-story-id` and a link attachment); `is_deleted` → deleted; `message_edit`
//!   → edited; `is_unsupported` → skipped; `is_echo` or sent by the account itself →
//!   skipped; reactions, reads, postbacks, referrals → skipped with their type.
//!   external-id = `mid`; conversation-key = `<account id>:<IGSID>`; author id = IGSID.
//! - `changes[]` field `comments` and `live_comments` (public, origin comment): external-id =
//!   comment `id`; conversation-key = `media.id`; in-reply-to = `parent_id`, else the media id;
//!   author = `from.id` with handle `@from.username`; received-at = the entry `time`. A
//!   comment without `from.id` or text, or written by the account itself, is skipped.
//! - fields `mentions` (no author or text in the notification), `message_reactions`,
//!   `messaging_seen`, `story_insights` and any other → skipped with a reason.
//!
//! `extra` keys: `kind` (`message` or `comment`), `ig-user-id`, `comment-id`, `media-id`,
//! `parent-id`, `media-product-type`, `live`, `reply-to-story-id`, `quick-reply-payload`.
//!
//! # Outbound (`deliver`)
//!
//! | answering | visibility | request | limit |
//! |---|---|---|---|
//! | direct message | private | `POST /{ig_user_id or me}/messages` `{"recipient":{"id":IGSID},"messaging_type":"RESPONSE","message":{"text":…}}` | 1000 UTF-8 bytes |
//! | direct message | public | refused (`invalid-input`): a DM thread has no public side | — |
//! | comment | public | `POST /{ig-comment-id}/replies` `{"message":…}` | 2200 characters |
//! | comment | private | private reply: Send API with `{"recipient":{"comment_id":…}}` | 1000 UTF-8 bytes |
//!
//! Token as `Authorization: Bearer`. Graph
//! errors map as in [`meta_graph`]; a delivered reply is remembered under its idempotency key.
//!
//! # Channel
//!
//! No polling. Capabilities: public replies, private messages, threading, webhooks, edits,
//! deletions. **Length rule**: `measure` cannot tell the reply kind, so it applies the stricter
//! rule: 1000 UTF-8 bytes (Instagram's documented DM limit); comments allow 2200 characters
//! and `deliver` checks that limit for comment replies.

pub mod inbound;

use meta_graph::connector::{Answerable, Limit, Spec};
use meta_graph::graph::Recipient;

/// What makes the shared Meta connector the Instagram connector.
pub const SPEC: Spec = Spec {
    name: inbound::CHANNEL,
    version: env!("CARGO_PKG_VERSION"),
    display_name: "Instagram",
    description: "Instagram: Direct messages and comments in, replies out via the Graph API",
    egress: &["graph.facebook.com", "graph.instagram.com"],
    object: "instagram",
    connector: "the Instagram connector",
    account_key: "ig-user-id",
    account_noun: "Instagram account",
    thread_noun: "conversation",
    account_config: "ig_user_id",
    token_secret: "access-token",
    token_purpose: "the token replies are sent with",
    // Instagram DM limit in UTF-8 bytes ("Message text must be UTF-8 and be 1000 bytes or less";
    // the same page also says "less than 1000 characters", which the byte rule implies for all
    // but pure-ASCII texts). Private replies to comments are DMs too.
    private_limit: Limit::bytes(1000, "an Instagram message"),
    // Instagram comment limit, in characters.
    public_limit: Limit::characters(2200, "an Instagram comment"),
    length_description: "1000 UTF-8 bytes (direct messages; the stricter limit, as measure \
                         cannot tell the reply kind); comments allow 2200 characters",
    answerable: &[Answerable {
        kind: "comment",
        id_key: "comment-id",
        private: Recipient::CommentId,
    }],
    reply_edge: "replies",
    private_only: "an Instagram direct message is private: it cannot be answered in public",
    fallback_id_key: Some("comment-id"),
    change_event: inbound::change_event,
};

meta_graph::export_network!(Instagram, Professional, SPEC);

#[cfg(test)]
mod tests {
    use super::*;
    use meta_graph::connector::{channel_info, handle, plugin_info};
    use meta_graph::test_support::signed_post;
    use switchboard_sdk::prelude::*;

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info(&SPEC);
        assert_eq!(c.channel, "instagram");
        assert_eq!(
            (c.length_rule.max, c.length_rule.unit),
            (1000, LengthUnit::Bytes)
        );
        assert!(c.length_rule.description.contains("2200"));
        assert_eq!(c.capabilities.len(), 6);
        let p = plugin_info(&SPEC);
        assert_eq!(p.name, "instagram");
        assert_eq!(p.egress, vec!["graph.facebook.com", "graph.instagram.com"]);
        assert_eq!(p.config_keys.join(" "), "api_base graph_version ig_user_id");
        assert_eq!(p.secrets.join(" "), "app-secret verify-token access-token");
        assert_eq!(
            <Instagram as ChannelAdapter>::measure("héllo 🧳".into()),
            11
        );
    }

    #[test]
    fn api_responses_are_skipped_not_refused() {
        let body = br#"{"id": "<THREAD_ID>", "participants": {"data": []}}"#;
        let request = signed_post("https://sb.example/hooks/instagram", "s3", body);
        let WebhookOutcome::Events(events) = handle(&SPEC, &request, Some("s3"), None).unwrap()
        else {
            panic!("expected events")
        };
        assert!(
            matches!(events.as_slice(), [Event::Skipped(s)] if s.reason.contains("Graph API conversation"))
        );
    }

    /// Where replies go and their limits.
    mod deliver {
        use crate::SPEC;
        use meta_graph::test_support::{RECIPIENT, TEXT, build, json_body as body, refusal, reply};
        use serde_json::json;
        use switchboard_sdk::{OutboundReply, PluginError, Visibility};

        #[test]
        fn dm_and_comment_routes() {
            let answer = reply(Visibility::Private, Some("aWdf1"), &[("kind", "message")]);
            let r = build(&SPEC, "me", "IG-TOKEN", &answer).unwrap();
            assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
            assert_eq!(body(&r)["recipient"], json!({"id": RECIPIENT}));
            let answer = reply(Visibility::Private, None, &[("kind", "message")]);
            let r = build(&SPEC, "178414", "T", &answer).unwrap();
            assert_eq!(r.url, "https://graph.facebook.com/v21.0/178414/messages");
            let extra = [("kind", "comment"), ("comment-id", "17865799348089039")];
            let answer = reply(Visibility::Public, Some("17865799348089039"), &extra);
            let r = build(&SPEC, "me", "T", &answer).unwrap();
            assert_eq!(
                r.url,
                "https://graph.facebook.com/v21.0/17865799348089039/replies"
            );
            assert_eq!(body(&r), json!({"message": TEXT}));
            let answer = reply(Visibility::Private, None, &extra);
            let r = build(&SPEC, "me", "T", &answer).unwrap();
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
            let dm = |text: String| OutboundReply {
                text,
                ..reply(Visibility::Private, None, &[("kind", "message")])
            };
            assert!(build(&SPEC, "me", "T", &dm("a".repeat(1000))).is_ok());
            let m = refusal(&SPEC, &dm("日".repeat(334))); // 1002 bytes
            assert!(m.contains("1002 UTF-8 bytes"), "{m}");
            let comment = |text: String| OutboundReply {
                text,
                ..reply(Visibility::Public, Some("1"), &[("kind", "comment")])
            };
            assert!(build(&SPEC, "me", "T", &comment("日".repeat(2200))).is_ok());
            let m = refusal(&SPEC, &comment("日".repeat(2201)));
            assert!(m.contains("2201 characters"), "{m}");
        }
    }
}
