//! The urgency classifier as a built component in the real runtime.

use switchboard_testkit::plugin_error;

plugin_under_test!("urgency-classifier", "urgency-classifier");

#[tokio::test]
async fn labels_evidence_and_config() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .config("extra", r#"{"urgency:safety": ["recall notice"]}"#);
    let text = "Flight cancelled, I'm stranded at the airport and my lawyer says this is a breach of contract";
    let labels = plugin.classify_text(text).await.unwrap();
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["urgency:legal", "urgency:stuck"]);
    let legal = &labels[0];
    assert_eq!(legal.evidence.len(), 2);
    assert!(legal.score > 0.9);
    let tenant = plugin
        .classify_text("Is there a recall notice?")
        .await
        .unwrap();
    assert_eq!(tenant[0].name, "urgency:safety");

    let bad = this_plugin!()
        .await
        .unwrap()
        .config("extra", r#"{"topic:x": ["y"]}"#);
    let err = bad.classify_text("hi").await.unwrap_err();
    let msg = format!("{:?}", plugin_error(&err));
    assert!(
        msg.contains("NotConfigured") && msg.contains("extra"),
        "{msg}"
    );
}
