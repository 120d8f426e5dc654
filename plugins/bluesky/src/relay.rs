//! Checking a relayed or captured request. Bluesky itself never calls `handle-webhook` (it has
//! no push webhooks for accounts and no platform signature), so the only thing to verify is
//! the tenant's own relay: when secret `relay-secret` is set, a request must carry either
//! `Authorization: Bearer <relay-secret>` or `X-Signature-256: sha256=<hex HMAC-SHA256 of the
//! raw body keyed with relay-secret>` (the construction GitHub and Meta use). Both are
//! compared in constant time; errors never contain the secret or the expected value.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::{HttpRequest, PluginError};

/// The HMAC header.
pub const SIGNATURE_HEADER: &str = "x-signature-256";

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac
}

/// `sha256=<hex>` for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Equality that takes the same time for every pair of equal-length inputs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verify `request` against the optional relay secret.
pub fn verify(secret: Option<&str>, request: &HttpRequest) -> Result<(), PluginError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    if let Some(value) = request.header(SIGNATURE_HEADER) {
        let value = value.trim();
        let digest = match value.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("sha256=") => &value[7..],
            _ => {
                return Err(PluginError::Unauthorized(
                    "header `x-signature-256` must be `sha256=<hex digest>`".into(),
                ));
            }
        };
        let bytes = hex::decode(digest).map_err(|_| {
            PluginError::Unauthorized("header `x-signature-256` is not hex-encoded".into())
        })?;
        return mac(secret, &request.body)
            .verify_slice(&bytes)
            .map_err(|_| {
                PluginError::Unauthorized(
                    "header `x-signature-256` does not match the body (HMAC-SHA256 keyed with \
                     secret `relay-secret`)"
                        .into(),
                )
            });
    }
    if let Some(auth) = request.header("authorization") {
        let token = auth
            .trim()
            .strip_prefix("Bearer ")
            .or_else(|| auth.trim().strip_prefix("bearer "))
            .unwrap_or("");
        if constant_time_eq(token.trim().as_bytes(), secret.as_bytes()) {
            return Ok(());
        }
        return Err(PluginError::Unauthorized(
            "the bearer token does not match secret `relay-secret`".into(),
        ));
    }
    Err(PluginError::Unauthorized(
        "this tenant set secret `relay-secret`: send `Authorization: Bearer <relay-secret>` or \
         `X-Signature-256: sha256=<HMAC-SHA256 of the body>`"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn request(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/bluesky".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn published_x_hub_signature_256_vector() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/hmac_vectors.json"
        );
        let all: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let v = all
            .iter()
            .find(|v| v["id"] == "x_hub_signature_256_github_docs_example")
            .unwrap();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let expected = v["expected"].as_str().unwrap();
        assert_eq!(sign(secret, body), expected);
        verify(
            Some(secret),
            &request(&[("x-signature-256", expected)], body),
        )
        .unwrap();
        let mut tampered = body.to_vec();
        tampered[0] ^= 1;
        let err = verify(
            Some(secret),
            &request(&[("x-signature-256", expected)], &tampered),
        )
        .unwrap_err();
        let PluginError::Unauthorized(m) = err else {
            panic!()
        };
        assert!(!m.contains(secret) && !m.contains(&expected[7..]));
    }

    #[test]
    fn bearer_and_missing_headers() {
        verify(None, &request(&[], b"{}")).unwrap();
        verify(
            Some("s3cret"),
            &request(&[("authorization", "Bearer s3cret")], b"{}"),
        )
        .unwrap();
        assert!(matches!(
            verify(Some("s3cret"), &request(&[("authorization", "Bearer s3cre")], b"{}")),
            Err(PluginError::Unauthorized(m)) if !m.contains("s3cre")
        ));
        assert!(matches!(
            verify(Some("s3cret"), &request(&[], b"{}")),
            Err(PluginError::Unauthorized(m)) if m.contains("relay-secret")
        ));
        assert!(matches!(
            verify(Some("s3cret"), &request(&[("x-signature-256", "sha256=zz")], b"{}")),
            Err(PluginError::Unauthorized(m)) if m.contains("hex")
        ));
        assert!(matches!(
            verify(
                Some("s3cret"),
                &request(&[("x-signature-256", "md5=00")], b"{}")
            ),
            Err(PluginError::Unauthorized(_))
        ));
    }
}
