//! Trace context across the queue. The engine emits plain `tracing` spans; only the binary knows
//! whether they are exported (and how). A message's trace must survive the store, though, so
//! the binary installs a [`Propagator`] that turns a span into a W3C `traceparent` and back.
//! Without one (the default) nothing is computed or stored: tracing off costs nothing here.

use std::sync::OnceLock;

/// Turns spans into W3C `traceparent` strings and back (installed by the binary).
pub trait Propagator: Send + Sync + 'static {
    /// The `traceparent` of `span`, if it is being exported.
    fn traceparent(&self, span: &tracing::Span) -> Option<String>;
    /// Make `span` (not yet entered) a child of the remote span `traceparent`.
    fn set_parent(&self, span: &tracing::Span, traceparent: &str);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Install the process's propagator; a second call is ignored (there is one exporter).
pub fn install(p: Box<dyn Propagator>) {
    let _ = PROPAGATOR.set(p);
}

/// Whether traces are exported: callers skip the store's trace-context reads otherwise.
pub fn enabled() -> bool {
    PROPAGATOR.get().is_some()
}

/// See [`Propagator::traceparent`].
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    PROPAGATOR.get()?.traceparent(span)
}

/// See [`Propagator::set_parent`]; nothing without a context or a propagator.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let (Some(p), Some(tp)) = (PROPAGATOR.get(), traceparent) {
        p.set_parent(span, tp);
    }
}
