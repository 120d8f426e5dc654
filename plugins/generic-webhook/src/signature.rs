//! HMAC-SHA256 signatures over raw body bytes, as `<prefix><hex or base64 digest>` in a header.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::PluginError;

type HmacSha256 = Hmac<Sha256>;

/// How the digest is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hex digits (lowercase when signing; either case accepted when verifying).
    Hex,
    /// Standard base64 with padding when signing; standard or URL-safe alphabet, padded or
    /// not, accepted when verifying.
    Base64,
}

/// Where the signature travels and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScheme {
    /// Lowercase header name.
    pub header: String,
    /// Text before the digest (`sha256=`); may be empty.
    pub prefix: String,
    pub encoding: Encoding,
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

fn mac(secret: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

impl SignatureScheme {
    /// The full header value for `body` (`sha256=757107ea…`).
    pub fn sign(&self, secret: &str, body: &[u8]) -> String {
        let digest = mac(secret, body).finalize().into_bytes();
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(digest),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
        };
        format!("{}{}", self.prefix, encoded)
    }

    /// Check a header value against `body` in constant time. Errors never contain the secret
    /// or the expected signature.
    pub fn verify(&self, secret: &str, body: &[u8], header_value: &str) -> Result<(), PluginError> {
        let value = header_value.trim();
        let digest = match value.get(..self.prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(&self.prefix) => &value[self.prefix.len()..],
            _ => {
                return Err(PluginError::Unauthorized(format!(
                    "signature header `{}` does not start with `{}`",
                    self.header, self.prefix
                )));
            }
        };
        let bytes = match self.encoding {
            Encoding::Hex => hex::decode(digest).map_err(|_| {
                PluginError::Unauthorized(format!(
                    "signature header `{}` is not hex-encoded",
                    self.header
                ))
            })?,
            Encoding::Base64 => STANDARD_LENIENT
                .decode(digest)
                .or_else(|_| URL_SAFE_LENIENT.decode(digest))
                .map_err(|_| {
                    PluginError::Unauthorized(format!(
                        "signature header `{}` is not base64-encoded",
                        self.header
                    ))
                })?,
        };
        mac(secret, body).verify_slice(&bytes).map_err(|_| {
            PluginError::Unauthorized(format!(
                "signature in header `{}` does not match the body (HMAC-SHA256 with the \
                 `signing-secret`)",
                self.header
            ))
        })
    }

    /// Verify a request: the header must be present and match.
    pub fn verify_request(
        &self,
        secret: &str,
        request: &switchboard_sdk::HttpRequest,
    ) -> Result<(), PluginError> {
        let value = request.header(&self.header).ok_or_else(|| {
            PluginError::Unauthorized(format!("signature header `{}` is missing", self.header))
        })?;
        self.verify(secret, &request.body, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use switchboard_sdk::HttpRequest;

    /// The published vectors in the shared data folder (see its README for sources).
    fn vector(id: &str) -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/hmac_vectors.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let all: Vec<Value> = serde_json::from_str(&text).expect("vector file is JSON");
        all.into_iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no vector `{id}`"))
    }

    fn hex_scheme(header: &str) -> SignatureScheme {
        SignatureScheme {
            header: header.into(),
            prefix: "sha256=".into(),
            encoding: Encoding::Hex,
        }
    }

    fn request(header: &str, value: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://switchboard.example/hooks/webhook".into(),
            headers: vec![(header.to_ascii_lowercase(), value.into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn x_hub_signature_256_vector_verifies_and_tampering_fails() {
        let v = vector("x_hub_signature_256_github_docs_example");
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let header_value = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
        assert_eq!(header_value, v["expected"].as_str().unwrap());
        // Configured with the header's published spelling; the host lowercases header names.
        let scheme = hex_scheme("x-hub-signature-256");

        scheme
            .verify_request(secret, &request("X-Hub-Signature-256", header_value, body))
            .unwrap();
        assert_eq!(scheme.sign(secret, body), header_value);

        let mut altered = body.to_vec();
        altered[0] ^= 0x01;
        let err = scheme
            .verify_request(
                secret,
                &request("x-hub-signature-256", header_value, &altered),
            )
            .unwrap_err();
        assert!(matches!(&err, PluginError::Unauthorized(m) if m.contains("does not match")));

        let err = scheme
            .verify_request(
                "It's a Secret to Everybody!",
                &request("x-hub-signature-256", header_value, body),
            )
            .unwrap_err();
        let PluginError::Unauthorized(message) = err else {
            panic!("expected unauthorized")
        };
        assert!(
            !message.contains(secret),
            "message leaks the secret: {message}"
        );
        assert!(
            !message.contains(&header_value[7..]),
            "message leaks the signature: {message}"
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let v = vector("x_hub_signature_256_github_docs_example");
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let upper = format!(
            "SHA256={}",
            &v["expected"].as_str().unwrap()[7..].to_ascii_uppercase()
        );
        hex_scheme("x-signature-256")
            .verify(secret, body, &upper)
            .unwrap();
    }

    #[test]
    fn base64_vector_verifies_with_empty_prefix() {
        // LINE's x-line-signature: base64(HMAC-SHA256(secret, raw body)), no prefix.
        let v = vector("line_x_line_signature_sdk_vector");
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let value = v["headers"]["x-line-signature"].as_str().unwrap();
        let scheme = SignatureScheme {
            header: "x-line-signature".into(),
            prefix: String::new(),
            encoding: Encoding::Base64,
        };
        scheme
            .verify_request(secret, &request("x-line-signature", value, body))
            .unwrap();
        assert_eq!(scheme.sign(secret, body), v["expected"].as_str().unwrap());
        // URL-safe alphabet without padding is the same digest.
        let url_safe = value
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        scheme.verify(secret, body, &url_safe).unwrap();
        assert!(matches!(
            scheme.verify(secret, b"bodybodybodybodY", value),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            scheme.verify("other_secret", body, value),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn missing_header_wrong_prefix_and_bad_encoding_are_unauthorized() {
        let scheme = hex_scheme("x-signature-256");
        let req = request("x-other", "sha256=00", b"{}");
        assert!(
            matches!(scheme.verify_request("k", &req), Err(PluginError::Unauthorized(m)) if m.contains("is missing"))
        );
        let good = scheme.sign("k", b"{}");
        let without_prefix = &good[7..];
        assert!(
            matches!(scheme.verify("k", b"{}", without_prefix), Err(PluginError::Unauthorized(m)) if m.contains("does not start with"))
        );
        assert!(
            matches!(scheme.verify("k", b"{}", "sha256=zz"), Err(PluginError::Unauthorized(m)) if m.contains("not hex"))
        );
        // A truncated digest fails too (verify_slice checks the length).
        assert!(matches!(
            scheme.verify("k", b"{}", &good[..good.len() - 2]),
            Err(PluginError::Unauthorized(_))
        ));
        scheme.verify("k", b"{}", &format!("  {good} ")).unwrap();
    }
}
