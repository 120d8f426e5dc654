//! Slack's v0 request signing.
//!
//! Slack signs every Events API request: `X-Slack-Signature: v0=<hex>` where `<hex>` is
//! `HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + raw body)`, and the
//! timestamp must be within a replay window of the receiver's clock (Slack suggests five
//! minutes). Source: docs.slack.dev/authentication/verifying-requests-from-slack.
//!
//! [`verify`] is pure: the caller passes the clock, so the published worked example (signed in
//! 2018) can be checked with its own `now`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::PluginError;

type HmacSha256 = Hmac<Sha256>;

/// Header with the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header with `v0=<hex digest>`.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The only signature version Slack uses today.
pub const VERSION: &str = "v0";
/// Slack's recommended replay window, in seconds.
pub const DEFAULT_MAX_SKEW_SECONDS: u64 = 300;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(VERSION.as_bytes());
    mac.update(b":");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send for `timestamp` and `body` (for tests and
/// for documentation of the scheme).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "{VERSION}={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Check one request's headers against its raw body, with the clock at `now` (Unix seconds).
///
/// The timestamp is checked first (a stale request is refused whatever its signature), then
/// the signature in constant time (`verify_slice`). Errors never contain the secret or the
/// expected signature.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    max_skew_seconds: u64,
) -> Result<(), PluginError> {
    let timestamp = timestamp.map(str::trim).ok_or_else(|| {
        PluginError::Unauthorized(format!("header `{TIMESTAMP_HEADER}` is missing"))
    })?;
    let seconds: i64 = timestamp.parse().map_err(|_| {
        PluginError::Unauthorized(format!(
            "header `{TIMESTAMP_HEADER}` is not a Unix time in seconds: `{}`",
            timestamp.chars().take(32).collect::<String>()
        ))
    })?;
    let skew = now.abs_diff(seconds);
    if skew > max_skew_seconds {
        return Err(PluginError::Unauthorized(format!(
            "request timestamp {seconds} is {skew} s away from the clock ({now}), more than the \
             {max_skew_seconds} s replay window: refusing a possible replay"
        )));
    }
    let signature = signature.map(str::trim).ok_or_else(|| {
        PluginError::Unauthorized(format!("header `{SIGNATURE_HEADER}` is missing"))
    })?;
    let digest = signature.strip_prefix("v0=").ok_or_else(|| {
        PluginError::Unauthorized(format!(
            "header `{SIGNATURE_HEADER}` does not start with `v0=` (unknown signature version)"
        ))
    })?;
    let bytes = hex::decode(digest).map_err(|_| {
        PluginError::Unauthorized(format!(
            "header `{SIGNATURE_HEADER}` is not hex after `v0=`"
        ))
    })?;
    mac(secret, timestamp, body)
        .verify_slice(&bytes)
        .map_err(|_| {
            PluginError::Unauthorized(format!(
                "header `{SIGNATURE_HEADER}` does not match the request (HMAC-SHA256 of \
                 `v0:<timestamp>:<body>` with the `signing-secret`)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The published Slack worked example in the shared data folder.
    fn vector() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/hmac_vectors.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let all: Vec<Value> = serde_json::from_str(&text).expect("vector file is JSON");
        all.into_iter()
            .find(|v| v["id"] == "slack_v0_docs_worked_example")
            .expect("Slack vector present")
    }

    #[test]
    fn published_worked_example_verifies_at_its_own_clock() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let ts = v["headers"]["X-Slack-Request-Timestamp"].as_str().unwrap();
        let sig = v["headers"]["X-Slack-Signature"].as_str().unwrap();
        let now = v["clock_now_for_test"].as_i64().unwrap();
        assert_eq!(sign(secret, ts, body), v["expected"].as_str().unwrap());
        verify(secret, Some(ts), Some(sig), body, now, 300).unwrap();
        // Exactly at the edge of the window is still accepted; one second more is not.
        verify(secret, Some(ts), Some(sig), body, now + 300, 300).unwrap();
        verify(secret, Some(ts), Some(sig), body, now - 300, 300).unwrap();
        assert!(matches!(
            verify(secret, Some(ts), Some(sig), body, now + 301, 300),
            Err(PluginError::Unauthorized(m)) if m.contains("301 s away")
        ));
    }

    #[test]
    fn tampering_with_body_timestamp_or_secret_fails() {
        let v = vector();
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let ts = v["headers"]["X-Slack-Request-Timestamp"].as_str().unwrap();
        let sig = v["headers"]["X-Slack-Signature"].as_str().unwrap();
        let now = v["clock_now_for_test"].as_i64().unwrap();

        let mut altered = body.to_vec();
        altered[0] ^= 1;
        let err = verify(secret, Some(ts), Some(sig), &altered, now, 300).unwrap_err();
        let PluginError::Unauthorized(message) = err else {
            panic!("expected unauthorized")
        };
        assert!(message.contains("does not match"), "{message}");
        assert!(!message.contains(secret) && !message.contains(&sig[3..]));

        // The timestamp is part of the signed string: moving it by a second breaks the MAC.
        let next = (ts.parse::<i64>().unwrap() + 1).to_string();
        assert!(matches!(
            verify(secret, Some(&next), Some(sig), body, now, 300),
            Err(PluginError::Unauthorized(m)) if m.contains("does not match")
        ));
        assert!(matches!(
            verify("not-the-secret", Some(ts), Some(sig), body, now, 300),
            Err(PluginError::Unauthorized(_))
        ));
        // Uppercase hex decodes to the same bytes.
        let upper = format!("v0={}", sig[3..].to_ascii_uppercase());
        verify(secret, Some(ts), Some(&upper), body, now, 300).unwrap();
    }

    #[test]
    fn stale_timestamp_is_refused_before_the_signature_is_checked() {
        let body = b"{}";
        let sig = sign("s3cret", "1000", body);
        verify("s3cret", Some("1000"), Some(&sig), body, 1000, 300).unwrap();
        // Ten minutes later (or earlier) the same request is a replay.
        for now in [1601, 399] {
            assert!(matches!(
                verify("s3cret", Some("1000"), Some(&sig), body, now, 300),
                Err(PluginError::Unauthorized(m)) if m.contains("replay window")
            ));
        }
        // A stale request with a wrong signature reports the clock, not the signature.
        assert!(matches!(
            verify("s3cret", Some("1000"), Some("v0=00"), body, 5000, 300),
            Err(PluginError::Unauthorized(m)) if m.contains("replay")
        ));
    }

    #[test]
    fn missing_and_malformed_headers_are_unauthorized() {
        let body = b"{}";
        let sig = sign("k", "1000", body);
        let cases: [(Option<&str>, Option<&str>, &str); 6] = [
            (None, Some(&sig), "`x-slack-request-timestamp` is missing"),
            (Some("yesterday"), Some(&sig), "not a Unix time"),
            (Some("1000"), None, "`x-slack-signature` is missing"),
            (Some("1000"), Some(&sig[3..]), "does not start with `v0=`"),
            (Some("1000"), Some("v1=abcd"), "does not start with `v0=`"),
            (Some("1000"), Some("v0=xyz"), "not hex"),
        ];
        for (ts, s, expected) in cases {
            let err = verify("k", ts, s, body, 1000, 300).unwrap_err();
            assert!(
                matches!(&err, PluginError::Unauthorized(m) if m.contains(expected)),
                "{ts:?} {s:?}: {err:?}"
            );
        }
        // A truncated digest fails (verify_slice checks the length).
        assert!(
            verify(
                "k",
                Some("1000"),
                Some(&sig[..sig.len() - 2]),
                body,
                1000,
                300
            )
            .is_err()
        );
        // Whitespace around header values is tolerated.
        verify(
            "k",
            Some(" 1000 "),
            Some(&format!(" {sig} ")),
            body,
            1000,
            300,
        )
        .unwrap();
    }
}
