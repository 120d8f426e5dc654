//! Prometheus metrics of plugin calls, recorded through the `metrics` facade; the server
//! installs the exporter and renders them at `/metrics`. And one `tracing` span per call, which
//! the binary may export as a trace span (the process emits; it never exports by itself).

use std::time::Duration;

use metrics::{counter, histogram};
use tracing::field::Empty;

use crate::error::{CallError, CallFailure, Stage};

/// The span of one plugin call; [`record_call`] fills in how it ended. Attribute names follow
/// the metrics' labels, so a trace and a dashboard speak of the same things.
pub fn call_span(tenant: &str, plugin: &str, version: &str, stage: Stage) -> tracing::Span {
    tracing::info_span!(
        "plugin_call",
        tenant,
        plugin,
        version,
        stage = %stage,
        outcome = Empty,
        error.kind = Empty,
        duration_ms = Empty,
        otel.status_code = Empty,
    )
}

/// How a call ended, on its span: `ok`, `timeout` or `error` (with the failure's kind).
pub fn record_call<T>(span: &tracing::Span, result: &Result<T, CallError>, elapsed: Duration) {
    if span.is_disabled() {
        return;
    }
    span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
    match result {
        Ok(_) => {
            span.record("outcome", "ok");
        }
        Err(e) => {
            let outcome = match e.failure {
                CallFailure::Timeout { .. } => "timeout",
                _ => "error",
            };
            span.record("outcome", outcome);
            span.record("error.kind", e.failure.kind());
            span.record("otel.status_code", "error");
        }
    }
}

/// The per-call metrics of one plugin call.
pub struct CallMetrics {
    labels: [(&'static str, String); 3],
}

impl CallMetrics {
    pub fn new(tenant: &str, plugin: &str, stage: Stage) -> Self {
        CallMetrics {
            labels: [
                ("tenant", tenant.to_string()),
                ("plugin", plugin.to_string()),
                ("stage", stage.to_string()),
            ],
        }
    }

    /// A call ended (in any way) after `elapsed`, having grown its memory to `peak_bytes`.
    pub fn finished(&self, elapsed: Duration, peak_bytes: usize) {
        counter!("switchboard_plugin_calls_total", &self.labels).increment(1);
        histogram!("switchboard_plugin_call_seconds", &self.labels).record(elapsed.as_secs_f64());
        histogram!("switchboard_plugin_memory_bytes", &self.labels).record(peak_bytes as f64);
    }

    /// A call failed; `kind` is [`crate::error::CallFailure::kind`] (timeouts are `timeout`).
    pub fn error(&self, kind: &'static str) {
        let [t, p, s] = &self.labels;
        counter!(
            "switchboard_plugin_errors_total",
            &[t.clone(), p.clone(), s.clone(), ("kind", kind.to_string())]
        )
        .increment(1);
    }
}
