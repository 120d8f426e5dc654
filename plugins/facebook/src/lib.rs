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
//! Secrets: `app_secret` (the Meta app secret that signs deliveries; required for `POST`),
//! `verify_token` (the token set in the app's webhook settings; required for the handshake),
//! `page_access_token` (a Page access token with `pages_messaging`, `pages_manage_engagement`,
//! `pages_read_user_content`; required for `deliver`). Values may be given bare or as JSON
//! strings.
//!
//! # Inbound (`handle-webhook`)
//!
//! **Handshake**: `GET ?hub.mode=subscribe&hub.verify_token=<t>&hub.challenge=<c>` answers
//! `200 text/plain <c>` when `<t>` equals `verify_token` (constant time); otherwise
//! `unauthorized` (the host refuses the request, which is the 403 Meta expects).
//!
//! **Verification**: every `POST` must carry `X-Hub-Signature-256: sha256=<hex
//! HMAC-SHA256(app_secret, raw body)>`, checked in constant time over the bytes as received,
//! before anything is parsed. Missing or wrong → `unauthorized`; no `app_secret` →
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
//! Routed by the answered message's `kind` and the reply's visibility (see [`outbound`]):
//! Messenger reply `POST /{v}/{page_id|me}/messages` with
//! `{"recipient":{"id":PSID},"messaging_type":"RESPONSE","message":{"text":…}}`; private reply
//! to a comment or visitor post with `"recipient":{"comment_id"|"post_id":…}`; public reply
//! `POST /{v}/{comment-or-post-id}/comments {"message":…}`. The page token travels as
//! `Authorization: Bearer`. A public reply to a Messenger message, an empty text or a text over
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
pub mod outbound;

use meta_graph::graph::{self, Graph};
use meta_graph::{secret, setting};
use switchboard_sdk::prelude::*;

/// The connector.
pub struct Facebook;

/// Config keys read by the connector.
pub const CONFIG_KEYS: [&str; 3] = ["api_base", "graph_version", "page_id"];
/// Secrets read by the connector.
pub const SECRETS: [&str; 3] = ["app_secret", "verify_token", "page_access_token"];

/// Verify and decode one request given the tenant's secrets.
pub fn handle(
    request: &HttpRequest,
    app_secret: Option<&str>,
    verify_token: Option<&str>,
) -> Result<WebhookOutcome, PluginError> {
    match meta_graph::read_request(request, app_secret, verify_token)? {
        meta_graph::Inbound::Answer(outcome) => Ok(outcome),
        meta_graph::Inbound::Body(body) => inbound::events(body).map(WebhookOutcome::Events),
    }
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: inbound::CHANNEL.into(),
        display_name: "Facebook".into(),
        length_rule: LengthRule {
            max: outbound::MESSENGER_MAX,
            unit: LengthUnit::Characters,
            description: "2000 characters (Messenger; the stricter limit, as measure cannot tell \
                          the reply kind); Page comments allow 8000"
                .into(),
        },
        capabilities: vec![
            Capability::PublicReplies,
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Webhooks,
            Capability::Edits,
            Capability::Deletions,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "facebook",
        env!("CARGO_PKG_VERSION"),
        "Facebook Page: Messenger conversations and Page comments in, replies out via the Graph API",
    )
    .egress("graph.facebook.com");
    let info = CONFIG_KEYS.iter().fold(info, |i, k| i.config_key(k));
    SECRETS.iter().fold(info, |i, s| i.secret(s))
}

impl ChannelAdapter for Facebook {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(
            &request,
            secret("app_secret").as_deref(),
            secret("verify_token").as_deref(),
        )
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let graph = Graph::from_lookup(setting)?;
        let page = setting("page_id").unwrap_or_else(|| "me".into());
        let page = graph::node_id("config `page_id`", &page)?.to_string();
        let token = secret("page_access_token").ok_or_else(|| {
            PluginError::NotConfigured(
                "secret `page_access_token` is not set for this plugin: it is the Page access \
                 token replies are sent with"
                    .into(),
            )
        })?;
        let request = outbound::build(&graph, &page, &token, &reply)?;
        let key = format!("delivered:{}", reply.idempotency_key);
        if let Some(id) = kv::get_string(&key).filter(|id| !id.is_empty()) {
            return Ok(DeliveryReceipt {
                external_id: id,
                url: None,
            });
        }
        let receipt = graph::receipt(&http::send(&request)?)?;
        // Best effort: a failed write only loses the duplicate protection for this key.
        let _ = kv::set(&key, receipt.external_id.as_bytes());
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        meta_graph::char_count(&text)
    }
}

switchboard_sdk::export_connector!(Facebook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info();
        assert_eq!(c.channel, "facebook");
        assert_eq!(c.length_rule.max, 2000);
        assert_eq!(c.length_rule.unit, LengthUnit::Characters);
        assert!(c.length_rule.description.contains("8000"));
        assert_eq!(c.capabilities.len(), 6);
        assert!(!c.capabilities.contains(&Capability::Polling));
        let p = plugin_info();
        assert_eq!(p.name, "facebook");
        assert_eq!(p.egress, vec!["graph.facebook.com".to_string()]);
        assert_eq!(p.config_keys, vec!["api_base", "graph_version", "page_id"]);
        assert_eq!(
            p.secrets,
            vec!["app_secret", "verify_token", "page_access_token"]
        );
    }

    #[test]
    fn handle_signs_parses_and_answers_the_handshake() {
        let body = br#"{"object":"page","entry":[{"id":"1","time":1458692752478,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1458692752478,"message":{"mid":"m.1","text":"hi"}}]}]}"#;
        let request = HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/facebook".into(),
            headers: vec![(
                "x-hub-signature-256".into(),
                meta_graph::signature::sign("s3", body),
            )],
            body: body.to_vec(),
        };
        let WebhookOutcome::Events(events) = handle(&request, Some("s3"), None).unwrap() else {
            panic!("expected events")
        };
        assert!(
            matches!(events.as_slice(), [Event::Message(m)] if m.text == "hi" && m.conversation_key == "1:2")
        );
        assert!(matches!(
            handle(&request, Some("other"), None),
            Err(PluginError::Unauthorized(_))
        ));
    }
}
