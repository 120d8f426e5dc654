//! The help-article suggester as a built component in the real runtime.

use switchboard_testkit::switchboard::contract::{Label, LengthRule, LengthUnit};
use switchboard_testkit::{message, plugin_error};

plugin_under_test!("help-article-suggester", "help-article-suggester");

fn label(name: &str, score: f32) -> Label {
    Label {
        name: name.into(),
        score,
        evidence: vec![],
    }
}

const ARTICLES: &str = r#"[{"url": "https://help.acme.example/app-basket", "title": "Get your basket back", "topics": ["topic:app"], "keywords": ["basket"]}]"#;

#[tokio::test]
async fn links_within_the_x_rule_and_refuses_bad_config() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .signature("^Ana")
        .length_rule(LengthRule {
            max: 280,
            unit: LengthUnit::Weighted,
            description: "X".into(),
        })
        .config("articles", ARTICLES);
    let drafts = plugin
        .suggest(
            &message("the app crashed and lost my basket"),
            &[label("topic:app", 0.9)],
        )
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        drafts[0].text,
        "Hi Casey, sorry about this. Here's how to sort it: https://help.acme.example/app-basket ^Ana"
    );
    let none = plugin
        .suggest(&message("love the new ad"), &[label("topic:app", 0.2)])
        .await
        .unwrap();
    assert!(none.is_empty());

    let unset = this_plugin!().await.unwrap();
    let err = unset.suggest(&message("x"), &[]).await.unwrap_err();
    assert!(format!("{:?}", plugin_error(&err)).contains("articles"));
}
