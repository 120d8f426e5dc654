//! Operations: Prometheus metrics for plugin calls, ingress, delivery and queues. The runtime
//! and the workers record through the `metrics` facade; the server renders them at `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The label recorded for a tenant or connector the server does not serve: labels come only
/// from configuration, never from what a caller put in the path.
pub const UNKNOWN: &str = "unknown";

/// A webhook request's result, by tenant, connector and HTTP status. Callers pass only
/// configured names (or [`UNKNOWN`]), so the number of series stays bounded.
pub fn ingress(tenant: &str, connector: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("connector", connector.to_string()),
        ("status", status.to_string()),
    ];
    counter!("switchboard_webhook_requests_total", &labels).increment(1);
    histogram!("switchboard_webhook_seconds", &labels[..2]).record(elapsed.as_secs_f64());
}

/// Messages stored by ingress or polling (`duplicate` for redeliveries).
pub fn accepted(tenant: &str, connector: &str, duplicate: bool) {
    counter!(
        "switchboard_messages_accepted_total",
        &[
            ("tenant", tenant.to_string()),
            ("connector", connector.to_string()),
            ("duplicate", duplicate.to_string()),
        ]
    )
    .increment(1);
}

/// One delivery attempt's outcome: `sent`, `retrying` or `dead`.
pub fn delivery(tenant: &str, outcome: &'static str, n: usize) {
    if n > 0 {
        counter!(
            "switchboard_deliveries_total",
            &[
                ("tenant", tenant.to_string()),
                ("outcome", outcome.to_string())
            ]
        )
        .increment(n as u64);
    }
}

/// Messages processed by the pipeline, by result (`done`, `held`, `failed`).
pub fn processed(tenant: &str, result: &str) {
    counter!(
        "switchboard_messages_processed_total",
        &[
            ("tenant", tenant.to_string()),
            ("result", result.to_string())
        ]
    )
    .increment(1);
}

/// Install the Prometheus recorder once per process and return its handle.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_bytes".into()),
                    &[
                        1_048_576.0,
                        4_194_304.0,
                        16_777_216.0,
                        67_108_864.0,
                        268_435_456.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding application's): then
            // ours only renders what is recorded through it, which is nothing; say so.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// At most one log line per key per interval: a stranger who sends a flood of bad requests
/// must not be able to fill the disk with our log. Every request is still counted in the
/// metrics; the log keeps the first of each burst promptly and says how many were held back.
pub struct LogLimiter {
    interval: Duration,
    /// When each key last logged, and how many lines it has held back since.
    seen: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

/// Keys remembered at most; past this the memory is cleared (a few extra lines, no growth).
const LOG_LIMITER_KEYS: usize = 10_000;

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            seen: Default::default(),
        }
    }

    /// Whether to log for `key` at `now`: `Some(n)` with the number of lines held back since
    /// the last one logged, or `None` to stay quiet (the line is counted).
    pub fn admit(&self, key: &str, now: std::time::Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((last, held)) = seen.get_mut(key) {
            if now.saturating_duration_since(*last) < self.interval {
                *held += 1;
                return None;
            }
            let n = *held;
            *last = now;
            *held = 0;
            return Some(n);
        }
        if seen.len() >= LOG_LIMITER_KEYS {
            seen.clear();
        }
        seen.insert(key.to_string(), (now, 0));
        Some(0)
    }
}
