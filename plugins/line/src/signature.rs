//! `x-line-signature`: base64(HMAC-SHA256(channel secret, raw request body)).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::{HttpRequest, PluginError};

/// The header LINE sends the signature in (looked up case-insensitively).
pub const HEADER: &str = "x-line-signature";

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The header value LINE would send for `body` (standard base64, padded).
pub fn sign(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(secret, body).finalize().into_bytes())
}

/// Check the request's signature over its raw body, in constant time. Errors never contain the
/// secret or the expected value.
pub fn verify(secret: &str, request: &HttpRequest) -> Result<(), PluginError> {
    let value = request.header(HEADER).ok_or_else(|| {
        PluginError::Unauthorized(format!("signature header `{HEADER}` is missing"))
    })?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| {
            PluginError::Unauthorized(format!("signature header `{HEADER}` is not base64"))
        })?;
    mac(secret, &request.body)
        .verify_slice(&given)
        .map_err(|_| {
            PluginError::Unauthorized(format!(
                "signature in `{HEADER}` does not match the body (HMAC-SHA256 with the channel \
                 secret)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/hmac_vectors.json"
        );
        let all: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        all.into_iter()
            .find(|v| v["id"] == "line_x_line_signature_sdk_vector")
            .expect("LINE vector present")
    }

    fn request(sig: Option<&str>, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/line".into(),
            headers: sig
                .map(|s| vec![("x-line-signature".to_string(), s.to_string())])
                .unwrap_or_default(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn published_vector_verifies_and_signs() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let expected = v["expected"].as_str().unwrap();
        assert_eq!(sign(secret, body), expected);
        assert!(verify(secret, &request(Some(expected), body)).is_ok());
    }

    #[test]
    fn wrong_secret_tampered_body_missing_or_garbled_header_fail() {
        let v = vector();
        let expected = v["expected"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let e = verify("other", &request(Some(expected), body)).unwrap_err();
        assert!(matches!(&e, PluginError::Unauthorized(m) if m.contains("does not match")));
        assert!(!format!("{e:?}").contains(expected));
        assert!(
            verify(
                "channel_secret",
                &request(Some(expected), b"bodybodybodybodX")
            )
            .is_err()
        );
        assert!(matches!(
            verify("channel_secret", &request(None, body)),
            Err(PluginError::Unauthorized(m)) if m.contains("missing")
        ));
        assert!(matches!(
            verify("channel_secret", &request(Some("%%%"), body)),
            Err(PluginError::Unauthorized(m)) if m.contains("base64")
        ));
    }
}
