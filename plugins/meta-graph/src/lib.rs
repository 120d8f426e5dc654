//! Shared Meta logic for Switchboard's Facebook, Instagram and WhatsApp connectors.
//!
//! A plain library (not a component): connector crates depend on it by path and keep only
//! what is their own (Facebook's and Instagram's `changes[]`, WhatsApp's Cloud API shapes).
//! Everything but [`connector::deliver`] and the [`Connector`] adapter is host-free, so it is
//! tested natively.
//!
//! | module | what |
//! |---|---|
//! | [`signature`] | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, constant-time |
//! | [`handshake`] | `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → `200 text/plain <challenge>` |
//! | [`webhook`] | body JSON (BOM tolerated, errors with line/column), the `{"object","entry"}` envelope, id/time accessors, host output limits |
//! | [`messaging`] | Messenger Platform `messaging[]` events (Messenger and Instagram Direct): messages, edits, deletions, skips |
//! | [`graph`] | `api_base` / `graph_version` config, Send API and comment-reply requests, Graph error → [`PluginError`] mapping |
//! | [`error`] | the Graph `error` envelope and the codes every Meta product shares (WhatsApp maps its own first) |
//! | [`connector`] | the whole Facebook / Instagram connector, given a [`connector::Spec`] of what differs |
//!
//! The usual inbound flow is [`read_request`]: a `GET` is answered as the handshake, a `POST`
//! is verified and then parsed into a [`webhook::Body`] that the connector walks.
//!
//! Conventions every connector built on this crate shares:
//!
//! - secrets `app-secret` (signs deliveries) and `verify-token` (the handshake);
//! - config `api_base` (default `https://graph.facebook.com`) and `graph_version` (default
//!   `v21.0`);
//! - access tokens travel in `Authorization: Bearer`, never in URLs or error messages;
//! - Messenger Platform Graph errors ([`graph::map_error`]; WhatsApp maps its Cloud API codes
//!   and then [`error::map_error`]): codes 4, 17, 32, 613, 80000–80014 and HTTP 429 → `rate-limited` (seconds
//!   from `Retry-After` or `X-Business-Use-Case-Usage`); 190 → `rejected("access token…")`;
//!   10 and 200–299 → `rejected("permission…")`; 551 → `rejected` (person unavailable); code 10
//!   with subcode 2018278, or subcode 2018108 → `rejected("outside the 24-hour messaging
//!   window…")`; 1, 2, `is_transient` and 5xx → `unavailable`; other 4xx → `rejected`.

pub mod connector;
pub mod error;
pub mod graph;
pub mod handshake;
pub mod messaging;
pub mod signature;
pub mod webhook;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use connector::{Connector, Network};
/// For [`export_network!`], which exports through the SDK.
pub use switchboard_sdk;

/// Secret: the Meta app secret, key of `X-Hub-Signature-256`.
pub const APP_SECRET: &str = "app-secret";
/// Secret: the token Meta's verification request must present.
pub const VERIFY_TOKEN: &str = "verify-token";

/// A config value, trimmed and unquoted (a TOML string may reach the plugin as JSON), or `None`
/// when unset or empty.
pub fn setting(key: &str) -> Option<String> {
    switchboard_sdk::config::get(key)
        .map(|v| serde_json::from_str::<String>(v.trim()).unwrap_or_else(|_| v.trim().to_string()))
        .filter(|v| !v.is_empty())
}

/// A secret, unquoted like [`setting`], or `None` when unset or empty.
pub fn secret(name: &str) -> Option<String> {
    switchboard_sdk::config::secret(name)
        .map(|v| serde_json::from_str::<String>(v.trim()).unwrap_or(v))
        .filter(|v| !v.is_empty())
}

use switchboard_sdk::{HttpRequest, PluginError, WebhookOutcome};

/// What an inbound request turned out to be.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// Answer this directly (the verification handshake).
    Answer(WebhookOutcome),
    /// A verified `POST` body, classified.
    Body(webhook::Body),
}

/// Verify and read one request: `GET` is the verify-token handshake; `POST` must carry a valid
/// `X-Hub-Signature-256` (checked before anything is parsed) and a JSON body; other methods are
/// `invalid-input`.
pub fn read_request(
    request: &HttpRequest,
    app_secret: Option<&str>,
    verify_token: Option<&str>,
) -> Result<Inbound, PluginError> {
    match request.method.to_ascii_uppercase().as_str() {
        "GET" => handshake::answer(&request.url, verify_token).map(Inbound::Answer),
        "POST" => {
            signature::verify_request(app_secret, request)?;
            let value = webhook::parse_json(&request.body)?;
            webhook::envelope(&value).map(Inbound::Body)
        }
        other => Err(PluginError::InvalidInput(format!(
            "method {other} is not supported: Meta POSTs events and GETs the verification request"
        ))),
    }
}

/// Length in Unicode scalar values (how Messenger and Graph count "characters").
pub fn char_count(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// Length in UTF-8 bytes.
pub fn utf8_bytes(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::request;

    #[test]
    fn verification_comes_before_parsing() {
        let body = b"{\"object\":\"page\",\"entry\":[]}";
        let unsigned = request("POST", "https://h/", vec![], b"not json");
        assert!(matches!(
            read_request(&unsigned, Some("s"), None),
            Err(PluginError::Unauthorized(_))
        ));
        let signed_garbage = request(
            "POST",
            "https://h/",
            vec![(signature::HEADER.into(), signature::sign("s", b"not json"))],
            b"not json",
        );
        assert!(matches!(
            read_request(&signed_garbage, Some("s"), None),
            Err(PluginError::InvalidInput(m)) if m.contains("line 1, column 2")
        ));
        let ok = request(
            "POST",
            "https://h/",
            vec![(signature::HEADER.into(), signature::sign("s", body))],
            body,
        );
        assert!(matches!(
            read_request(&ok, Some("s"), None).unwrap(),
            Inbound::Body(webhook::Body::Delivery { object, entries }) if object == "page" && entries.is_empty()
        ));
    }

    #[test]
    fn get_is_the_handshake_and_other_methods_are_refused() {
        let get = request(
            "GET",
            "https://h/?hub.mode=subscribe&hub.verify_token=v&hub.challenge=42",
            vec![],
            b"",
        );
        let Inbound::Answer(WebhookOutcome::Challenge(r)) =
            read_request(&get, None, Some("v")).unwrap()
        else {
            panic!("expected the challenge")
        };
        assert_eq!((r.status, r.body.as_slice()), (200, &b"42"[..]));
        assert!(matches!(
            read_request(&request("PUT", "https://h/", vec![], b""), Some("s"), Some("v")),
            Err(PluginError::InvalidInput(m)) if m.contains("PUT")
        ));
    }

    #[test]
    fn lengths() {
        assert_eq!(char_count("héllo 🧳"), 7);
        assert_eq!(utf8_bytes("héllo 🧳"), 11);
        assert_eq!(char_count("👨‍👩‍👧"), 5);
        assert_eq!(char_count("日本語"), 3);
        assert_eq!(utf8_bytes("日本語"), 9);
    }
}
