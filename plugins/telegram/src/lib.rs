//! Telegram Bot API connector: updates in through a webhook (or `getUpdates` polling), replies
//! out through `sendMessage`.
//!
//! Plugin name `telegram-connector`; channel `telegram`; egress `api.telegram.org`, plus
//! `localhost` and `127.0.0.1` for a self-hosted Bot API server (`api_base`), which a tenant
//! must allow explicitly, private addresses included.
//!
//! # Config and secrets
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://api.telegram.org` | Bot API base URL (a local Bot API server, or a test mock) |
//! | `bot_username` | — | the bot's username (with or without `@`); needed to tell mentions of the bot from other group messages |
//!
//! Secrets: `webhook-secret-token` (the `secret_token` given to setWebhook; required by
//! `handle-webhook`) and `bot-token` (from @BotFather; required by `poll` and `deliver`). The
//! token is part of every method URL, so no error this plugin returns contains it.
//!
//! # Inbound
//!
//! **Verification** ([`verify`]): the `X-Telegram-Bot-Api-Secret-Token` header must equal the
//! secret exactly (case-sensitive, no trimming, constant-time). A missing secret, or one that
//! setWebhook would refuse (not 1–256 of `A-Za-z0-9_-`), is `not-configured`; a missing,
//! repeated or different header is `unauthorized`. Telegram signs nothing else. Only `POST` is
//! accepted.
//!
//! **Body** ([`update`]): one `Update` (a leading UTF-8 BOM is ignored; JSON errors are
//! `invalid-input` with line and column). `message`, `edited_message`, `channel_post`,
//! `edited_channel_post`, `business_message` and `edited_business_message` become messages
//! (edits with action `edited` and `edit_date`); `deleted_business_messages` becomes one
//! `deleted` message per id. Every other update type is skipped with its type and a reason, as
//! are service messages (members joining, topics edited, …) that carry no text, caption or
//! media. A Bot API method response or a bare Message object posted as a body is skipped with a
//! reason.
//!
//! Fields: external id `<chat.id>:<message_id>` (message ids are unique per chat only);
//! conversation key the chat id, or `<chat.id>:<message_thread_id>` for messages in a forum
//! topic (`is_topic_message`); in-reply-to `<chat.id>:<id>` of `reply_to_message` (except the
//! topic-creation message Telegram puts there for every topic message); author from
//! `sender_chat` when a message is sent on behalf of a chat (channel posts, anonymous admins),
//! else `from` (id, `@username`, first + last name); visibility private for private chats,
//! public otherwise; origin direct-message in private chats, mention when the text mentions
//! `@bot_username` (a mention entity, `/command@bot`, or the word) or replies to the bot,
//! listening for other group and supergroup messages, other for channel posts; text from `text`
//! or `caption` with `text_link` entities resolved to `label (url)` (offsets count UTF-16 code
//! units); a poll or checklist becomes its question/title and items. Attachments: photo (the
//! largest size), video, animation, video note, audio, voice, document, sticker, location /
//! venue (`geo:` URL), contact. File attachments have no URL: Telegram only gives a download
//! URL through a getFile call, and that URL embeds the bot token; the description carries the
//! `file_id` instead. `received_at` is `date` (or `edit_date` for edits) in ms. `language` is
//! not set (`from.language_code` is the sender's app language). Extra: `chat-id`, `chat-type`,
//! `message-thread-id` (topics), `business-connection-id` (business chats).
//!
//! **Polling** ([`api::build_get_updates`]): `getUpdates` with `offset` = the cursor (last
//! update_id + 1), `timeout` 0 and `limit` 100; the next cursor is the highest update_id + 1.
//! Telegram answers 409 while a webhook is set: that is `not-configured`.
//!
//! # Outbound
//!
//! `POST {api_base}/bot<token>/sendMessage` with JSON `{chat_id, text, reply_parameters:
//! {message_id, allow_sending_without_reply: true}, message_thread_id, business_connection_id}`
//! (see [`api::send_message_body`]), no `parse_mode`. Answers: ok → receipt
//! `<chat_id>:<message_id>` (and a t.me link for public chats with a username); 429 →
//! `rate-limited(parameters.retry_after)`; 401 (token) and other 4xx (bot blocked, chat not
//! found, group migrated) → `rejected`; 5xx and transport failures → `unavailable`. A delivered
//! idempotency key is remembered in the kv store, and a retry with the same key returns the
//! first receipt without posting again.
//!
//! # Length
//!
//! 4096 characters of message text after entity parsing, counted as Unicode code points.

pub mod api;
pub mod update;
pub mod verify;

use switchboard_sdk::prelude::*;

/// The channel name stamped on messages.
pub const CHANNEL: &str = "telegram";
/// Telegram's limit on one message's text.
pub const MAX_LENGTH: u32 = 4096;
/// Config keys this plugin reads.
pub const CONFIG_KEYS: [&str; 2] = ["api_base", "bot_username"];

/// The connector.
pub struct Telegram;

/// Config values, read once per call.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub api_base: Option<String>,
    pub bot_username: Option<String>,
}

/// A config value; JSON strings (`"x"`) are unquoted, blank counts as absent.
fn clean(value: Option<String>) -> Option<String> {
    let v = value?;
    let v = match serde_json::from_str::<String>(&v) {
        Ok(s) => s,
        Err(_) => v,
    };
    let v = v.trim().to_string();
    (!v.is_empty()).then_some(v)
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            api_base: clean(get("api_base")),
            bot_username: clean(get("bot_username")),
        }
    }

    /// The Bot API base URL.
    pub fn api_base(&self) -> Result<String, PluginError> {
        let base = self
            .api_base
            .clone()
            .unwrap_or_else(|| api::DEFAULT_API_BASE.to_string());
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http:// or https:// URL, got `{base}`"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// The bot's username without `@`.
    pub fn bot_username(&self) -> Option<&str> {
        self.bot_username
            .as_deref()
            .map(|u| u.trim_start_matches('@'))
            .filter(|u| !u.is_empty())
    }

    pub fn options(&self) -> update::Options<'_> {
        update::Options {
            channel: CHANNEL,
            bot_username: self.bot_username(),
        }
    }
}

/// Verify and decode one webhook request.
pub fn handle(
    config: &Config,
    secret: Option<&str>,
    request: &HttpRequest,
) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {} is not supported: Telegram POSTs updates",
            request.method
        )));
    }
    verify::verify(secret, request)?;
    update::parse_body(&request.body, config.options()).map(WebhookOutcome::Events)
}

/// Length in Unicode code points.
pub fn measure_chars(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: CHANNEL.into(),
        display_name: "Telegram".into(),
        length_rule: LengthRule {
            max: MAX_LENGTH,
            unit: LengthUnit::Characters,
            description: "4096 characters of message text after entity parsing, counted here as \
                          Unicode code points (Telegram measures entity offsets in UTF-16 code \
                          units, where an emoji outside the BMP counts 2)"
                .into(),
        },
        capabilities: vec![
            Capability::PublicReplies,
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Polling,
            Capability::Webhooks,
            Capability::Edits,
            Capability::Deletions,
            Capability::Listening,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "telegram-connector",
        env!("CARGO_PKG_VERSION"),
        "Telegram Bot API: updates by webhook (secret-token header) or getUpdates, replies by \
         sendMessage",
    )
    .egress("api.telegram.org")
    // A self-hosted Bot API server (telegram-bot-api, documented by Telegram) listens on
    // localhost by default; the tenant must still allow it and allow private addresses.
    .egress("localhost")
    .egress("127.0.0.1");
    CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(verify::SECRET_NAME)
        .secret(api::TOKEN_SECRET)
}

fn host_config() -> Config {
    Config::from_lookup(config::get)
}

/// The kv key remembering a delivered idempotency key.
fn delivered_key(idempotency_key: &str) -> String {
    format!("delivered/{idempotency_key}")
}

impl ChannelAdapter for Telegram {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let secret = config::secret(verify::SECRET_NAME);
        handle(&host_config(), secret.as_deref(), &request)
    }

    fn poll(cursor: Option<String>) -> Result<PollBatch, PluginError> {
        let config = host_config();
        let token = api::token(config::secret(api::TOKEN_SECRET))?;
        let request = api::build_get_updates(&config.api_base()?, &token, cursor.as_deref())?;
        let response = http::send(&request).map_err(|e| api::transport_error(e, &token))?;
        api::map_updates_response(&response, &token, config.options())
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let key = delivered_key(&reply.idempotency_key);
        if let Some(receipt) = kv::get(&key).and_then(|b| api::decode_receipt(&b)) {
            return Ok(receipt);
        }
        let config = host_config();
        let token = api::token(config::secret(api::TOKEN_SECRET))?;
        let request = api::build_send(&config.api_base()?, &token, &reply)?;
        let response = http::send(&request).map_err(|e| api::transport_error(e, &token))?;
        let receipt = api::map_send_response(&response, &token)?;
        // Best effort: a failed write only loses the double-post protection for this key.
        let _ = kv::set(&key, &api::encode_receipt(&receipt));
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        measure_chars(&text)
    }
}

switchboard_sdk::export_connector!(Telegram);

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

    fn post(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/telegram".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn verification_comes_before_parsing() {
        let cfg = config(&[]);
        let err = handle(&cfg, Some("s3cret"), &post(&[], b"not json")).unwrap_err();
        assert!(matches!(err, PluginError::Unauthorized(_)));
        let err = handle(&cfg, None, &post(&[(verify::HEADER, "s3cret")], b"{}")).unwrap_err();
        assert!(matches!(err, PluginError::NotConfigured(_)));
        let err = handle(
            &cfg,
            Some("s3cret"),
            &post(&[(verify::HEADER, "s3cret")], b"not json"),
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(m) if m.contains("line 1 column")));
        let mut get = post(&[(verify::HEADER, "s3cret")], b"");
        get.method = "GET".into();
        assert!(matches!(
            handle(&cfg, Some("s3cret"), &get),
            Err(PluginError::InvalidInput(m)) if m.contains("GET")
        ));
    }

    #[test]
    fn verified_update_is_parsed_with_the_configured_bot() {
        let cfg = config(&[("bot_username", "\"@AcmeCareBot\"")]);
        assert_eq!(cfg.bot_username(), Some("AcmeCareBot"));
        let body = br#"{"update_id": 5, "message": {"message_id": 3, "date": 1,
            "chat": {"id": -100, "type": "group", "title": "G"},
            "from": {"id": 9, "first_name": "Ana"}, "text": "@acmecarebot hi"}}"#;
        let WebhookOutcome::Events(events) = handle(
            &cfg,
            Some("s3cret"),
            &post(&[(verify::HEADER, "s3cret")], body),
        )
        .unwrap() else {
            panic!("expected events")
        };
        let [Event::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.origin, Origin::Mention);
        assert_eq!(m.external_id, "-100:3");
    }

    #[test]
    fn config_values() {
        assert_eq!(config(&[]).api_base().unwrap(), "https://api.telegram.org");
        assert_eq!(
            config(&[("api_base", " http://127.0.0.1:8081/ ")])
                .api_base()
                .unwrap(),
            "http://127.0.0.1:8081"
        );
        assert!(matches!(
            config(&[("api_base", "ftp://x")]).api_base(),
            Err(PluginError::NotConfigured(m)) if m.contains("ftp://x")
        ));
        assert_eq!(config(&[("bot_username", "@")]).bot_username(), None);
        assert_eq!(config(&[("bot_username", "  ")]).bot_username(), None);
    }

    #[test]
    fn measure_counts_code_points() {
        assert_eq!(measure_chars(""), 0);
        assert_eq!(measure_chars("hello"), 5);
        assert_eq!(measure_chars("😡"), 1);
        assert_eq!(measure_chars("👨‍👩‍👧"), 5);
        assert_eq!(measure_chars("東京駅"), 3);
        assert_eq!(measure_chars("https://acme.example/help"), 25);
    }

    #[test]
    fn channel_and_plugin_info() {
        let c = channel_info();
        assert_eq!(c.channel, "telegram");
        assert_eq!(c.length_rule.max, 4096);
        assert_eq!(c.length_rule.unit, LengthUnit::Characters);
        assert!(c.length_rule.description.contains("code points"));
        assert!(c.capabilities.contains(&Capability::Polling));
        assert!(c.capabilities.contains(&Capability::Listening));
        let p = plugin_info();
        assert_eq!(p.name, "telegram-connector");
        assert_eq!(p.egress, vec!["api.telegram.org", "localhost", "127.0.0.1"]);
        assert_eq!(
            p.config_keys,
            vec!["api_base".to_string(), "bot_username".to_string()]
        );
        assert_eq!(
            p.secrets,
            vec!["webhook-secret-token".to_string(), "bot-token".to_string()]
        );
    }
}
