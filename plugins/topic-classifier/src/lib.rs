//! Topic classifier: the most likely `topic:<slug>` from a built-in model, plus the tenant's own
//! keyword topics.
//!
//! Every label is in the one family `topic`, whatever its source, so a care policy can route on
//! `topic:late-flight` or `topic:cancel-order` alike. Slugs are lowercase kebab-case
//! (`Late Flight` → `late-flight`, `cancel_order` → `cancel-order`, `Can't Tell` → `cant-tell`).
//!
//! Built-in models (logistic regression on hashed word and character n-grams,
//! `switchboard-textmodel`, trained by `build.rs` on the training part of each dataset; 20 % of
//! the distinct texts are held back and never trained on):
//! - `complaint-reason` (default): the complaint reason of a **negative** airline tweet, one of
//!   `bad-flight`, `cancelled-flight`, `cant-tell`, `customer-service-issue`, `damaged-luggage`,
//!   `flight-attendant-complaints`, `flight-booking-problems`, `late-flight`, `longlines`,
//!   `lost-luggage`. Trained on Twitter US Airline Sentiment (Figure Eight via Kaggle,
//!   **CC BY-NC-SA 4.0**): the built-in model is for evaluation. It was trained on complaints
//!   only, so it always names a reason: combine it with `sentiment:negative` in the policy. For
//!   commercial use retrain on your own data: `<folder>/datasets/airline_sentiment.train.csv`
//!   with columns `text` and `negativereason`, then
//!   `SWITCHBOARD_TRAINING_DATA=<folder> cargo build --release --target wasm32-wasip2 -p topic-classifier`.
//! - `intent`: 27 customer-support intents (`cancel-order`, `get-refund`, `track-order`, …),
//!   trained on the Bitext customer-support data (**CDLA-Sharing-1.0**, which allows
//!   commercial use of a model trained on it).
//! - `none`: keyword topics only.
//!
//! Config (all optional):
//! - `model`: `complaint-reason`, `intent` or `none`;
//! - `topics`: the tenant's topics, `{"refund": ["refund", "money back"], …}`; a topic is raised
//!   (score 0.9, 0.95 from two distinct phrases) when one of its phrases occurs as whole words,
//!   ASCII case-insensitively. No retraining needed. A topic the model also found keeps the
//!   higher score and both evidences;
//! - `min_score`: the model's topic is emitted only from this probability, in [0, 1] (default 0).

use std::collections::BTreeMap;

use switchboard_sdk::prelude::*;
use switchboard_textmodel::{Model, slug};

/// The built-in models, written by `build.rs` (empty when built without the data).
pub static COMPLAINT_REASON: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/complaint-reason.model"));
pub static INTENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/intent.model"));

struct TopicClassifier;

/// A built-in model by its config name.
pub fn model(name: &str) -> Result<Option<Model<'static>>, PluginError> {
    let bytes = match name {
        "complaint-reason" => COMPLAINT_REASON,
        "intent" => INTENT,
        "none" => return Ok(None),
        other => {
            return Err(PluginError::NotConfigured(format!(
                "config key `model`: `{other}` is not one of complaint-reason, intent, none"
            )));
        }
    };
    Model::from_bytes(bytes).map(Some).map_err(|e| {
        PluginError::Internal(format!(
            "topic-classifier was built without its `{name}` model ({e}); rebuild with the training data"
        ))
    })
}

/// A tenant topic and its phrases.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub slug: String,
    pub phrases: Vec<String>,
}

/// The tenant's `topics` table.
fn topics() -> Result<Vec<Topic>, PluginError> {
    let Some(table) = config::parse::<BTreeMap<String, Vec<String>>>("topics")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (name, phrases) in table {
        let s = slug(name.strip_prefix("topic:").unwrap_or(&name));
        if s.is_empty() {
            return Err(PluginError::NotConfigured(format!(
                "config key `topics`: `{name}` has no letters or digits to name a topic"
            )));
        }
        let phrases: Vec<String> = phrases
            .into_iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        out.push(Topic { slug: s, phrases });
    }
    Ok(out)
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

/// Byte ranges where `phrase` occurs in `text` as whole words, ASCII case-insensitively.
pub fn find_phrase(text: &str, phrase: &str) -> Vec<(usize, usize)> {
    let (t, p) = (text.as_bytes(), phrase.as_bytes());
    let mut out = Vec::new();
    if p.is_empty() || p.len() > t.len() {
        return out;
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    for i in 0..=t.len() - p.len() {
        let end = i + p.len();
        if t[i..end].eq_ignore_ascii_case(p)
            && text.is_char_boundary(i)
            && text.is_char_boundary(end)
            && (i == 0 || !word(t[i - 1]) || !word(p[0]))
            && (end == t.len() || !word(t[end]) || !word(p[p.len() - 1]))
        {
            out.push((i, end));
        }
    }
    out
}

/// The labels for `text`: the model's best topic (if any and at least `min_score`), and every
/// tenant topic with a phrase in the text. One label per slug, highest score first.
pub fn classify_text(
    model: Option<&Model>,
    topics: &[Topic],
    text: &str,
    min_score: f32,
) -> Vec<Label> {
    let mut labels: Vec<Label> = Vec::new();
    if let Some(model) = model
        && !text.trim().is_empty()
    {
        let p = model.predict(text);
        let score = p.probabilities[p.best];
        if score >= min_score {
            let name = format!("topic:{}", model.labels[p.best]);
            labels.push(
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
            );
        }
    }
    for topic in topics {
        let mut hits = Vec::new();
        let mut distinct = 0;
        for phrase in &topic.phrases {
            let found = find_phrase(text, phrase);
            if !found.is_empty() {
                distinct += 1;
            }
            hits.extend(found.into_iter().map(|r| (phrase, r)));
        }
        if hits.is_empty() {
            continue;
        }
        let score = if distinct >= 2 { 0.95 } else { 0.9 };
        let name = format!("topic:{}", topic.slug);
        let label = match labels.iter().position(|l| l.name == name) {
            Some(i) => labels.remove(i),
            None => Label::new(&name, score),
        };
        let mut label = hits.iter().fold(label, |l, (phrase, (s, e))| {
            l.at(&format!("matched \"{phrase}\""), *s, *e)
        });
        label.score = label.score.max(score);
        labels.push(label);
    }
    labels.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
    labels
}

impl Classifier for TopicClassifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "topic-classifier",
            env!("CARGO_PKG_VERSION"),
            "Topic by a built-in model (airline complaint reasons or support intents) plus tenant keyword topics",
        )
        .config_key("model")
        .config_key("topics")
        .config_key("min_score")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let name = config::parse::<String>("model")?.unwrap_or_else(|| "complaint-reason".into());
        let model = model(&name)?;
        let topics = topics()?;
        let min_score = min_score()?;
        Ok(classify_text(
            model.as_ref(),
            &topics,
            &message.text,
            min_score,
        ))
    }
}

switchboard_sdk::export_classifier!(TopicClassifier);

#[cfg(test)]
mod tests {
    use super::find_phrase;

    #[test]
    fn phrases_match_whole_words_case_insensitively() {
        let t = "Lost my BAG, baggage claim slow";
        assert_eq!(find_phrase(t, "bag"), vec![(8, 11)]);
        assert_eq!(find_phrase(t, "lost my bag"), vec![(0, 11)]);
        assert!(find_phrase(t, "age").is_empty());
        assert!(find_phrase("é", "x").is_empty());
        assert_eq!(find_phrase("#refund!", "#refund"), vec![(0, 7)]);
    }
}
