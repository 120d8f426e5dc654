//! Small, deterministic text classifiers for short social posts, in pure Rust so the same code
//! trains a model in a plugin's `build.rs` and runs it inside the plugin (wasm32-wasip2).
//!
//! - [`tokenize`]: a tokeniser for tweets and SMS (URLs, mentions, numbers normalised, emoji and
//!   emoticons kept, negation marking, elongations), with byte spans into the original text;
//! - [`features`]: hashed word 1–2-grams and character n-grams;
//! - [`train`]: multinomial logistic regression (deterministic, fixed seed);
//! - [`model`]: the compact binary model (i8-quantised weights) and prediction with evidence;
//! - [`split`]: the deterministic held-back split shared by training and evaluation;
//! - `build` (feature `build`): labelled CSV/TSV files in, a trained model in `OUT_DIR` out.

#[cfg(feature = "build")]
pub mod build;
pub mod features;
pub mod model;
pub mod split;
pub mod tokenize;
pub mod train;

pub use features::FeatureConfig;
pub use model::{Contribution, Model, ModelError, Prediction};
pub use train::{TrainConfig, train};

/// Lowercase kebab-case: `Late Flight` → `late-flight`, `cancel_order` → `cancel-order`,
/// `Can't Tell` → `cant-tell`. The label slugs of every built-in model.
pub fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label
        .trim()
        .chars()
        .filter(|c| *c != '\'' && *c != '\u{2019}')
    {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("Late Flight"), "late-flight");
        assert_eq!(slug("Can't Tell"), "cant-tell");
        assert_eq!(slug("cancel_order"), "cancel-order");
        assert_eq!(slug(" longlines "), "longlines");
    }
}
