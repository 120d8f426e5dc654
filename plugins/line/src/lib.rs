//! LINE connector: LINE Messaging API webhooks in, reply or push text messages out.
//!
//! Plugin name `line-connector`; channel `line`; display name "LINE". Egress: `api.line.me`
//! (tests point `api_base` at a loopback mock).
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://api.line.me` | base URL of the Messaging API (`http(s)://`, no trailing path needed) |
//! | `reply_window_seconds` | `50` | how long after the event's timestamp the reply token is still used; after that replies are pushed. LINE asks that a reply token be used within about one minute; 50 s leaves a margin |
//!
//! # Secrets
//!
//! - `channel-secret` (required for `handle-webhook`): the key of `x-line-signature`.
//! - `channel-access-token` (required for `deliver`): the Bearer token of the Messaging API.
//!
//! # Inbound (`handle-webhook`)
//!
//! **Verification** before anything is parsed: `x-line-signature` must be
//! base64(HMAC-SHA256(`channel-secret`, raw body bytes)), compared in constant time
//! (`hmac`'s `verify_slice`). Missing/garbled/mismatching → `unauthorized`; a missing secret →
//! `not-configured`. Only `POST` is accepted (other methods → `invalid-input`).
//!
//! **Body**: `{"destination": "<bot user id>", "events": [...]}`; a leading UTF-8 BOM is
//! ignored; a body that is not JSON is `invalid-input` naming the line and column; an object
//! without an `events` array is `invalid-input`. `{"events": []}` (LINE's "Verify" button in the
//! console) yields no events. Each event:
//!
//! - `message` → one message (action `created`):
//!   - `external-id` = `message.id`. Not `webhookEventId`: both survive redelivery
//!     (`deliveryContext.isRedelivery: true` keeps them), but only the message id is what
//!     `unsend` and `quotedMessageId` refer to, so deletions and replies line up with it.
//!   - `conversation-key` = the chat: `source.userId` for 1:1 chats, `source.groupId` or
//!     `source.roomId` for groups and rooms (LINE's id prefixes `U`/`C`/`R` keep them apart).
//!   - `in-reply-to` = `message.quotedMessageId`.
//!   - author id = `source.userId`; LINE webhooks carry no names, so handle and display name are
//!     empty. A group/room member without a user id becomes `unknown-member-of:<chat id>` with
//!     extra `line-author-unknown=true` (all such members of one chat share that pseudo-identity).
//!   - visibility: `private` in 1:1 chats; `public` in groups and rooms, whose other members see
//!     it (as the Telegram connector says of groups). A private answer to a group message is
//!     pushed to the member alone, never to the group. Origin: `direct-message` in 1:1 chats; in groups and rooms `mention` when
//!     the account itself is mentioned (`isSelf`, or the mentionee's `userId` equals
//!     `destination`), else `other`.
//!   - `received-at` = the event's `timestamp` (epoch ms).
//!   - text messages: `text` as sent. Mentions are already in it as `@name`; LINE emoji appear as
//!     their alternative text (e.g. `(love)`) and are kept so. Mention `index`/`length` are read
//!     as UTF-16 code units (how the Messaging API counts text) and only trusted when they land
//!     on an `@`, falling back to Unicode scalar values, else ignored; they fill extra
//!     `line-mentions` (the `@names`) and `line-mentioned-ids` (user ids, `all` for @All).
//!   - image/video/audio → an attachment (URL: the external `originalContentUrl`, or LINE's
//!     content endpoint `https://api-data.line.me/v2/bot/message/<id>/content`, which needs the
//!     access token); file → a `file` attachment named `fileName`; location → a `location`
//!     attachment `geo:<lat>,<lon>` (7 decimals) described by title and address; sticker → a `sticker`
//!     attachment described by package/sticker id and keywords; the text of a message sticker
//!     becomes the text. The text of media messages is empty. Other message types → skipped.
//! - `messageEdited` (2026, groups only) → the same message with action `edited` and extra
//!   `line-edited=true`; LINE may deliver several edits out of order, each with its own timestamp.
//! - `unsend` → a message with action `deleted`, `external-id` = `unsend.messageId`, empty text.
//! - follow, unfollow, join, leave, memberJoined, memberLeft, postback, beacon, accountLink,
//!   videoPlayComplete, things, membership, module events, and unknown types → skipped, each with
//!   its reason. A malformed event (missing `source`, `timestamp`, `message.id`…) is skipped with
//!   its index and the field; the rest of the batch goes through.
//!
//! `extra` on messages: `line-to` (chat id to push to), `line-source-type` (`user`/`group`/
//! `room`), `line-event-timestamp`, `line-mode` (`active`/`standby`), `line-reply-token` (only in
//! active mode), `line-quote-token`, `line-webhook-event-id`, `line-redelivery`,
//! `line-message-type`, `line-destination`, `line-emoji-count`, `line-mentions`,
//! `line-mentioned-ids`, `line-author-unknown`.
//!
//! # Outbound (`deliver`)
//!
//! A text message `{"type": "text", "text": …}` (with `quoteToken` when extra
//! `line-quote-token` is set, so the answer quotes the customer's message), Bearer
//! `channel-access-token`, 15 s timeout:
//!
//! - **reply** — `POST {api_base}/v2/bot/message/reply {"replyToken", "messages"}` when extra
//!   `line-reply-token` is set and the plugin's clock (WASI wall clock; the contract gives
//!   `deliver` no call context) says the event is less than `reply_window_seconds` old. Reply
//!   messages are free of LINE's monthly message quota, which is why they are preferred.
//! - **push** — otherwise (no token, standby mode, clock unknown, token too old, or LINE refusing
//!   the reply token with 400 "Invalid reply token"): `POST {api_base}/v2/bot/message/push
//!   {"to": <extra line-to, else the conversation key>, "messages"}` with `X-Line-Retry-Key`: the
//!   idempotency key if it is a UUID, else a name-based (v5) UUID derived from it, so a retried
//!   push is executed at most once by LINE. LINE accepts the retry key only on push.
//!
//! Reply has no retry key. A reply attempt is remembered in the kv store before it is sent; if a
//! retry of the same idempotency key then finds the reply token refused, the earlier attempt may
//! have been delivered, so the plugin answers `rejected` instead of pushing a possible duplicate.
//! A delivered receipt is remembered per idempotency key and returned again on repeat calls.
//!
//! Answers: 2xx → receipt with `sentMessages[0].id`; 409 on push (retry key already accepted) →
//! success (receipt from `sentMessages`, else `request:<x-line-accepted-request-id>`, else
//! `retry-key:<uuid>`); 429 → `rate-limited` (Retry-After seconds if given); 401 → `rejected`
//! (access token); 403 → `rejected`; other 400, 404, 410, 413, 422 → `rejected` with LINE's
//! message and details; 5xx and anything else → `unavailable`; transport failures →
//! `unavailable` (denied egress → `not-configured`).
//!
//! # Channel
//!
//! Length rule: 5000 UTF-16 code units per text message, which is how LINE counts (🍎 is 2,
//! most CJK is 1, a CJK Extension B ideograph is 2). The contract has no UTF-16 unit, so the rule
//! says `weighted`: `measure` returns UTF-16 code units. (LINE emoji placeholders are counted by
//! LINE with an undisclosed alternative text; plain text replies contain none.) Capabilities:
//! private messages, threading (quotes), webhooks, deletions. No public replies, no polling (`poll`
//! answers `invalid-input`), no edits (LINE has none), no listening.

pub mod delivery;
pub mod parse;
pub mod signature;
pub mod text;

use delivery::{Outcome, Route};
use switchboard_sdk::prelude::*;

/// The connector.
pub struct Line;

/// Secret: the channel secret that signs webhooks.
pub const CHANNEL_SECRET: &str = "channel-secret";
/// Secret: the channel access token for the Messaging API.
pub const ACCESS_TOKEN: &str = "channel-access-token";
/// Every config key the plugin reads.
pub const CONFIG_KEYS: [&str; 2] = ["api_base", "reply_window_seconds"];
/// LINE's limit on one text message, in UTF-16 code units.
pub const MAX_TEXT_UNITS: u32 = 5000;

/// The tenant's config, read once per call.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub api_base: Option<String>,
    pub reply_window_seconds: Option<String>,
}

fn clean(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let v = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::String(s)) => s,
        _ => raw,
    };
    let v = v.trim().to_string();
    (!v.is_empty()).then_some(v)
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            api_base: clean(get("api_base")),
            reply_window_seconds: clean(get("reply_window_seconds")),
        }
    }

    pub fn api_base(&self) -> Result<String, PluginError> {
        let base = self
            .api_base
            .clone()
            .unwrap_or_else(|| delivery::DEFAULT_API_BASE.to_string());
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http(s) URL, got `{base}`"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    pub fn reply_window_seconds(&self) -> i64 {
        self.reply_window_seconds
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .unwrap_or(delivery::DEFAULT_REPLY_WINDOW_SECONDS)
    }
}

/// Verify and decode one request.
pub fn handle(secret: Option<&str>, request: &HttpRequest) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {} is not supported: LINE delivers webhooks with POST",
            request.method
        )));
    }
    let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!(
            "secret `{CHANNEL_SECRET}` is not set for this plugin"
        ))
    })?;
    signature::verify(secret, request)?;
    parse::parse_body(&request.body).map(WebhookOutcome::Events)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: parse::CHANNEL.into(),
        display_name: "LINE".into(),
        length_rule: LengthRule {
            max: MAX_TEXT_UNITS,
            unit: LengthUnit::Weighted,
            description: "5000 UTF-16 code units per text message (emoji and other characters \
                          outside the BMP count 2)"
                .into(),
        },
        capabilities: vec![
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Webhooks,
            Capability::Deletions,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "line-connector",
        env!("CARGO_PKG_VERSION"),
        "LINE Messaging API: signed webhooks in, reply/push text messages out",
    )
    .egress("api.line.me");
    CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(CHANNEL_SECRET)
        .secret(ACCESS_TOKEN)
}

/// The kv key remembering a delivered idempotency key.
fn delivered_key(idempotency_key: &str) -> String {
    format!("delivered/{}", delivery::retry_key(idempotency_key))
}

/// The kv key remembering that a reply-token attempt was made for an idempotency key.
fn reply_attempt_key(idempotency_key: &str) -> String {
    format!("reply-attempt/{}", delivery::retry_key(idempotency_key))
}

fn now_ms() -> Option<i64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(d.as_millis()).ok()
}

fn encode_receipt(r: &DeliveryReceipt) -> Vec<u8> {
    r.external_id.as_bytes().to_vec()
}

fn send(
    api_base: &str,
    token: &str,
    route: &Route,
    reply: &OutboundReply,
) -> Result<Outcome, PluginError> {
    let request = delivery::build_request(api_base, token, route, reply);
    let response = http::send(&request)?;
    Ok(delivery::map_response(&response, route, reply))
}

impl ChannelAdapter for Line {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(config::secret(CHANNEL_SECRET).as_deref(), &request)
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let done = delivered_key(&reply.idempotency_key);
        if let Some(id) = kv::get_string(&done).filter(|s| !s.is_empty()) {
            return Ok(DeliveryReceipt {
                external_id: id,
                url: None,
            });
        }
        let cfg = Config::from_lookup(config::get);
        let api_base = cfg.api_base()?;
        let token = config::require_secret(ACCESS_TOKEN)?;
        let route = delivery::route(&reply, now_ms(), cfg.reply_window_seconds())?;
        let outcome = match &route {
            Route::Reply { .. } => {
                let attempt = reply_attempt_key(&reply.idempotency_key);
                let tried_before = kv::get(&attempt).is_some();
                // Best effort: a failed write only weakens the duplicate guard below.
                let _ = kv::set(&attempt, b"1");
                match send(&api_base, &token, &route, &reply)? {
                    Outcome::ReplyTokenRefused if tried_before => {
                        return Err(PluginError::Rejected(
                            "LINE refused the reply token on a retry: an earlier attempt may \
                             already have delivered this reply, so it is not pushed again"
                                .into(),
                        ));
                    }
                    Outcome::ReplyTokenRefused => {
                        let push = Route::Push {
                            to: delivery::push_target(&reply)?,
                        };
                        send(&api_base, &token, &push, &reply)?
                    }
                    other => other,
                }
            }
            Route::Push { .. } => send(&api_base, &token, &route, &reply)?,
        };
        match outcome {
            Outcome::Delivered(receipt) => {
                let _ = kv::set(&done, &encode_receipt(&receipt));
                Ok(receipt)
            }
            Outcome::ReplyTokenRefused => {
                Err(PluginError::Rejected("LINE refused the reply token".into()))
            }
            Outcome::Failed(e) => Err(e),
        }
    }

    fn measure(text: String) -> u32 {
        text::utf16_len(&text)
    }
}

switchboard_sdk::export_connector!(Line);

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &[u8], secret: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/line".into(),
            headers: vec![("x-line-signature".into(), signature::sign(secret, body))],
            body: body.to_vec(),
        }
    }

    #[test]
    fn verification_comes_first_then_parsing() {
        let req = post(b"not json", "s3cret");
        assert!(
            matches!(handle(Some("s3cret"), &req), Err(PluginError::InvalidInput(m)) if m.contains("line 1 column"))
        );
        assert!(matches!(
            handle(Some("other"), &req),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(
            matches!(handle(None, &req), Err(PluginError::NotConfigured(m)) if m.contains("channel-secret"))
        );
        let mut get = req.clone();
        get.method = "GET".into();
        assert!(
            matches!(handle(Some("s3cret"), &get), Err(PluginError::InvalidInput(m)) if m.contains("GET"))
        );
        let verify = post(br#"{"destination":"U1","events":[]}"#, "s3cret");
        assert!(
            matches!(handle(Some("s3cret"), &verify), Ok(WebhookOutcome::Events(e)) if e.is_empty())
        );
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg = Config::from_lookup(|_| None);
        assert_eq!(cfg.api_base().unwrap(), "https://api.line.me");
        assert_eq!(cfg.reply_window_seconds(), 50);
        let cfg = Config::from_lookup(|k| match k {
            "api_base" => Some("\"http://127.0.0.1:9/\"".into()),
            "reply_window_seconds" => Some("0".into()),
            _ => None,
        });
        assert_eq!(cfg.api_base().unwrap(), "http://127.0.0.1:9");
        assert_eq!(cfg.reply_window_seconds(), 0);
        let cfg = Config::from_lookup(|k| (k == "api_base").then(|| "ftp://x".into()));
        assert!(matches!(cfg.api_base(), Err(PluginError::NotConfigured(_))));
    }

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info();
        assert_eq!(c.channel, "line");
        assert_eq!(c.length_rule.max, 5000);
        assert_eq!(c.length_rule.unit, LengthUnit::Weighted);
        assert!(!c.capabilities.contains(&Capability::PublicReplies));
        assert!(c.capabilities.contains(&Capability::Deletions));
        let p = plugin_info();
        assert_eq!(p.name, "line-connector");
        assert_eq!(p.egress, vec!["api.line.me"]);
        assert_eq!(p.secrets, vec!["channel-secret", "channel-access-token"]);
        assert_eq!(p.config_keys, vec!["api_base", "reply_window_seconds"]);
    }
}
