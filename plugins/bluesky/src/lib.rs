//! Bluesky (AT Protocol) connector: mentions, replies, quotes, keyword/hashtag search and
//! direct messages are **polled** through the brand account's session; replies are posted as
//! `app.bsky.feed.post` records, private replies as chat messages.
//!
//! Plugin name `bluesky-connector`, channel `bluesky`. Egress is declared as `bsky.social` (the
//! default PDS/entryway) **and `*`**, because the PDS is the tenant's choice (`api_base`): a
//! self-hosted PDS is realistic, and the tenant's egress allow-list is the real fence.
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_base` | `https://bsky.social` | base URL of the brand account's PDS (or the bsky.social entryway); every XRPC call goes to `<api_base>/xrpc/<nsid>` |
//! | `handle` | — (required to poll and deliver) | the brand account's handle (`acme.bsky.social`) or DID: the login identifier; posts by it are skipped |
//! | `keywords` | none | keywords to listen to with `app.bsky.feed.searchPosts` (JSON array, or comma/newline separated) |
//! | `hashtags` | none | hashtags to listen to (`#` optional), searched as `#tag` |
//! | `direct_messages` | `true` | whether `poll` reads chat.bsky direct messages |
//!
//! Values may be given bare or as JSON strings. Secrets:
//!
//! - `app-password` (required to poll and deliver): an app password of the brand account
//!   (tick "allow access to direct messages" when creating it if DMs are used).
//! - `relay-secret` (optional): see verification below.
//!
//! # Session
//!
//! See [`session`]: `com.atproto.server.createSession` with `handle` + `app-password`; the
//! session (access and refresh JWTs, DID, the tokens' `exp`) is cached in the plugin's
//! key-value store under `session` and reused until a minute before the access token expires,
//! then renewed with `com.atproto.server.refreshSession`, or a new login when the refresh token
//! is refused. A call answered `401` or `400 ExpiredToken`/`InvalidToken` renews once and is
//! sent again; if that is refused too, the answer is `rejected`. A refused login is `rejected`
//! (naming the XRPC error, never the password). A token lacking a scope ("Bad token scope") is
//! not renewed.
//!
//! # Polling (`poll`)
//!
//! See [`poll`]: `app.bsky.notification.listNotifications` (mentions and quotes → origin
//! `mention`, replies → `comment`; likes, reposts, follows and other reasons are skipped with
//! a reason), `app.bsky.feed.searchPosts?sort=latest` per keyword and hashtag (origin
//! `listening`), and DMs through `chat.bsky.convo.listConvos` / `getMessages` with header
//! `atproto-proxy: did:web:api.bsky.chat#bsky_chat` (origin `direct-message`, private). The
//! poll cursor is a JSON object of per-source positions (newest `indexedAt`/`sentAt` seen, plus
//! a backlog page cursor when more than [`poll::MAX_PAGES`] pages arrived), so nothing is
//! skipped. A chat refusal (e.g. an app password without DM access) becomes a skipped event
//! and does not stop the rest of the poll. Answers: 429 / `RateLimitExceeded` →
//! `rate-limited` (from `Retry-After` or the `ratelimit-reset` epoch seconds), other 4xx →
//! `rejected`, 5xx and network failures → `unavailable`.
//!
//! # Normalisation
//!
//! See [`post`]: `external-id` is the post's `at://` URI (chat messages:
//! `chat:<convo id>:<message id>`); `conversation-key` is the thread root (`reply.root.uri`,
//! else the post's own URI; chats: `chat:<convo id>`); `in-reply-to` is `reply.parent.uri`;
//! the author is the DID, with handle and display name when the payload has them; the text
//! has its facets resolved by UTF-8 **byte** offsets ([`facets`]): a link facet's displayed
//! (possibly shortened) text is replaced by its full URI, mention facets keep the handle and
//! record the DID (`extra` `mentions` as a JSON object handle → DID), tags are listed;
//! out-of-range, reversed, overlapping or non-character-boundary facets are ignored (counted
//! in `ignored-facets`), never a panic. `langs[0]` is the language; `createdAt` is
//! `received-at` (a datetime without offset is read as UTC; else `indexedAt`); embeds become
//! attachments (images with alt text and, in post views, their CDN URL; video; external link
//! cards as link attachments with the card title); a quoted post is `extra` `quote-uri`.
//! `extra` also holds `uri`, `cid`, `root-uri`, `root-cid`, `parent-cid` (what a threaded reply
//! needs), `author-did`, `post-url` (bsky.app), `links`, `tags`, `langs`, and
//! `notification-reason`, `listening-term`, `convo-id`, `message-id` by source. Posts by the
//! brand's own account are skipped. Deletions: a Jetstream `delete` commit and a chat
//! `deletedMessageView` give action `deleted`; a Jetstream `update` gives `edited`.
//!
//! # Webhooks (`handle-webhook`)
//!
//! Bluesky has no push webhooks for accounts and no platform signature. `handle-webhook`
//! takes **captured or relayed** JSON (a leading UTF-8 BOM is ignored): a post view, a
//! `{uri, cid, value}` record (`com.atproto.repo.getRecord`, or `listRecords` `records`), a
//! `listNotifications`, `searchPosts`/`getPosts`, feed or `getPostThread` answer, a Jetstream
//! commit event, or a JSON array of these. Lexicon schema documents are skipped with a
//! reason; a bare `app.bsky.feed.post` record (no URI, CID or author) is skipped saying how to
//! send it instead; any other JSON is `invalid-input`, and a body that is not JSON is
//! `invalid-input` with the parser's line and column. Only `POST` is accepted.
//!
//! **Verification**: when secret `relay-secret` is set, the request must carry
//! `Authorization: Bearer <relay-secret>` or `X-Signature-256: sha256=<hex HMAC-SHA256 of the
//! raw body>` (checked before parsing, constant-time; otherwise `unauthorized`). Without it,
//! unsigned bodies are accepted: only expose the endpoint to your own relay or the CLI.
//!
//! # Outbound (`deliver`)
//!
//! See [`delivery`]. Public: `com.atproto.repo.createRecord` with
//! `{"repo": <session DID>, "collection": "app.bsky.feed.post", "record": {"text",
//! "createdAt", "reply": {"root": {uri, cid}, "parent": {uri, cid}}, "facets"}}`; the parent
//! is `in-reply-to` (or `extra` `uri`) with `extra` `cid`, the root `extra` `root-uri` /
//! `root-cid`; a missing cid is looked up with `app.bsky.feed.getPosts` (a post that no longer
//! exists is `rejected`); no parent at all posts a top-level statement. Facets are built for
//! URLs, `#tags` and `@handles` whose DID is known (the recipient and the answered post's
//! mentions), with UTF-8 byte offsets. Private: `chat.bsky.convo.getConvoForMembers` (unless
//! `extra` has `convo-id`) then `chat.bsky.convo.sendMessage`, through the chat proxy. Text
//! over 300 graphemes / 3000 bytes (chat: 1000 graphemes) is `invalid-input` before anything
//! is sent. Receipts: the new post's `at://` URI with its bsky.app URL, or
//! `chat:<convo>:<message id>`; they are kept in the key-value store by idempotency key, so a
//! retried delivery that already succeeded is not posted twice. Errors map as for polling.
//!
//! # Length
//!
//! [`length::measure`]: extended grapheme clusters (a family emoji, a flag or a letter with
//! combining marks is one); the limit is 300.

pub mod delivery;
pub mod facets;
pub mod length;
pub mod poll;
pub mod post;
pub mod relay;
pub mod session;
pub mod settings;
pub mod xrpc;

use post::Own;
use session::{Api, Store};
use settings::{Config, Secrets};
use switchboard_sdk::prelude::*;

/// The connector.
pub struct Bluesky;

/// The answer to a request that is not a POST.
pub const POLLED: &str = "Bluesky has no push webhooks for accounts: it is polled (config \
                          `handle`, secret `app-password`). handle-webhook takes a POSTed \
                          captured or relayed JSON payload";

/// Parse a JSON body, ignoring a leading UTF-8 BOM.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, PluginError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body)
        .map_err(|e| PluginError::InvalidInput(format!("the body is not valid JSON: {e}")))
}

/// Verify and decode one request.
pub fn handle(
    config: &Config,
    secrets: &Secrets,
    request: &HttpRequest,
    own_did: Option<String>,
) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {}: {POLLED}",
            request.method
        )));
    }
    relay::verify(secrets.relay_secret.as_deref(), request)?;
    let value = parse_json(&request.body)?;
    let own = Own {
        did: own_did,
        handle: config.handle(),
    };
    post::decode_captured(&value, &own).map(WebhookOutcome::Events)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: post::CHANNEL.into(),
        display_name: "Bluesky".into(),
        length_rule: LengthRule {
            max: length::MAX_GRAPHEMES,
            unit: LengthUnit::Graphemes,
            description: "300 graphemes (extended grapheme clusters: an emoji sequence or a \
                          letter with combining marks counts 1) and at most 3000 UTF-8 bytes"
                .into(),
        },
        capabilities: vec![
            Capability::PublicReplies,
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Polling,
            Capability::Listening,
            Capability::Deletions,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "bluesky-connector",
        env!("CARGO_PKG_VERSION"),
        "Bluesky (AT Protocol): polls mentions, replies, quotes, keyword/hashtag search and DMs; \
         posts threaded replies and chat messages",
    )
    .egress("bsky.social")
    .egress("*");
    settings::CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(settings::APP_PASSWORD)
        .secret(settings::RELAY_SECRET)
}

/// The plugin's key-value store.
struct KvStore;

impl Store for KvStore {
    fn get(&self, key: &str) -> Option<String> {
        kv::get_string(key)
    }
    fn set(&mut self, key: &str, value: &str) {
        // Best effort: without it the next call logs in again or may repeat a delivery.
        let _ = kv::set(key, value.as_bytes());
    }
    fn delete(&mut self, key: &str) {
        kv::delete(key)
    }
}

fn host_config() -> Config {
    Config::from_lookup(config::get)
}

fn host_secrets() -> Secrets {
    Secrets::from_lookup(config::secret)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Run `f` with an authenticated client over the host's HTTP and key-value store.
fn with_api<T>(
    f: impl FnOnce(&Config, &mut Api) -> Result<T, PluginError>,
) -> Result<T, PluginError> {
    let config = host_config();
    let base = config.api_base()?;
    let handle = config.require_handle()?;
    let password = host_secrets().require_app_password()?;
    let mut send = |r: &http::Request| http::send(r);
    let mut store = KvStore;
    let mut api = Api::new(base, handle, password, &mut send, &mut store, now_ms());
    f(&config, &mut api)
}

impl ChannelAdapter for Bluesky {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(
            &host_config(),
            &host_secrets(),
            &request,
            session::cached_did(&KvStore),
        )
    }

    fn poll(cursor: Option<String>) -> Result<PollBatch, PluginError> {
        with_api(|config, api| poll::run(config, cursor.as_deref(), api))
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        with_api(|_, api| delivery::deliver(api, &reply))
    }

    fn measure(text: String) -> u32 {
        length::measure(&text)
    }
}

switchboard_sdk::export_connector!(Bluesky);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::config;

    fn post(headers: Vec<(String, String)>, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/bluesky".into(),
            headers,
            body: body.to_vec(),
        }
    }

    const VIEW: &[u8] = br#"{"uri": "at://did:plc:casey/app.bsky.feed.post/3k", "cid": "bafy",
        "author": {"did": "did:plc:casey", "handle": "casey.bsky.social"},
        "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-05-01T10:00:00Z"}}"#;

    #[test]
    fn captured_bodies_are_decoded_with_a_bom_and_bad_json_names_its_position() {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(VIEW);
        let WebhookOutcome::Events(events) = handle(
            &config(&[]),
            &Secrets::default(),
            &post(vec![], &body),
            None,
        )
        .unwrap() else {
            panic!()
        };
        assert!(
            matches!(&events[..], [Event::Message(m)] if m.text == "hi" && m.channel == "bluesky")
        );
        let err = handle(
            &config(&[]),
            &Secrets::default(),
            &post(vec![], b"{\"text\": // comment\n}"),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(m) if m.contains("line 1 column 10")));
        let mut get = post(vec![], b"");
        get.method = "GET".into();
        assert!(matches!(
            handle(&config(&[]), &Secrets::default(), &get, None),
            Err(PluginError::InvalidInput(m)) if m.contains("polled")
        ));
    }

    #[test]
    fn a_relay_secret_is_checked_before_parsing() {
        let secrets = Secrets {
            app_password: None,
            relay_secret: Some("relay".into()),
        };
        assert!(matches!(
            handle(&config(&[]), &secrets, &post(vec![], b"not json"), None),
            Err(PluginError::Unauthorized(_))
        ));
        let sig = relay::sign("relay", VIEW);
        assert!(
            handle(
                &config(&[]),
                &secrets,
                &post(vec![("x-signature-256".into(), sig)], VIEW),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn the_brand_own_posts_are_skipped_by_did_or_handle() {
        let by_handle = handle(
            &config(&[("handle", "Casey.bsky.social")]),
            &Secrets::default(),
            &post(vec![], VIEW),
            None,
        )
        .unwrap();
        let by_did = handle(
            &config(&[]),
            &Secrets::default(),
            &post(vec![], VIEW),
            Some("did:plc:casey".into()),
        )
        .unwrap();
        for outcome in [by_handle, by_did] {
            assert!(
                matches!(outcome, WebhookOutcome::Events(e) if matches!(&e[..], [Event::Skipped(s)] if s.reason.contains("own account")))
            );
        }
    }

    #[test]
    fn channel_and_plugin_info() {
        let info = channel_info();
        assert_eq!(info.channel, "bluesky");
        assert_eq!(info.length_rule.max, 300);
        assert_eq!(info.length_rule.unit, LengthUnit::Graphemes);
        assert!(info.capabilities.contains(&Capability::Polling));
        assert!(info.capabilities.contains(&Capability::Listening));
        assert!(!info.capabilities.contains(&Capability::Webhooks));
        let p = plugin_info();
        assert_eq!(p.name, "bluesky-connector");
        assert_eq!(p.egress, vec!["bsky.social".to_string(), "*".to_string()]);
        assert_eq!(p.config_keys.len(), 5);
        assert_eq!(
            p.secrets,
            vec!["app-password".to_string(), "relay-secret".to_string()]
        );
    }
}
