//! X (Twitter) connector: Account Activity webhooks in, mentions / keyword listening / DMs
//! polled over API v2, public replies and direct messages out over API v2.
//!
//! Plugin name `x-connector`, channel `x`, egress `api.x.com`.
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://api.x.com` | base URL of the X API (tests point it at a mock) |
//! | `user_id` | — | the brand account's numeric user id. Required by `poll` (mentions timeline); in webhooks a delivery's own `for_user_id` takes precedence. The account's own posts and DMs are skipped |
//! | `listen_keywords` | none | keywords/hashtags for listening (JSON array, or comma/newline separated); polled through recent search as `(k1 OR "k 2") -is:retweet` |
//! | `listen_query` | — | a raw recent-search query instead of `listen_keywords` |
//! | `poll_direct_messages` | `false` | also poll `GET /2/dm_events` (needs the `dm.read` scope); use it when the app has no Account Activity subscription |
//!
//! # Secrets
//!
//! - `consumer-secret`: the X app's API key secret; keys the CRC answer and the webhook
//!   signatures.
//! - `access-token`: the brand account's **OAuth 2.0 user-context** access token, sent as
//!   `Authorization: Bearer` (scopes `tweet.read tweet.write users.read dm.read dm.write`).
//!   OAuth 1.0a user-context request signing is **not implemented**; the token is not refreshed
//!   by the connector (a 401 is `rejected`: store a fresh token).
//!
//! # Webhooks (`handle-webhook`, Account Activity API)
//!
//! - `GET ?crc_token=T` → `200 {"response_token": "sha256=<base64 HMAC-SHA256(consumer_secret, T)>"}`.
//! - `POST`: the header `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer_secret,
//!   raw body)>` is checked in constant time before anything else (missing or wrong →
//!   `unauthorized`); then the body (a UTF-8 BOM is tolerated; not JSON → `invalid-input` with
//!   line and column) is decoded by [`activity::decode`]. One delivery may carry many events:
//!   - `tweet_create_events` → public messages (mentions, replies, quotes; origin `mention`
//!     when the post mentions, replies to or quotes the account, else `listening`); the
//!     account's own posts and retweets are skipped;
//!   - `direct_message_events` (`message_create`) → private messages, origin `direct-message`,
//!     handles from the delivery's `users` map; the account's own sent DMs are skipped;
//!   - `tweet_delete_events` → `deleted` messages with the original id;
//!   - likes, follows, blocks, mutes, typing indicators, read receipts, permission revocations
//!     and unknown `*_events` → skipped with a reason, one per item.
//!   - A captured v1.1 status (or an array of them) is normalised too; X API response bodies
//!     (v2 `data`/`meta`, v1.1 `{"event": …}` DM responses) are skipped with a reason.
//!
//! # Polling (`poll`, API v2)
//!
//! See [`poll`]: `GET /2/users/:user_id/mentions` (origin `mention`), `GET
//! /2/tweets/search/recent` for the listening query (origin `listening`, or `mention` if the
//! post addresses the account) with `since_id`, and optionally `GET /2/dm_events`, following
//! `next_token` up to 5 pages each. The cursor is a small JSON object of newest ids. A post
//! found by both is reported once; events come oldest first. A tweet without `author_id` is
//! skipped (it cannot be attributed).
//!
//! # Normalisation
//!
//! See [`tweet`]. `external-id` is the tweet id (`dm:<event id>` for DMs; an edited post keeps
//! its first version's id and is `edited`); `conversation-key` is `conversation_id` (v2), else
//! the remembered conversation of the parent (kept in the plugin's key-value store as
//! `conv:<tweet id>`, including for the brand's own replies), else the parent, else the tweet id;
//! DMs use `dm:<dm_conversation_id>` (`dm:<lower id>-<higher id>` for one-to-one).
//! `in-reply-to` is `in_reply_to_status_id_str` / `referenced_tweets[replied_to]`. Text:
//! `extended_tweet.full_text` (or `note_tweet.text`) when present; t.co links replaced by
//! `expanded_url`; links to attached media removed (the media become attachments: photo →
//! image, video/GIF → video with the best MP4 variant, alt text as description); HTML
//! entities X escapes (`&amp;`, `&lt;`, `&gt;`) unescaped; @mentions kept. `received-at` is
//! `timestamp_ms` / `created_timestamp` / `created_at`, else the time encoded in the snowflake
//! id. `language` is `lang` unless `und`. `extra`: `tweet-id` (the id to reply to),
//! `tweet-url`, `in-reply-to-user-id`, `quoted-tweet-id`; for DMs `recipient-id` (whom to
//! answer), `dm-conversation-id`, `dm-event-id`.
//!
//! # Outbound (`deliver`)
//!
//! See [`delivery`]. Public: `POST /2/tweets` `{"text": …, "reply": {"in_reply_to_tweet_id":
//! <extra tweet-id or in-reply-to>}}`. Private: `POST /2/dm_conversations/with/<recipient-id>/
//! messages` `{"text": …}` (a group conversation: `POST /2/dm_conversations/<id>/messages`).
//! X has no idempotency key, so the receipt of each idempotency key is kept in the key-value
//! store (`sent:<key>`) and a retry of a delivered reply returns it without posting twice.
//! Answers: 2xx → receipt (tweet id and URL, or `dm:<dm_event_id>`); 429 → `rate-limited`
//! (`retry-after`, else `x-rate-limit-reset` minus the response's `date`, else none); 401 →
//! `rejected` (token); 403 (duplicate content, DM not permitted, …) and 400/404/409/410/422 →
//! `rejected` with X's `detail`; 5xx and network failures → `unavailable`.
//!
//! # Length
//!
//! [`length::measure`]: twitter-text v3 weighted length, 280 max: NFC first, code points in
//! U+0000–U+10FF and three General Punctuation ranges count 1, others 2 (CJK, most emoji), an
//! emoji sequence counts 2, every URL 23. The `twitter-text` crate (0.3.1) was not used: it
//! depends on `cxx`/`link-cplusplus` and needs a C++ compiler for wasm32-wasip2, which fails
//! to build here.

pub mod activity;
pub mod delivery;
pub mod length;
pub mod poll;
pub mod settings;
pub mod signature;
pub mod tweet;

use settings::Config;
use switchboard_sdk::prelude::*;
use tweet::Threads;

/// The connector.
pub struct X;

/// Verify and decode one request.
pub fn handle(
    config: &Config,
    consumer_secret: Option<&str>,
    request: &HttpRequest,
    threads: &mut dyn Threads,
    now_ms: i64,
) -> Result<WebhookOutcome, PluginError> {
    match request.method.to_ascii_uppercase().as_str() {
        "GET" => signature::crc_answer(&request.url, consumer_secret),
        "POST" => {
            signature::verify(request, consumer_secret)?;
            let payload = tweet::parse_json(&request.body)?;
            Ok(WebhookOutcome::Events(activity::decode(
                &payload,
                config.user_id.as_deref(),
                now_ms,
                threads,
            )))
        }
        other => Err(PluginError::InvalidInput(format!(
            "method {other} is not used by X webhooks (GET for the CRC, POST for events)"
        ))),
    }
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: tweet::CHANNEL.into(),
        display_name: "X".into(),
        length_rule: LengthRule {
            max: length::MAX_WEIGHTED_LENGTH,
            unit: LengthUnit::Weighted,
            description: "280 weighted characters (twitter-text v3): Latin and most European \
                          scripts count 1, CJK and emoji 2 (an emoji sequence counts once), \
                          every URL 23, after NFC normalisation"
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
        "x-connector",
        env!("CARGO_PKG_VERSION"),
        "X (Twitter): Account Activity webhooks, polled mentions, keyword listening and DMs; \
         replies and DMs over API v2",
    )
    .egress("api.x.com");
    settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(settings::CONSUMER_SECRET)
        .secret(settings::ACCESS_TOKEN)
}

/// Conversation memory in the plugin's key-value store.
struct KvThreads;

impl Threads for KvThreads {
    fn conversation_of(&self, tweet_id: &str) -> Option<String> {
        kv::get_string(&format!("conv:{tweet_id}"))
    }
    fn remember(&mut self, tweet_id: &str, conversation_key: &str) {
        // Best effort: without it, a deep reply is keyed by its parent instead of the root.
        let _ = kv::set(&format!("conv:{tweet_id}"), conversation_key.as_bytes());
    }
}

fn host_config() -> Config {
    Config::from_lookup(config::get)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn access_token() -> Result<String, PluginError> {
    config::secret(settings::ACCESS_TOKEN)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            PluginError::NotConfigured(format!(
                "secret `{}` is not set for this plugin: the brand account's OAuth 2.0 user \
                 access token",
                settings::ACCESS_TOKEN
            ))
        })
}

impl ChannelAdapter for X {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let secret = config::secret(settings::CONSUMER_SECRET);
        handle(
            &host_config(),
            secret.as_deref(),
            &request,
            &mut KvThreads,
            now_ms(),
        )
    }

    fn poll(cursor: Option<String>) -> Result<PollBatch, PluginError> {
        let config = host_config();
        config.require_user_id()?;
        let token = access_token()?;
        let mut fetch = |url: &str| http::send(&poll::page_request(url, &token));
        poll::run(
            &config,
            cursor.as_deref(),
            &mut fetch,
            &mut KvThreads,
            now_ms(),
        )
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let sent_key = format!("sent:{}", reply.idempotency_key);
        if let Some(previous) = kv::get_string(&sent_key)
            && let Some((id, url)) = previous.split_once('\n')
        {
            return Ok(DeliveryReceipt {
                external_id: id.to_string(),
                url: (!url.is_empty()).then(|| url.to_string()),
            });
        }
        let base = host_config().api_base()?;
        let token = access_token()?;
        let (request, kind) = delivery::build_request(&base, &token, &reply)?;
        let response = http::send(&request)?;
        let receipt = delivery::map_response(&response, &kind)?;
        let record = format!(
            "{}\n{}",
            receipt.external_id,
            receipt.url.as_deref().unwrap_or("")
        );
        let _ = kv::set(&sent_key, record.as_bytes());
        if kind == delivery::Kind::Tweet {
            // A customer answering the brand's reply stays in the same conversation.
            KvThreads.remember(&receipt.external_id, &reply.conversation_key);
        }
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        length::measure(&text)
    }
}

switchboard_sdk::export_connector!(X);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn verification_comes_before_parsing() {
        let c = Config::default();
        let body = b"\xEF\xBB\xBF{\"for_user_id\": \"1\", \"favorite_events\": [{}]}";
        let sig = signature::sign("cs", body);
        let WebhookOutcome::Events(e) = handle(
            &c,
            Some("cs"),
            &request(
                "POST",
                "https://h/",
                &[(signature::SIGNATURE_HEADER, &sig)],
                body,
            ),
            &mut HashMap::new(),
            0,
        )
        .unwrap() else {
            panic!("expected events")
        };
        assert!(
            matches!(&e[..], [Event::Skipped(s)] if s.event_type.as_deref() == Some("favorite_events"))
        );
        // Unsigned garbage is unauthorized, not a parse error.
        assert!(matches!(
            handle(
                &c,
                Some("cs"),
                &request("POST", "https://h/", &[], b"{"),
                &mut HashMap::new(),
                0
            ),
            Err(PluginError::Unauthorized(_))
        ));
        let bad = b"{\"a\": // c\n}";
        let sig = signature::sign("cs", bad);
        assert!(
            matches!(handle(&c, Some("cs"), &request("POST", "https://h/", &[(signature::SIGNATURE_HEADER, &sig)], bad), &mut HashMap::new(), 0), Err(PluginError::InvalidInput(m)) if m.contains("line 1 column 7"))
        );
        assert!(matches!(
            handle(
                &c,
                Some("cs"),
                &request("PUT", "https://h/", &[], b""),
                &mut HashMap::new(),
                0
            ),
            Err(PluginError::InvalidInput(_))
        ));
    }

    #[test]
    fn infos() {
        let info = channel_info();
        assert_eq!(info.channel, "x");
        assert_eq!(info.length_rule.max, 280);
        assert!(info.capabilities.contains(&Capability::Webhooks));
        let p = plugin_info();
        assert_eq!(p.egress, vec!["api.x.com".to_string()]);
        assert_eq!(
            p.secrets,
            vec!["consumer-secret".to_string(), "access-token".to_string()]
        );
        assert!(p.config_keys.contains(&"user_id".to_string()));
    }
}
