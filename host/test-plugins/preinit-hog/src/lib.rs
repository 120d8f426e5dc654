//! A classifier whose init grows its memory without end: the host must refuse to load it at the
//! memory limit of a call, not let it take the host's memory.

use std::hint::black_box;
use std::sync::Mutex;

use switchboard_sdk::prelude::*;

static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn init() {
    let mut hoard = HOARD.lock().unwrap();
    loop {
        hoard.push(black_box(vec![1u8; 1 << 20]));
    }
}

struct Hog;

impl Classifier for Hog {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "preinit-hog",
            env!("CARGO_PKG_VERSION"),
            "Init takes all memory",
        )
        .vendor("switchboard-tests")
    }

    fn classify(_message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        Ok(vec![])
    }
}

switchboard_sdk::export_classifier!(Hog, init = init);
