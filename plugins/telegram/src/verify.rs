//! Webhook verification: the `X-Telegram-Bot-Api-Secret-Token` header.
//!
//! Telegram signs nothing. A bot sets `secret_token` (1–256 characters of `A-Z`, `a-z`, `0-9`,
//! `_` and `-`) with setWebhook, and Telegram sends it back verbatim in the header
//! `X-Telegram-Bot-Api-Secret-Token` on every webhook request. Verification is exact,
//! case-sensitive equality with the configured secret, compared in constant time; the body is
//! not covered.

use switchboard_sdk::{HttpRequest, PluginError};

/// The header Telegram sends the secret in (the host lowercases header names).
pub const HEADER: &str = "x-telegram-bot-api-secret-token";
/// The secret holding the token given to setWebhook.
pub const SECRET_NAME: &str = "webhook-secret-token";

/// Whether `s` is a token setWebhook accepts: `^[A-Za-z0-9_-]{1,256}$`.
pub fn is_valid_secret_token(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Compare without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check `request` against the configured secret. Errors never contain either value.
pub fn verify(configured: Option<&str>, request: &HttpRequest) -> Result<(), PluginError> {
    let secret = configured.filter(|s| !s.is_empty()).ok_or_else(|| {
        PluginError::NotConfigured(format!(
            "secret `{SECRET_NAME}` is not set for this plugin: it is the `secret_token` given \
             to setWebhook, which Telegram sends back in X-Telegram-Bot-Api-Secret-Token"
        ))
    })?;
    if !is_valid_secret_token(secret) {
        return Err(PluginError::NotConfigured(format!(
            "secret `{SECRET_NAME}` is not a valid Telegram secret_token (1-256 characters of \
             A-Z, a-z, 0-9, _ and -), so setWebhook cannot have accepted it"
        )));
    }
    let mut values = request
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(HEADER))
        .map(|(_, v)| v.as_str());
    let Some(value) = values.next() else {
        return Err(PluginError::Unauthorized(
            "header X-Telegram-Bot-Api-Secret-Token is missing".into(),
        ));
    };
    if values.next().is_some() {
        return Err(PluginError::Unauthorized(
            "header X-Telegram-Bot-Api-Secret-Token appears more than once".into(),
        ));
    }
    // Exact bytes: no trimming, no case folding.
    if !constant_time_eq(value.as_bytes(), secret.as_bytes()) {
        return Err(PluginError::Unauthorized(format!(
            "header X-Telegram-Bot-Api-Secret-Token does not match the secret `{SECRET_NAME}`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn request(headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.example/hooks/acme/telegram".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: b"{}".to_vec(),
        }
    }

    /// The `telegram_secret_token` entry of the shared algorithm file.
    fn algorithm() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/signatures/algorithms_without_vectors.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let all: Value = serde_json::from_str(&text).unwrap();
        all["telegram_secret_token"].clone()
    }

    #[test]
    fn the_three_documented_cases() {
        let cases = algorithm()["test_cases"].as_array().unwrap().clone();
        assert_eq!(cases.len(), 3, "the file lists three cases");
        // 1. any string matching ^[A-Za-z0-9_-]{1,256}$, header identical: valid.
        assert_eq!(cases[0]["header"], "identical");
        assert_eq!(cases[0]["valid"], true);
        let long = "aZ9_-".repeat(51) + "x"; // 256 characters
        for s in ["S", "a", "0", "_", "-", "My_Secret-Token_42", long.as_str()] {
            assert!(is_valid_secret_token(s), "{s}");
            verify(Some(s), &request(&[(HEADER, s)])).unwrap();
            // The header name is matched case-insensitively, as HTTP does.
            verify(Some(s), &request(&[("X-Telegram-Bot-Api-Secret-Token", s)])).unwrap();
        }
        // 2. header missing: invalid.
        assert_eq!(cases[1]["header"], "missing");
        assert_eq!(cases[1]["valid"], false);
        assert!(matches!(
            verify(Some("S"), &request(&[])),
            Err(PluginError::Unauthorized(m)) if m.contains("missing")
        ));
        assert!(matches!(
            verify(Some("S"), &request(&[("x-telegram-bot-api-secret", "S")])),
            Err(PluginError::Unauthorized(_))
        ));
        // 3. different case or trailing space: invalid.
        assert_eq!(cases[2]["valid"], false);
        let secret = "My_Secret-Token_42";
        for wrong in [
            "my_secret-token_42",
            "MY_SECRET-TOKEN_42",
            "My_Secret-Token_42 ",
            " My_Secret-Token_42",
            "My_Secret-Token_42\t",
            "My_Secret-Token_4",
            "My_Secret-Token_422",
            "",
        ] {
            let err = verify(Some(secret), &request(&[(HEADER, wrong)])).unwrap_err();
            let PluginError::Unauthorized(message) = err else {
                panic!("expected unauthorized for {wrong:?}")
            };
            assert!(!message.contains(secret), "leaks the secret: {message}");
        }
    }

    #[test]
    fn missing_or_invalid_configured_secret_is_not_configured() {
        assert!(matches!(
            verify(None, &request(&[(HEADER, "S")])),
            Err(PluginError::NotConfigured(m)) if m.contains("`webhook-secret-token` is not set")
        ));
        assert!(matches!(
            verify(Some(""), &request(&[(HEADER, "")])),
            Err(PluginError::NotConfigured(_))
        ));
        let too_long = "a".repeat(257);
        for bad in ["has space", "dots.are.out", "ünï", too_long.as_str()] {
            assert!(!is_valid_secret_token(bad));
            assert!(matches!(
                verify(Some(bad), &request(&[(HEADER, bad)])),
                Err(PluginError::NotConfigured(m)) if !m.contains(bad)
            ));
        }
    }

    #[test]
    fn a_repeated_header_is_refused() {
        assert!(matches!(
            verify(Some("S"), &request(&[(HEADER, "S"), (HEADER, "S")])),
            Err(PluginError::Unauthorized(m)) if m.contains("more than once")
        ));
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
