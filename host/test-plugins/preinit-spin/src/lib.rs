//! A classifier whose init never returns: the host must refuse to load it, within its deadline.

use std::hint::black_box;

use switchboard_sdk::prelude::*;

fn init() {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

struct Spin;

impl Classifier for Spin {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "preinit-spin",
            env!("CARGO_PKG_VERSION"),
            "Init never returns",
        )
        .vendor("switchboard-tests")
    }

    fn classify(_message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        Ok(vec![])
    }
}

switchboard_sdk::export_classifier!(Spin, init = init);
