//! The advocate classifier as a built component in the real runtime, and on real airline
//! tweets (`../shared/data/datasets`, read at test time): how often `advocate` fires on tweets
//! the annotators called negative (mostly sarcasm, the hard part) and on positive ones.

use std::path::PathBuf;

plugin_under_test!("advocate-classifier", "advocate-classifier");

#[tokio::test]
async fn praise_and_sarcasm_in_the_runtime() {
    let plugin = this_plugin!().await.unwrap();
    let praise = plugin
        .classify_text("Just wanted to say the support team sorted my return in ten minutes. Amazing service, thank you!")
        .await
        .unwrap();
    assert_eq!(praise.len(), 1);
    assert_eq!(praise[0].name, "advocate");
    let sarcasm = plugin
        .classify_text("Great, another delay. Thanks for nothing")
        .await
        .unwrap();
    assert_eq!(sarcasm.len(), 1);
    assert_eq!(sarcasm[0].name, "sarcasm");
}

/// Airline tweets labelled positive vs negative by annotators: advocate should fire on many
/// positives and few negatives. The word lists were written looking at a few of these rows, so
/// the figures are indicative, not a held-out claim; the floors catch a broken rule.
#[tokio::test]
async fn on_real_airline_tweets() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/datasets/airline_sentiment.train.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let text = header.iter().position(|h| h == "text").unwrap();
    let sentiment = header
        .iter()
        .position(|h| h == "airline_sentiment")
        .unwrap();
    let plugin = this_plugin!().await.unwrap();
    let (mut pos, mut pos_hit, mut neg, mut neg_hit) = (0, 0, 0, 0);
    for row in reader.records().take(1200) {
        let row = row.unwrap();
        let labels = plugin.classify_text(&row[text]).await.unwrap();
        let advocate = labels.iter().any(|l| l.name == "advocate");
        match &row[sentiment] {
            "positive" => {
                pos += 1;
                pos_hit += advocate as usize;
            }
            "negative" => {
                neg += 1;
                neg_hit += advocate as usize;
            }
            _ => {}
        }
    }
    let tpr = pos_hit as f64 / pos as f64;
    let fpr = neg_hit as f64 / neg as f64;
    println!(
        "advocate on positive tweets {tpr:.3} ({pos_hit}/{pos}), on negative tweets {fpr:.3} ({neg_hit}/{neg})"
    );
    assert!(tpr > 0.5, "{tpr}");
    assert!(fpr < 0.1, "{fpr}");
}
