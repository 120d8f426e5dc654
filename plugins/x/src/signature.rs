//! Account Activity webhook security: the CRC challenge and the body signature.
//!
//! Both are `sha256=` + standard base64 of HMAC-SHA256 keyed with the app's consumer secret
//! (API key secret): over the `crc_token` for the CRC answer, over the raw body bytes for the
//! `x-twitter-webhooks-signature` header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchboard_sdk::{HttpRequest, HttpResponse, PluginError, WebhookOutcome};

type HmacSha256 = Hmac<Sha256>;

/// The header X signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    mac
}

/// `sha256=<base64(HMAC-SHA256(secret, message))>`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    format!(
        "sha256={}",
        STANDARD.encode(mac(secret, message).finalize().into_bytes())
    )
}

/// The decoded `key=value` pairs of the URL's query.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = url.split_once('?') else {
        return Vec::new();
    };
    rest.split('#')
        .next()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answer the CRC: `GET …?crc_token=T` → 200 `{"response_token": "sha256=…"}`.
pub fn crc_answer(url: &str, consumer_secret: Option<&str>) -> Result<WebhookOutcome, PluginError> {
    let pairs = query_pairs(url);
    let Some((_, token)) = pairs.iter().find(|(k, _)| k == "crc_token") else {
        return Err(PluginError::InvalidInput(
            "GET requests are only accepted as X's CRC check with a `crc_token` query \
             parameter; Account Activity events are POSTed"
                .into(),
        ));
    };
    if token.is_empty() {
        return Err(PluginError::InvalidInput("`crc_token` is empty".into()));
    }
    let secret = require(consumer_secret)?;
    let body = json!({ "response_token": sign(secret, token.as_bytes()) });
    Ok(WebhookOutcome::Challenge(HttpResponse::json(200, &body)))
}

fn require(secret: Option<&str>) -> Result<&str, PluginError> {
    secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!(
            "secret `{}` is not set for this plugin: it is the X app's API key secret, which \
             keys the CRC answer and webhook signatures",
            crate::settings::CONSUMER_SECRET
        ))
    })
}

/// Check `x-twitter-webhooks-signature` over the raw body, in constant time. Errors never
/// contain the secret or the expected value.
pub fn verify(request: &HttpRequest, consumer_secret: Option<&str>) -> Result<(), PluginError> {
    let secret = require(consumer_secret)?;
    let value = request.header(SIGNATURE_HEADER).ok_or_else(|| {
        PluginError::Unauthorized(format!("signature header `{SIGNATURE_HEADER}` is missing"))
    })?;
    let value = value.trim();
    let digest = match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256=") => &value[7..],
        _ => {
            return Err(PluginError::Unauthorized(format!(
                "signature header `{SIGNATURE_HEADER}` does not start with `sha256=`"
            )));
        }
    };
    let bytes = STANDARD.decode(digest).map_err(|_| {
        PluginError::Unauthorized(format!(
            "signature header `{SIGNATURE_HEADER}` is not base64 (X sends base64, not hex)"
        ))
    })?;
    mac(secret, &request.body)
        .verify_slice(&bytes)
        .map_err(|_| {
            PluginError::Unauthorized(format!(
                "signature in `{SIGNATURE_HEADER}` does not match the body (HMAC-SHA256 keyed with \
             the secret `{}`)",
                crate::settings::CONSUMER_SECRET
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://h/x".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn known_hmac_value() {
        // RFC 4231 test case 2 (key "Jefe"), re-encoded in base64.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn crc_answer_is_base64_hmac_of_token() {
        let WebhookOutcome::Challenge(r) = crc_answer(
            "https://h/x?crc_token=what%20do+ya%20want%20for%20nothing%3F",
            Some("Jefe"),
        )
        .unwrap() else {
            panic!("expected a challenge")
        };
        assert_eq!(r.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"response_token": "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="})
        );
        assert!(matches!(
            crc_answer("https://h/x", Some("k")),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            crc_answer("https://h/x?crc_token=a", None),
            Err(PluginError::NotConfigured(_))
        ));
    }

    #[test]
    fn body_signature() {
        let body = br#"{"for_user_id":"1"}"#;
        let good = sign("s3cret", body);
        verify(&post(&[(SIGNATURE_HEADER, &good)], body), Some("s3cret")).unwrap();
        let err = verify(&post(&[(SIGNATURE_HEADER, &good)], b"{}"), Some("s3cret")).unwrap_err();
        assert!(
            matches!(&err, PluginError::Unauthorized(m) if m.contains("does not match") && !m.contains("s3cret") && !m.contains(&good[7..]))
        );
        assert!(
            matches!(verify(&post(&[], body), Some("s3cret")), Err(PluginError::Unauthorized(m)) if m.contains("missing"))
        );
        assert!(
            matches!(verify(&post(&[(SIGNATURE_HEADER, &good[7..])], body), Some("s3cret")), Err(PluginError::Unauthorized(m)) if m.contains("sha256="))
        );
        let hex_like = format!("sha256={}", "ab".repeat(32));
        assert!(matches!(
            verify(
                &post(&[(SIGNATURE_HEADER, &hex_like)], body),
                Some("s3cret")
            ),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            verify(&post(&[(SIGNATURE_HEADER, &good)], body), Some("")),
            Err(PluginError::NotConfigured(_))
        ));
    }
}
