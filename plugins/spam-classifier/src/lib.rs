//! Spam classifier: raises `spam` with the model's probability when it reaches the threshold.
//!
//! The model is logistic regression on hashed word 1–2-grams and message-length tokens
//! (`switchboard-textmodel`), trained by `build.rs` on the training part of the **UCI SMS Spam
//! Collection** (Almeida & Gómez Hidalgo, CC BY 4.0) and embedded in the component. The
//! decision threshold is chosen by 5-fold cross-validation on that training part and folded
//! into the model's bias, so the probability crosses 0.5 at the chosen point. 20 % of the
//! distinct texts are held back and never trained on; the quality figures in the repository
//! README are measured on those rows only.
//!
//! Config (optional):
//! - `threshold`: the spam probability from which the label is raised, in [0, 1] (default 0.5).
//!
//! Evidence: the tokens that pushed hardest towards spam, with their byte spans.

use switchboard_sdk::prelude::*;
use switchboard_textmodel::Model;

/// The trained model, written by `build.rs` (empty when built without the data).
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spam.model"));

struct SpamClassifier;

/// The model, or an error saying the plugin was built without its training data.
pub fn model() -> Result<Model<'static>, PluginError> {
    Model::from_bytes(MODEL).map_err(|e| {
        PluginError::Internal(format!(
            "spam-classifier was built without its model ({e}); rebuild with the training data"
        ))
    })
}

/// `threshold` from config: a number in [0, 1].
fn threshold() -> Result<f32, PluginError> {
    let t = config::parse::<f32>("threshold")?.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&t) {
        return Err(PluginError::NotConfigured(format!(
            "config key `threshold`: {t} is not in [0, 1]"
        )));
    }
    Ok(t)
}

/// The `spam` label for `text`, if its probability reaches `threshold`.
pub fn classify_text(model: &Model, text: &str, threshold: f32) -> Option<Label> {
    let spam = model.labels.iter().position(|l| l == "spam")?;
    let p = model.predict(text).probabilities[spam];
    if text.trim().is_empty() || p < threshold {
        return None;
    }
    Some(
        model
            .explain(text, spam)
            .iter()
            .take(3)
            .fold(Label::new("spam", p), |l, c| {
                l.at(
                    &format!("\"{}\" (+{:.2})", c.token, c.weight),
                    c.start,
                    c.end,
                )
            }),
    )
}

impl Classifier for SpamClassifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "spam-classifier",
            env!("CARGO_PKG_VERSION"),
            "Spam by a logistic-regression model trained on the UCI SMS Spam Collection (CC BY 4.0)",
        )
        .config_key("threshold")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let threshold = threshold()?;
        let model = model()?;
        Ok(classify_text(&model, &message.text, threshold)
            .into_iter()
            .collect())
    }
}

switchboard_sdk::export_classifier!(SpamClassifier);
