//! Twilio SMS connector: Twilio Programmable Messaging webhooks in (SMS and MMS), replies out
//! through the Messages API.
//!
//! Plugin name `twilio-sms-connector`; channel `sms`; display name "SMS (Twilio)". Egress:
//! `api.twilio.com` (tests point `api_base` at a loopback mock).
//!
//! # Config
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `account_sid` | — | the Twilio Account SID (`AC` + 32 hex digits); required by `deliver` |
//! | `from_number` | the `To` of the message being answered (extra `twilio-to`) | sender number (E.164) or alphanumeric sender for replies |
//! | `webhook_url` | the request's URL | the exact URL configured at Twilio, when the host sits behind a proxy that changes the URL it sees; Twilio signs this URL |
//! | `api_base` | `https://api.twilio.com` | base URL of the REST API |
//!
//! # Secrets
//!
//! - `auth-token` (required): verifies `X-Twilio-Signature` and is the Basic-auth password of the
//!   REST API (user: `account_sid`).
//!
//! # Inbound (`handle-webhook`)
//!
//! Configure the number's (or Messaging Service's) "A message comes in" webhook with HTTP
//! `POST`. Only `POST` with an `application/x-www-form-urlencoded` body is accepted (other
//! methods or a JSON body → `invalid-input`).
//!
//! **Verification** before anything is used: `X-Twilio-Signature` must equal
//! base64(HMAC-SHA1(`auth-token`, URL + each POST parameter sorted by name, written as name then
//! value)). The URL is config `webhook_url` if set, else the request's URL, query string
//! included. As Twilio's SDKs do, the URL is tried as given, without its port (any port), and
//! with the scheme's standard port when it has none (`https://h/x` ↔ `https://h:443/x`),
//! because Twilio may sign any of these forms; repeated parameters are sorted by value and an
//! exact repeat counts once (twilio-python's rule). Each candidate is compared in constant time
//! (`hmac`'s `verify_slice`). Missing/garbled/mismatching → `unauthorized` (never echoing the
//! token or the expected value); no `auth-token` → `not-configured`.
//!
//! **Fields** (one webhook is one event):
//!
//! - `MessageStatus` present → a delivery status callback: skipped (`status-callback`).
//! - `CallSid` present → a voice webhook: skipped (`voice-call`).
//! - Otherwise `MessageSid`, `From` and `To` are required (missing → `invalid-input`) and become
//!   one message: `external-id` = `MessageSid` (`SM…`/`MM…`, Twilio's global id, the same on
//!   Twilio's retries); `conversation-key` = `<To>|<From>` (one thread per brand number and
//!   customer); author id = `From` — **a phone number: personal data**, flagged with extra
//!   `author-id-kind=phone-number` and `personal-data=author.id conversation-key twilio-from`;
//!   no handle or display name (SMS carries none); `text` = `Body` (may be empty for MMS);
//!   visibility `private`; origin `direct-message`; action `created`; `received-at` = 0 (Twilio's
//!   webhook carries no timestamp, so the host stamps its own clock); attachments from
//!   `NumMedia` (at most 10) × `MediaUrl<N>`/`MediaContentType<N>` (image/video/audio by MIME
//!   type, other types `file`, no type `other`). Extra: `twilio-to`, `twilio-from`,
//!   `twilio-account-sid`, `twilio-messaging-service-sid`, `twilio-num-segments`,
//!   `twilio-from-country` when given.
//!
//! **WhatsApp through Twilio.** `From`/`To` written `whatsapp:+…` mark a WhatsApp message: it
//! arrives on the channel `whatsapp` (declared through the contract's `extra-channels`), its
//! number (without the prefix) is `verified-phone`, and replies go out with the prefix on both
//! numbers (a bare `from_number` gets it added).
//!
//! **JSON bodies.** Twilio signs a JSON body through a `bodySHA256` query parameter (the hex
//! SHA-256 of the body) and a signature over the URL alone; such a request is accepted when
//! both match, and its top-level fields are read like form fields.
//!
//! **Answer to Twilio.** Twilio reads the webhook's response as instructions: a `text/plain`
//! body is sent back to the customer as an SMS. The connector therefore answers every verified
//! webhook with an empty TwiML document ([`twiml_ack`]: `200`, `text/xml`, `<Response/>`),
//! through the contract's `channel-answers` (0.1.1); the host sends it once the message is
//! stored.
//!
//! # Outbound (`deliver`)
//!
//! `POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`, form-encoded `To` (the
//! recipient's id, the customer's number), `From` (config `from_number`, else extra
//! `twilio-to`), `Body`; `Authorization: Basic base64(account_sid:auth_token)`; 15 s timeout.
//! SMS is private: a reply the host marks public is still sent as an SMS to the customer.
//!
//! Twilio has **no idempotency key** on this endpoint: the host's outbox must guarantee at most
//! one dispatch per idempotency key. The plugin remembers each delivered receipt in its kv store
//! and returns it again when the same idempotency key is delivered twice, which closes the gap
//! only for retries after a recorded success, not for a timeout after Twilio accepted the message.
//!
//! Answers: 2xx → receipt with the message `sid`; HTTP 429 or error 20429 → `rate-limited`
//! (Retry-After seconds if given); HTTP 401 or error 20003 → `rejected` (credentials); 21610
//! (recipient replied STOP) → `rejected`; 21211/21614 (invalid or non-mobile number) →
//! `rejected`; other 4xx → `rejected` with Twilio's code and message; 5xx → `unavailable`;
//! transport failures → `unavailable` (denied egress → `not-configured`).
//!
//! # Channel
//!
//! Length rule: 1600 characters (Unicode scalar values), Twilio's limit on `Body`; `measure`
//! counts characters. The number of SMS parts is a separate matter ([`segments::count`]: GSM-7
//! 160/153 septets, UCS-2 70/67 UTF-16 units); the contract's `measure` returns one number, so the
//! part count is not reported by it. Capabilities: private messages, webhooks. No public
//! replies, threading, polling (`poll` answers `invalid-input`), edits, deletions or listening.

pub mod delivery;
pub mod parse;
pub mod segments;
pub mod signature;

use switchboard_sdk::prelude::*;

/// The connector.
pub struct TwilioSms;

/// Secret: the account's auth token.
pub const AUTH_TOKEN: &str = "auth-token";
/// Every config key the plugin reads.
pub const CONFIG_KEYS: [&str; 4] = ["account_sid", "from_number", "webhook_url", "api_base"];

/// The tenant's config, read once per call.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub account_sid: Option<String>,
    pub from_number: Option<String>,
    pub webhook_url: Option<String>,
    pub api_base: Option<String>,
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
            account_sid: clean(get("account_sid")),
            from_number: clean(get("from_number")),
            webhook_url: clean(get("webhook_url")),
            api_base: clean(get("api_base")),
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

    pub fn account_sid(&self) -> Result<&str, PluginError> {
        let sid = self
            .account_sid
            .as_deref()
            .ok_or_else(|| PluginError::NotConfigured("config `account_sid` is not set".into()))?;
        if !delivery::is_valid_account_sid(sid) {
            return Err(PluginError::NotConfigured(
                "config `account_sid` is not a Twilio Account SID (`AC` + 32 hex digits)".into(),
            ));
        }
        Ok(sid)
    }
}

/// The answer the host should give Twilio for a verified webhook: empty TwiML, so Twilio sends
/// nothing back to the customer.
pub fn twiml_ack() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/xml; charset=utf-8".into())],
        body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_vec(),
    }
}

/// Verify and decode one request.
pub fn handle(
    config: &Config,
    auth_token: Option<&str>,
    request: &HttpRequest,
) -> Result<WebhookOutcome, PluginError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(PluginError::InvalidInput(format!(
            "method {} is not supported: configure the Twilio webhook with HTTP POST",
            request.method
        )));
    }
    if let Some(ct) = request.header("content-type")
        && !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        && !is_json(request)
    {
        return Err(PluginError::InvalidInput(format!(
            "content type `{ct}` is not supported: Twilio's messaging webhook is \
             application/x-www-form-urlencoded (or JSON signed with `bodySHA256`)"
        )));
    }
    let token = auth_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!("secret `{AUTH_TOKEN}` is not set for this plugin"))
    })?;
    let url = config.webhook_url.as_deref().unwrap_or(&request.url);
    let params = if is_json(request) {
        signature::verify_body(token, url, &request.body, request.header(signature::HEADER))?;
        parse::json_fields(&request.body)?
    } else {
        let params = parse::form(&request.body);
        signature::verify(token, url, &params, request.header(signature::HEADER))?;
        params
    };
    parse::parse(&params).map(|e| WebhookOutcome::Events(vec![e]))
}

fn is_json(request: &HttpRequest) -> bool {
    request
        .header("content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"))
}

/// Length in Unicode scalar values.
pub fn measure_chars(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// The channel's self-description.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        channel: parse::CHANNEL.into(),
        display_name: "SMS (Twilio)".into(),
        length_rule: LengthRule {
            max: delivery::MAX_BODY_CHARS,
            unit: LengthUnit::Characters,
            description: "1600 characters per message (Twilio's Body limit); sent as SMS parts of \
                          160 GSM-7 characters (153 when split) or 70 UCS-2 units (67 when split) \
                          if any character is outside GSM-7, e.g. an emoji"
                .into(),
        },
        capabilities: vec![Capability::PrivateMessages, Capability::Webhooks],
    }
}

/// The plugin's identity.
pub fn plugin_info() -> PluginInfo {
    let info = PluginInfo::new(
        "twilio-sms-connector",
        env!("CARGO_PKG_VERSION"),
        "SMS and MMS through Twilio Programmable Messaging: signed webhooks in, Messages API out",
    )
    .egress("api.twilio.com");
    CONFIG_KEYS
        .iter()
        .fold(info, |i, k| i.config_key(k))
        .secret(AUTH_TOKEN)
}

/// The kv key remembering a delivered idempotency key.
fn delivered_key(idempotency_key: &str) -> String {
    format!("delivered/{idempotency_key}")
}

impl ChannelAdapter for TwilioSms {
    fn info() -> PluginInfo {
        plugin_info()
    }

    fn channel() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let cfg = Config::from_lookup(config::get);
        handle(&cfg, config::secret(AUTH_TOKEN).as_deref(), &request)
    }

    /// Twilio reads the answer as instructions (plain text would be texted to the customer),
    /// so every stored message is acknowledged with empty TwiML.
    fn answer_webhook(
        request: HttpRequest,
    ) -> Result<(WebhookOutcome, Option<HttpResponse>), PluginError> {
        Self::handle_webhook(request).map(|outcome| (outcome, Some(twiml_ack())))
    }

    fn extra_channels() -> Vec<String> {
        vec![parse::WHATSAPP_CHANNEL.into()]
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
        let api_base = cfg.api_base()?;
        let sid = cfg.account_sid()?;
        let token = config::require_secret(AUTH_TOKEN)?;
        let from = delivery::sender(cfg.from_number.as_deref(), &reply)?;
        let request = delivery::build_request(&api_base, sid, &token, &from, &reply)?;
        let response = http::send(&request)?;
        let receipt = delivery::map_response(&response)?;
        // Best effort: a failed write only loses the repeat-call protection for this key.
        let _ = kv::set(&key, receipt.external_id.as_bytes());
        Ok(receipt)
    }

    fn measure(text: String) -> u32 {
        measure_chars(&text)
    }
}

switchboard_sdk::export_connector!(TwilioSms);

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(url: &str, body: &str, token: &str) -> HttpRequest {
        let params = parse::form(body.as_bytes());
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                (
                    "x-twilio-signature".into(),
                    signature::sign(token, url, &params),
                ),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    const BODY: &str = "MessageSid=SM1&AccountSid=AC1&From=%2B14155550100&To=%2B15005550006&Body=Hi+there&NumMedia=0";

    #[test]
    fn verified_form_becomes_one_message() {
        let req = signed("https://sb.example/hooks/sms", BODY, "tok");
        let WebhookOutcome::Events(events) = handle(&Config::default(), Some("tok"), &req).unwrap()
        else {
            panic!()
        };
        let [Event::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.text, "Hi there");
        assert_eq!(m.author.id, "+14155550100");
    }

    #[test]
    fn webhook_url_overrides_the_seen_url_and_failures_are_typed() {
        // Signed for the public URL; the host behind a proxy sees an internal one.
        let mut req = signed("https://public.example/sms", BODY, "tok");
        req.url = "http://10.0.0.5:8080/sms".into();
        assert!(matches!(
            handle(&Config::default(), Some("tok"), &req),
            Err(PluginError::Unauthorized(_))
        ));
        let cfg = Config {
            webhook_url: Some("https://public.example/sms".into()),
            ..Default::default()
        };
        assert!(handle(&cfg, Some("tok"), &req).is_ok());
        assert!(matches!(
            handle(&cfg, None, &req),
            Err(PluginError::NotConfigured(m)) if m.contains("auth-token")
        ));
        // A JSON body is only taken when the URL vouches for it with `bodySHA256`.
        let mut json = req.clone();
        json.headers[0].1 = "application/json".into();
        assert!(
            matches!(handle(&cfg, Some("tok"), &json), Err(PluginError::Unauthorized(m)) if m.contains("bodySHA256"))
        );
        let mut text = req.clone();
        text.headers[0].1 = "text/plain".into();
        assert!(
            matches!(handle(&cfg, Some("tok"), &text), Err(PluginError::InvalidInput(m)) if m.contains("text/plain"))
        );
        let mut get = req;
        get.method = "GET".into();
        assert!(
            matches!(handle(&cfg, Some("tok"), &get), Err(PluginError::InvalidInput(m)) if m.contains("POST"))
        );
    }

    #[test]
    fn config_and_info() {
        let cfg = Config::from_lookup(|k| match k {
            "account_sid" => Some("\"AC0123456789abcdef0123456789abcdef\"".into()),
            _ => None,
        });
        assert_eq!(
            cfg.account_sid().unwrap(),
            "AC0123456789abcdef0123456789abcdef"
        );
        assert_eq!(cfg.api_base().unwrap(), "https://api.twilio.com");
        assert!(matches!(
            Config::default().account_sid(),
            Err(PluginError::NotConfigured(_))
        ));
        let c = channel_info();
        assert_eq!((c.channel.as_str(), c.length_rule.max), ("sms", 1600));
        assert_eq!(c.length_rule.unit, LengthUnit::Characters);
        assert!(!c.capabilities.contains(&Capability::PublicReplies));
        let p = plugin_info();
        assert_eq!(p.egress, vec!["api.twilio.com"]);
        assert_eq!(p.secrets, vec!["auth-token"]);
        assert_eq!(p.config_keys.len(), 4);
        let ack = twiml_ack();
        assert_eq!(ack.status, 200);
        assert!(
            String::from_utf8(ack.body)
                .unwrap()
                .ends_with("<Response/>")
        );
    }

    #[test]
    fn measure_counts_characters() {
        assert_eq!(measure_chars("hello"), 5);
        assert_eq!(measure_chars("你好"), 2);
        assert_eq!(measure_chars("🍎"), 1);
        assert_eq!(measure_chars("👨‍👩‍👧"), 5);
    }
}
