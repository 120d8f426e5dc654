//! The host's notion of "now". Service-level clocks, business hours, survey timing and incident
//! windows all depend on it, so tests must be able to hold it still and move it forward: the
//! store and the care workflow read time only through a [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time, or a manual clock that only moves when told (tests, simulations).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock standing at `start_ms` (epoch milliseconds) until set or advanced. Clones share it.
    pub fn manual(start_ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Move a manual clock to `ms`; the system clock ignores this.
    pub fn set(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.store(ms, Ordering::SeqCst);
        }
    }

    /// Move a manual clock forward by `ms`; the system clock ignores this.
    pub fn advance(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual(1_000);
        let twin = c.clone();
        c.advance(500);
        assert_eq!(twin.now_ms(), 1_500);
        twin.set(10);
        assert_eq!(c.now_ms(), 10);
        let s = Clock::system();
        s.set(10);
        assert!(s.now_ms() > 1_600_000_000_000);
    }
}
