//! Built against `switchboard:plugin@0.2.0`, which this host does not support: loading it must
//! fail with a message naming the versions.

wit_bindgen::generate!({ path: "wit", world: "classifier" });

// Exported only in the wasm build.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Future;

impl exports::switchboard::plugin::classify::Guest for Future {
    fn classify(
        _text: String,
        _channel: String,
    ) -> Vec<exports::switchboard::plugin::classify::Verdict> {
        Vec::new()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
