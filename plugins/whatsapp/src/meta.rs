//! What every Meta (Graph API) webhook and API shares: the `X-Hub-Signature-256` check, the
//! verify-token handshake and the Graph error envelope.
//!
//! This module is self-contained on purpose (it depends only on the SDK's types, `hmac`,
//! `sha2`, `hex`, `subtle`, `form_urlencoded` and `serde_json`) so that it can be replaced by the
//! shared `meta-graph` crate without touching the WhatsApp-specific modules.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_sdk::{HttpResponse, PluginError};

/// The header Meta signs every webhook delivery with (names arrive lowercased).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

fn mac(app_secret: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(body);
    mac
}

/// `sha256=<lowercase hex HMAC-SHA256(app_secret, body)>`: the header value Meta sends.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(app_secret, body).finalize().into_bytes())
    )
}

/// Check `X-Hub-Signature-256` against the raw body bytes, in constant time.
///
/// The value must be `sha256=` (prefix case-insensitive, surrounding whitespace ignored)
/// followed by 64 hex digits (either case). Errors are `unauthorized` and never contain the
/// secret or the expected digest.
pub fn verify_signature(
    app_secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), PluginError> {
    let unauthorized = |m: &str| Err(PluginError::Unauthorized(m.into()));
    let Some(value) = header else {
        return unauthorized("header `X-Hub-Signature-256` is missing");
    };
    let value = value.trim();
    let Some(digest) = value
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sha256="))
        .map(|_| &value[7..])
    else {
        return unauthorized("`X-Hub-Signature-256` does not start with `sha256=`");
    };
    let Ok(bytes) = hex::decode(digest.trim()) else {
        return unauthorized("`X-Hub-Signature-256` is not a hex digest");
    };
    // verify_slice compares in constant time and checks the length.
    mac(app_secret, body).verify_slice(&bytes).map_err(|_| {
        PluginError::Unauthorized(
            "`X-Hub-Signature-256` does not match the body (wrong app secret, or the body was \
             altered)"
                .into(),
        )
    })
}

/// The decoded `key=value` pairs of a URL's query (`+` is a space, `%XX` a byte).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = rest.split('#').next().unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether `url`'s query looks like Meta's verification request (it carries `hub.mode`).
pub fn is_verification_request(url: &str) -> bool {
    query_pairs(url).iter().any(|(k, _)| k == "hub.mode")
}

/// Answer Meta's verification request
/// `GET ?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<challenge>`:
/// `200 text/plain <challenge>` when the mode is `subscribe` and the token equals
/// `verify_token` (compared in constant time), otherwise `403`. A query without `hub.mode` or
/// `hub.challenge` is `invalid-input`.
pub fn answer_verification(url: &str, verify_token: &str) -> Result<HttpResponse, PluginError> {
    let pairs = query_pairs(url);
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(mode), Some(challenge)) = (find("hub.mode"), find("hub.challenge")) else {
        return Err(PluginError::InvalidInput(
            "a GET request must be Meta's verification request with `hub.mode`, \
             `hub.verify_token` and `hub.challenge`"
                .into(),
        ));
    };
    let token = find("hub.verify_token").unwrap_or("");
    let token_ok: bool = token.as_bytes().ct_eq(verify_token.as_bytes()).into();
    if mode == "subscribe" && token_ok && !verify_token.is_empty() {
        Ok(HttpResponse::text(200, challenge))
    } else {
        Ok(HttpResponse::text(403, "verification failed"))
    }
}

/// The `error` object of a failed Graph API call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphError {
    /// The HTTP status of the answer.
    pub status: u16,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// `type`, e.g. `OAuthException`.
    pub kind: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`, where the WhatsApp Cloud API puts the useful explanation.
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Read `{"error": {...}}` from a response body; fields that are absent stay `None`.
    pub fn parse(status: u16, body: &[u8]) -> GraphError {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let e = &json["error"];
        let text = |v: &serde_json::Value| v.as_str().map(String::from);
        GraphError {
            status,
            code: e["code"].as_i64(),
            subcode: e["error_subcode"].as_i64(),
            kind: text(&e["type"]),
            message: text(&e["message"]),
            details: text(&e["error_data"]["details"]),
            fbtrace_id: text(&e["fbtrace_id"]),
        }
    }

    /// `HTTP 400, Graph error 131047: Re-engagement message (details)`, at most ~300 chars.
    pub fn summary(&self) -> String {
        let mut s = format!("HTTP {}", self.status);
        if let Some(code) = self.code {
            s.push_str(&format!(", Graph error {code}"));
            if let Some(sub) = self.subcode {
                s.push_str(&format!("/{sub}"));
            }
        }
        let mut text = self.message.clone().unwrap_or_default();
        if let Some(d) = self
            .details
            .as_deref()
            .filter(|d| Some(*d) != self.message.as_deref())
        {
            if text.is_empty() {
                text = d.to_string();
            } else {
                text = format!("{text} ({d})");
            }
        }
        if !text.is_empty() {
            s.push_str(": ");
            s.extend(text.chars().take(240));
        }
        s
    }
}

/// Graph API error codes every Meta product shares, mapped to the contract's errors. `None` when
/// the code is not a common one (the caller decides from the HTTP status).
///
/// - 4 (app), 17 (user), 32 (page), 613 (custom), 80001–80014 (business use case) rate limits →
///   `rate-limited`;
/// - 190 (access token invalid or expired), 102 (session), 10 and 200–299 (permission), 368
///   (temporarily blocked for policy violations) → `rejected`;
/// - 1 (unknown), 2 (service temporarily unavailable) → `unavailable`.
pub fn map_common_code(e: &GraphError, retry_after: Option<u32>) -> Option<PluginError> {
    let code = e.code?;
    Some(match code {
        4 | 17 | 32 | 613 | 80001..=80014 => PluginError::RateLimited(retry_after),
        190 => PluginError::Rejected(format!(
            "the access token is invalid or expired; renew it ({})",
            e.summary()
        )),
        102 | 10 | 200..=299 => PluginError::Rejected(format!(
            "the access token lacks a permission this call needs ({})",
            e.summary()
        )),
        368 => PluginError::Rejected(format!(
            "temporarily blocked for policy violations ({})",
            e.summary()
        )),
        1 | 2 => PluginError::Unavailable(e.summary()),
        _ => return None,
    })
}

/// Map a failed Graph answer by its HTTP status alone: 429 → `rate-limited`, 5xx and anything
/// that is not a 4xx → `unavailable`, other 4xx → `rejected`.
pub fn map_status(e: &GraphError, retry_after: Option<u32>) -> PluginError {
    match e.status {
        429 => PluginError::RateLimited(retry_after),
        400..=499 => PluginError::Rejected(e.summary()),
        _ => PluginError::Unavailable(e.summary()),
    }
}

/// The common Graph mapping: HTTP 429 first, then the shared codes, then the status.
pub fn map_error(e: &GraphError, retry_after: Option<u32>) -> PluginError {
    if e.status == 429 {
        return PluginError::RateLimited(retry_after);
    }
    map_common_code(e, retry_after).unwrap_or_else(|| map_status(e, retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"Hello, World!";
    const SECRET: &str = "It's a Secret to Everybody";
    // GitHub's published worked example of the same construction.
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn signs_and_verifies_the_published_vector() {
        assert_eq!(sign(SECRET, BODY), EXPECTED);
        assert!(verify_signature(SECRET, Some(EXPECTED), BODY).is_ok());
        let upper = format!("SHA256={}", EXPECTED[7..].to_ascii_uppercase());
        assert!(verify_signature(SECRET, Some(&upper), BODY).is_ok());
        assert!(verify_signature(SECRET, Some(&format!("  {EXPECTED} ")), BODY).is_ok());
    }

    #[test]
    fn refuses_bad_signatures_without_leaking_the_secret() {
        let cases = [
            (None, "missing"),
            (
                Some("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                "start",
            ),
            (Some("sha1=757107ea"), "start"),
            (Some("sha256=zz"), "hex"),
            (Some("sha256=757107ea"), "does not match"),
        ];
        for (header, needle) in cases {
            match verify_signature(SECRET, header, BODY) {
                Err(PluginError::Unauthorized(m)) => {
                    assert!(m.contains(needle), "{m}");
                    assert!(!m.contains(SECRET) && !m.contains(&EXPECTED[7..]));
                }
                other => panic!("{header:?}: {other:?}"),
            }
        }
        assert!(verify_signature("other", Some(EXPECTED), BODY).is_err());
        assert!(verify_signature(SECRET, Some(EXPECTED), b"Hello, World?").is_err());
    }

    #[test]
    fn verification_answers_the_challenge_only_for_the_right_token() {
        let ok = answer_verification(
            "https://h/wa?hub.mode=subscribe&hub.verify_token=s%20cret+x&hub.challenge=1158201444",
            "s cret x",
        )
        .unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"1158201444"[..]));
        let wrong = answer_verification(
            "https://h/wa?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
            "s cret x",
        )
        .unwrap();
        assert_eq!(wrong.status, 403);
        assert!(!String::from_utf8_lossy(&wrong.body).contains("s cret"));
        let mode = answer_verification(
            "https://h/wa?hub.mode=unsubscribe&hub.verify_token=t&hub.challenge=1",
            "t",
        )
        .unwrap();
        assert_eq!(mode.status, 403);
        assert!(matches!(
            answer_verification("https://h/wa?hub.mode=subscribe", "t"),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(is_verification_request("https://h/?hub.mode=subscribe"));
        assert!(!is_verification_request("https://h/?mode=subscribe"));
    }

    #[test]
    fn graph_errors_parse_and_map() {
        let body = br#"{"error":{"message":"(#190) Error validating access token","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbC"}}"#;
        let e = GraphError::parse(401, body);
        assert_eq!((e.code, e.subcode), (Some(190), Some(463)));
        assert_eq!(e.kind.as_deref(), Some("OAuthException"));
        assert_eq!(e.fbtrace_id.as_deref(), Some("AbC"));
        assert!(
            matches!(map_error(&e, None), PluginError::Rejected(m) if m.contains("190/463") && m.contains("expired"))
        );
        let limited = GraphError::parse(400, br#"{"error":{"code":4,"message":"Too many calls"}}"#);
        assert!(matches!(
            map_error(&limited, Some(3)),
            PluginError::RateLimited(Some(3))
        ));
        let not_json = GraphError::parse(502, b"<html>Bad gateway</html>");
        assert_eq!(not_json.code, None);
        assert!(
            matches!(map_error(&not_json, None), PluginError::Unavailable(m) if m == "HTTP 502")
        );
        let status_only = GraphError::parse(429, b"");
        assert!(matches!(
            map_error(&status_only, Some(9)),
            PluginError::RateLimited(Some(9))
        ));
        let other = GraphError::parse(400, br#"{"error":{"code":100,"message":"Invalid parameter","error_data":{"details":"to is invalid"}}}"#);
        assert!(matches!(map_error(&other, None), PluginError::Rejected(m)
            if m == "HTTP 400, Graph error 100: Invalid parameter (to is invalid)"));
    }
}
