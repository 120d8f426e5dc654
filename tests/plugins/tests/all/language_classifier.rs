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
