//! `X-Hub-Signature-256` verification: `sha256=` + lowercase hex of HMAC-SHA256(app secret,
//! raw body bytes). Meta signs the bytes exactly as sent, so the body is never re-serialised.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::{HttpRequest, PluginError};

/// The header Meta puts the signature in (lowercase, as the host passes header names).
pub const HEADER: &str = "x-hub-signature-256";
const PREFIX: &str = "sha256=";

fn mac(app_secret: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The header value Meta would send for `body` (`sha256=<64 lowercase hex digits>`).
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(app_secret, body).finalize().into_bytes())
    )
}

/// Check one header value against `body` in constant time (hex digits in either case; the
/// `sha256=` prefix case-insensitively; surrounding whitespace ignored). Errors never contain
/// the secret or the expected digest.
pub fn verify(app_secret: &str, body: &[u8], header_value: &str) -> Result<(), PluginError> {
    let value = header_value.trim();
    let digest = match value.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &value[PREFIX.len()..],
        _ => {
            return Err(PluginError::Unauthorized(
                "X-Hub-Signature-256 does not start with `sha256=`".into(),
            ));
        }
    };
    let bytes = hex::decode(digest)
        .map_err(|_| PluginError::Unauthorized("X-Hub-Signature-256 digest is not hex".into()))?;
    mac(app_secret, body).verify_slice(&bytes).map_err(|_| {
        PluginError::Unauthorized(
            "X-Hub-Signature-256 does not match the body (HMAC-SHA256 with the secret \
             `app-secret`)"
                .into(),
        )
    })
}

/// Verify a webhook `POST`: the secret must be set (else `not-configured`) and the header must
/// be present and match (else `unauthorized`).
pub fn verify_request(app_secret: Option<&str>, request: &HttpRequest) -> Result<(), PluginError> {
    let secret = app_secret.filter(|s| !s.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(
            "secret `app-secret` is not set for this plugin: it is the Meta app secret that \
             signs webhook deliveries (X-Hub-Signature-256)"
                .into(),
        )
    })?;
    let value = request.header(HEADER).ok_or_else(|| {
        PluginError::Unauthorized("the X-Hub-Signature-256 header is missing".into())
    })?;
    verify(secret, &request.body, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The published X-Hub-Signature-256 worked example (see the shared data README).
    fn vector() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/hmac_vectors.json"
        );
        let all: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        all.into_iter()
            .find(|v| v["id"] == "x_hub_signature_256_github_docs_example")
            .unwrap()
    }

    fn post(headers: Vec<(String, String)>, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/facebook".into(),
            headers,
            body: body.to_vec(),
        }
    }

    #[test]
    fn published_vector_signs_and_verifies() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let expected = v["expected"].as_str().unwrap();
        assert_eq!(sign(secret, body), expected);
        assert_eq!(
            expected,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let header = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
        verify_request(
            Some(secret),
            &post(vec![(HEADER.into(), header.into())], body),
        )
        .unwrap();
        // Upper-case hex and prefix, with padding, are the same digest.
        verify(
            secret,
            body,
            &format!(" SHA256={} ", &expected[7..].to_uppercase()),
        )
        .unwrap();
    }

    #[test]
    fn tampering_wrong_secret_and_bad_headers_are_unauthorized() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let expected = v["expected"].as_str().unwrap();
        let err = verify(secret, b"Hello, World?", expected).unwrap_err();
        let PluginError::Unauthorized(m) = err else {
            panic!("expected unauthorized")
        };
        assert!(m.contains("does not match"));
        assert!(!m.contains(secret) && !m.contains(&expected[7..]));
        assert!(matches!(
            verify("It's a Secret to Everybody!", body, expected),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            verify(secret, body, &expected[7..]),
            Err(PluginError::Unauthorized(m)) if m.contains("sha256=")
        ));
        assert!(matches!(
            verify(secret, body, "sha256=xyz"),
            Err(PluginError::Unauthorized(m)) if m.contains("not hex")
        ));
        assert!(matches!(
            verify(secret, body, &expected[..expected.len() - 2]),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            verify_request(Some(secret), &post(vec![], body)),
            Err(PluginError::Unauthorized(m)) if m.contains("missing")
        ));
        assert!(matches!(
            verify_request(None, &post(vec![], body)),
            Err(PluginError::NotConfigured(m)) if m.contains("app-secret")
        ));
        assert!(matches!(
            verify_request(Some(""), &post(vec![], body)),
            Err(PluginError::NotConfigured(_))
        ));
    }
}
