//! Prometheus metrics of plugin calls, recorded through the `metrics` facade; the server
//! installs the exporter and renders them at `/metrics`.

use std::time::Duration;

use metrics::{counter, histogram};

use crate::error::Stage;

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
