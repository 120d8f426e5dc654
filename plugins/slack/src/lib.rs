//! Slack connector: the Events API in, `chat.postMessage` out.
//!
//! Plugin name `slack-connector`; channel name `slack`. Egress: `slack.com` (the Web API at
//! `https://slack.com/api`) only.
//!
//! # Config and secrets
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://slack.com/api` | Web API base URL (tests point it at a mock) |
//! | `max_skew_seconds` | `300` | replay window for `X-Slack-Request-Timestamp`; a value that is not a whole number is `not-configured` |
//!
//! Secrets: `signing-secret` (required by `handle-webhook`) and `bot-token` (`xoxb-…`,
//! required by `deliver`; scopes `chat:write`, and `im:write` for private replies).
//!
//! # Inbound (`handle-webhook`)
//!
//! Only `POST` is accepted. **Verification** comes first, over the raw body: Slack's v0
//! signing ([`signature`]): `X-Slack-Signature` must be `v0=` + hex HMAC-SHA256 of
//! `v0:{X-Slack-Request-Timestamp}:{body}` with `signing-secret` (constant-time), and the
//! timestamp within `max_skew_seconds` of the clock (`std::time::SystemTime`, which the host
//! provides). Then the body ([`parse`]):
//!
//! - `url_verification` → a challenge answer `200 {"challenge": "…"}`;
//! - `event_callback` with `message` (plain, `file_share`, `thread_broadcast`, `me_message`:
//!   created; `message_changed`: edited, from the inner message; `message_deleted`: deleted)
//!   or `app_mention` (origin mention) → one message; bots, Slackbot and the app's own bot
//!   user are skipped ("messages from bots are not customer messages"), other subtypes and
//!   event types are skipped naming them;
//! - other envelopes (`app_rate_limited`, empty or missing `type`, Web API responses) →
//!   skipped with the reason; a body that is not a JSON object → `invalid-input` (with the
//!   parser's line and column); a leading UTF-8 BOM is ignored.
//!
//! Message fields: external id `<channel>:<ts>` (the message's `ts` is the same in every
//! redelivery and in both the `message` and the `app_mention` event Slack sends for one
//! message, whereas the envelope's `event_id` differs between those two); conversation key
//! `<channel>:<thread_ts or ts>`; in-reply-to `<channel>:<thread_ts>` when the message is a
//! reply in a thread (the same form as external ids, so it names the thread's root message);
//! author id the Slack user id (handle and display name only when the event carries
//! `user_profile`: events give ids, and looking names up would need a Web API call per
//! message); text with Slack markup resolved ([`markup`]); visibility private and origin
//! direct-message for `im`/`mpim` channels, else public with origin mention for
//! `app_mention` or a message that mentions the app's bot user, otherwise `other`;
//! received-at from `ts` (edits: `edited.ts`; deletions: the event's `event_ts`); files and
//! linked legacy attachments as attachments; extras `channel`, `channel-type`, `team`,
//! `thread-ts`, `event-id`, and `retry-num`/`retry-reason` from `X-Slack-Retry-Num` /
//! `X-Slack-Retry-Reason` on redeliveries.
//!
//! # Outbound (`deliver`)
//!
//! See [`delivery`]: `POST {api_base}/chat.postMessage` with `Authorization: Bearer
//! {bot-token}` and `{channel, text, thread_ts}`, threaded under the root of the customer's
//! thread; a private reply to a channel message first opens a DM with `conversations.open`.
//! The text is escaped (`&`, `<`, `>`). A delivered reply's receipt is remembered in the
//! plugin's key-value store under its idempotency key, so a repeated delivery of the same
//! reply returns the first receipt instead of posting twice.
//!
//! # Channel
//!
//! `measure` counts Unicode scalar values of the text as it is sent (after escaping `&`, `<`,
//! `>`), against Slack's limit of 40,000 characters for `text` (Slack truncates longer text).
//! Capabilities: public replies, private messages, threading, webhooks, edits, deletions. No
//! polling (Slack pushes events) and no listening (the app only hears channels it is in).

pub mod delivery;
pub mod markup;
pub mod parse;
pub mod settings;
pub mod signature;

use settings::{Config, Secrets};
use switchboard_sdk::prelude::*;

/// Slack's limit for a message's `text`, in characters.
pub const MAX_TEXT_CHARS: u32 = 40_000;
/// Prefix of the key-value entries that remember delivered replies.
const SENT_PREFIX: &str = "sent/";
/// Longest key the host's key-value store accepts, in bytes.
const MAX_KV_KEY: usize = 512;

/// The connector.
pub struct SlackConnector;

/// Verify and decode one request, with the clock at `now` (Unix seconds).
pub fn handle(
    config: &Config,
    secrets: &Secrets,
    request: &HttpRequest,
    now: i64,
) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {} is not supported: Slack POSTs Events API requests",
            request.method
        )));
    }
    let secret = secrets.signing_secret()?;
    let max_skew = config.max_skew_seconds()?;
    signature::verify(
        secret,
        request.header(signature::TIMESTAMP_HEADER),
        request.header(signature::SIGNATURE_HEADER),
        &request.body,
        now,
        max_skew,
    )?;
    let delivery = parse::Delivery {
        retry_num: request
            .header("x-slack-retry-num")
            .map(|v| v.trim().to_string()),
        retry_reason: request
            .header("x-slack-retry-reason")
            .map(|v| v.trim().to_string()),
    };
    parse::parse_body(&request.body, request.header("content-type"), &delivery)
}

/// Length of `text` as Slack receives it: Unicode scalar values after escaping.
pub fn measure_text(text: &str) -> u32 {
    let extra: usize = text
        .chars()
        .map(|c| match c {
            '&' => 4, // &amp;
            '<' | '>' => 3,
            _ => 0,
        })
        .sum();
    u32::try_from(text.chars().count() + extra).unwrap_or(u32::MAX)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: parse::CHANNEL.into(),
        display_name: "Slack".into(),
        length_rule: LengthRule {
            max: MAX_TEXT_CHARS,
            unit: LengthUnit::Characters,
            description: "40,000 characters of message `text` (Slack truncates longer text); \
                          counted as Unicode scalar values after escaping & < > as entities"
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
        "slack-connector",
        env!("CARGO_PKG_VERSION"),
        "Slack Events API messages and app mentions in (v0-signed); replies out with \
         chat.postMessage",
    )
    .egress("slack.com");
    let info = settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k));
    info.secret(settings::SIGNING_SECRET)
        .secret(settings::BOT_TOKEN)
}

/// The key-value key remembering the receipt of the reply with `idempotency_key`.
pub fn sent_key(idempotency_key: &str) -> Option<String> {
    let key = format!("{SENT_PREFIX}{idempotency_key}");
    (!idempotency_key.is_empty() && key.len() <= MAX_KV_KEY).then_some(key)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn send(method: &str, request: &http::Request) -> Result<serde_json::Value, PluginError> {
    let response = http::send(request)?;
    delivery::check(method, &response)
}

impl ChannelAdapter for SlackConnector {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(
            &Config::from_lookup(config::get),
            &Secrets::from_lookup(config::secret),
            &request,
            now_seconds(),
        )
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let key = sent_key(&reply.idempotency_key);
        if let Some(external_id) = key.as_deref().and_then(kv::get_string) {
            return Ok(DeliveryReceipt {
                external_id,
                url: None,
            });
        }
        let api_base = Config::from_lookup(config::get).api_base()?;
        let secrets = Secrets::from_lookup(config::secret);
        let token = secrets.bot_token()?;
        let (channel, thread_ts) = match delivery::target(&reply)? {
            delivery::Target::Channel { channel, thread_ts } => (channel, thread_ts),
            delivery::Target::DirectMessage { user } => {
                let opened = send(
                    "conversations.open",
                    &delivery::open_dm_request(&api_base, token, &user),
                )?;
                (delivery::opened_channel(&opened)?, None)
            }
        };
        let answer = send(
            "chat.postMessage",
            &delivery::post_message_request(
                &api_base,
                token,
                &channel,
                thread_ts.as_deref(),
                &reply.text,
            ),
        )?;
        let receipt = delivery::receipt(&answer, &channel)?;
        if let Some(key) = key {
            // Best effort: failing to remember must not turn a posted reply into an error.
            if kv::set(&key, receipt.external_id.as_bytes()).is_err() {
                log::warn("could not remember a delivered reply; a retry may post it again");
            }
        }
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        measure_text(&text)
    }
}

switchboard_sdk::export_connector!(SlackConnector);

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn secrets(signing: Option<&str>) -> Secrets {
        Secrets {
            signing_secret: signing.map(String::from),
            bot_token: None,
        }
    }

    fn signed(body: &[u8], ts: i64, extra: &[(&str, &str)]) -> HttpRequest {
        let ts = ts.to_string();
        let mut headers = vec![
            ("x-slack-request-timestamp".to_string(), ts.clone()),
            (
                "x-slack-signature".to_string(),
                signature::sign("s3cret", &ts, body),
            ),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/slack".into(),
            headers,
            body: body.to_vec(),
        }
    }

    #[test]
    fn signed_challenge_is_answered_and_unsigned_refused() {
        let body = br#"{"type":"url_verification","challenge":"abc"}"#;
        let cfg = Config::default();
        let outcome = handle(&cfg, &secrets(Some("s3cret")), &signed(body, NOW, &[]), NOW).unwrap();
        let WebhookOutcome::Challenge(r) = outcome else {
            panic!("expected a challenge")
        };
        assert_eq!(r.body, br#"{"challenge":"abc"}"#);
        // Signed with another secret: refused before the challenge is looked at.
        assert!(matches!(
            handle(&cfg, &secrets(Some("other")), &signed(body, NOW, &[]), NOW),
            Err(PluginError::Unauthorized(_))
        ));
        // Ten minutes old: refused with the default window, accepted with a wider one.
        let old = signed(body, NOW - 600, &[]);
        assert!(matches!(
            handle(&cfg, &secrets(Some("s3cret")), &old, NOW),
            Err(PluginError::Unauthorized(m)) if m.contains("replay")
        ));
        let wide = Config {
            max_skew_seconds: Some("900".into()),
            ..Config::default()
        };
        assert!(handle(&wide, &secrets(Some("s3cret")), &old, NOW).is_ok());
        assert!(matches!(
            handle(&cfg, &secrets(None), &old, NOW),
            Err(PluginError::NotConfigured(m)) if m.contains("signing-secret")
        ));
        let mut get = signed(body, NOW, &[]);
        get.method = "GET".into();
        assert!(matches!(
            handle(&cfg, &secrets(Some("s3cret")), &get, NOW),
            Err(PluginError::InvalidInput(m)) if m.contains("GET")
        ));
    }

    #[test]
    fn retry_headers_reach_the_message() {
        let body = serde_json::json!({"type": "event_callback", "team_id": "T1", "event": {
            "type": "message", "channel": "C1", "channel_type": "channel", "user": "U1",
            "text": "hello", "ts": "1700000000.000100"}})
        .to_string();
        let req = signed(
            body.as_bytes(),
            NOW,
            &[
                ("x-slack-retry-num", "1"),
                ("x-slack-retry-reason", "http_timeout"),
            ],
        );
        let WebhookOutcome::Events(events) =
            handle(&Config::default(), &secrets(Some("s3cret")), &req, NOW).unwrap()
        else {
            panic!("expected events")
        };
        let [Event::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert!(m.extra.contains(&("retry-num".into(), "1".into())));
        assert!(
            m.extra
                .contains(&("retry-reason".into(), "http_timeout".into()))
        );
        assert_eq!(m.external_id, "C1:1700000000.000100");
    }

    #[test]
    fn measure_counts_characters_as_sent() {
        assert_eq!(measure_text(""), 0);
        assert_eq!(measure_text("hello"), 5);
        // CJK: one character each.
        assert_eq!(measure_text("您好，世界"), 5);
        // A family emoji is five scalar values (three people joined by two ZWJ).
        assert_eq!(measure_text("👨‍👩‍👧"), 5);
        // A flag is two regional indicators.
        assert_eq!(measure_text("🇵🇹"), 2);
        // URLs count in full (no shortening on Slack).
        assert_eq!(measure_text("https://example.com/help"), 24);
        // & < > are sent as entities.
        assert_eq!(measure_text("R&D <3"), 6 + 4 + 3);
        assert_eq!(measure_text(&"a".repeat(40_000)), MAX_TEXT_CHARS);
    }

    #[test]
    fn channel_and_plugin_info() {
        let info = channel_info();
        assert_eq!(info.channel, "slack");
        assert_eq!(info.length_rule.max, 40_000);
        assert_eq!(info.length_rule.unit, LengthUnit::Characters);
        assert!(info.length_rule.description.contains("40,000 characters"));
        assert!(!info.capabilities.contains(&Capability::Polling));
        assert!(!info.capabilities.contains(&Capability::Listening));
        assert_eq!(info.capabilities.len(), 6);
        let p = plugin_info();
        assert_eq!(p.name, "slack-connector");
        assert_eq!(p.egress, vec!["slack.com"]);
        assert_eq!(p.config_keys, vec!["api_base", "max_skew_seconds"]);
        assert_eq!(p.secrets, vec!["signing-secret", "bot-token"]);
    }

    #[test]
    fn sent_keys_fit_the_store() {
        assert_eq!(sent_key("reply-1").as_deref(), Some("sent/reply-1"));
        assert_eq!(sent_key(""), None);
        assert_eq!(sent_key(&"k".repeat(600)), None);
    }
}
