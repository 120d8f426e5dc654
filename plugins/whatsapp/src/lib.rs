//! WhatsApp connector: WhatsApp Cloud API webhooks in, text replies out through the Graph API.
//!
//! Plugin name `whatsapp`; display name "WhatsApp"; the channel name stamped on messages is
//! `whatsapp`. Egress: `graph.facebook.com`.
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://graph.facebook.com` | base URL of the Graph API (`http(s)://`; tests point it at a mock) |
//! | `graph_version` | `v21.0` | Graph API version in the path (`vNN.N`) |
//! | `phone_number_id` | — | business phone number id to send from when a reply carries none |
//!
//! Values may be given bare or as JSON strings. Secrets (an empty value counts as not set):
//!
//! - `app-secret` (required for `POST`): the Meta app secret, key of `X-Hub-Signature-256`.
//! - `verify-token` (required for the `GET` verification request): the token typed into the
//!   app's webhook settings.
//! - `access-token` (required for `deliver`): a system-user or business access token with
//!   `whatsapp_business_messaging`.
//!
//! # Inbound (`handle-webhook`)
//!
//! **Verification request**: `GET ?hub.mode=subscribe&hub.verify_token=<t>&hub.challenge=<c>`
//! is answered `200 text/plain <c>` when `<t>` equals the `verify-token` secret (constant-time),
//! otherwise `403` (as Meta documents). A `GET` without `hub.mode`/`hub.challenge` is
//! `invalid-input`; an unset `verify-token` is `not-configured`.
//!
//! **Signature**: every `POST` must carry `X-Hub-Signature-256: sha256=<hex>` where `<hex>` is
//! HMAC-SHA256(`app-secret`, raw body bytes); checked before anything is parsed, in constant
//! time. Missing or wrong: `unauthorized` (never echoing the secret or digest). Methods other
//! than `GET` and `POST` are `invalid-input`.
//!
//! **Body**: JSON (a leading BOM is ignored) `{"object": "whatsapp_business_account",
//! "entry": [{"id", "changes": [{"field", "value"}]}]}`. Not JSON (the error names line and
//! column), not an object, or without `object`/`entry`: `invalid-input`. Another `object`
//! (another Meta product on the same endpoint) is one skipped event. One body may carry many
//! entries, changes and messages: each becomes one event, in order (at most 10,000).
//!
//! Each `value.messages[]` item becomes a private direct message:
//!
//! - external id = the `wamid`; conversation key = `<phone_number_id>:<wa_id>` (or
//!   `<phone_number_id>:<group_id>` for a group message); in-reply-to = `context.id`;
//! - author id = `from` (the wa_id; or `from_user_id`, the business-scoped user id, when the
//!   phone number is hidden), display name = `contacts[].profile.name` and handle =
//!   `contacts[].profile.username` of the contact whose `wa_id`/`user_id` is the sender;
//! - received-at = `timestamp` (seconds) in ms (0, i.e. the host's clock, if absent);
//! - `text` → its body; `image`/`video`/`audio`/`document`/`sticker` → one attachment (MIME
//!   type, caption or file name as description; the caption is also the text; the media id in
//!   extra `media-id`; no URL, as the Cloud API gives media ids, not URLs); `location` → a
//!   location attachment described `name, address, (lat, long)`; `contacts` → one `other`
//!   attachment (`text/vcard`) per card, described `name: phones`; `interactive`
//!   `button_reply`/`list_reply` → the chosen title as text (`reply-id` in extra);
//!   `nfm_reply` → its body (`flow-response` in extra); `button` → its text (`button-payload`);
//! - `edit` → action `edited` with the original message's id and the edited content; `revoke`
//!   → action `deleted` with the original id and empty text (the edit/revoke wamid is extra
//!   `event-id`).
//!
//! Extra keys: `phone-number-id`, `message-type`, `display-phone-number`, `waba-id`, `wa-id`,
//! `user-id`, `group-id`, plus the per-type ones above; `deliver` reads them back.
//!
//! Skipped with a reason: `reaction`, `system` notices, `unsupported`/`unknown` messages and
//! messages carrying `errors` (with the error code and title), other message types (`order`,
//! …), messages without id or sender, `statuses[]` (sent/delivered/read/failed: the contract
//! has no delivery-status event; event type `status:<state>`), `smb_message_echoes` (the
//! business's own messages), and other change fields (`account_update`, …).
//!
//! # Outbound (`deliver`)
//!
//! `POST {api_base}/{graph_version}/{phone_number_id}/messages` with `Authorization: Bearer
//! <access-token>` and
//! `{"messaging_product": "whatsapp", "recipient_type": "individual", "to": <wa_id>,
//! "type": "text", "text": {"body": …, "preview_url": false}, "context": {"message_id": <in-reply-to>}}`
//! (`context` only when there is a message to quote). The phone number id comes from extra
//! `phone-number-id`, else the conversation key, else config `phone_number_id`; the addressee
//! from extra `group-id` (`recipient_type: "group"`), else extra `wa-id`, else the recipient id
//! (a business-scoped user id such as `US.1349…` is sent as `"recipient"` instead of `"to"`).
//! A public reply is `rejected` (WhatsApp has no public replies); an empty text or one longer
//! than 4096 characters is `invalid-input`. A successful send stores the wamid under the
//! idempotency key in the plugin's key-value store, so a retried reply is not sent twice.
//!
//! Answers: 2xx → receipt with `messages[0].id`; HTTP 429 and Graph codes 130429, 131056,
//! 131048, 80007, 4, 17, 32, 613, 80001–80014 → `rate-limited` (with `Retry-After` if sent);
//! 131047 → `rejected` (outside the 24-hour customer service window: a template is needed);
//! 190 (token), 10/200–299 (permission), 368, 131026 (undeliverable), 131051, 131031 →
//! `rejected`; 131000, 131016, 133004, 1, 2, 5xx → `unavailable`; other 4xx → `rejected`.
//!
//! # Channel
//!
//! Length rule: 4096 characters (Unicode scalar values), the Cloud API's limit on a text body.
//! Capabilities: private messages, threading (quoted replies), webhooks, edits, deletions. No
//! public replies, no polling (`poll` answers `invalid-input`), no listening.
//!
//! The Meta-common pieces (signature, verification request, Graph settings and errors) are the
//! shared [`meta_graph`] crate's; [`parse`], [`delivery`] and [`settings`] are host-free; only
//! the [`ChannelAdapter`] impl calls the host.

pub mod delivery;
pub mod parse;
pub mod settings;

use meta_graph::{handshake, signature};
use settings::{Config, Secrets};
use switchboard_sdk::prelude::*;

/// The connector.
pub struct WhatsApp;

/// Verify and decode one request, given the tenant's secrets.
pub fn handle(secrets: &Secrets, request: &HttpRequest) -> Result<WebhookOutcome, PluginError> {
    match request.method.to_ascii_uppercase().as_str() {
        "GET" => {
            if !handshake::is_verification_request(&request.url) {
                return Err(PluginError::InvalidInput(
                    "a GET request must be Meta's verification request (`hub.mode`, \
                     `hub.verify_token`, `hub.challenge`)"
                        .into(),
                ));
            }
            let token = secrets.verify_token()?;
            handshake::answer_or_forbid(&request.url, token).map(WebhookOutcome::Challenge)
        }
        "POST" => {
            signature::verify_request(secrets.app_secret.as_deref(), request)?;
            parse::parse_body(&request.body).map(WebhookOutcome::Events)
        }
        other => Err(PluginError::InvalidInput(format!(
            "method {other} is not supported: Meta POSTs events and GETs the verification request"
        ))),
    }
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: parse::CHANNEL.into(),
        display_name: "WhatsApp".into(),
        length_rule: LengthRule {
            max: delivery::MAX_TEXT_CHARS as u32,
            unit: LengthUnit::Characters,
            description: "4096 characters per text message; no public replies (every WhatsApp \
                          message is private)"
                .into(),
        },
        capabilities: vec![
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
        "whatsapp",
        env!("CARGO_PKG_VERSION"),
        "WhatsApp Cloud API: signed webhooks in, private text replies out",
    )
    .egress("graph.facebook.com");
    let info = settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k));
    info.secret(settings::APP_SECRET)
        .secret(settings::VERIFY_TOKEN)
        .secret(settings::ACCESS_TOKEN)
}

/// The key-value key remembering what an idempotency key was delivered as.
pub fn sent_key(idempotency_key: &str) -> String {
    format!("sent:{idempotency_key}")
}

fn host_config() -> Config {
    Config::from_lookup(config::get)
}

fn host_secrets() -> Secrets {
    Secrets::from_lookup(config::secret)
}

impl ChannelAdapter for WhatsApp {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(&host_secrets(), &request)
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let config = host_config();
        let secrets = host_secrets();
        let request = delivery::build_request(
            &config.graph()?,
            secrets.access_token()?,
            &reply,
            config.phone_number_id.as_deref(),
        )?;
        // A retry of a reply that already went out answers with the first receipt.
        let key = sent_key(&reply.idempotency_key);
        if !reply.idempotency_key.is_empty()
            && let Some(id) = kv::get_string(&key).filter(|id| !id.is_empty())
        {
            return Ok(DeliveryReceipt {
                external_id: id,
                url: None,
            });
        }
        let response = http::send(&request)?;
        let receipt = delivery::map_response(&response)?;
        if !reply.idempotency_key.is_empty()
            && let Err(e) = kv::set(&key, receipt.external_id.as_bytes())
        {
            log::warn(&format!("could not remember delivery {key}: {e:?}"));
        }
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        meta_graph::char_count(&text)
    }
}

switchboard_sdk::export_connector!(WhatsApp);

#[cfg(test)]
mod tests {
    use super::*;
    use meta_graph::test_support::request as req;

    fn secrets() -> Secrets {
        Secrets {
            app_secret: Some("app-secret".into()),
            verify_token: Some("tok".into()),
            access_token: None,
        }
    }

    #[test]
    fn signed_post_is_verified_then_parsed() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106"},"messages":[{"from":"4915","id":"wamid.A","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let sig = signature::sign("app-secret", body);
        let outcome = handle(
            &secrets(),
            &req(
                "POST",
                "https://h/",
                vec![("x-hub-signature-256".into(), sig)],
                body,
            ),
        )
        .unwrap();
        let WebhookOutcome::Events(events) = outcome else {
            panic!("expected events")
        };
        assert!(matches!(&events[..], [Event::Message(m)] if m.text == "hi"));
    }

    #[test]
    fn verification_comes_before_parsing() {
        let unsigned = req("POST", "https://h/", vec![], b"not json");
        assert!(matches!(
            handle(&secrets(), &unsigned),
            Err(PluginError::Unauthorized(m)) if m.contains("missing")
        ));
        let sig = signature::sign("app-secret", b"not json");
        let signed = req(
            "POST",
            "https://h/",
            vec![("x-hub-signature-256".into(), sig)],
            b"not json",
        );
        assert!(matches!(
            handle(&secrets(), &signed),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            handle(&Secrets::default(), &signed),
            Err(PluginError::NotConfigured(m)) if m.contains("app-secret")
        ));
    }

    #[test]
    fn get_is_the_verification_request_and_other_methods_are_refused() {
        let url = "https://h/?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42";
        let Ok(WebhookOutcome::Challenge(r)) = handle(&secrets(), &req("GET", url, vec![], b""))
        else {
            panic!("expected a challenge")
        };
        assert_eq!((r.status, r.body.as_slice()), (200, &b"42"[..]));
        assert!(matches!(
            handle(&Secrets::default(), &req("GET", url, vec![], b"")),
            Err(PluginError::NotConfigured(m)) if m.contains("verify-token")
        ));
        assert!(matches!(
            handle(&secrets(), &req("GET", "https://h/", vec![], b"")),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            handle(&secrets(), &req("PUT", url, vec![], b"")),
            Err(PluginError::InvalidInput(m)) if m.contains("PUT")
        ));
    }

    #[test]
    fn measure_counts_scalar_values() {
        let measure = |t: &str| <WhatsApp as ChannelAdapter>::measure(t.into());
        assert_eq!(measure(""), 0);
        assert_eq!(measure("olá"), 3);
        assert_eq!(measure("👨‍👩‍👧"), 5);
        assert_eq!(measure("你好"), 2);
    }

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info();
        assert_eq!(c.channel, "whatsapp");
        assert_eq!(c.length_rule.max, 4096);
        assert_eq!(c.length_rule.unit, LengthUnit::Characters);
        assert!(!c.capabilities.contains(&Capability::PublicReplies));
        assert!(c.capabilities.contains(&Capability::PrivateMessages));
        assert!(!c.capabilities.contains(&Capability::Polling));
        let p = plugin_info();
        assert_eq!(p.name, "whatsapp");
        assert_eq!(p.egress, vec!["graph.facebook.com".to_string()]);
        assert_eq!(
            p.config_keys,
            vec!["api_base", "graph_version", "phone_number_id"]
        );
        assert_eq!(
            p.secrets,
            vec!["app-secret", "verify-token", "access-token"]
        );
    }
}
