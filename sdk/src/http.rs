//! Outbound HTTP through the standard `wasi:http/outgoing-handler`.
//!
//! The host lets a request through only to a host that the plugin declared in
//! [`PluginInfo::egress`](crate::PluginInfo) and the tenant allows; anything else fails with
//! [`HttpError::Denied`] before a connection is made.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Overall time to wait for the response head, in milliseconds.
    pub timeout_ms: Option<u64>,
}

impl Request {
    pub fn get(url: &str) -> Self {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: vec![],
            body: vec![],
            timeout_ms: None,
        }
    }
    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![],
            body: body.into(),
            timeout_ms: None,
        }
    }
    /// A POST with a JSON body and content type.
    pub fn post_json(url: &str, body: &serde_json::Value) -> Self {
        Request::post(url, serde_json::to_vec(body).unwrap_or_default())
            .header("content-type", "application/json")
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
}

/// A response with its whole body read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `Retry-After` header in whole seconds (the HTTP-date form is not parsed).
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse().ok())
    }
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Body(e.to_string()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The URL is not one this helper can send (bad scheme, no host).
    InvalidUrl(String),
    /// The host refused the request by policy (egress not declared or not allowed, private address).
    Denied(String),
    /// The request was sent but failed (DNS, connect, timeout, response too large, ...).
    Failed(String),
    /// Reading or decoding the body failed.
    Body(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid url: {m}"),
            HttpError::Denied(m) => write!(f, "egress denied: {m}"),
            HttpError::Failed(m) => write!(f, "request failed: {m}"),
            HttpError::Body(m) => write!(f, "bad response body: {m}"),
        }
    }
}

impl From<HttpError> for crate::PluginError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(m) => {
                crate::PluginError::NotConfigured(format!("egress denied: {m}"))
            }
            HttpError::InvalidUrl(m) => crate::PluginError::Internal(format!("invalid url: {m}")),
            other => crate::PluginError::Unavailable(other.to_string()),
        }
    }
}

fn error_code(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied("request denied by host policy".into()),
        ErrorCode::DestinationIpProhibited => {
            HttpError::Denied("destination address is not allowed".into())
        }
        other => HttpError::Failed(format!("{other:?}")),
    }
}

/// Split `scheme://authority/path?query`.
fn split_url(url: &str) -> Result<(Scheme, String, String), HttpError> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else {
        return Err(HttpError::InvalidUrl(format!(
            "{url}: only http and https are supported"
        )));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() {
        return Err(HttpError::InvalidUrl(format!("{url}: no host")));
    }
    Ok((scheme, authority.to_string(), path))
}

/// Send `request` and read the whole response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&fields)
        .map_err(|e| HttpError::InvalidUrl(format!("bad header: {e:?}")))?;
    let out = OutgoingRequest::new(headers);
    let method = match request.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| HttpError::InvalidUrl(format!("{}: bad {what}", request.url));
    out.set_method(&method).map_err(|_| bad("method"))?;
    out.set_scheme(Some(&scheme)).map_err(|_| bad("scheme"))?;
    out.set_authority(Some(&authority))
        .map_err(|_| bad("host"))?;
    out.set_path_with_query(Some(&path))
        .map_err(|_| bad("path"))?;
    let body = out
        .body()
        .map_err(|_| HttpError::Failed("request body unavailable".into()))?;

    let options = request.timeout_ms.map(|ms| {
        let o = RequestOptions::new();
        let ns = ms.saturating_mul(1_000_000);
        let _ = o.set_connect_timeout(Some(ns));
        let _ = o.set_first_byte_timeout(Some(ns));
        o
    });
    let future = outgoing_handler::handle(out, options).map_err(error_code)?;
    {
        let stream = body
            .write()
            .map_err(|_| HttpError::Failed("request body stream".into()))?;
        for chunk in request.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Failed(format!("writing request body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(error_code)?;

    let response = loop {
        if let Some(result) = future.get() {
            break result
                .map_err(|_| HttpError::Failed("response already taken".into()))?
                .map_err(error_code)?;
        }
        future.subscribe().block();
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| HttpError::Body("body already taken".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| HttpError::Body("body stream".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(HttpError::Body(format!("{e:?}"))),
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}
