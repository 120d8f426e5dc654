//! Sentiment classifier for short social posts: one `sentiment:negative`, `sentiment:neutral`
//! or `sentiment:positive` label with the model's probability.
//!
//! The model is multinomial logistic regression on hashed word 1–2-grams and character
//! 2–5-grams over a tokeniser that keeps emoji, emoticons, `!`/`?` runs, elongations and
//! shouting as features and marks negation scope (`switchboard-textmodel`). `build.rs` trains it
//! on the training part of the **Twitter US Airline Sentiment** data (Figure Eight via Kaggle,
//! **CC BY-NC-SA 4.0**); 20 % of the distinct tweets are held back and never trained on.
//!
//! **Licence of the built-in model**: because the airline data is non-commercial, the model
//! built from it is for evaluation. For commercial use, retrain on your own labelled posts:
//! put them in `<folder>/datasets/airline_sentiment.train.csv` (columns `text` and
//! `airline_sentiment` with values `negative`, `neutral`, `positive`) and build with
//! `SWITCHBOARD_TRAINING_DATA=<folder> cargo build --release --target wasm32-wasip2 -p sentiment-classifier`.
//!
//! Config (optional):
//! - `min_score`: emit no label when the best probability is below this, in [0, 1]
//!   (default 0: always one label).
//!
//! Evidence: the tokens that pushed hardest towards the label, with their byte spans.

use switchboard_sdk::prelude::*;
use switchboard_textmodel::Model;

/// The trained model, written by `build.rs` (empty when built without the data).
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sentiment.model"));

struct SentimentClassifier;

/// The model, or an error saying the plugin was built without its training data.
pub fn model() -> Result<Model<'static>, PluginError> {
    Model::from_bytes(MODEL).map_err(|e| {
        PluginError::Internal(format!(
            "sentiment-classifier was built without its model ({e}); rebuild with the training data"
        ))
    })
}

fn min_score() -> Result<f32, PluginError> {
    let t = config::parse::<f32>("min_score")?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&t) {
        return Err(PluginError::NotConfigured(format!(
            "config key `min_score`: {t} is not in [0, 1]"
        )));
    }
    Ok(t)
}

/// The sentiment label of `text`, unless its probability is below `min_score`.
pub fn classify_text(model: &Model, text: &str, min_score: f32) -> Option<Label> {
    let p = model.predict(text);
    let score = p.probabilities[p.best];
    if score < min_score {
        return None;
    }
    let name = format!("sentiment:{}", model.labels[p.best]);
    Some(
        p.evidence
            .iter()
            .take(3)
            .fold(Label::new(&name, score), |l, c| {
                l.at(
                    &format!("\"{}\" (+{:.2})", c.token, c.weight),
                    c.start,
                    c.end,
                )
            }),
    )
}

impl Classifier for SentimentClassifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "sentiment-classifier",
            env!("CARGO_PKG_VERSION"),
            "Sentiment of short social posts (negative, neutral, positive) by a logistic-regression model",
        )
        .config_key("min_score")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let min_score = min_score()?;
        let model = model()?;
        Ok(classify_text(&model, &message.text, min_score)
            .into_iter()
            .collect())
    }
}

switchboard_sdk::export_classifier!(SentimentClassifier);
