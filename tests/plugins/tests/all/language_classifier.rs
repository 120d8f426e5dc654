//! The language classifier as a built component in the real runtime.

use switchboard_testkit::{message, plugin_error};

plugin_under_test!("language-classifier", "language-classifier");

#[tokio::test]
async fn detects_keeps_the_platform_tag_and_checks_config() {
    let plugin = this_plugin!().await.unwrap();
    let es = plugin
        .classify_text("Mi pedido nunca llegó y nadie me responde")
        .await
        .unwrap();
    assert_eq!(es[0].name, "language:es");
    let mut m = message("Meine Bestellung ist nie angekommen und niemand antwortet mir");
    m.language = Some("de".into());
    let given = plugin.classify(&m).await.unwrap();
    assert_eq!(given.len(), 1);
    assert_eq!(given[0].name, "language:de");
    assert_eq!(given[0].score, 1.0);

    let limited = this_plugin!()
        .await
        .unwrap()
        .config("languages", r#"["en", "fr"]"#);
    let fr = limited
        .classify_text("Merci beaucoup pour votre aide rapide")
        .await
        .unwrap();
    assert_eq!(fr[0].name, "language:fr");
    let bad = this_plugin!()
        .await
        .unwrap()
        .config("languages", "en, klingon");
    let err = bad.classify_text("hello there").await.unwrap_err();
    assert!(format!("{:?}", plugin_error(&err)).contains("languages"));
}

/// Issue 14, finding 8: the platform's tag is the sender's; a 200-character one must give a
/// valid label (the host refuses a label name over 128 bytes, and with it the whole output).
#[tokio::test]
async fn an_oversized_platform_tag_gives_valid_labels() {
    let plugin = this_plugin!().await.unwrap();
    let mut m = message("Ma commande n'est jamais arrivée et personne ne répond à mes messages");
    m.language = Some(format!("fr-{}", "x".repeat(197)));
    let labels = plugin.classify(&m).await.unwrap();
    assert_eq!(labels[0].name, "language:fr");
    assert!(labels.iter().all(|l| l.name.len() <= 128), "{labels:?}");
}
