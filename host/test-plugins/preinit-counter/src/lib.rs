//! A classifier with pre-initialised state: `init` sets a counter to 1; each call answers a label
//! `count-<n>` with the counter's value, then increments it. Pre-initialised and in a fresh
//! instance per call, every call answers `count-1`: `count-0` would mean init never ran,
//! `count-2` that a call's change survived into the next.

use std::sync::atomic::{AtomicU32, Ordering};

use switchboard_sdk::prelude::*;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn init() {
    COUNTER.store(1, Ordering::SeqCst);
}

struct Counter;

impl Classifier for Counter {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "preinit-counter",
            env!("CARGO_PKG_VERSION"),
            "Counts calls since init",
        )
        .vendor("switchboard-tests")
    }

    fn classify(_message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Ok(vec![Label::new(&format!("count-{n}"), 1.0)])
    }
}

switchboard_sdk::export_classifier!(Counter, init = init);
