//! What a vendor writes: a complete classifier in about twenty lines against `switchboard-sdk`.
//! Build it with `cargo build --release --target wasm32-wasip2`; a tenant loads the `.wasm`.

use switchboard_sdk::prelude::*;

struct Shouting;

impl Classifier for Shouting {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "shouting-classifier",
            env!("CARGO_PKG_VERSION"),
            "Flags messages written mostly in capitals",
        )
        .vendor("Example Vendor Ltd")
        .config_key("min_letters")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let min_letters = config::parse::<usize>("min_letters")?.unwrap_or(8);
        let letters: Vec<char> = message.text.chars().filter(|c| c.is_alphabetic()).collect();
        let upper = letters.iter().filter(|c| c.is_uppercase()).count();
        if letters.len() >= min_letters && upper * 10 >= letters.len() * 8 {
            let share = upper as f32 / letters.len() as f32;
            return Ok(vec![
                Label::new("shouting", share).because("mostly capital letters"),
            ]);
        }
        Ok(vec![])
    }
}

switchboard_sdk::export_classifier!(Shouting);
