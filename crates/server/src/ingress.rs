//! Webhook ingress: `/hooks/{tenant}/{connector}`. The connector verifies and decodes the
//! request; every message is stored before the platform gets its 200, and nothing is stored
//! for a request that fails verification.
//!
//! Anyone can call these routes, so the cheap checks come first: an unknown tenant or
//! connector, a tenant over its rate limit and a declared length over the limit are answered
//! before a byte of the body is read. Only then is the body read (whole, within the body
//! timeout), and only then does the request wait for one of its tenant's in-flight slots
//! ([`switchboard_runtime::TenantSlots`]) to run the connector: a flood aimed at one tenant
//! queues behind that tenant's slots and is turned away with 429, while other tenants keep
//! theirs.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument;
use tracing::field::Empty;

use super::{AppState, error_response};
use switchboard_care::worker::{IngestError, Intake};
use switchboard_contract::{
    AnsweredWebhook, HttpRequest, HttpResponse, PluginError, WebhookOutcome,
};
use switchboard_runtime::CallFailure;

pub async fn webhook(
    State(state): State<AppState>,
    Path((tenant, connector)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (tenant_label, connector_label) = labels(&state, &tenant, &connector);
    // The root of each message's trace: the connector's call and every message it yields
    // (processing and delivery continue it from the store). Named by the configured labels only,
    // like the metrics: a stranger's path is not an attribute.
    let span = tracing::info_span!(
        "ingress",
        tenant = tenant_label,
        connector = connector_label,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    let response = handle(&state, &tenant, &connector, method, uri, headers, body)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    // A refusal is the caller's failure; only ours (5xx, the platform retries) marks the trace.
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    crate::ops::ingress(
        tenant_label,
        connector_label,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Metric labels for a webhook path: the names as given only when the operator configured
/// them, otherwise [`crate::ops::UNKNOWN`]. The path is the caller's: recording it raw would
/// let strangers mint one series per request and grow memory and `/metrics` without limit.
fn labels<'a>(state: &AppState, tenant: &'a str, connector: &'a str) -> (&'a str, &'a str) {
    match state.registry.get(tenant) {
        None => (crate::ops::UNKNOWN, crate::ops::UNKNOWN),
        Some(live)
            if live
                .tenant
                .connectors
                .iter()
                .any(|c| c.instance.name == connector) =>
        {
            (tenant, connector)
        }
        Some(_) => (tenant, crate::ops::UNKNOWN),
    }
}

async fn handle(
    state: &AppState,
    tenant_name: &str,
    connector_name: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Unknown and disabled tenants look alike from outside: nothing here for the caller.
    // Every answer before the body is read closes the connection: see [`closing`].
    let Some(live) = state.registry.get(tenant_name).filter(|l| !l.disabled) else {
        return closing(error_response(
            StatusCode::NOT_FOUND,
            format!("no tenant `{tenant_name}` takes webhooks here"),
        ));
    };
    let tenant = live.tenant.clone();
    let Some(connector) = tenant
        .connectors
        .iter()
        .find(|c| c.instance.name == connector_name)
    else {
        return closing(error_response(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant_name}` has no connector `{connector_name}`"),
        ));
    };
    if live.limiter.check().is_err() {
        let mut r = closing(error_response(
            StatusCode::TOO_MANY_REQUESTS,
            format!("tenant `{tenant_name}` is over its webhook rate limit"),
        ));
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let limit = state.options.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    // Whole within the body timeout: a trickle of bytes, each in time, cannot hold the
    // connection (and its buffer) for longer.
    let body = match tokio::time::timeout(
        state.options.body_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if is_over_limit(&e) => return too_large(limit),
        Ok(Err(_)) | Err(_) => {
            return closing(error_response(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time".into(),
            ));
        }
    };
    let Some(_slot) = state
        .ingress_slots
        .acquire(tenant_name, state.options.ingress_wait)
        .await
    else {
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "tenant `{tenant_name}` has {} webhooks in flight; retry shortly",
                state.ingress_slots.per_tenant()
            ),
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    };
    let request = HttpRequest {
        method: method.as_str().to_ascii_uppercase(),
        url: format!(
            "{}{}",
            state.options.public_url.trim_end_matches('/'),
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        // Moved, not copied, when the body arrived as one buffer.
        body: body.into(),
    };
    match state.engine.ingest(connector, &request).await {
        Ok((
            AnsweredWebhook {
                outcome: WebhookOutcome::Challenge(r),
                ..
            },
            _,
        )) => plugin_response(r).unwrap_or_else(|_| {
            error_response(
                StatusCode::BAD_GATEWAY,
                format!(
                    "connector `{connector_name}` answered the challenge with an invalid response"
                ),
            )
        }),
        Ok((
            AnsweredWebhook {
                outcome: WebhookOutcome::Events(_),
                acknowledgement,
            },
            intakes,
        )) => {
            let (mut accepted, mut duplicates, mut skipped) = (0, 0, 0);
            for i in &intakes {
                match i {
                    Intake::Accepted(a) => {
                        crate::ops::accepted(tenant_name, connector_name, a.duplicate);
                        if a.duplicate {
                            duplicates += 1;
                        } else {
                            accepted += 1;
                        }
                    }
                    Intake::Skipped { .. } => skipped += 1,
                }
            }
            if accepted > 0 {
                state.registry.waker(tenant_name).notify_one();
            }
            // The connector knows what this platform expects for this request; the tenant's
            // fixed answer is the fallback for connectors that do not say.
            if let Some(ack) = acknowledgement {
                // Checked by the runtime (2xx, safe headers); an unbuildable one still
                // acknowledges, because the messages are stored.
                return plugin_response(ack).unwrap_or_else(|_| StatusCode::OK.into_response());
            }
            if let Some(ack) = &connector.ack {
                return Response::builder()
                    .status(ack.status)
                    .header("content-type", &ack.content_type)
                    .body(axum::body::Body::from(ack.body.clone()))
                    .unwrap_or_else(|_| StatusCode::OK.into_response());
            }
            (
                StatusCode::OK,
                axum::Json(json!({
                    "accepted": accepted,
                    "duplicates": duplicates,
                    "skipped": skipped,
                })),
            )
                .into_response()
        }
        Err(IngestError::Refused(e)) => {
            let status = match &e.failure {
                CallFailure::Plugin {
                    error: PluginError::Unauthorized(_),
                } => StatusCode::UNAUTHORIZED,
                CallFailure::Plugin {
                    error: PluginError::InvalidInput(_),
                } => StatusCode::BAD_REQUEST,
                CallFailure::Plugin {
                    error: PluginError::NotConfigured(_),
                } => StatusCode::INTERNAL_SERVER_ERROR,
                // A connector that trapped, hung or is unavailable: the platform should retry.
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            // Anyone can send these: one line per tenant and connector per interval, the
            // rest at debug (and all of them in the metrics).
            match state.log_limiter.admit(
                &format!("refused {tenant_name}/{connector_name}"),
                Instant::now(),
            ) {
                Some(held_back) => {
                    tracing::warn!(tenant = %tenant_name, connector = %connector_name, %status, error = %e, held_back, "webhook refused")
                }
                None => {
                    tracing::debug!(tenant = %tenant_name, connector = %connector_name, %status, error = %e, "webhook refused")
                }
            }
            error_response(status, e.to_string())
        }
        Err(IngestError::Store(e)) => {
            match state.log_limiter.admit(
                &format!("unstored {tenant_name}/{connector_name}"),
                Instant::now(),
            ) {
                Some(held_back) => {
                    tracing::error!(tenant = %tenant_name, connector = %connector_name, error = %e, held_back, "webhook not stored; the platform will retry")
                }
                None => {
                    tracing::debug!(tenant = %tenant_name, connector = %connector_name, error = %e, "webhook not stored; the platform will retry")
                }
            }
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the message could not be stored; retry later".into(),
            )
        }
    }
}

/// A response a connector wrote (a challenge or an acknowledgement), as the platform gets it;
/// an error when its status or a header is not valid HTTP.
fn plugin_response(r: HttpResponse) -> Result<Response, axum::http::Error> {
    let mut response = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        response = response.header(k, v);
    }
    response.body(axum::body::Body::from(r.body))
}

fn too_large(limit: usize) -> Response {
    closing(error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("webhook bodies are limited to {limit} bytes"),
    ))
}

/// Marks a response sent before the request body was read to its end: the server drops the
/// connection after it, and `Connection: close` tells the client not to pool it. Without it a
/// client still writing the refused body may send its next request down a closed socket.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Whether reading a body failed because it passed the length limit (rather than the client
/// going away or stalling).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
