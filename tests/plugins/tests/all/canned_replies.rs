//! The canned-replies suggester as a built component in the real runtime, on customer tweets
//! from `../shared/data/datasets` (read at test time, never shipped).

use std::path::PathBuf;

use switchboard_testkit::message;
use switchboard_testkit::switchboard::contract::{Label, LengthRule, LengthUnit, Visibility};

plugin_under_test!("canned-replies", "canned-replies");

fn label(name: &str, score: f32) -> Label {
    Label {
        name: name.into(),
        score,
        evidence: vec![],
    }
}

fn x_rule() -> LengthRule {
    LengthRule {
        max: 280,
        unit: LengthUnit::Weighted,
        description: "X: 280 weighted".into(),
    }
}

/// Inbound customer tweets from the Customer Support on Twitter sample.
fn customer_tweets() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/datasets/customer_support_twitter_sample.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Columns: tweet_id,author_id,inbound,created_at,text,…; keep inbound rows' text.
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.splitn(5, ',');
            let inbound = cols.nth(2)? == "True";
            let rest = cols.nth(1)?;
            inbound.then(|| {
                rest.trim_start_matches('"')
                    .split("\",")
                    .next()
                    .unwrap_or(rest)
                    .to_string()
            })
        })
        .collect()
}

#[tokio::test]
async fn every_draft_for_real_complaints_fits_x_and_is_signed() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .length_rule(x_rule())
        .signature("^Ana");
    let tweets = customer_tweets();
    assert!(tweets.len() > 20, "{}", tweets.len());
    for text in &tweets {
        let mut m = message(text);
        m.author.display_name = Some("Dana Whitfield".into());
        let drafts = plugin
            .suggest(&m, &[label("sentiment:negative", 0.9)])
            .await
            .unwrap();
        assert!(!drafts.is_empty(), "{text}");
        for d in &drafts {
            assert!(d.text.ends_with("^Ana"), "{}", d.text);
            assert!(d.text.contains("Dana"), "{}", d.text);
            assert!(
                !d.text.to_lowercase().contains("call"),
                "no deflection: {}",
                d.text
            );
        }
    }
}

#[tokio::test]
async fn a_tight_limit_shortens_drafts_and_spam_gets_none() {
    let tight = LengthRule {
        max: 90,
        unit: LengthUnit::Characters,
        description: "90 characters".into(),
    };
    let plugin = this_plugin!()
        .await
        .unwrap()
        .length_rule(tight)
        .signature("^Ana");
    let drafts = plugin
        .suggest(
            &message("My bag is lost"),
            &[label("sentiment:negative", 0.9)],
        )
        .await
        .unwrap();
    for d in &drafts {
        assert!(
            d.text.chars().count() <= 90,
            "{} chars: {}",
            d.text.chars().count(),
            d.text
        );
        assert!(d.text.ends_with("^Ana"));
    }
    assert!(
        drafts.iter().any(|d| d.rationale.contains("shortened")),
        "{drafts:?}"
    );

    let none = plugin
        .suggest(&message("WIN A PRIZE"), &[label("spam", 0.99)])
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn tenant_templates_and_private_data_labels_shape_the_reply() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .signature("^Ana")
        .config("templates", r#"{"topic:refund": "Hi {name}, your refund is on its way: {help_url} {signature}", "default": "Hi {name}. {signature}"}"#)
        .config("vars", r#"{"help_url": "https://help.example/refunds"}"#);
    let drafts = plugin
        .suggest(
            &message("card 4111 1111 1111 1111 charged twice"),
            &[label("topic:refund", 0.8), label("private-data", 0.95)],
        )
        .await
        .unwrap();
    assert_eq!(
        drafts[0].text,
        "Hi Casey, your refund is on its way: https://help.example/refunds ^Ana"
    );
    assert_eq!(drafts[0].visibility, Visibility::Private);
    assert_eq!(drafts.last().unwrap().text, "Hi Casey. ^Ana");
}
