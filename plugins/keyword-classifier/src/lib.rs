//! Keyword classifier: raises a label when the text contains one of its phrases.
//!
//! Config (all optional):
//! - `spam`, `profanity`, `deflection`: phrase lists replacing the built-in ones;
//! - `labels`: JSON object of extra labels, e.g. `{"topic:refund": ["refund", "money back"]}`.

pub mod rules;

use std::collections::BTreeSet;
use switchboard_sdk::prelude::*;

struct KeywordClassifier;

/// The tenant's rules: configured lists where given, built-in lists otherwise.
fn configured_rules() -> Result<Vec<rules::Rule>, PluginError> {
    let mut out = Vec::new();
    for rule in rules::default_rules() {
        let configured = config::list(&rule.label);
        out.push(if configured.is_empty() {
            rule
        } else {
            rules::Rule::new(&rule.label, configured)
        });
    }
    if let Some(extra) = config::parse::<std::collections::BTreeMap<String, Vec<String>>>("labels")?
    {
        for (label, phrases) in extra {
            out.push(rules::Rule::new(&label, phrases));
        }
    }
    Ok(out)
}

impl Classifier for KeywordClassifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "keyword-classifier",
            env!("CARGO_PKG_VERSION"),
            "Spam, profanity and deflection phrases, plus tenant-defined keyword labels",
        )
        .config_key("spam")
        .config_key("profanity")
        .config_key("deflection")
        .config_key("labels")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let rules = configured_rules()?;
        let found = rules::classify(&rules, &message.text);
        Ok(found
            .into_iter()
            .map(|(label, hits)| {
                let distinct: BTreeSet<&str> = hits.iter().map(|h| h.phrase.as_str()).collect();
                hits.iter()
                    .fold(Label::new(&label, rules::score(distinct.len())), |l, h| {
                        l.at(&format!("matched \"{}\"", h.phrase), h.start, h.end)
                    })
            })
            .collect())
    }
}

switchboard_sdk::export_classifier!(KeywordClassifier);
