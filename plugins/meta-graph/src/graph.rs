//! Graph API calls: where to send them (`api_base`, `graph_version`), the Send API and comment
//! reply request shapes, and mapping Graph's answers (including its `error.code` /
//! `error_subcode`) to receipts and typed errors.

use serde_json::{Value, json};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{DeliveryReceipt, PluginError};

/// The real Graph API.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
/// The Graph API version used unless config `graph_version` says otherwise.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";
/// How long to wait for Graph's response head, in milliseconds.
pub const TIMEOUT_MS: u64 = 15_000;

/// Where Graph API requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// `https://graph.facebook.com` (no trailing slash).
    pub api_base: String,
    /// `v21.0`.
    pub version: String,
}

fn unquote(raw: &str) -> String {
    let t = raw.trim();
    serde_json::from_str::<String>(t).unwrap_or_else(|_| t.to_string())
}

impl Graph {
    /// Read config `api_base` and `graph_version` through `get` (values bare or JSON strings;
    /// blank means the default). A base that is not http(s) or a version that is not `vN.M` is
    /// `not-configured`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Graph, PluginError> {
        let base = get("api_base")
            .map(|v| unquote(&v))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `api_base` must be an http:// or https:// URL, got `{base}`"
            )));
        }
        let version = get("graph_version")
            .map(|v| unquote(&v))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_GRAPH_VERSION.to_string());
        let valid = version
            .strip_prefix('v')
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !valid {
            return Err(PluginError::NotConfigured(format!(
                "config `graph_version` must look like `v21.0`, got `{version}`"
            )));
        }
        Ok(Graph {
            api_base: base.trim_end_matches('/').to_string(),
            version,
        })
    }

    /// `{api_base}/{version}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.api_base,
            self.version,
            path.trim_start_matches('/')
        )
    }
}

/// A Graph node id used in a URL path: non-empty, at most 256 bytes, only ASCII letters,
/// digits, `_`, `-` and `.`. Anything else is `invalid-input` (it would change the path).
pub fn node_id<'a>(what: &str, id: &'a str) -> Result<&'a str, PluginError> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(id)
    } else {
        Err(PluginError::InvalidInput(format!(
            "{what} `{}` is not a Graph node id",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// Who a Send API message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A page-scoped (PSID) or Instagram-scoped (IGSID) user id: `{"id": …}`.
    Id(String),
    /// A private reply to a comment or visitor post: `{"comment_id": …}` (or `{"post_id": …}`).
    CommentId(String),
    PostId(String),
}

/// The Send API body: `{"recipient": …, "messaging_type": "RESPONSE", "message": {"text": …}}`.
pub fn send_api_body(recipient: &Recipient, text: &str) -> Value {
    let recipient = match recipient {
        Recipient::Id(id) => json!({"id": id}),
        Recipient::CommentId(id) => json!({"comment_id": id}),
        Recipient::PostId(id) => json!({"post_id": id}),
    };
    json!({
        "recipient": recipient,
        "messaging_type": "RESPONSE",
        "message": {"text": text},
    })
}

/// `POST url` with a JSON body, the token as `Authorization: Bearer` and Graph's timeout.
pub fn post_json(url: &str, token: &str, body: &Value) -> Request {
    let mut request = Request::post_json(url, body).bearer(token);
    request.timeout_ms = Some(TIMEOUT_MS);
    request
}

/// `POST {base}/{version}/{sender}/messages` with the Send API body; `sender` is `me` (the page
/// or account the token belongs to) or an explicit page / Instagram account id. The token goes
/// in `Authorization: Bearer`, never in the URL.
pub fn send_message_request(
    graph: &Graph,
    sender: &str,
    token: &str,
    recipient: &Recipient,
    text: &str,
) -> Request {
    post_json(
        &graph.url(&format!("{sender}/messages")),
        token,
        &send_api_body(recipient, text),
    )
}

/// `POST {base}/{version}/{object_id}/{edge}` with `{"message": text}`: a public reply to a
/// comment or post (`edge` is `comments` on Facebook, `replies` for Instagram comments).
pub fn comment_request(
    graph: &Graph,
    object_id: &str,
    edge: &str,
    token: &str,
    text: &str,
) -> Request {
    post_json(
        &graph.url(&format!("{object_id}/{edge}")),
        token,
        &json!({"message": text}),
    )
}

/// Graph error codes that mean "slow down": application, user, page and custom rate limits,
/// and the Business Use Case limits (80000–80014, e.g. 80006 Messenger, 80002 Instagram).
fn is_rate_limit(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613) || (80000..=80014).contains(&code)
}

/// Seconds to wait: `Retry-After`, else the largest `estimated_time_to_regain_access` (minutes)
/// in `X-Business-Use-Case-Usage`.
pub fn retry_after(response: &Response) -> Option<u32> {
    if let Some(s) = response.retry_after_seconds() {
        return Some(s);
    }
    let usage: Value = serde_json::from_str(response.header("x-business-use-case-usage")?).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    (minutes > 0).then(|| u32::try_from(minutes.saturating_mul(60)).unwrap_or(u32::MAX))
}

fn excerpt(s: &str) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= 200 {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(199).collect();
    cut.push('…');
    cut
}

/// Map a non-2xx Graph answer to a typed error.
pub fn map_error(response: &Response) -> PluginError {
    let status = response.status;
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let error = body.get("error").unwrap_or(&Value::Null);
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(excerpt)
        .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(&response.body)));
    let what = match (code, subcode) {
        (Some(c), Some(s)) => format!("HTTP {status}, Graph error {c}/{s}: {message}"),
        (Some(c), None) => format!("HTTP {status}, Graph error {c}: {message}"),
        _ => format!("HTTP {status}: {message}"),
    };
    if status == 429 || code.is_some_and(is_rate_limit) {
        return PluginError::RateLimited(retry_after(response));
    }
    let window = subcode == Some(2_018_108) || (code == Some(10) && subcode == Some(2_018_278));
    if window {
        return PluginError::Rejected(format!(
            "outside the 24-hour messaging window: the customer has to write again first ({what})"
        ));
    }
    match code {
        Some(190) => {
            return PluginError::Rejected(format!(
                "access token expired or invalid; renew the token ({what})"
            ));
        }
        Some(10) | Some(200..=299) => {
            return PluginError::Rejected(format!("permission missing ({what})"));
        }
        Some(551) => {
            return PluginError::Rejected(format!(
                "this person is not available (blocked the account or cannot be messaged) ({what})"
            ));
        }
        Some(1) | Some(2) => {
            return PluginError::Unavailable(format!("Graph API trouble ({what})"));
        }
        _ => {}
    }
    if error.get("is_transient").and_then(Value::as_bool) == Some(true) || status >= 500 {
        return PluginError::Unavailable(what);
    }
    if (400..500).contains(&status) {
        return PluginError::Rejected(what);
    }
    PluginError::Unavailable(what)
}

/// A 2xx answer becomes a receipt from `message_id` (Send API) or `id` (comments); anything
/// else maps through [`map_error`].
pub fn receipt(response: &Response) -> Result<DeliveryReceipt, PluginError> {
    if !(200..300).contains(&response.status) {
        return Err(map_error(response));
    }
    let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
        PluginError::Internal(format!(
            "Graph answered HTTP {} with a body that is not JSON: {e}",
            response.status
        ))
    })?;
    let external_id = crate::webhook::id(body.get("message_id"))
        .or_else(|| crate::webhook::id(body.get("id")))
        .filter(|id| id.len() <= crate::webhook::MAX_ID_BYTES)
        .ok_or_else(|| {
            PluginError::Internal(format!(
                "Graph answered HTTP {} without a usable `message_id` or `id`",
                response.status
            ))
        })?;
    Ok(DeliveryReceipt {
        external_id,
        url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header;
    use crate::test_support::{lookup, response};

    fn graph_error(status: u16, code: i64, subcode: Option<i64>) -> PluginError {
        let mut error = json!({"message": "Something (#x)", "type": "OAuthException", "code": code, "fbtrace_id": "A"});
        if let Some(s) = subcode {
            error["error_subcode"] = json!(s);
        }
        map_error(&response(status, &[], &json!({"error": error}).to_string()))
    }

    #[test]
    fn settings_defaults_and_validation() {
        let g = Graph::from_lookup(lookup(&[])).unwrap();
        assert_eq!(
            g.url("me/messages"),
            "https://graph.facebook.com/v21.0/me/messages"
        );
        let g = Graph::from_lookup(lookup(&[
            ("api_base", "\"http://127.0.0.1:9/\""),
            ("graph_version", "v19.0"),
        ]))
        .unwrap();
        assert_eq!(
            g.url("/1_2/comments"),
            "http://127.0.0.1:9/v19.0/1_2/comments"
        );
        assert!(
            matches!(Graph::from_lookup(lookup(&[("api_base", "ftp://x")])), Err(PluginError::NotConfigured(m)) if m.contains("api_base"))
        );
        assert!(
            matches!(Graph::from_lookup(lookup(&[("graph_version", "21")])), Err(PluginError::NotConfigured(m)) if m.contains("graph_version"))
        );
        assert!(Graph::from_lookup(lookup(&[("graph_version", "v.1")])).is_err());
    }

    #[test]
    fn node_ids_are_checked_before_they_reach_a_path() {
        assert_eq!(node_id("comment", "1234_5678").unwrap(), "1234_5678");
        assert!(node_id("comment", "").is_err());
        assert!(
            matches!(node_id("comment", "12/../me"), Err(PluginError::InvalidInput(m)) if m.contains("12/../me"))
        );
        assert!(node_id("comment", "1?x=1").is_err());
    }

    #[test]
    fn request_shapes() {
        let g = Graph::from_lookup(lookup(&[])).unwrap();
        let r = send_message_request(&g, "me", "T0KEN", &Recipient::Id("987".into()), "Hi ✈");
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
        assert_eq!(header(&r, "authorization"), Some("Bearer T0KEN"));
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert!(!r.url.contains("T0KEN"));
        assert_eq!(r.timeout_ms, Some(TIMEOUT_MS));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"recipient": {"id": "987"}, "messaging_type": "RESPONSE", "message": {"text": "Hi ✈"}})
        );
        assert_eq!(
            send_api_body(&Recipient::CommentId("c_1".into()), "x")["recipient"],
            json!({"comment_id": "c_1"})
        );
        assert_eq!(
            send_api_body(&Recipient::PostId("p_1".into()), "x")["recipient"],
            json!({"post_id": "p_1"})
        );
        let c = comment_request(&g, "1_2", "replies", "T", "thanks");
        assert_eq!(c.url, "https://graph.facebook.com/v21.0/1_2/replies");
        assert_eq!(
            serde_json::from_slice::<Value>(&c.body).unwrap(),
            json!({"message": "thanks"})
        );
    }

    #[test]
    fn graph_errors_map_to_typed_errors() {
        for code in [4, 17, 32, 613, 80006, 80002] {
            assert!(
                matches!(graph_error(400, code, None), PluginError::RateLimited(None)),
                "{code}"
            );
        }
        assert!(matches!(
            map_error(&response(429, &[("retry-after", "12")], "")),
            PluginError::RateLimited(Some(12))
        ));
        let usage = r#"{"1234":[{"type":"messenger","call_count":100,"estimated_time_to_regain_access":3}]}"#;
        assert!(matches!(
            map_error(&response(
                400,
                &[("x-business-use-case-usage", usage)],
                r#"{"error":{"code":80006,"message":"limit"}}"#
            )),
            PluginError::RateLimited(Some(180))
        ));
        assert!(
            matches!(graph_error(400, 190, Some(463)), PluginError::Rejected(m) if m.starts_with("access token") && m.contains("190/463"))
        );
        assert!(
            matches!(graph_error(403, 10, None), PluginError::Rejected(m) if m.starts_with("permission"))
        );
        assert!(
            matches!(graph_error(403, 200, None), PluginError::Rejected(m) if m.starts_with("permission"))
        );
        assert!(
            matches!(graph_error(400, 551, Some(1545041)), PluginError::Rejected(m) if m.contains("not available"))
        );
        assert!(
            matches!(graph_error(400, 10, Some(2018278)), PluginError::Rejected(m) if m.starts_with("outside the 24-hour messaging window"))
        );
        assert!(
            matches!(graph_error(400, 100, Some(2018108)), PluginError::Rejected(m) if m.starts_with("outside the 24-hour"))
        );
        assert!(matches!(
            graph_error(500, 1, None),
            PluginError::Unavailable(_)
        ));
        assert!(matches!(
            graph_error(400, 2, None),
            PluginError::Unavailable(_)
        ));
        assert!(
            matches!(map_error(&response(502, &[], "<html>Bad gateway</html>")), PluginError::Unavailable(m) if m == "HTTP 502: <html>Bad gateway</html>")
        );
        assert!(
            matches!(graph_error(400, 100, Some(33)), PluginError::Rejected(m) if m.contains("Graph error 100/33: Something (#x)"))
        );
    }

    #[test]
    fn receipts_from_message_id_or_id() {
        let r = receipt(&response(
            200,
            &[],
            r#"{"recipient_id":"987","message_id":"m_AbC"}"#,
        ))
        .unwrap();
        assert_eq!(r.external_id, "m_AbC");
        let r = receipt(&response(200, &[], r#"{"id":"17858893269000001"}"#)).unwrap();
        assert_eq!(r.external_id, "17858893269000001");
        assert!(matches!(
            receipt(&response(200, &[], r#"{"success":true}"#)),
            Err(PluginError::Internal(_))
        ));
        assert!(
            matches!(receipt(&response(200, &[], "ok")), Err(PluginError::Internal(m)) if m.contains("not JSON"))
        );
        assert!(matches!(
            receipt(&response(
                403,
                &[],
                r#"{"error":{"code":10,"message":"no"}}"#
            )),
            Err(PluginError::Rejected(_))
        ));
    }
}
