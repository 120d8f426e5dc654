//! Mastodon connector: mentions, direct messages and hashtag/keyword listening are **polled**
//! from the brand's instance; replies are posted as statuses.
//!
//! Plugin name `mastodon-connector`, channel `mastodon`. Egress is declared as `*` because the
//! instance is the tenant's choice: the tenant's egress allow-list is the real fence.
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `instance` | — (required) | base URL of the brand's instance, e.g. `https://mastodon.social`; every API call goes there (`api_base` is accepted as an alias) |
//! | `account` | — | the brand's own `acct` (`acmecare`, `@acmecare` or `acmecare@<instance host>`): its own statuses are skipped, and a captured status mentioning it is a mention |
//! | `hashtags` | none | hashtags to listen to (JSON array, or comma/newline separated; `#` optional) |
//! | `keywords` | none | keywords to listen to through the instance's full-text search |
//! | `reply_visibility` | `public` | visibility of public replies: `public` or `unlisted` (private replies are always `direct`) |
//! | `decode_captured` | `false` | let `handle-webhook` decode captured Notification/Status JSON (for the CLI and replays); these bodies are unsigned, so leave it off on an endpoint the internet can reach |
//!
//! Secret `access-token`: the brand account's OAuth Bearer token (scopes
//! `read:notifications read:statuses read:search write:statuses`).
//!
//! # Polling (`poll`)
//!
//! See [`poll`]: one page (≤ 40) per source per poll — mentions from
//! `/api/v1/notifications?types[]=mention`, each hashtag from `/api/v1/timelines/tag/<tag>`, each
//! keyword from `/api/v2/search` — read with `min_id` from a JSON cursor of per-source
//! positions, returned oldest first. More than a page's worth is read over the following polls.
//! Statuses by the brand's own account are skipped; a status found by two sources is reported
//! once (as a mention).
//!
//! # Normalisation
//!
//! See [`status`]: `external-id` is the status `uri` (the same across instances; if it is missing
//! or too long, `<instance host>:<id>`); `conversation-key` is `conversation_id` if present, else
//! the remembered conversation of the parent (kept in the plugin's key-value store as
//! `conv:<status id>`, including for the brand's own replies), else the parent `in_reply_to_id`,
//! else the status id; `in-reply-to` is `in_reply_to_id`; the author is
//! `<account id>@<instance host>`, handle `@<acct>`, display name; the text is the HTML content
//! resolved by [`html::to_text`] with a content warning in front as `CW: …`; `direct` visibility
//! is private (origin direct-message), any other public; `created_at` is `received-at`;
//! `edited_at` makes the action `edited`; media become attachments (image, gifv/video → video,
//! audio, unknown → file) and a preview card a link attachment. `extra` holds `status-id` (the
//! instance-local id replies need), `instance`, `mastodon-visibility`, `status-url`,
//! `in-reply-to-account-id`, `mentions`, `notification-id` or `listening-source`, `sensitive`,
//! `edited-at`, `poll-*` and `quote-*`.
//!
//! # Webhooks (`handle-webhook`)
//!
//! Mastodon has no webhooks for ordinary accounts (only admin webhooks, which this connector
//! does not use), so this connector is polled. A body that is not JSON is `invalid-input` with
//! the parser's line and column; otherwise, unless `decode_captured` is on, the answer is
//! `invalid-input` "Mastodon is polled; configure polling". With it on, a captured Notification,
//! Status, a JSON array of them, or search results are normalised as above (Account and
//! MediaAttachment entities and admin-webhook envelopes are skipped with a reason).
//!
//! # Outbound (`deliver`)
//!
//! `POST <instance>/api/v1/statuses` with `Authorization: Bearer`, `Idempotency-Key: <key>` and
//! a JSON body `{"status": "@acct text", "in_reply_to_id": <status-id>, "visibility": …}`; see
//! [`delivery`]. The text starts with the customer's `@acct` unless it already does. Answers: 2xx
//! → receipt with the new status' `uri` (else id) and `url`; 429 → `rate-limited` from
//! `Retry-After` or `X-RateLimit-Reset`; 400/401/403/404/410/422 → `rejected`; others →
//! `unavailable`.
//!
//! # Length
//!
//! [`length::measure`]: 500 Unicode scalar values, every URL counting 23 and a remote mention
//! `@user@domain` counting as `@user`.

pub mod delivery;
pub mod html;
pub mod length;
pub mod poll;
pub mod settings;
pub mod status;

use settings::Config;
use status::Threads;
use switchboard_sdk::prelude::*;

/// The connector.
pub struct Mastodon;

/// The answer to anything but a captured entity.
pub const POLLED: &str = "Mastodon is polled; configure polling (config `instance`, secret \
                          `access-token`). To decode a captured Notification or Status JSON \
                          instead, set config `decode_captured` to true";

/// Decode one request, given the tenant's config.
pub fn handle(
    config: &Config,
    request: &HttpRequest,
    threads: &mut dyn Threads,
) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(POLLED.into()));
    }
    let value = status::parse_json(&request.body)?;
    if !config.decode_captured {
        return Err(PluginError::InvalidInput(POLLED.into()));
    }
    status::decode_captured(&value, config, threads).map(WebhookOutcome::Events)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: status::CHANNEL.into(),
        display_name: "Mastodon".into(),
        length_rule: LengthRule {
            max: length::MAX_CHARS,
            unit: LengthUnit::Weighted,
            description: "500 characters (Unicode scalar values); every URL counts as 23, and a \
                          mention @user@domain counts as @user"
                .into(),
        },
        capabilities: vec![
            Capability::PublicReplies,
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Polling,
            Capability::Listening,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "mastodon-connector",
        env!("CARGO_PKG_VERSION"),
        "Mastodon: polls mentions, direct messages, hashtags and keywords from the brand's \
         instance; posts replies as statuses",
    )
    .egress("*");
    settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(settings::ACCESS_TOKEN)
}

/// Conversation memory in the plugin's key-value store.
struct KvThreads;

impl Threads for KvThreads {
    fn conversation_of(&self, status_id: &str) -> Option<String> {
        kv::get_string(&format!("conv:{status_id}"))
    }
    fn remember(&mut self, status_id: &str, conversation_key: &str) {
        // Best effort: without it, a deep reply is keyed by its parent instead of the root.
        let _ = kv::set(&format!("conv:{status_id}"), conversation_key.as_bytes());
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
                "secret `{}` is not set for this plugin: the brand account's OAuth Bearer token",
                settings::ACCESS_TOKEN
            ))
        })
}

impl ChannelAdapter for Mastodon {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(&host_config(), &request, &mut KvThreads)
    }

    fn poll(cursor: Option<String>) -> Result<PollBatch, PluginError> {
        let config = host_config();
        config.instance()?;
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
        let config = host_config();
        let base = config.instance()?;
        let visibility = config.reply_visibility()?;
        let token = access_token()?;
        let request = delivery::build_request(&base, &token, &reply, visibility)?;
        let response = http::send(&request)?;
        let posted = delivery::map_response(&response, now_ms())?;
        // A customer answering the brand's reply stays in the same conversation.
        KvThreads.remember(&posted.status_id, &reply.conversation_key);
        Ok(posted.receipt)
    }

    fn measure(text: String) -> u32 {
        length::measure(&text)
    }
}

switchboard_sdk::export_connector!(Mastodon);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn post(body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "http://localhost/".into(),
            headers: vec![],
            body: body.to_vec(),
        }
    }

    #[test]
    fn webhooks_are_refused_unless_decoding_captures() {
        let status = br#"{"id": "1", "uri": "https://m.example/s/1", "content": "<p>hi</p>",
                          "account": {"id": "2", "acct": "casey"}, "visibility": "public"}"#;
        let off = config(&[("instance", "https://m.example")]);
        assert!(
            matches!(handle(&off, &post(status), &mut HashMap::new()), Err(PluginError::InvalidInput(m)) if m.starts_with("Mastodon is polled; configure polling"))
        );
        let mut get = post(b"");
        get.method = "GET".into();
        assert!(
            matches!(handle(&off, &get, &mut HashMap::new()), Err(PluginError::InvalidInput(m)) if m.starts_with("Mastodon is polled"))
        );
        // Not JSON: the parser's position, whatever the setting.
        assert!(
            matches!(handle(&off, &post(b"{\"id\": // x\n}"), &mut HashMap::new()), Err(PluginError::InvalidInput(m)) if m.contains("line 1 column 8"))
        );
        let on = config(&[
            ("instance", "https://m.example"),
            ("decode_captured", "true"),
        ]);
        let WebhookOutcome::Events(events) =
            handle(&on, &post(status), &mut HashMap::new()).unwrap()
        else {
            panic!("expected events")
        };
        assert!(
            matches!(&events[..], [Event::Message(m)] if m.text == "hi" && m.author.id == "2@m.example")
        );
    }

    #[test]
    fn channel_and_plugin_info() {
        let info = channel_info();
        assert_eq!(info.channel, "mastodon");
        assert_eq!(info.length_rule.max, 500);
        assert_eq!(info.length_rule.unit, LengthUnit::Weighted);
        assert!(info.capabilities.contains(&Capability::Polling));
        assert!(info.capabilities.contains(&Capability::Listening));
        assert!(!info.capabilities.contains(&Capability::Webhooks));
        let p = plugin_info();
        assert_eq!(p.name, "mastodon-connector");
        assert_eq!(p.egress, vec!["*".to_string()]);
        assert!(p.config_keys.contains(&"instance".to_string()));
        assert_eq!(p.secrets, vec!["access-token".to_string()]);
    }
}
