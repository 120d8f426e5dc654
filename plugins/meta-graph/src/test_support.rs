//! Fixtures the Meta crates' unit tests share (feature `test-support`), so that each connector
//! crate tests only its own rules and no two copies of a fixture drift apart.

use serde_json::Value;
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{Author, Event, HttpRequest, OutboundReply, PluginError, Visibility};

use crate::connector::Spec;
use crate::graph::Graph;

/// The recipient id of [`reply`].
pub const RECIPIENT: &str = "USER-7";
/// The text of [`reply`].
pub const TEXT: &str = "Sorry about that — fixed. ^ana";

/// A reply to [`RECIPIENT`] answering `in_reply_to`, carrying the answered message's `extra`.
pub fn reply(
    visibility: Visibility,
    in_reply_to: Option<&str>,
    extra: &[(&str, &str)],
) -> OutboundReply {
    OutboundReply {
        idempotency_key: "r-1".into(),
        conversation_key: "c".into(),
        in_reply_to: in_reply_to.map(String::from),
        recipient: Author {
            id: RECIPIENT.into(),
            handle: None,
            display_name: None,
        },
        text: TEXT.into(),
        visibility,
        extra: pairs(extra),
    }
}

/// The request `spec`'s connector builds for `reply`, sent as `account` to the real Graph API.
pub fn build(
    spec: &Spec,
    account: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<Request, PluginError> {
    let graph = Graph::from_lookup(|_| None)?;
    crate::connector::build(spec, &graph, account, token, reply)
}

/// Why `spec`'s connector refuses to build `reply` (an `invalid-input`); panics if it does not.
pub fn refusal(spec: &Spec, reply: &OutboundReply) -> String {
    match build(spec, "me", "T", reply) {
        Err(PluginError::InvalidInput(m)) => m,
        other => panic!("expected invalid-input, got {other:?}"),
    }
}

/// An outgoing request's JSON body.
pub fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("the request body is JSON")
}

/// An inbound request as the host hands it over.
pub fn request(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        url: url.into(),
        headers,
        body: body.to_vec(),
    }
}

/// A `POST` of `body` signed with `app-secret` as Meta signs deliveries.
pub fn signed_post(url: &str, app_secret: &str, body: &[u8]) -> HttpRequest {
    let signature = crate::signature::sign(app_secret, body);
    request(
        "POST",
        url,
        vec![(crate::signature::HEADER.into(), signature)],
        body,
    )
}

/// A Graph API answer.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A config or secret lookup over fixed pairs.
pub fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    }
}

/// Owned key-value pairs, as in a message's `extra`.
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The first value of an outgoing request's header `name` (names are lowercase).
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The event type and reason of the one skipped event in `events`; panics on anything else.
pub fn only_skip(events: &[Event]) -> (Option<String>, String) {
    match events {
        [Event::Skipped(s)] => (s.event_type.clone(), s.reason.clone()),
        other => panic!("expected one skip, got {other:?}"),
    }
}
