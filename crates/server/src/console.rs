//! The agent console (issue 15): the care team's workplace in the browser, served at `/`.
//!
//! The console is a static page and a small script (embedded in the binary, no build step)
//! that works through the same JSON API as every other client, so each state change goes
//! through the API's handlers and their authorization. What this module adds:
//!
//! - sign-in: a person exchanges their personal API token (sent once, in a POST body) for a
//!   session cookie (`HttpOnly; SameSite=Strict`, `Secure` unless the page was reached on
//!   loopback); sessions are stored hashed, expire after [`SESSION_TTL_MS`] and end on
//!   sign-out or when the token is revoked;
//! - CSRF: every state change made with the cookie must carry the session's CSRF token in
//!   `X-CSRF-Token` ([`csrf`]); sign-in itself accepts only JSON from the same origin;
//! - a strict Content-Security-Policy on every response ([`security_headers`]): no inline
//!   script or style, so customer text that slips into markup still runs nothing (the script
//!   only ever writes text nodes);
//! - live updates: `/console/events`, Server-Sent Events telling the page the inbox changed.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::api::{ApiError, COOKIE, body_json, flatten, ok, session_cookie, store_error};
use super::{AppState, error_response};

/// How long a console session lasts: a long shift. Signing in again starts a new one.
pub const SESSION_TTL_MS: i64 = 10 * 60 * 60 * 1000;

/// The policy every response carries: only this origin's script and style, no plugins, no
/// framing, no `<base>` tricks.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The policy on webhook answers: a sandboxed document with its own opaque origin that may
/// load nothing, whatever body and content type the connector gave.
pub const HOOKS_CSP: &str = "sandbox; default-src 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/console/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/console/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/console/session", post(sign_in).get(me))
        .route("/console/session/end", post(sign_out))
        .route("/console/events", get(events))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The CSRF token of a session: derived from the secret only the `HttpOnly` cookie holds, so
/// another site can neither read nor compute it, and nothing more needs storing.
fn csrf_token(session: &str) -> String {
    hex::encode(Sha256::digest(
        format!("switchboard-csrf:{session}").as_bytes(),
    ))
}

/// Whether the browser reached us on a loopback name, where there is no TLS to require.
fn on_loopback(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    name == "localhost" || name == "[::1]" || name.starts_with("127.")
}

fn cookie(headers: &HeaderMap, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if on_loopback(headers) { "" } else { "; Secure" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .expect("a session cookie is ASCII")
}

/// Refuse a state change that rides on the session cookie without its CSRF token. Requests
/// with a bearer token are not the browser's (cookies are ignored for them) and pass.
pub async fn csrf(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    if !safe
        && headers.get(header::AUTHORIZATION).is_none()
        && let Some(session) = session_cookie(headers)
    {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Compared as digests: no early exit on how much of the secret matched.
        if Sha256::digest(sent.as_bytes()) != Sha256::digest(csrf_token(session).as_bytes()) {
            return error_response(
                StatusCode::FORBIDDEN,
                "a console change needs the session's CSRF token (X-CSRF-Token)".into(),
            );
        }
    }
    next.run(request).await
}

/// The security headers of every response (JSON included: harmless there, and a browser
/// opening an API URL directly gets the same protection).
pub async fn security_headers(request: Request, next: Next) -> Response {
    // Webhook answers carry what a plugin chose (a challenge, an acknowledgement): on this
    // origin, which holds the console's session, they must never run as a page or a script.
    let platform_facing = request.uri().path().starts_with("/hooks/");
    let mut r = next.run(request).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if platform_facing { HOOKS_CSP } else { CSP }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The person's API token.
    key: String,
}

/// Sign in with a personal API token. Only a JSON body is accepted, and only from this
/// origin: another site cannot post JSON here without a CORS preflight we never answer, so it
/// cannot sign a visitor into an account of its choosing.
async fn sign_in(State(s): State<AppState>, h: HeaderMap, body: Bytes) -> Response {
    flatten(
        async {
            let json_body = h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json_body {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "sign in with a JSON body".into(),
                ));
            }
            if let (Some(origin), Some(host)) = (h.get(header::ORIGIN), h.get(header::HOST)) {
                let origin = origin.to_str().unwrap_or("");
                let host = host.to_str().unwrap_or("");
                if origin.split_once("://").map(|(_, o)| o) != Some(host) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "sign in from the console's own page".into(),
                    ));
                }
            }
            let b: SignIn = body_json(&body)?;
            let Some((session, owner)) = s
                .engine
                .store
                .create_session(b.key.trim(), SESSION_TTL_MS)
                .await
                .map_err(store_error)?
            else {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "that key is not valid (ask your admin for a new one)".into(),
                ));
            };
            tracing::info!(tenant = %owner.tenant, person = %owner.name, "console sign-in");
            let mut r = axum::Json(json!({
                "tenant": owner.tenant,
                "role": owner.role,
                "name": owner.name,
                "csrf": csrf_token(&session),
            }))
            .into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&h, &session, SESSION_TTL_MS / 1000),
            );
            Ok(r)
        }
        .await,
    )
}

/// Who is signed in, with the CSRF token the page sends back on every change.
async fn me(State(s): State<AppState>, h: HeaderMap) -> Response {
    flatten(
        async {
            let session = session_cookie(&h).ok_or_else(not_signed_in)?;
            let owner = s
                .engine
                .store
                .session_owner(session)
                .await
                .map_err(store_error)?
                .ok_or_else(not_signed_in)?;
            ok(json!({
                "tenant": owner.tenant,
                "role": owner.role,
                "name": owner.name,
                "csrf": csrf_token(session),
            }))
        }
        .await,
    )
}

fn not_signed_in() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "not signed in".into())
}

async fn sign_out(State(s): State<AppState>, h: HeaderMap) -> Response {
    if let Some(session) = session_cookie(&h)
        && let Err(e) = s.engine.store.end_session(session).await
    {
        return store_error(e).into_response();
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&h, "", 0));
    r
}

/// How often the event stream looks at the inbox.
const EVENTS_EVERY: Duration = Duration::from_secs(1);
/// How long one event stream lasts; the browser reconnects on its own. Bounded so a stream
/// never outlives a revoked session by much.
const EVENTS_FOR: Duration = Duration::from_secs(300);

/// `inbox` events whenever the signed-in person's tenant inbox changes: the page then fetches
/// it again through the API. The stream ends when the server shuts down.
async fn events(State(s): State<AppState>, h: HeaderMap) -> Response {
    let owner = match session_cookie(&h) {
        Some(session) => s.engine.store.session_owner(session).await,
        None => Ok(None),
    };
    let tenant = match owner {
        Ok(Some(o)) => o.tenant,
        Ok(None) => return not_signed_in().into_response(),
        Err(e) => return store_error(e).into_response(),
    };
    let until = tokio::time::Instant::now() + EVENTS_FOR;
    let stream = futures::stream::unfold(
        (s, tenant, None::<String>),
        move |(s, tenant, mut last)| async move {
            loop {
                if !s.is_ready() || tokio::time::Instant::now() >= until {
                    return None;
                }
                // A store error leaves the fingerprint as it was: no event, look again later.
                let fingerprint = match s.engine.store.inbox_version(&tenant).await {
                    Ok(v) => v,
                    Err(_) => last.clone().unwrap_or_default(),
                };
                if last.as_deref() != Some(fingerprint.as_str()) {
                    let first = last.is_none();
                    last = Some(fingerprint);
                    if !first {
                        let event = Event::default().event("inbox").data("changed");
                        return Some((Ok::<_, std::convert::Infallible>(event), (s, tenant, last)));
                    }
                }
                tokio::time::sleep(EVENTS_EVERY).await;
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
