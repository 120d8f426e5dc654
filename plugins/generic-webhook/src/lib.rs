//! Generic webhook connector: any system that can POST signed JSON becomes a Switchboard channel,
//! and replies go back as signed JSON to a URL the tenant configures.
//!
//! Plugin name `generic-webhook`; display name "Generic webhook"; the channel name stamped on
//! messages is config `channel` (default `webhook`). Egress is declared as `*` because replies go
//! to whatever `deliver_url` the tenant sets: the tenant's own egress allow-list is the real fence.
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `channel` | `webhook` | channel name stamped on every message; lowercase kebab-case (it is lowercased; otherwise `handle-webhook` answers `not-configured` and `info` falls back to `webhook`) |
//! | `signature_header` | `x-signature-256` | header carrying the signature (looked up case-insensitively) |
//! | `signature_prefix` | `sha256=` | text before the digest; may be empty |
//! | `signature_encoding` | `hex` | `hex` or `base64` |
//! | `max_length` | `1000` | longest reply, in characters (a value that is not a positive integer falls back to 1000) |
//! | `deliver_url` | — | `http(s)://` URL replies are POSTed to; required by `deliver` |
//!
//! Values may be given bare or as JSON strings. Secrets:
//!
//! - `signing-secret` (required): the HMAC-SHA256 key for inbound and outbound signatures. An
//!   empty value counts as not set.
//! - `verify-token` (optional): the token a `GET` handshake must present.
//!
//! # Inbound (`handle-webhook`)
//!
//! **Verification** happens before anything is parsed. The signature header must hold
//! `<prefix><digest>`, where the digest is HMAC-SHA256(`signing-secret`, raw body bytes) in the
//! configured encoding (hex in either case; base64 in the standard or URL-safe alphabet, padded
//! or not). The prefix is matched case-insensitively and surrounding whitespace is ignored. The
//! comparison is constant-time. A missing `signing-secret` is `not-configured`; a missing header,
//! wrong prefix, undecodable digest or mismatch is `unauthorized` (messages never contain the
//! secret or the expected signature).
//!
//! **Handshake**: a `GET` whose query has `challenge=<value>` is answered with
//! `200 text/plain <value>` if `verify_token=<token>` equals the `verify-token` secret
//! (percent-decoded, `+` as space, compared in constant time); otherwise — token missing,
//! wrong, or the secret not set — `unauthorized`. Any other `GET` is `invalid-input`. Methods
//! other than `GET` and `POST` are `invalid-input`.
//!
//! **Body**: JSON (a leading UTF-8 BOM is ignored), either one event object, a JSON array of
//! events, or `{"events": [...]}` (an object with an `events` key is always read as this
//! wrapper). A body that is not JSON, or JSON of another shape, is `invalid-input` (with the
//! parser's line and column). Each event:
//!
//! ```json
//! {
//!   "id": "m-1",                      // string or integer, required -> external-id
//!   "type": "message",                // message (default) | edit | delete
//!   "conversation": "thread-9",       // optional; default in_reply_to, else id
//!   "in_reply_to": "m-0",             // optional
//!   "author": {"id": 42, "handle": "@alice", "name": "Alice"},  // id required (string or integer)
//!   "text": "…",                      // string; required unless type is delete ("" then)
//!   "language": "en",                 // optional BCP-47 tag
//!   "private": false,                 // bool, default false -> visibility private/public
//!   "origin": "mention",              // mention | direct-message | comment | listening;
//!                                     // default direct-message if private, else mention
//!   "created_at": "2024-06-19T15:22:45Z",  // RFC 3339 or integer epoch ms; absent -> 0 (host clock)
//!   "attachments": [{"type": "image", "url": "…", "mime_type": "image/jpeg", "description": "…"}],
//!   "extra": {"form": "contact"}      // string values only; emitted sorted by key
//! }
//! ```
//!
//! Details: `type` values are `message` (action created), `edit` (edited) and `delete` (deleted);
//! any other `type` becomes a skipped event with that type and the reason
//! ``event type `X` is not a message``. `conversation` and `in_reply_to` also accept integers.
//! For optional fields, `null` and `""` mean absent (for ids, blank strings too). An unknown
//! `origin` string maps to `other`; an attachment `type` other than image, video, audio, file,
//! link, sticker or location (or none) maps to `other`. Unknown fields are ignored. `tenant` is
//! left empty and `channel` is the configured channel name (the host overwrites both).
//!
//! A problem in one event (not an object, missing or blank `id`/`author`/`author.id`, missing
//! `text`, a field of the wrong type, an unparseable `created_at`, an id longer than 1024 bytes
//! or a text longer than 1 MiB — the last two are limits the host enforces on connector output)
//! does not fail the batch: that event becomes a skipped event without a type, whose reason names
//! the event's index and the field, e.g. ``event at index 2: required field `author` is
//! missing``. A body with more than 10,000 events is `invalid-input`.
//!
//! # Outbound (`deliver`)
//!
//! POSTs to `deliver_url` (required: missing is `not-configured`) with a 15 s timeout:
//!
//! ```json
//! {"idempotency_key": "…", "conversation": "…", "in_reply_to": "…" | null,
//!  "recipient": {"id": "…", "handle": "…" | null}, "text": "…", "private": false}
//! ```
//!
//! with headers `content-type: application/json`, `idempotency-key: <key>` and the signature
//! header over the exact body bytes, in the same scheme as inbound (hex is lowercase, base64 is
//! standard and padded). The response maps as:
//!
//! - 2xx: body `{"id": string | integer, "url": optional string}` → delivery receipt; a body
//!   that is not JSON or has no usable `id` is `internal`;
//! - 429: `rate-limited`, with `Retry-After` seconds when it is an integer;
//! - 400, 401, 403, 404, 410, 422: `rejected("HTTP <status>: <body excerpt ≤ 200 chars>")`;
//! - anything else (5xx, 3xx, 408, 409, …): `unavailable("HTTP <status>: <excerpt>")`;
//! - transport failures: the SDK's `HttpError` conversion (denied egress is `not-configured`,
//!   other failures `unavailable`).
//!
//! # Channel
//!
//! `measure` counts Unicode scalar values. Length rule: `max_length` characters. Capabilities:
//! public replies, private messages, threading, webhooks, edits, deletions. No polling: `poll`
//! answers `invalid-input`.
//!
//! All logic lives in host-free modules ([`parse`], [`signature`], [`handshake`],
//! [`delivery`], [`settings`]) and [`handle`]; only the [`ChannelAdapter`] impl calls the host.

pub mod delivery;
pub mod handshake;
pub mod parse;
pub mod settings;
pub mod signature;

use settings::{Config, Secrets};
use switchboard_sdk::prelude::*;

/// The connector.
pub struct GenericWebhook;

/// Verify and decode one request, given the tenant's config and secrets.
pub fn handle(
    config: &Config,
    secrets: &Secrets,
    request: &HttpRequest,
) -> Result<WebhookOutcome, PluginError> {
    match request.method.to_ascii_uppercase().as_str() {
        "GET" => handshake::answer(&request.url, secrets.verify_token.as_deref()),
        "POST" => {
            let secret = secrets.signing_secret()?;
            config.signature_scheme()?.verify_request(secret, request)?;
            let channel = config.checked_channel_name()?;
            parse::parse_body(&request.body, &channel).map(WebhookOutcome::Events)
        }
        other => Err(PluginError::InvalidInput(format!(
            "method {other} is not supported: POST events, or GET for the verification handshake"
        ))),
    }
}

/// Length of `text` in Unicode scalar values.
pub fn measure_chars(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// The channel's self-description for a given config.
pub fn channel_info(config: &Config) -> ChannelInfo {
    let max = config.max_length();
    ChannelInfo {
        channel: config.channel_name(),
        display_name: "Generic webhook".into(),
        length_rule: LengthRule {
            max,
            unit: LengthUnit::Characters,
            description: format!("{max} characters (Unicode scalar values)"),
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
        "generic-webhook",
        env!("CARGO_PKG_VERSION"),
        "Signed JSON events from any system over a webhook; replies POSTed as signed JSON to a \
         configured URL",
    )
    .egress("*");
    let info = settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k));
    info.secret(settings::SIGNING_SECRET)
        .secret(settings::VERIFY_TOKEN)
}

fn host_config() -> Config {
    Config::from_lookup(config::get)
}

fn host_secrets() -> Secrets {
    Secrets::from_lookup(config::secret)
}

impl ChannelAdapter for GenericWebhook {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info(&host_config())
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(&host_config(), &host_secrets(), &request)
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let config = host_config();
        let url = config.deliver_url()?;
        let scheme = config.signature_scheme()?;
        let secrets = host_secrets();
        let request = delivery::build_request(&url, &scheme, secrets.signing_secret()?, &reply);
        let response = http::send(&request)?;
        delivery::map_response(&response)
    }

    fn measure(text: String) -> u32 {
        measure_chars(&text)
    }
}

switchboard_sdk::export_connector!(GenericWebhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn secrets(signing: Option<&str>, verify: Option<&str>) -> Secrets {
        Secrets {
            signing_secret: signing.map(String::from),
            verify_token: verify.map(String::from),
        }
    }

    fn post(headers: Vec<(String, String)>, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/webhook".into(),
            headers,
            body: body.to_vec(),
        }
    }

    #[test]
    fn signed_post_is_verified_then_parsed() {
        let cfg = config(&[("channel", "forms")]);
        let body = br#"{"id": "1", "author": {"id": "u"}, "text": "hello"}"#;
        let signature = cfg.signature_scheme().unwrap().sign("k", body);
        let req = post(vec![("X-Signature-256".into(), signature)], body);
        let WebhookOutcome::Events(events) = handle(&cfg, &secrets(Some("k"), None), &req).unwrap()
        else {
            panic!("expected events")
        };
        let [Event::Message(m)] = events.as_slice() else {
            panic!("expected one message")
        };
        assert_eq!(m.channel, "forms");
        assert_eq!(m.text, "hello");
    }

    #[test]
    fn verification_comes_before_parsing() {
        let cfg = config(&[]);
        // Not JSON and not signed: the signature failure wins, nothing is parsed.
        let req = post(vec![], b"not json");
        assert!(matches!(
            handle(&cfg, &secrets(Some("k"), None), &req),
            Err(PluginError::Unauthorized(m)) if m.contains("`x-signature-256` is missing")
        ));
        // Signed but not JSON: invalid input.
        let sig = cfg.signature_scheme().unwrap().sign("k", b"not json");
        let req = post(vec![("x-signature-256".into(), sig)], b"not json");
        assert!(matches!(
            handle(&cfg, &secrets(Some("k"), None), &req),
            Err(PluginError::InvalidInput(_))
        ));
        // No secret: not configured, whatever the request.
        assert!(matches!(
            handle(&cfg, &secrets(None, None), &req),
            Err(PluginError::NotConfigured(m)) if m.starts_with("secret `signing-secret` is not set")
        ));
    }

    #[test]
    fn get_goes_to_the_handshake_and_other_methods_are_refused() {
        let cfg = config(&[]);
        let mut req = post(vec![], b"");
        req.method = "GET".into();
        req.url = "https://sb.example/hook?challenge=abc&verify_token=t0k".into();
        let WebhookOutcome::Challenge(resp) =
            handle(&cfg, &secrets(None, Some("t0k")), &req).unwrap()
        else {
            panic!("expected a challenge")
        };
        assert_eq!(resp.body, b"abc");
        req.method = "PUT".into();
        assert!(
            matches!(handle(&cfg, &secrets(Some("k"), Some("t0k")), &req), Err(PluginError::InvalidInput(m)) if m.contains("PUT"))
        );
    }

    #[test]
    fn measure_counts_scalar_values() {
        assert_eq!(measure_chars(""), 0);
        assert_eq!(measure_chars("hello"), 5);
        assert_eq!(measure_chars("héllo 🧳"), 7);
        // A family emoji is several scalar values joined by ZWJ.
        assert_eq!(measure_chars("👨‍👩‍👧"), 5);
    }

    #[test]
    fn channel_and_plugin_info() {
        let info = channel_info(&config(&[("max_length", "280")]));
        assert_eq!(info.channel, "webhook");
        assert_eq!(info.display_name, "Generic webhook");
        assert_eq!(info.length_rule.max, 280);
        assert_eq!(info.length_rule.unit, LengthUnit::Characters);
        assert_eq!(
            info.length_rule.description,
            "280 characters (Unicode scalar values)"
        );
        assert_eq!(info.capabilities.len(), 6);
        assert!(info.capabilities.contains(&Capability::Deletions));
        assert!(!info.capabilities.contains(&Capability::Polling));

        let p = plugin_info();
        assert_eq!(p.name, "generic-webhook");
        assert_eq!(p.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(p.egress, vec!["*".to_string()]);
        assert_eq!(p.config_keys.len(), 6);
        assert!(p.config_keys.contains(&"deliver_url".to_string()));
        assert_eq!(
            p.secrets,
            vec!["signing-secret".to_string(), "verify-token".to_string()]
        );
    }
}
