//! Two different questions, both answered before anything is trusted:
//!
//! 1. **Did the provider send this request?** Postmark and SendGrid inbound webhooks carry no
//!    signature; both document HTTP Basic auth in the webhook URL
//!    (`https://user:pass@host/…`), which arrives as an `Authorization: Basic` header. Mailgun
//!    signs every POST: `signature` = hex HMAC-SHA256(webhook signing key, `timestamp` +
//!    `token`), sent as form fields (or `signature.{timestamp,token,signature}` in JSON).
//! 2. **Did the customer send this e-mail?** Only when the receiving provider authenticated the
//!    `From` domain: DMARC `pass`, or DKIM `pass` for a signing domain aligned with the `From`
//!    domain (equal, or one a parent of the other). SPF alone never counts: it authenticates
//!    the envelope sender, which need not match `From`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_sdk::PluginError;

/// How far Mailgun's `timestamp` may be from the host clock: a captured request cannot be
/// replayed after this window (the token cache Mailgun also suggests needs state across calls).
pub const MAILGUN_MAX_SKEW_SECONDS: i64 = 15 * 60;

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret (the expected value's length is public); the bytes are compared
    // without early exit.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check `Authorization: Basic` against the configured credentials.
pub fn basic(header: Option<&str>, user: &str, password: &str) -> Result<(), PluginError> {
    use base64::Engine as _;
    let header = header.ok_or_else(|| {
        PluginError::Unauthorized(
            "missing Authorization header: put the basic-auth credentials in the provider's \
             webhook URL (https://user:password@host/…)"
                .into(),
        )
    })?;
    let encoded = header
        .trim()
        .strip_prefix("Basic ")
        .or_else(|| header.trim().strip_prefix("basic "))
        .ok_or_else(|| PluginError::Unauthorized("Authorization is not Basic".into()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| PluginError::Unauthorized("Authorization is not valid base64".into()))?;
    let expected = format!("{user}:{password}");
    if ct_eq(&decoded, expected.as_bytes()) {
        Ok(())
    } else {
        Err(PluginError::Unauthorized(
            "basic-auth credentials do not match".into(),
        ))
    }
}

/// Mailgun's signature: hex HMAC-SHA256(key, timestamp + token).
pub fn mailgun_sign(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Verify Mailgun's `timestamp`/`token`/`signature` and the timestamp's freshness.
pub fn mailgun(
    key: &str,
    timestamp: Option<&str>,
    token: Option<&str>,
    signature: Option<&str>,
    now_ms: i64,
) -> Result<(), PluginError> {
    let (Some(timestamp), Some(token), Some(signature)) = (timestamp, token, signature) else {
        return Err(PluginError::Unauthorized(
            "missing Mailgun `timestamp`, `token` or `signature`".into(),
        ));
    };
    let given = hex::decode(signature.trim())
        .map_err(|_| PluginError::Unauthorized("Mailgun `signature` is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| PluginError::Unauthorized("Mailgun signature does not match".into()))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| PluginError::Unauthorized("Mailgun `timestamp` is not a number".into()))?;
    if (now_ms / 1000).abs_diff(ts) > MAILGUN_MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(PluginError::Unauthorized(format!(
            "Mailgun `timestamp` is more than {MAILGUN_MAX_SKEW_SECONDS} s from the host clock"
        )));
    }
    Ok(())
}

/// Where a Mailgun token is remembered: sorted by its (signed) timestamp, so the oldest come
/// first in a key listing and can be pruned once outside the window.
pub fn mailgun_token_key(timestamp: &str, token: &str) -> Option<String> {
    use sha2::Digest as _;
    let ts: u64 = timestamp.trim().parse().ok()?;
    let digest = Sha256::digest(token.as_bytes());
    Some(format!(
        "{MAILGUN_TOKEN_PREFIX}{ts:012}/{}",
        hex::encode(digest)
    ))
}

/// Prefix of the remembered Mailgun tokens in the plugin's kv store.
pub const MAILGUN_TOKEN_PREFIX: &str = "mailgun-token/";

/// Whether a remembered token key is older than the timestamp window at `now_ms`.
pub fn mailgun_token_expired(key: &str, now_ms: i64) -> bool {
    key.strip_prefix(MAILGUN_TOKEN_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .and_then(|ts| ts.parse::<i64>().ok())
        .is_none_or(|ts| ts < now_ms / 1000 - MAILGUN_MAX_SKEW_SECONDS)
}

/// Mailgun signs `timestamp` + `token`, not the body, so within the window a captured
/// request's three fields could carry another message. Each token is therefore bound to the
/// message it first brought: `Ok(true)` for a new token (remember it with this id), `Ok(false)`
/// for the same message again (a redelivery; the host deduplicates it), and `unauthorized` for
/// the same token with another message.
pub fn mailgun_token_check(
    remembered: Option<&str>,
    external_id: &str,
) -> Result<bool, PluginError> {
    match remembered {
        None => Ok(true),
        Some(id) if id == external_id => Ok(false),
        Some(_) => Err(PluginError::Unauthorized(
            "this Mailgun token already brought another message: a replayed signature".into(),
        )),
    }
}

/// The domain of an address, lowercase.
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('>').to_lowercase())
        .filter(|d| !d.is_empty())
}

/// Relaxed DMARC alignment: equal, or one a sub-domain of the other.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.trim_start_matches('@').to_lowercase(),
        b.trim_start_matches('@').to_lowercase(),
    );
    !a.is_empty()
        && !b.is_empty()
        && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// Whether an `Authentication-Results` value (RFC 8601) written by a trusted server says the
/// `From` domain passed: `dmarc=pass`, or `dkim=pass` with an aligned `header.d`/`header.i`.
pub fn authentication_results_pass(value: &str, from_domain: &str) -> bool {
    // `authserv-id; method=result prop=val …; method=result …`
    value.split(';').skip(1).any(|clause| {
        let mut words = clause.split_whitespace();
        let Some(first) = words.next() else {
            return false;
        };
        let Some((method, result)) = first.split_once('=') else {
            return false;
        };
        if !result.eq_ignore_ascii_case("pass") {
            return false;
        }
        match method.to_ascii_lowercase().as_str() {
            "dmarc" => {
                // `header.from=` names the domain DMARC evaluated; it must be this From domain.
                let evaluated = clause
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("header.from="));
                evaluated.is_none_or(|d| aligned(d, from_domain))
            }
            "dkim" => clause.split_whitespace().any(|w| {
                w.strip_prefix("header.d=")
                    .or_else(|| w.strip_prefix("header.i="))
                    .and_then(|d| d.rsplit('@').next())
                    .is_some_and(|d| aligned(d, from_domain))
            }),
            _ => false,
        }
    })
}

/// The authserv-id (first token) of an `Authentication-Results` value.
pub fn authserv_id(value: &str) -> &str {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
}

/// Whether any `Authentication-Results` header from a server in `trusted` passes for `from`.
/// Headers from other servers are ignored: a sender can write any header it likes.
pub fn trusted_results_pass(headers: &[(String, String)], trusted: &[String], from: &str) -> bool {
    let Some(domain) = domain_of(from) else {
        return false;
    };
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("authentication-results")
            && trusted
                .iter()
                .any(|t| t.eq_ignore_ascii_case(authserv_id(v)))
            && authentication_results_pass(v, &domain)
    })
}

/// SendGrid's `dkim` field (`{@example.com : pass}`, several comma-separated) passes for an
/// aligned domain. SendGrid writes this field itself, so the sender cannot forge it.
pub fn sendgrid_dkim_pass(field: &str, from: &str) -> bool {
    let Some(domain) = domain_of(from) else {
        return false;
    };
    field
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .any(|entry| {
            let Some((d, result)) = entry.split_once(':') else {
                return false;
            };
            result.trim().eq_ignore_ascii_case("pass") && aligned(d.trim(), &domain)
        })
}

/// Postmark (`X-Spam-Tests`) and Mailgun (`X-Mailgun-Spam-Rules`) run SpamAssassin on inbound
/// mail and list the rules that hit; `DKIM_VALID_AU` is "valid DKIM signature from the author's
/// domain" (aligned DKIM). Trusted only when there is exactly one such header: the provider
/// adds one, so a second means the sender wrote one too and neither can be told apart.
pub fn spam_rules_dkim_valid_au(headers: &[(String, String)], header: &str) -> bool {
    let mut values = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(header))
        .map(|(_, v)| v);
    match (values.next(), values.next()) {
        (Some(v), None) => v
            .split([',', ' '])
            .any(|t| t.trim().eq_ignore_ascii_case("DKIM_VALID_AU")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn basic_auth() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("sb:s3cret")
        );
        assert!(basic(Some(&h), "sb", "s3cret").is_ok());
        assert!(matches!(
            basic(Some(&h), "sb", "other"),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(
            matches!(basic(None, "sb", "s3cret"), Err(PluginError::Unauthorized(m)) if m.contains("missing"))
        );
        assert!(basic(Some("Bearer x"), "sb", "s3cret").is_err());
    }

    #[test]
    fn mailgun_signature_and_clock() {
        let now = 1_700_000_000_000;
        let sig = mailgun_sign("key-1", "1700000000", "tok");
        assert!(mailgun("key-1", Some("1700000000"), Some("tok"), Some(&sig), now).is_ok());
        assert!(mailgun("key-2", Some("1700000000"), Some("tok"), Some(&sig), now).is_err());
        assert!(mailgun("key-1", Some("1700000000"), Some("tok2"), Some(&sig), now).is_err());
        // Stale by more than the window.
        let late = now + (MAILGUN_MAX_SKEW_SECONDS + 1) * 1000;
        assert!(
            matches!(mailgun("key-1", Some("1700000000"), Some("tok"), Some(&sig), late), Err(PluginError::Unauthorized(m)) if m.contains("clock"))
        );
        assert!(mailgun("key-1", None, Some("tok"), Some(&sig), now).is_err());
    }

    #[test]
    fn mailgun_tokens_are_bound_to_their_first_message() {
        let key = mailgun_token_key("1700000000", "tok").unwrap();
        assert!(key.starts_with("mailgun-token/001700000000/"));
        assert_ne!(key, mailgun_token_key("1700000000", "tok2").unwrap());
        assert!(mailgun_token_key("soon", "tok").is_none());
        let now = 1_700_000_000_000;
        assert!(!mailgun_token_expired(&key, now));
        assert!(mailgun_token_expired(
            &key,
            now + (MAILGUN_MAX_SKEW_SECONDS + 1) * 1000
        ));
        assert!(mailgun_token_check(None, "m1").unwrap());
        assert!(!mailgun_token_check(Some("m1"), "m1").unwrap());
        assert!(matches!(
            mailgun_token_check(Some("m1"), "m2"),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn sender_authentication() {
        let h = |v: &str| vec![("Authentication-Results".to_string(), v.to_string())];
        let trusted = vec!["mx.acme.example".to_string()];
        let ok = "mx.acme.example; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=mail.example.com";
        assert!(trusted_results_pass(&h(ok), &trusted, "jane@example.com"));
        // Same verdict from a server we do not trust (the sender could write it).
        assert!(!trusted_results_pass(
            &h(&ok.replace("mx.acme", "evil")),
            &trusted,
            "jane@example.com"
        ));
        // DKIM for another domain, SPF alone: not verified.
        let other = "mx.acme.example; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=bulk.example.net";
        assert!(!trusted_results_pass(
            &h(other),
            &trusted,
            "jane@example.com"
        ));
        assert!(trusted_results_pass(
            &h("mx.acme.example; dmarc=pass header.from=example.com"),
            &trusted,
            "jane@example.com"
        ));
        assert!(!trusted_results_pass(
            &h("mx.acme.example; dmarc=fail header.from=example.com"),
            &trusted,
            "jane@example.com"
        ));
        assert!(sendgrid_dkim_pass(
            "{@example.com : pass}",
            "jane@example.com"
        ));
        assert!(!sendgrid_dkim_pass(
            "{@example.net : pass}",
            "jane@example.com"
        ));
        assert!(!sendgrid_dkim_pass(
            "{@example.com : fail}",
            "jane@example.com"
        ));
        let one = vec![(
            "X-Spam-Tests".to_string(),
            "DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU,SPF_PASS".to_string(),
        )];
        assert!(spam_rules_dkim_valid_au(&one, "x-spam-tests"));
        let mut two = one.clone();
        two.push(("X-Spam-Tests".into(), "DKIM_VALID_AU".into()));
        assert!(!spam_rules_dkim_valid_au(&two, "x-spam-tests"));
        assert!(!aligned("example.com", "notexample.com"));
    }
}
