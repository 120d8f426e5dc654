//! The plugins' runtime tests: each plugin built as a component and run in the real host, one
//! module per plugin.
//!
//! They live in one test binary because each links the whole host (wasmtime included): as one
//! binary per plugin, linking took most of CI's time and once filled its disk. Tests that need
//! only a plugin's own code, natively, stay in that plugin's crate.

/// Defines `this_plugin!()` for the module that invokes it: build the crate in `plugins/<dir>`
/// (package `<package>`) as a component and load it into a `Harness`, as
/// `switchboard_testkit::this_plugin!()` does from inside the plugin's own crate.
macro_rules! plugin_under_test {
    ($dir:literal, $package:literal) => {
        macro_rules! this_plugin {
            () => {
                ::switchboard_testkit::Harness::build_crate(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../", $dir),
                    $package,
                )
            };
        }
    };
}

mod abuse_classifier;
mod advocate_classifier;
mod bluesky;
mod brand_care_classifier;
mod canned_replies;
mod facebook;
mod generic_webhook;
mod help_article_suggester;
mod instagram;
mod keyword_classifier;
mod language_classifier;
mod line;
mod llm_suggester;
mod mastodon;
mod private_data_classifier;
mod sentiment_classifier;
mod slack;
mod spam_classifier;
mod telegram;
mod topic_classifier;
mod twilio_sms;
mod urgency_classifier;
mod whatsapp;
mod x;
