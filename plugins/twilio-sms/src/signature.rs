//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every POST parameter sorted by
//! name, each as name followed by value)).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_sdk::PluginError;

/// The header Twilio sends the signature in (looked up case-insensitively).
pub const HEADER: &str = "x-twilio-signature";

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then value; a repeated name and value counts once. twilio-python does this
    // (`sorted(set(values))`), and its test vectors send `Digits` twice with the same value.
    sorted.sort();
    sorted.dedup();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature Twilio would send for `url` and `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// The forms of `url` Twilio may have signed, as its SDKs' validators try them: the URL as
/// given, without its port (any port, standard or not), and with the scheme's standard port
/// when it has none. Twilio's signing side is not consistent about the port, so a proxy in
/// front of the host that adds or drops one must not break verification. Unknown schemes and
/// unparseable authorities give only the URL as given.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let (scheme, rest, standard) = if let Some(r) = url.strip_prefix("https://") {
        ("https://", r, "443")
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http://", r, "80")
    } else {
        return variants;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Userinfo is kept as is; the port follows the host (which may be a bracketed IPv6 literal).
    let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
    let (userinfo, host_port) = authority.split_at(host_start);
    let port_sep = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => Some(i),
        _ => None,
    };
    let variant = match port_sep {
        Some(i) => format!("{userinfo}{}", &host_port[..i]),
        None => format!("{authority}:{standard}"),
    };
    variants.push(format!("{scheme}{variant}{tail}"));
    variants
}

/// The `bodySHA256` query parameter of `url`: Twilio signs a JSON body by putting its SHA-256
/// in the URL it signs (and signing no parameters).
pub fn body_sha256_param(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("bodySHA256="))
}

/// Check `header_value` against `url` (and its port variants) and `params`, in constant time
/// per candidate. Errors never contain the token or the expected value.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header_value: Option<&str>,
) -> Result<(), PluginError> {
    let value = header_value.ok_or_else(|| {
        PluginError::Unauthorized(format!("signature header `{HEADER}` is missing"))
    })?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| {
            PluginError::Unauthorized(format!("signature header `{HEADER}` is not base64"))
        })?;
    // Every candidate is computed and compared, so timing does not tell which one matched.
    let matched = url_variants(url)
        .iter()
        .map(|u| mac(auth_token, u, params).verify_slice(&given).is_ok())
        .fold(false, |acc, ok| acc | ok);
    if matched {
        Ok(())
    } else {
        Err(PluginError::Unauthorized(format!(
            "signature in `{HEADER}` does not match the URL and parameters (HMAC-SHA1 with the \
             auth token; is config `webhook_url` the exact URL configured at Twilio?)"
        )))
    }
}

/// Check a JSON-body webhook: the body's SHA-256 (hex) must equal the URL's `bodySHA256`
/// parameter, and the signature must cover the URL alone. A URL without `bodySHA256` cannot
/// vouch for a JSON body, so it is refused.
pub fn verify_body(
    auth_token: &str,
    url: &str,
    body: &[u8],
    header_value: Option<&str>,
) -> Result<(), PluginError> {
    use sha2::Digest as _;
    let claimed = body_sha256_param(url).ok_or_else(|| {
        PluginError::Unauthorized(
            "a JSON body must be signed through the URL's `bodySHA256` parameter, which is \
             missing"
                .into(),
        )
    })?;
    verify(auth_token, url, &[], header_value)?;
    let actual = hex_lower(&sha2::Sha256::digest(body));
    // The hash is public (it is in the URL); only the signature above needed constant time.
    if !actual.eq_ignore_ascii_case(claimed) {
        return Err(PluginError::Unauthorized(
            "the body's SHA-256 does not match the URL's `bodySHA256`: the body was changed".into(),
        ));
    }
    Ok(())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
            .find(|v| v["id"] == "twilio_docs_worked_example_legacy_numbers")
            .expect("Twilio vector present")
    }

    fn params(v: &serde_json::Value) -> Vec<(String, String)> {
        v["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn published_worked_example() {
        let v = vector();
        let (secret, url) = (v["secret"].as_str().unwrap(), v["url"].as_str().unwrap());
        let expected = v["expected"].as_str().unwrap();
        assert_eq!(sign(secret, url, &params(&v)), expected);
        // Parameter order in the request does not matter.
        let mut reversed = params(&v);
        reversed.reverse();
        assert!(verify(secret, url, &reversed, Some(expected)).is_ok());
        // The port rule: the same request seen with :443 made explicit still verifies.
        assert!(
            verify(
                secret,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &reversed,
                Some(expected)
            )
            .is_ok()
        );
    }

    #[test]
    fn failures() {
        let v = vector();
        let (secret, url) = (v["secret"].as_str().unwrap(), v["url"].as_str().unwrap());
        let expected = v["expected"].as_str().unwrap();
        let mut p = params(&v);
        p[0].1.push('0');
        let e = verify(secret, url, &p, Some(expected)).unwrap_err();
        assert!(matches!(&e, PluginError::Unauthorized(m) if m.contains("does not match")));
        assert!(!format!("{e:?}").contains(secret));
        assert!(verify("54321", url, &params(&v), Some(expected)).is_err());
        assert!(
            verify(
                secret,
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &params(&v),
                Some(expected)
            )
            .is_err()
        );
        assert!(
            verify(
                secret,
                "https://mycompany.org:443/myapp.php?foo=1&bar=2",
                &params(&v),
                Some(expected)
            )
            .is_err()
        );
        assert!(
            matches!(verify(secret, url, &params(&v), None), Err(PluginError::Unauthorized(m)) if m.contains("missing"))
        );
        assert!(
            matches!(verify(secret, url, &params(&v), Some("***")), Err(PluginError::Unauthorized(m)) if m.contains("base64"))
        );
    }

    #[test]
    fn url_variants_drop_any_port_and_add_the_standard_one() {
        assert_eq!(
            url_variants("https://h.example/sms?x=1"),
            ["https://h.example/sms?x=1", "https://h.example:443/sms?x=1"]
        );
        assert_eq!(
            url_variants("https://h.example:443/sms"),
            ["https://h.example:443/sms", "https://h.example/sms"]
        );
        assert_eq!(
            url_variants("http://h.example:80?a=b"),
            ["http://h.example:80?a=b", "http://h.example?a=b"]
        );
        assert_eq!(
            url_variants("https://h.example:8443/x"),
            ["https://h.example:8443/x", "https://h.example/x"]
        );
        assert_eq!(
            url_variants("https://u:p@h.example/x")[1],
            "https://u:p@h.example:443/x"
        );
        assert_eq!(url_variants("https://[::1]/x")[1], "https://[::1]:443/x");
        assert_eq!(url_variants("https://[::1]:443/x")[1], "https://[::1]/x");
        assert_eq!(url_variants("ftp://h.example/x"), ["ftp://h.example/x"]);
    }
}
