//! The plugins' runtime tests: each plugin built as a component and run in the real host, one
//! module per plugin.
//!
//! They live in one test binary because each links the whole host (wasmtime included): as one
//! binary per plugin, linking took most of CI's time and once filled its disk. Tests that need
//! only a plugin's own code, natively, stay in that plugin's crate.

/// Defines `this_plugin!()` for the module that invokes it: load the component of package
/// `<package>` (the crate in `plugins/<dir>`) that `switchboard-builtin-plugins` built before
/// this binary was compiled, as wasmtime's test-programs load their guests by path, and run it
/// with the same sandbox, limits and capability checks as production. (A plugin author's own
/// crate uses `switchboard_testkit::this_plugin!()`, which builds the crate itself; here that
/// would be 24 more cargo builds, each with its own feature set, on every test run.)
macro_rules! plugin_under_test {
    ($dir:literal, $package:literal) => {
        macro_rules! this_plugin {
            () => {
                async {
                    let path = ::std::path::Path::new(::switchboard_builtin_plugins::DIR)
                        .join(concat!($package, ".wasm"));
                    ::switchboard_testkit::Harness::load(&path)
                        .await
                        .map_err(|e| e.context(concat!("loading plugins/", $dir)))
                }
            };
        }
    };
}

mod abuse_classifier;
mod advocate_classifier;
mod bluesky;
mod brand_care_classifier;
mod canned_replies;
mod email;
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
