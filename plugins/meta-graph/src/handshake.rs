//! The webhook verification handshake: Meta calls
//! `GET <callback>?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<c>` and expects
//! `200` with `<c>` as the plain-text body when the token is the one configured.

use switchboard_sdk::{HttpResponse, PluginError, WebhookOutcome};

/// The decoded query parameters of `url`, in order (`+` is a space, `%XX` a byte).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = rest.split('#').next().unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Constant-time byte comparison (no early exit on the first difference).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answer the handshake. The token must equal the secret `verify_token` (compared in constant
/// time) and `hub.mode` must be `subscribe`; otherwise the request is `unauthorized` (the host
/// answers it with a refusal, which is the 403 Meta expects). A `GET` without `hub.challenge`
/// is `invalid-input`.
pub fn answer(url: &str, verify_token: Option<&str>) -> Result<WebhookOutcome, PluginError> {
    let pairs = query_pairs(url);
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(challenge) = find("hub.challenge") else {
        return Err(PluginError::InvalidInput(
            "a GET is only accepted as Meta's verification request (`hub.mode`, \
             `hub.verify_token`, `hub.challenge`); events are POSTed"
                .into(),
        ));
    };
    if find("hub.mode") != Some("subscribe") {
        return Err(PluginError::Unauthorized(
            "verification refused: `hub.mode` is not `subscribe`".into(),
        ));
    }
    let Some(expected) = verify_token.filter(|t| !t.is_empty()) else {
        return Err(PluginError::Unauthorized(
            "verification refused: secret `verify_token` is not set for this plugin".into(),
        ));
    };
    let Some(token) = find("hub.verify_token") else {
        return Err(PluginError::Unauthorized(
            "verification refused: `hub.verify_token` is missing".into(),
        ));
    };
    if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(PluginError::Unauthorized(
            "verification refused: `hub.verify_token` does not match the secret `verify_token`"
                .into(),
        ));
    }
    Ok(WebhookOutcome::Challenge(HttpResponse::text(
        200, challenge,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://sb.example/hooks/facebook?hub.mode=subscribe&hub.verify_token=t%C3%B6k+en&hub.challenge=1158201444";

    #[test]
    fn matching_token_echoes_the_challenge_as_plain_text() {
        let WebhookOutcome::Challenge(r) = answer(URL, Some("tök en")).unwrap() else {
            panic!("expected a challenge")
        };
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"1158201444");
        assert_eq!(
            r.headers,
            vec![(
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string()
            )]
        );
    }

    #[test]
    fn wrong_missing_or_unset_token_and_wrong_mode_are_refused() {
        let refused = |url: &str, token: Option<&str>, needle: &str| match answer(url, token) {
            Err(PluginError::Unauthorized(m)) => {
                assert!(m.contains(needle), "{m}");
                assert!(!m.contains("s3cret"));
            }
            other => panic!("expected unauthorized, got {other:?}"),
        };
        refused(URL, Some("s3cret"), "does not match");
        refused(URL, None, "not set");
        refused(URL, Some(""), "not set");
        refused(
            "https://h/?hub.mode=subscribe&hub.challenge=1",
            Some("s3cret"),
            "missing",
        );
        refused(
            "https://h/?hub.mode=unsubscribe&hub.verify_token=s3cret&hub.challenge=1",
            Some("s3cret"),
            "subscribe",
        );
        assert!(matches!(
            answer("https://h/?hub.mode=subscribe&hub.verify_token=s3cret", Some("s3cret")),
            Err(PluginError::InvalidInput(m)) if m.contains("hub.challenge")
        ));
    }

    #[test]
    fn query_is_form_decoded() {
        assert_eq!(
            query_pairs("https://h/p?a=1+2&b=%26x&c#frag"),
            vec![
                ("a".to_string(), "1 2".to_string()),
                ("b".to_string(), "&x".to_string()),
                ("c".to_string(), String::new())
            ]
        );
        assert!(query_pairs("https://h/p").is_empty());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
