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

/// The first value of query parameter `name`.
fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Constant-time byte comparison (no early exit on the first difference).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answer the handshake. The token must equal the secret `verify-token` (compared in constant
/// time) and `hub.mode` must be `subscribe`; otherwise the request is `unauthorized` (the host
/// answers it with a refusal, which is the 403 Meta expects). A `GET` without `hub.challenge`
/// is `invalid-input`.
pub fn answer(url: &str, verify_token: Option<&str>) -> Result<WebhookOutcome, PluginError> {
    let pairs = query_pairs(url);
    let find = |name: &str| find(&pairs, name);
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
            "verification refused: secret `verify-token` is not set for this plugin".into(),
        ));
    };
    let Some(token) = find("hub.verify_token") else {
        return Err(PluginError::Unauthorized(
            "verification refused: `hub.verify_token` is missing".into(),
        ));
    };
    if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(PluginError::Unauthorized(
            "verification refused: `hub.verify_token` does not match the secret `verify-token`"
                .into(),
        ));
    }
    Ok(WebhookOutcome::Challenge(HttpResponse::text(
        200, challenge,
    )))
}

/// Whether `url`'s query looks like Meta's verification request (it carries `hub.mode`).
pub fn is_verification_request(url: &str) -> bool {
    query_pairs(url).iter().any(|(k, _)| k == "hub.mode")
}

/// Answer the handshake as an HTTP answer rather than a refusal: `200 text/plain <challenge>`
/// when the mode is `subscribe` and the token equals `verify-token` (constant time), otherwise
/// `403`, as Meta documents for WhatsApp. A query without `hub.mode` or `hub.challenge` is
/// `invalid-input`.
pub fn answer_or_forbid(url: &str, verify_token: &str) -> Result<HttpResponse, PluginError> {
    let pairs = query_pairs(url);
    let find = |name: &str| find(&pairs, name);
    let (Some(mode), Some(challenge)) = (find("hub.mode"), find("hub.challenge")) else {
        return Err(PluginError::InvalidInput(
            "a GET request must be Meta's verification request with `hub.mode`, \
             `hub.verify_token` and `hub.challenge`"
                .into(),
        ));
    };
    let token = find("hub.verify_token").unwrap_or("");
    let token_ok = constant_time_eq(token.as_bytes(), verify_token.as_bytes());
    if mode == "subscribe" && token_ok && !verify_token.is_empty() {
        Ok(HttpResponse::text(200, challenge))
    } else {
        Ok(HttpResponse::text(403, "verification failed"))
    }
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

    #[test]
    fn verification_answers_the_challenge_only_for_the_right_token() {
        let ok = answer_or_forbid(
            "https://h/wa?hub.mode=subscribe&hub.verify_token=s%20cret+x&hub.challenge=1158201444",
            "s cret x",
        )
        .unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"1158201444"[..]));
        let wrong = answer_or_forbid(
            "https://h/wa?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
            "s cret x",
        )
        .unwrap();
        assert_eq!(wrong.status, 403);
        assert!(!String::from_utf8_lossy(&wrong.body).contains("s cret"));
        let mode = answer_or_forbid(
            "https://h/wa?hub.mode=unsubscribe&hub.verify_token=t&hub.challenge=1",
            "t",
        )
        .unwrap();
        assert_eq!(mode.status, 403);
        assert!(matches!(
            answer_or_forbid("https://h/wa?hub.mode=subscribe", "t"),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(is_verification_request("https://h/?hub.mode=subscribe"));
        assert!(!is_verification_request("https://h/?mode=subscribe"));
    }
}
