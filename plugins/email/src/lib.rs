//! E-mail connector: inbound mail as Postmark, Mailgun or SendGrid deliver it by webhook; replies
//! through the same provider's send API over `wasi:http`, threaded under the customer's message.
//!
//! Plugin name `email-connector`; channel `email`; display name "E-mail". Egress:
//! `api.postmarkapp.com`, `api.mailgun.net`, `api.eu.mailgun.net`, `api.sendgrid.com` (tests
//! point `api_base` at a loopback mock).
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `provider` | — (required) | `postmark`, `mailgun` or `sendgrid`: who receives and sends this tenant's mail |
//! | `from_address` | the first address the customer wrote to (extra `email-to`) | the sender of replies; must be a sender the provider lets this account use |
//! | `domain` | — | Mailgun only: the sending domain (`mg.acme.example`), required for replies |
//! | `message_stream` | `outbound` | Postmark only: the message stream replies go to |
//! | `trusted_authserv_ids` | none | `Authentication-Results` servers whose DKIM/DMARC verdicts mark the sender verified (list) |
//! | `api_base` | the provider's public API | base URL of the send API (EU Mailgun: `https://api.eu.mailgun.net`) |
//!
//! # Secrets
//!
//! - `inbound-username`, `inbound-password`: Postmark and SendGrid — the HTTP Basic-auth
//!   credentials written into the webhook URL at the provider (`https://user:pass@host/…`).
//! - `webhook-signing-key`: Mailgun — the HTTP webhook signing key.
//! - `api-key`: the Postmark server token, Mailgun API key or SendGrid API key, for replies.
//!
//! # Inbound (`handle-webhook`)
//!
//! `POST` only. The request is authenticated first ([`auth`]): Basic auth for Postmark and
//! SendGrid, the HMAC signature (and a 15-minute timestamp window) for Mailgun; failures are
//! `unauthorized`, missing secrets `not-configured`. Mailgun's signature does not cover the
//! body, so each token is bound in the plugin's kv store to the message it first brought: the
//! same token with another message is `unauthorized` (a replay), with the same one it passes
//! (a redelivery, which the host deduplicates). The body is then read by [`providers`]
//! (with `mail-parser` for raw MIME, charsets and multipart) and normalised by [`email`]:
//!
//! - `external-id` = `Message-ID`; `conversation-key` = the thread root (first `References`
//!   id, else `In-Reply-To`, else the message itself); `in-reply-to` = `In-Reply-To`. A reply
//!   with only `In-Reply-To` to a reply the desk sent joins that reply's conversation when the
//!   provider's send receipt is the sent `Message-ID` (Mailgun's is; see [`email::rethread`]).
//! - Author id = the `From` address, lowercased; display name from `From`. Visibility
//!   `private`, origin `direct-message`, `received-at` from `Date` (0, i.e. the host's clock,
//!   when `Date` is missing or more than 15 minutes in the future).
//! - `text` = the customer's new words: the text part (or the HTML part as text, marked with
//!   extra `email-html-only`), with quoted history and signatures removed ([`quote`]). The full
//!   body is kept in extra `email-body` whenever it differs from `text`; both are cut at
//!   256 KiB (extra `email-body-truncated`). Attachments are listed with type and file name
//!   only: the contract carries no bytes and the providers give no stable URL.
//! - Extra: `email-provider`, `email-from`, `email-to`, `email-subject`, `email-message-id`,
//!   `email-references`, `author-id-kind=email-address`, `personal-data`, and
//!   `verified-email` only when the sender is verified (below), and then also
//!   `email-reply-to` when `Reply-To` names another address: replies go there. An unverified
//!   sender is always answered at `From`, so a forged `From` cannot redirect the answer.
//! - Automatic replies (`Auto-Submitted` other than `no`, `X-Autoreply`) and delivery reports
//!   (`multipart/report`, `X-Failed-Recipients`, `MAILER-DAEMON`) are skipped: answering loops.
//!
//! **Verified sender.** The `From` header is whatever the sender typed, so it proves nothing by
//! itself. `verified-email` (which links this customer to the same address verified on other
//! channels) is set only when the receiving side authenticated the `From` domain: DMARC `pass`
//! or DKIM `pass` for a domain aligned with `From` in an `Authentication-Results` header whose
//! server is in `trusted_authserv_ids`; for SendGrid its own `dkim` field; for Postmark and
//! Mailgun SpamAssassin's `DKIM_VALID_AU` in their single `X-Spam-Tests` /
//! `X-Mailgun-Spam-Rules` header. SPF alone never counts.
//!
//! # Outbound (`deliver`)
//!
//! See [`delivery`]: `Re:` subject, `In-Reply-To` and `References` from the answered message's
//! extra facts, plain-text body. No provider takes an idempotency key on these endpoints; the
//! plugin remembers each receipt in its kv store and returns it for a repeated idempotency key.
//!
//! # Channel
//!
//! Length rule: 10 000 characters. E-mail itself has no practical limit; the bound keeps a care
//! reply readable and far under every provider's size cap. Capabilities: private messages,
//! threading, webhooks.

pub mod auth;
pub mod delivery;
pub mod email;
pub mod mime;
pub mod providers;
pub mod quote;

use switchboard_sdk::prelude::*;

/// The connector.
pub struct EmailConnector;

/// Secret: Basic-auth user name in the Postmark/SendGrid webhook URL.
pub const INBOUND_USERNAME: &str = "inbound-username";
/// Secret: Basic-auth password in the Postmark/SendGrid webhook URL.
pub const INBOUND_PASSWORD: &str = "inbound-password";
/// Secret: Mailgun's HTTP webhook signing key.
pub const WEBHOOK_SIGNING_KEY: &str = "webhook-signing-key";
/// Secret: the provider's send API key (Postmark server token).
pub const API_KEY: &str = "api-key";
/// Every config key the plugin reads.
pub const CONFIG_KEYS: [&str; 6] = [
    "provider",
    "from_address",
    "domain",
    "message_stream",
    "trusted_authserv_ids",
    "api_base",
];
/// Longest reply, in characters.
pub const MAX_REPLY_CHARS: u32 = 10_000;

/// The provider a tenant uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    Mailgun,
    Sendgrid,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s.trim().to_ascii_lowercase().as_str() {
            "postmark" => Some(Provider::Postmark),
            "mailgun" => Some(Provider::Mailgun),
            "sendgrid" => Some(Provider::Sendgrid),
            _ => None,
        }
    }
    /// The name used in extra `email-provider`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::Mailgun => "mailgun",
            Provider::Sendgrid => "sendgrid",
        }
    }
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Postmark => "Postmark",
            Provider::Mailgun => "Mailgun",
            Provider::Sendgrid => "SendGrid",
        }
    }
    /// The public send API.
    pub fn default_api_base(self) -> &'static str {
        match self {
            Provider::Postmark => "https://api.postmarkapp.com",
            Provider::Mailgun => "https://api.mailgun.net",
            Provider::Sendgrid => "https://api.sendgrid.com",
        }
    }
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

fn list(raw: Option<String>) -> Vec<String> {
    let Some(raw) = raw else {
        return vec![];
    };
    if let Ok(items) = serde_json::from_str::<Vec<String>>(&raw) {
        return items;
    }
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The tenant's config, read once per call.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub provider: Option<String>,
    pub from_address: Option<String>,
    pub domain: Option<String>,
    pub message_stream: Option<String>,
    pub trusted_authserv_ids: Vec<String>,
    pub api_base: Option<String>,
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            provider: clean(get("provider")),
            from_address: clean(get("from_address")),
            domain: clean(get("domain")),
            message_stream: clean(get("message_stream")),
            trusted_authserv_ids: list(get("trusted_authserv_ids")),
            api_base: clean(get("api_base")),
        }
    }

    pub fn provider(&self) -> Result<Provider, PluginError> {
        let raw = self.provider.as_deref().ok_or_else(|| {
            PluginError::NotConfigured(
                "config `provider` is not set (postmark, mailgun or sendgrid)".into(),
            )
        })?;
        Provider::parse(raw).ok_or_else(|| {
            PluginError::NotConfigured(format!(
                "config `provider` is `{raw}`: expected postmark, mailgun or sendgrid"
            ))
        })
    }

    pub fn api_base(&self, provider: Provider) -> Result<String, PluginError> {
        let base = self
            .api_base
            .clone()
            .unwrap_or_else(|| provider.default_api_base().to_string());
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http(s) URL, got `{base}`"
            )));
        }
        Ok(base.trim_end_matches('/').to_string())
    }
}

/// The secrets `handle` needs (looked up by the caller, so tests and fuzzing pass them in).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub inbound_username: Option<String>,
    pub inbound_password: Option<String>,
    pub webhook_signing_key: Option<String>,
}

impl Secrets {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k| get(k).filter(|v: &String| !v.is_empty());
        Secrets {
            inbound_username: non_empty(INBOUND_USERNAME),
            inbound_password: non_empty(INBOUND_PASSWORD),
            webhook_signing_key: non_empty(WEBHOOK_SIGNING_KEY),
        }
    }
}

fn not_configured(secret: &str, provider: Provider) -> PluginError {
    PluginError::NotConfigured(format!(
        "secret `{secret}` is not set for this plugin (needed for {})",
        provider.display_name()
    ))
}

/// Verify and decode one webhook request, with the clock at `now_ms`.
pub fn handle(
    config: &Config,
    secrets: &Secrets,
    request: &HttpRequest,
    now_ms: i64,
) -> Result<WebhookOutcome, PluginError> {
    let provider = config.provider()?;
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {} is not supported: the {} inbound webhook is a POST",
            request.method,
            provider.display_name()
        )));
    }
    if request.body.len() > providers::MAX_BODY_BYTES {
        return Err(PluginError::InvalidInput(format!(
            "body of {} bytes is larger than {} bytes",
            request.body.len(),
            providers::MAX_BODY_BYTES
        )));
    }
    let content_type = request.header("content-type");
    let (mut email, sendgrid_dkim) = match provider {
        Provider::Postmark | Provider::Sendgrid => {
            let user = secrets
                .inbound_username
                .as_deref()
                .ok_or_else(|| not_configured(INBOUND_USERNAME, provider))?;
            let password = secrets
                .inbound_password
                .as_deref()
                .ok_or_else(|| not_configured(INBOUND_PASSWORD, provider))?;
            auth::basic(request.header("authorization"), user, password)?;
            if provider == Provider::Postmark {
                (providers::postmark(&request.body)?, None)
            } else {
                let fields = providers::form_fields(content_type, &request.body)?;
                providers::sendgrid(&fields)?
            }
        }
        Provider::Mailgun => {
            let key = secrets
                .webhook_signing_key
                .as_deref()
                .ok_or_else(|| not_configured(WEBHOOK_SIGNING_KEY, provider))?;
            let fields = providers::form_fields(content_type, &request.body)?;
            let get = |n: &str| providers::field(&fields, n);
            auth::mailgun(
                key,
                get("timestamp").as_deref(),
                get("token").as_deref(),
                get("signature").as_deref(),
                now_ms,
            )?;
            (providers::mailgun(&fields)?, None)
        }
    };
    email.verified =
        auth::trusted_results_pass(&email.headers, &config.trusted_authserv_ids, &email.from)
            || match provider {
                Provider::Postmark => {
                    auth::spam_rules_dkim_valid_au(&email.headers, "x-spam-tests")
                }
                Provider::Sendgrid => {
                    sendgrid_dkim.is_some_and(|d| auth::sendgrid_dkim_pass(&d, &email.from))
                }
                Provider::Mailgun => {
                    auth::spam_rules_dkim_valid_au(&email.headers, "x-mailgun-spam-rules")
                }
            };
    email::to_event(email, provider.name(), now_ms).map(|e| WebhookOutcome::Events(vec![e]))
}

/// Length in Unicode scalar values.
pub fn measure_chars(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: email::CHANNEL.into(),
        display_name: "E-mail".into(),
        length_rule: LengthRule {
            max: MAX_REPLY_CHARS,
            unit: LengthUnit::Characters,
            description: "10000 characters (Unicode scalar values) of plain text; e-mail has no \
                          practical limit, this keeps a care reply readable"
                .into(),
        },
        capabilities: vec![
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Webhooks,
        ],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "email-connector",
        env!("CARGO_PKG_VERSION"),
        "E-mail through Postmark, Mailgun or SendGrid: inbound webhooks in, threaded replies out",
    )
    .egress("api.postmarkapp.com")
    .egress("api.mailgun.net")
    .egress("api.eu.mailgun.net")
    .egress("api.sendgrid.com");
    CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(INBOUND_USERNAME)
        .secret(INBOUND_PASSWORD)
        .secret(WEBHOOK_SIGNING_KEY)
        .secret(API_KEY)
}

/// Bind a verified Mailgun request's token to its message ([`auth::mailgun_token_check`]) in
/// the kv store, and forget a few tokens that have left the timestamp window.
fn guard_mailgun_replay(
    request: &HttpRequest,
    outcome: &WebhookOutcome,
    now: i64,
) -> Result<(), PluginError> {
    let fields = providers::form_fields(request.header("content-type"), &request.body)?;
    let (Some(timestamp), Some(token)) = (
        providers::field(&fields, "timestamp"),
        providers::field(&fields, "token"),
    ) else {
        return Ok(());
    };
    let Some(key) = auth::mailgun_token_key(&timestamp, &token) else {
        return Ok(());
    };
    let id = match outcome {
        WebhookOutcome::Events(events) => match events.first() {
            Some(Event::Message(m)) => m.external_id.clone(),
            _ => "skipped".to_string(),
        },
        WebhookOutcome::Challenge(_) => "challenge".to_string(),
    };
    if auth::mailgun_token_check(kv::get_string(&key).as_deref(), &id)? {
        // Best effort: a failed write only loses the replay protection for this token.
        let _ = kv::set(&key, id.as_bytes());
    }
    for old in kv::list_keys(auth::MAILGUN_TOKEN_PREFIX, 8) {
        if auth::mailgun_token_expired(&old, now) {
            kv::delete(&old);
        }
    }
    Ok(())
}

fn delivered_key(idempotency_key: &str) -> String {
    format!("delivered/{idempotency_key}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ChannelAdapter for EmailConnector {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let cfg = Config::from_lookup(config::get);
        let secrets = Secrets::from_lookup(config::secret);
        let now = now_ms();
        let mut outcome = handle(&cfg, &secrets, &request, now)?;
        if cfg.provider()? == Provider::Mailgun {
            guard_mailgun_replay(&request, &outcome, now)?;
        }
        if let WebhookOutcome::Events(events) = &mut outcome {
            for event in events {
                if let Event::Message(m) = event {
                    email::rethread(m, kv::get_string);
                }
            }
        }
        Ok(outcome)
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        let key = delivered_key(&reply.idempotency_key);
        if let Some(id) = kv::get_string(&key).filter(|s| !s.is_empty()) {
            return Ok(DeliveryReceipt {
                external_id: id,
                url: None,
            });
        }
        let cfg = Config::from_lookup(config::get);
        let provider = cfg.provider()?;
        let api_base = cfg.api_base(provider)?;
        let api_key = config::require_secret(API_KEY)?;
        let from = delivery::sender(cfg.from_address.as_deref(), &reply)?;
        let send = delivery::Send {
            provider,
            api_base: &api_base,
            api_key: &api_key,
            domain: cfg.domain.as_deref(),
            from: &from,
            message_stream: cfg.message_stream.as_deref(),
        };
        let request = delivery::build_request(&send, &reply)?;
        let response = http::send(&request)?;
        let receipt = delivery::map_response(provider, &response)?;
        // Best effort: a failed write only loses the repeat-call protection for this key.
        let _ = kv::set(&key, receipt.external_id.as_bytes());
        // Where the provider's id is the reply's Message-ID (Mailgun), a customer's answer that
        // carries only `In-Reply-To` finds its way back to this conversation.
        let _ = kv::set(
            &email::thread_key(&receipt.external_id),
            reply.conversation_key.as_bytes(),
        );
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        measure_chars(&text)
    }
}

switchboard_sdk::export_connector!(EmailConnector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_info() {
        let cfg = Config::from_lookup(|k| match k {
            "provider" => Some("\"Mailgun\"".into()),
            "trusted_authserv_ids" => Some("[\"mx.acme.example\",\"mxa.mailgun.org\"]".into()),
            _ => None,
        });
        assert_eq!(cfg.provider().unwrap(), Provider::Mailgun);
        assert_eq!(cfg.trusted_authserv_ids.len(), 2);
        assert_eq!(
            cfg.api_base(Provider::Mailgun).unwrap(),
            "https://api.mailgun.net"
        );
        assert!(matches!(
            Config::default().provider(),
            Err(PluginError::NotConfigured(_))
        ));
        let bad = Config {
            provider: Some("smtp".into()),
            ..Config::default()
        };
        assert!(matches!(bad.provider(), Err(PluginError::NotConfigured(m)) if m.contains("smtp")));
        let c = channel_info();
        assert_eq!((c.channel.as_str(), c.length_rule.max), ("email", 10_000));
        assert!(c.capabilities.contains(&Capability::Threading));
        let p = plugin_info();
        assert!(p.egress.contains(&"api.sendgrid.com".to_string()));
        assert_eq!(p.secrets.len(), 4);
        assert_eq!(measure_chars("日本語 ok"), 6);
    }
}
