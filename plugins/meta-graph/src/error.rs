//! The Graph API's `error` envelope, parsed, and the mapping of the codes every Meta product
//! shares; a product with its own codes (the WhatsApp Cloud API) maps those first and falls
//! back to [`map_error`]. The Messenger Platform connectors use [`crate::graph::map_error`],
//! which also knows Messenger's messaging-window and person-unavailable codes.

use switchboard_sdk::PluginError;

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
