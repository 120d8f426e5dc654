//! The brand/care classifier as a built component in the real runtime.

plugin_under_test!("brand-care-classifier", "brand-care-classifier");

#[tokio::test]
async fn care_and_brand_in_the_runtime() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .config("brand_words", r##"["#AcmeSummer"]"##);
    let care = plugin
        .classify_text("I was charged twice for order 48213. I want a refund of the second charge.")
        .await
        .unwrap();
    assert_eq!(care[0].name, "matter:care");
    assert!(!care[0].evidence.is_empty());
    let brand = plugin
        .classify_text("The #AcmeSummer ads are everywhere and honestly a bit much")
        .await
        .unwrap();
    assert_eq!(brand[0].name, "matter:brand");
    assert_eq!(brand[0].evidence.len(), 2, "{brand:?}");
}
