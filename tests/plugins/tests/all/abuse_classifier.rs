//! The abuse classifier as a built component in the real runtime, on the acme example's troll
//! and complaint and on real customer tweets from `../shared/data/datasets` (read at test time).

use std::path::PathBuf;

plugin_under_test!("abuse-classifier", "abuse-classifier");

fn names(labels: &[switchboard_testkit::switchboard::contract::Label]) -> Vec<&str> {
    labels.iter().map(|l| l.name.as_str()).collect()
}

#[tokio::test]
async fn troll_complaint_and_disguise_in_the_runtime() {
    let plugin = this_plugin!().await.unwrap();
    let troll = plugin
        .classify_text("@AcmeCare what a load of crap lol")
        .await
        .unwrap();
    assert_eq!(names(&troll), ["profanity", "troll"]);
    let complaint = plugin
        .classify_text(
            "@AcmeCare your app is crap, it crashed AGAIN and lost my basket. Worst update ever.",
        )
        .await
        .unwrap();
    assert_eq!(names(&complaint), ["profanity"]);
    let disguised = plugin
        .classify_text("you\u{200B} ｉｄｉｏｔｓ")
        .await
        .unwrap();
    assert_eq!(names(&disguised), ["abuse", "troll"]);
    let extra = this_plugin!()
        .await
        .unwrap()
        .config("extra_profanity", r#"["feck"]"#);
    assert_eq!(
        names(&extra.classify_text("feck this").await.unwrap()),
        ["profanity", "troll"]
    );
}

/// On the airline tweets, the built-in words fire on a small share of ordinary messages, and
/// almost never call a message with a complaint reason a troll. Figures printed; floors only
/// catch a broken matcher (these rows were looked at while writing the word lists).
#[tokio::test]
async fn on_real_airline_tweets() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/datasets/airline_sentiment.train.csv");
    let mut reader = csv_lines(&path);
    let plugin = this_plugin!().await.unwrap();
    let (mut n, mut profane, mut trolls, mut trolls_with_reason) = (0, 0, 0, 0);
    for (text, reason) in reader.by_ref().take(600) {
        n += 1;
        let labels = plugin.classify_text(&text).await.unwrap();
        let has = |name: &str| labels.iter().any(|l| l.name == name);
        profane += has("profanity") as usize;
        if has("troll") {
            trolls += 1;
            trolls_with_reason += (!reason.is_empty()) as usize;
        }
    }
    println!(
        "{n} tweets: profanity {profane}, troll {trolls} ({trolls_with_reason} with a complaint reason)"
    );
    assert!(
        profane > 0 && profane * 10 < n,
        "profanity on {profane} of {n}"
    );
    assert!(trolls * 50 < n, "troll on {trolls} of {n}");
}

/// (text, negativereason) rows of the airline CSV.
fn csv_lines(path: &std::path::Path) -> impl Iterator<Item = (String, String)> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().unwrap().clone();
    let text = header.iter().position(|h| h == "text").unwrap();
    let reason = header.iter().position(|h| h == "negativereason").unwrap();
    reader.into_records().map(move |r| {
        let r = r.unwrap();
        (r[text].to_string(), r[reason].to_string())
    })
}
