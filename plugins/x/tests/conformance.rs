//! X's weighted length against twitter-text's own conformance suite
//! (`tests/twitter-text/validate.yml`, copied unchanged from github.com/twitter/twitter-text at
//! 30e2430, Apache-2.0, licence beside it).
//!
//! Two sections describe what X counts today (twitter-text's v3 configuration: weights by
//! Unicode range, emoji sequences discounted to one weight, URLs as 23):
//! `WeightedTweetsWithDiscountedEmojiCounterTest` and `UnicodeDirectionalMarkerCounterTest`.
//! `WeightedTweetsCounterTest` is the v2 configuration (emoji not discounted), which X no longer
//! uses, so it is not run; the `tweets`/`urls` sections test v1's 140-character rule and
//! `isValidUrl`, neither of which the connector implements.

use std::path::Path;

use x_connector::length::measure;
use yaml_rust2::{Yaml, YamlLoader};

fn suite() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twitter-text/validate.yml");
    let text = std::fs::read_to_string(&path).expect("the conformance suite is in the repository");
    YamlLoader::load_from_str(&text)
        .expect("validate.yml parses")
        .remove(0)
}

/// Every case of `section`, with the weighted length it names; failures are collected so that
/// one run shows them all.
fn check(section: &str) -> usize {
    let suite = suite();
    let cases = suite["tests"][section]
        .as_vec()
        .unwrap_or_else(|| panic!("section {section} is in the suite"));
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let description = case["description"].as_str().expect("description");
        let text = case["text"].as_str().expect("text");
        let expected = case["expected"]["weightedLength"]
            .as_i64()
            .expect("weightedLength");
        let got = i64::from(measure(text));
        if got != expected {
            failures.push(format!(
                "{description}: weighted length {got}, suite says {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases in {section} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn weighted_length_matches_twitter_text_v3_suite() {
    assert!(check("WeightedTweetsWithDiscountedEmojiCounterTest") >= 20);
}

#[test]
fn directional_marks_match_twitter_text_suite() {
    assert_eq!(check("UnicodeDirectionalMarkerCounterTest"), 2);
}
