//! A classifier whose init reads its config, a host import init may not call: the host must
//! refuse to load it (config is per tenant; a snapshot is shared by all of them).

use std::sync::atomic::{AtomicBool, Ordering};

use switchboard_sdk::prelude::*;

static CONFIGURED: AtomicBool = AtomicBool::new(false);

fn init() {
    CONFIGURED.store(config::get("secret").is_some(), Ordering::SeqCst);
}

struct Import;

impl Classifier for Import {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "preinit-import",
            env!("CARGO_PKG_VERSION"),
            "Init calls an import",
        )
        .vendor("switchboard-tests")
    }

    fn classify(_message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        Ok(vec![])
    }
}

switchboard_sdk::export_classifier!(Import, init = init);
