//! The private-data classifier as a built component in the real runtime.

plugin_under_test!("private-data-classifier", "private-data-classifier");

#[tokio::test]
async fn card_in_public_and_own_contacts() {
    let plugin = this_plugin!()
        .await
        .unwrap()
        .config("allowed_contacts", r#"["acme.example"]"#);
    let text = "@AcmeCare you charged my card 4111 1111 1111 1111 twice for one order, sort it out";
    let labels = plugin.classify_text(text).await.unwrap();
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert_eq!(labels[0].name, "private:card-number");
    let span = labels[0].evidence[0].span.unwrap();
    assert_eq!(
        &text[span.start as usize..span.end as usize],
        "4111 1111 1111 1111"
    );
    assert!(
        !labels[0].evidence[0].note.contains("4111"),
        "the note never repeats the number"
    );

    let own = plugin
        .classify_text("I wrote to care@acme.example and to jo@gmail.com")
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].evidence.len(), 1, "only the customer's own address");
    // The acme example's order numbers are not private data.
    assert!(
        plugin
            .classify_text(
                "@AcmeCare my order #48213 never arrived and tracking hasn't moved in 6 days."
            )
            .await
            .unwrap()
            .is_empty()
    );
}
