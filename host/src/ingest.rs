//! Captured inbound webhook requests, one JSON object per line (JSONL), as the CLI reads them:
//!
//! ```json
//! {"connector": "webhook", "method": "POST", "url": "https://hooks.example/acme",
//!  "headers": {"x-signature-256": "sha256=…"}, "body": "{\"id\": 1, …}"}
//! ```
//!
//! `headers` may also be a list of `[name, value]` pairs (for repeated headers); the body may be
//! given as `body` (text) or `body_base64` (bytes). `connector` may be left out when the tenant
//! has one connector.

use base64::Engine as _;
use serde::Deserialize;

use crate::contract::HttpRequest;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(std::collections::BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    connector: Option<String>,
    #[serde(default = "post")]
    method: String,
    #[serde(default = "default_url")]
    url: String,
    headers: Option<Headers>,
    body: Option<String>,
    body_base64: Option<String>,
}

fn post() -> String {
    "POST".into()
}

fn default_url() -> String {
    "http://localhost/".into()
}

/// One captured request and the connector it is for.
#[derive(Debug, Clone)]
pub struct CapturedRequest {
    pub connector: Option<String>,
    pub request: HttpRequest,
}

/// Parse one JSONL line.
pub fn parse_line(line: &str) -> Result<CapturedRequest, String> {
    let parsed: Line =
        serde_json::from_str(line).map_err(|e| format!("not a captured request: {e}"))?;
    let body = match (parsed.body, parsed.body_base64) {
        (Some(_), Some(_)) => return Err("give either `body` or `body_base64`, not both".into()),
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("`body_base64` is not base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    let headers = match parsed.headers {
        None => vec![],
        Some(Headers::Map(m)) => m.into_iter().collect(),
        Some(Headers::Pairs(p)) => p,
    };
    Ok(CapturedRequest {
        connector: parsed.connector,
        request: request(&parsed.method, &parsed.url, headers, body),
    })
}

/// Build a request as connectors receive it: method upper-cased, header names lower-cased.
pub fn request(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> HttpRequest {
    HttpRequest {
        method: method.to_ascii_uppercase(),
        url: url.to_string(),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercased_and_bodies_decoded() {
        let c = parse_line(r#"{"connector":"w","headers":{"X-Sig":"abc"},"body_base64":"aGk="}"#)
            .unwrap();
        assert_eq!(c.connector.as_deref(), Some("w"));
        assert_eq!(
            c.request.headers,
            vec![("x-sig".to_string(), "abc".to_string())]
        );
        assert_eq!(c.request.body, b"hi");
        assert_eq!(c.request.method, "POST");
        let pairs = parse_line(r#"{"headers":[["A","1"],["a","2"]],"body":"x"}"#).unwrap();
        assert_eq!(pairs.request.headers.len(), 2);
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(
            parse_line("{not json")
                .unwrap_err()
                .starts_with("not a captured request")
        );
        assert!(
            parse_line(r#"{"body":"a","body_base64":"YQ=="}"#)
                .unwrap_err()
                .contains("either")
        );
        assert!(
            parse_line(r#"{"body_base64":"%%%"}"#)
                .unwrap_err()
                .contains("not base64")
        );
        assert!(
            parse_line(r#"{"bodee":"x"}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
