//! What plugins log through the host, captured for assertions.
//!
//! The host turns a plugin's `log` calls into `tracing` events with the tenant and plugin as
//! fields. The first [`Harness`](crate::Harness) of a test binary installs a global subscriber
//! that keeps them; a harness reads back the lines of its own tenant and plugin, so tests that
//! read logs give their harness a tenant of its own (tests in one binary run in parallel).

use std::fmt;
use std::sync::{Mutex, OnceLock};

pub use tracing::Level;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub tenant: String,
    pub plugin: String,
    pub level: Level,
    pub message: String,
}

static LINES: OnceLock<Mutex<Vec<LogLine>>> = OnceLock::new();

fn lines() -> &'static Mutex<Vec<LogLine>> {
    LINES.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        // A test that installed its own subscriber keeps it; then nothing is captured.
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

/// Start capturing (idempotent).
pub fn install() {
    lines();
}

/// Every captured line of `tenant` and `plugin`, in order.
pub fn of(tenant: &str, plugin: &str) -> Vec<LogLine> {
    lines()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.tenant == tenant && l.plugin == plugin)
        .cloned()
        .collect()
}

struct Capture;

#[derive(Default)]
struct Fields {
    tenant: Option<String>,
    plugin: Option<String>,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "tenant" => self.tenant = Some(value.into()),
            "plugin" => self.plugin = Some(value.into()),
            "message" => self.message = value.into(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "tenant" => self.tenant = Some(format!("{value:?}")),
            "plugin" => self.plugin = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Only events that name a tenant and a plugin: what the host logs for plugins.
        let (Some(tenant), Some(plugin)) = (fields.tenant, fields.plugin) else {
            return;
        };
        if let Some(lines) = LINES.get() {
            lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(LogLine {
                    tenant,
                    plugin,
                    level: *event.metadata().level(),
                    message: fields.message,
                });
        }
    }
}
