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
    // By name; a repeated name keeps its values in sorted order, as Twilio's SDKs do.
    sorted.sort();
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

/// `url` with the scheme's standard port made explicit, or removed if it is explicit; `None`
/// when the URL has a non-standard port or an unknown scheme (then only the URL as given counts).
pub fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest, port) = if let Some(r) = url.strip_prefix("https://") {
        ("https://", r, "443")
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http://", r, "80")
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Userinfo is kept as is; the port follows the host (which may be a bracketed IPv6 literal).
    let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
    let host_port = &authority[host_start..];
    let port_sep = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => Some(i),
        _ => None,
    };
    let variant = match port_sep {
        Some(i) if &host_port[i + 1..] == port => {
            format!("{}{}", &authority[..host_start], &host_port[..i])
        }
        Some(_) => return None,
        None => format!("{authority}:{port}"),
    };
    Some(format!("{scheme}{variant}{tail}"))
}

/// Check `header_value` against `url` (and its standard-port variant) and `params`, in
/// constant time per candidate. Errors never contain the token or the expected value.
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
    let mut candidates = vec![url.to_string()];
    candidates.extend(port_variant(url));
    // Every candidate is computed and compared, so timing does not tell which one matched.
    let matched = candidates
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
                "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
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
    fn port_variants() {
        assert_eq!(
            port_variant("https://h.example/sms?x=1").as_deref(),
            Some("https://h.example:443/sms?x=1")
        );
        assert_eq!(
            port_variant("https://h.example:443/sms").as_deref(),
            Some("https://h.example/sms")
        );
        assert_eq!(
            port_variant("http://h.example").as_deref(),
            Some("http://h.example:80")
        );
        assert_eq!(
            port_variant("http://h.example:80?a=b").as_deref(),
            Some("http://h.example?a=b")
        );
        assert_eq!(
            port_variant("https://u:p@h.example/x").as_deref(),
            Some("https://u:p@h.example:443/x")
        );
        assert_eq!(
            port_variant("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(
            port_variant("https://[::1]:443/x").as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(port_variant("https://h.example:8443/x"), None);
        assert_eq!(port_variant("ftp://h.example/x"), None);
    }
}
