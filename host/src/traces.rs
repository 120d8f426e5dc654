//! Trace export over OTLP/HTTP (protobuf), for `switchboard serve`. The library crates emit
//! plain `tracing` spans (`ingress`, `accept`, `process`, `plugin_call`, `deliver`); this is the
//! one place that turns them into OpenTelemetry spans and sends them, and that installs the
//! propagator which carries a message's trace context through the store.
//!
//! Off unless an endpoint is configured (`--otlp-endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`): then no layer, no propagator, nothing stored.
//! When on, spans go through the SDK's batch processor: a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`,
//! 2048) drained by a background thread every `OTEL_BSP_SCHEDULE_DELAY` (5 s), so a slow or dead
//! collector costs dropped spans (logged once, then counted at shutdown; failed exports at most
//! once a minute), never a slower message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// The standard variables that turn export on without the flag.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
/// How long shutdown waits for the last spans to leave (a dead collector must not hold it up).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The exporter while it runs; [`Traces::shutdown`] flushes what is queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

/// A subscriber layer that exports spans, boxed so the binary can stack it conditionally.
pub type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The log's filter for the OpenTelemetry crates' own events: their notes on dropped spans are
/// kept (the SDK emits them once, then a total at shutdown), their two lines per failed export
/// are not (with a dead collector that is a line or two every second). [`Client`] logs failed
/// exports itself, at most once a minute.
pub fn log_filter(meta: &tracing::Metadata<'_>) -> bool {
    !meta.target().starts_with("opentelemetry") || meta.name().contains("Dropp")
}

/// Whether export is configured: the flag, or a non-empty standard variable, unless the
/// standard `OTEL_SDK_DISABLED=true` says otherwise.
pub fn configured(flag: Option<&str>) -> bool {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    flag.is_some_and(|f| !f.is_empty())
        || ENDPOINT_VARS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Build the exporter and its layer, and install the propagator. `flag` is a base URL like
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended); without it the SDK reads the
/// standard variables. Exports run on `rt` (the server's runtime), off the request path.
pub fn start(
    flag: Option<&str>,
    rt: tokio::runtime::Handle,
) -> anyhow::Result<(BoxedLayer, Traces)> {
    let timeout = export_timeout();
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the OTLP HTTP client")?,
        rt,
        failures: Arc::default(),
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(client)
        .with_timeout(timeout);
    if let Some(base) = flag.filter(|f| !f.is_empty()) {
        exporter = exporter.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    let exporter = exporter
        .build()
        .context("configuring the OTLP trace exporter")?;
    let mut resource = Resource::builder();
    // The operator's OTEL_SERVICE_NAME wins (the builder reads it); otherwise ours.
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("switchboard");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("switchboard");
    // Our own spans only: the HTTP stack's and the SDK's own would be noise (or feedback).
    let targets = Targets::new()
        .with_target("switchboard", LevelFilter::INFO)
        .with_default(LevelFilter::OFF);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Per span: no thread, source location or busy/idle clock reads. They roughly halve
        // the payload and save two clock reads per poll of every instrumented future.
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
        .with_filter(targets);
    switchboard_care::traces::install(Box::new(W3c));
    Ok((Box::new(layer), Traces { provider }))
}

impl Traces {
    /// Send what is still queued, waiting at most a few seconds.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_WAIT) {
            tracing::warn!(error = %e, "traces: the last spans may not have been exported");
        }
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), else 10 s.
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// W3C trace context in and out of the store.
struct W3c;

impl switchboard_care::traces::Propagator for W3c {
    fn traceparent(&self, span: &tracing::Span) -> Option<String> {
        let cx = span.context();
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        carrier.remove("traceparent")
    }

    fn set_parent(&self, span: &tracing::Span, traceparent: &str) {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let cx = TraceContextPropagator::new().extract(&carrier);
        if cx.span().span_context().is_valid() {
            // Fails only for a span already started or filtered out: it then keeps its parent.
            let _ = span.set_parent(cx);
        }
    }
}

/// The exporter's HTTP client: the workspace's reqwest (rustls) instead of the exporter's own,
/// which would bring a second reqwest and TLS stack. The batch processor calls it from its own
/// thread, outside any runtime, so each request runs as a task on the server's runtime.
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    rt: tokio::runtime::Handle,
    failures: Arc<Failures>,
}

/// How often a failing collector is mentioned in the log.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Failed exports: one warning per [`FAILURE_LOG_EVERY`], with how many were held back since.
#[derive(Debug, Default)]
struct Failures {
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl Failures {
    fn record(&self, error: &dyn std::fmt::Display) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < FAILURE_LOG_EVERY) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let held_back = self.held_back.swap(0, Ordering::Relaxed);
        tracing::warn!(%error, held_back, "traces: export to the OTLP collector failed; its spans are dropped");
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let failures = self.failures.clone();
        let task = self.rt.spawn(async move {
            let response = match http.execute(request).await {
                Ok(r) if !r.status().is_success() => {
                    failures.record(&format_args!("the collector answered {}", r.status()));
                    r
                }
                Ok(r) => r,
                Err(e) => {
                    failures.record(&e);
                    return Err(e.into());
                }
            };
            let mut out = http::Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(out.body(body)?)
        });
        task.await?
    }
}
