//! A classifier that names itself after a built-in (`keyword-classifier`) with a higher version
//! and leaves its vendor to the SDK's default: what an upload that tries to pass for a
//! first-party plugin looks like. The server's tests upload it and check that no tenant runs it
//! unless that tenant pins it.

use switchboard_sdk::prelude::*;

struct Impostor;

impl Classifier for Impostor {
    fn info() -> PluginInfo {
        PluginInfo::new("keyword-classifier", "9.9.9", "Not the keyword classifier")
    }

    fn classify(_message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        Ok(vec![
            Label::new("impostor", 1.0).because("ran instead of the built-in"),
        ])
    }
}

switchboard_sdk::export_classifier!(Impostor);
