//! A fake platform API on loopback, for connector tests that deliver or poll.
//!
//! A connector under test talks real HTTP through the host's egress (with
//! [`Harness::allow_private_addresses`](crate::Harness::allow_private_addresses)), so the fake
//! has to be a real server: [`PlatformMock`] listens on `127.0.0.1`, records every request and
//! answers from a script: per-route answers first (a queue whose last answer repeats), then a
//! responder for answers that depend on the request, else `404`. It stops when dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query, e.g. `/v21.0/me/messages`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Header names lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The decoded `application/x-www-form-urlencoded` body, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_pairs(&self.body)
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_pairs(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// `path?query`, as the request line had it.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One answer the mock gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            self.body,
        )
            .into_response();
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().append(n, v);
            }
        }
        response
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

struct Route {
    method: String,
    path: String,
    /// Answers in order; the last one repeats.
    answers: VecDeque<Reply>,
}

#[derive(Default)]
struct State {
    seen: Vec<Recorded>,
    routes: Vec<Route>,
    responder: Option<Responder>,
}

/// A fake platform API on `127.0.0.1`; see the [module docs](self).
pub struct PlatformMock {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl PlatformMock {
    /// Start listening on a free loopback port. Must run inside a tokio runtime.
    pub async fn start() -> PlatformMock {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the platform mock");
        let addr = listener.local_addr().expect("the mock's address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        PlatformMock {
            url: format!("http://{addr}"),
            state,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash: the connector's API base.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answer `method path` (path without query; method `*` for any) with `reply`, every time.
    pub fn route(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.script(method, path, [reply])
    }

    /// Answer `method path` with `replies` in order, repeating the last one. Replaces an earlier
    /// script for the same route.
    pub fn script(
        &self,
        method: &str,
        path: &str,
        replies: impl IntoIterator<Item = Reply>,
    ) -> &Self {
        let answers: VecDeque<Reply> = replies.into_iter().collect();
        assert!(!answers.is_empty(), "a scripted route needs an answer");
        let mut state = self.lock();
        state
            .routes
            .retain(|r| !(r.method.eq_ignore_ascii_case(method) && r.path == path));
        state.routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            answers,
        });
        self
    }

    /// Queue one more answer for `method path` after those already scripted (the last answer
    /// repeats), for scripts built up step by step.
    pub fn then(&self, method: &str, path: &str, reply: Reply) -> &Self {
        let mut state = self.lock();
        let method = method.to_ascii_uppercase();
        match state
            .routes
            .iter_mut()
            .find(|r| r.method == method && r.path == path)
        {
            Some(route) => route.answers.push_back(reply),
            None => state.routes.push(Route {
                method,
                path: path.into(),
                answers: VecDeque::from([reply]),
            }),
        }
        self
    }

    /// Answer requests no route matches by `responder` (`None` falls through to `404`), for
    /// answers that depend on the request, such as its body.
    pub fn respond_with(
        &self,
        responder: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static,
    ) -> &Self {
        self.lock().responder = Some(Arc::new(responder));
        self
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().seen.clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.lock().seen.len()
    }

    /// The requests to `path` so far, in order.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.lock()
            .seen
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PlatformMock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Connections kept alive would hold a graceful shutdown open; the test is over.
        self.task.abort();
    }
}

fn answer(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.seen.push(recorded.clone());
    if let Some(route) = state
        .routes
        .iter_mut()
        .find(|r| (r.method == "*" || r.method == recorded.method) && r.path == recorded.path)
    {
        return if route.answers.len() > 1 {
            route.answers.pop_front().expect("more than one answer")
        } else {
            route.answers[0].clone()
        };
    }
    let responder = state.responder.clone();
    // The responder runs without the lock so that it may read the mock's state itself.
    drop(state);
    responder.and_then(|r| r(&recorded)).unwrap_or_else(|| {
        Reply::text(
            404,
            &format!(
                "platform mock: no route for {} {}",
                recorded.method, recorded.path
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 exchange over a fresh connection: (status, body).
    async fn call(
        url: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let addr = url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn records_method_path_query_headers_and_body() {
        let mock = PlatformMock::start().await;
        mock.route("POST", "/v1/send", Reply::json(200, &json!({"id": "m1"})));
        let (status, body) = call(
            mock.url(),
            "POST",
            "/v1/send?dry=1",
            &[
                ("Authorization", "Bearer T"),
                ("content-type", "application/json"),
            ],
            br#"{"text":"hi"}"#,
        )
        .await;
        assert_eq!((status, body.as_str()), (200, r#"{"id":"m1"}"#));
        let seen = mock.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/v1/send");
        assert_eq!(seen[0].query.as_deref(), Some("dry=1"));
        assert_eq!(seen[0].path_and_query(), "/v1/send?dry=1");
        assert_eq!(seen[0].header("authorization"), Some("Bearer T"));
        assert_eq!(seen[0].json(), json!({"text": "hi"}));
        assert_eq!(mock.requests_to("/v1/send").len(), 1);
    }

    #[tokio::test]
    async fn scripts_repeat_their_last_answer_and_unknown_routes_are_404() {
        let mock = PlatformMock::start().await;
        mock.script(
            "POST",
            "/x",
            [
                Reply::status(429).header("retry-after", "3"),
                Reply::text(200, "ok"),
            ],
        );
        assert_eq!(call(mock.url(), "POST", "/x", &[], b"").await.0, 429);
        assert_eq!(
            call(mock.url(), "POST", "/x", &[], b"").await,
            (200, "ok".into())
        );
        assert_eq!(
            call(mock.url(), "POST", "/x", &[], b"").await,
            (200, "ok".into())
        );
        assert_eq!(call(mock.url(), "GET", "/x", &[], b"").await.0, 404);
        assert_eq!(mock.count(), 4);
    }

    #[tokio::test]
    async fn a_responder_answers_from_the_request() {
        let mock = PlatformMock::start().await;
        mock.respond_with(|r| (r.json()["to"] == "flood").then(|| Reply::status(429)));
        mock.route("GET", "/fixed", Reply::text(201, "fixed"));
        let flood = br#"{"to":"flood"}"#;
        assert_eq!(call(mock.url(), "POST", "/send", &[], flood).await.0, 429);
        assert_eq!(call(mock.url(), "POST", "/send", &[], b"{}").await.0, 404);
        assert_eq!(call(mock.url(), "GET", "/fixed", &[], b"").await.0, 201);
        let form = mock.requests()[0].clone();
        assert_eq!(form.text(), r#"{"to":"flood"}"#);
    }

    #[tokio::test]
    async fn answers_queue_up_and_any_method_matches_a_star() {
        let mock = PlatformMock::start().await;
        mock.then("*", "/q", Reply::status(201))
            .then("*", "/q", Reply::status(202));
        assert_eq!(
            call(mock.url(), "GET", "/q?a=1&b=x+y", &[], b"").await.0,
            201
        );
        assert_eq!(call(mock.url(), "POST", "/q", &[], b"").await.0, 202);
        assert_eq!(call(mock.url(), "PUT", "/q", &[], b"").await.0, 202);
        assert_eq!(
            mock.requests()[0].query_pairs(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn form_bodies_decode() {
        let mock = PlatformMock::start().await;
        mock.route("POST", "/f", Reply::status(204));
        call(mock.url(), "POST", "/f", &[], b"To=%2B1555&Body=hi+there&x").await;
        assert_eq!(
            mock.requests()[0].form(),
            vec![
                ("To".to_string(), "+1555".to_string()),
                ("Body".to_string(), "hi there".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
    }

    #[tokio::test]
    async fn dropping_the_mock_stops_the_server() {
        let mock = PlatformMock::start().await;
        let addr = mock.url().trim_start_matches("http://").to_string();
        drop(mock);
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
    }
}
