//! The `GET ?challenge=…&verify_token=…` handshake and the URL query parsing it needs.

use switchboard_sdk::{HttpResponse, PluginError, WebhookOutcome};

/// The decoded `key=value` pairs of the URL's query, in order. `+` is a space and `%XX` a
/// byte; malformed escapes are kept as written and invalid UTF-8 is replaced by U+FFFD.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = rest.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decode `application/x-www-form-urlencoded` text.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Compare without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answer a `GET` request: the handshake if the query carries `challenge`, else invalid input.
pub fn answer(url: &str, verify_token: Option<&str>) -> Result<WebhookOutcome, PluginError> {
    let pairs = query_pairs(url);
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(challenge) = find("challenge") else {
        return Err(PluginError::InvalidInput(
            "GET requests are only accepted as a verification handshake with `challenge` and \
             `verify_token` query parameters; events must be POSTed"
                .into(),
        ));
    };
    let Some(expected) = verify_token.filter(|t| !t.is_empty()) else {
        return Err(PluginError::Unauthorized(
            "handshake refused: secret `verify-token` is not set for this plugin".into(),
        ));
    };
    let Some(token) = find("verify_token") else {
        return Err(PluginError::Unauthorized(
            "handshake refused: query parameter `verify_token` is missing".into(),
        ));
    };
    if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(PluginError::Unauthorized(
            "handshake refused: `verify_token` does not match the secret `verify-token`".into(),
        ));
    }
    Ok(WebhookOutcome::Challenge(HttpResponse::text(
        200, challenge,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_percent_decoded() {
        let pairs = query_pairs(
            "https://sb.example/hook?challenge=a%20b+c%2Bd&verify_token=t%C3%B6k%26en&empty=&flag#frag=x",
        );
        assert_eq!(
            pairs,
            vec![
                ("challenge".to_string(), "a b c+d".to_string()),
                ("verify_token".to_string(), "tök&en".to_string()),
                ("empty".to_string(), String::new()),
                ("flag".to_string(), String::new()),
            ]
        );
        assert!(query_pairs("https://sb.example/hook").is_empty());
    }

    #[test]
    fn malformed_escapes_are_kept_verbatim() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41%62"), "Ab");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn matching_token_echoes_the_challenge() {
        let outcome = answer(
            "https://sb.example/hook?verify_token=s3cr%2Ft&challenge=12345%21",
            Some("s3cr/t"),
        )
        .unwrap();
        let WebhookOutcome::Challenge(response) = outcome else {
            panic!("expected a challenge")
        };
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"12345!");
        assert_eq!(response.headers[0].1, "text/plain; charset=utf-8");
    }

    #[test]
    fn wrong_missing_or_unset_token_is_unauthorized() {
        let url = "https://sb.example/hook?challenge=1&verify_token=nope";
        assert!(
            matches!(answer(url, Some("s3cret")), Err(PluginError::Unauthorized(m)) if m.contains("does not match") && !m.contains("s3cret"))
        );
        assert!(
            matches!(answer(url, None), Err(PluginError::Unauthorized(m)) if m.contains("not set"))
        );
        assert!(matches!(
            answer(url, Some("")),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            answer("https://sb.example/hook?challenge=1", Some("s3cret")),
            Err(PluginError::Unauthorized(m)) if m.contains("`verify_token` is missing")
        ));
    }

    #[test]
    fn get_without_challenge_is_invalid_input() {
        assert!(matches!(
            answer("https://sb.example/hook?verify_token=s3cret", Some("s3cret")),
            Err(PluginError::InvalidInput(m)) if m.contains("handshake")
        ));
    }
}
