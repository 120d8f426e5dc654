//! Urgency classifier: what must not wait in the queue.
//!
//! Labels (one family, several may apply), each with the phrases that raised it:
//!
//! - `urgency:safety`: someone may get hurt (fire, smoke, injury, a gas leak, an allergic
//!   reaction, a threat of violence or self-harm);
//! - `urgency:outage`: the service is down for more than this customer (site or app down, can't
//!   log in, error 500s, "nothing works");
//! - `urgency:legal`: a legal threat (lawyer, lawsuit, small claims, regulator, chargeback);
//! - `urgency:stuck`: a customer stuck right now (stranded at the airport, locked out, missed
//!   the connection, no hotel tonight).
//!
//! Strong phrases score 0.85 (0.95 with two or more); words that only say "soon" (`urgent`,
//! `asap`, `right now`) raise `urgency:stuck` at 0.5, and only with a care matter beside them.
//!
//! Config: `extra` — JSON object of extra phrases per label, e.g.
//! `{"urgency:safety": ["recall notice"]}`; a malformed value is `not-configured`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use switchboard_sdk::prelude::*;
use switchboard_textscan::Regex;
use switchboard_textscan::cues;

fn re(pattern: &str) -> Regex {
    switchboard_textscan::pattern(pattern)
}

static RULES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    vec![
        (
            "urgency:safety",
            re(
                r"(?i)\b(?:on\s+fire|caught\s+fire|fire\s+(?:alarm|hazard)|smoke|smoking\s+(?:charger|battery|outlet)|burn(?:ed|t|ing)\s+(?:my|his|her|our|the\s+child)|burns?\b|exploded?|explosion|sparks?(?:ing)?|overheat(?:ed|ing)|battery\s+(?:is\s+)?swell(?:ing|ed)|injur(?:ed|y|ies)|hurt\s+(?:myself|my|him|her|badly)|bleeding|ambulance|hospital|emergency|unsafe|dangerous|gas\s+leak|carbon\s+monoxide|electric(?:al)?\s+shock|electrocuted|choking|allergic\s+reaction|anaphyla\w*|food\s+poisoning|unconscious|heart\s+attack|seizure|assault(?:ed)?|harass(?:ed|ing|ment)|threaten(?:ed|ing)\s+(?:me|us|to\s+kill)|kill\s+(?:myself|you|them)|suicid\w*|self[\s-]harm)",
            ),
        ),
        (
            "urgency:outage",
            re(
                r"(?i)\b(?:(?:site|website|app|server|servers|system|service|checkout|login|payments?)\s+(?:is\s+|are\s+|has\s+been\s+|went\s+|goes\s+)?(?:down|offline|not\s+loading|broken\s+for\s+everyone)|down\s+again|outage|(?:can'?t|cannot|unable\s+to)\s+(?:log\s*in|sign\s*in|access|connect|load)|(?:error|http)\s*5\d\d|\b50[0234]\b|service\s+unavailable|nothing\s+(?:works|is\s+working|loads)|not\s+working\s+for\s+(?:anyone|everyone)|is\s+it\s+(?:just\s+me|down))",
            ),
        ),
        (
            "urgency:legal",
            re(
                r"(?i)\b(?:lawyers?|attorneys?|solicitors?|(?:i\s+will|i'?ll|going\s+to|gonna)\s+sue|suing|lawsuit|legal\s+action|take\s+(?:you|this)\s+to\s+court|small\s+claims|class\s+action|trading\s+standards|consumer\s+protection|ombudsman|regulator|ftc|cfpb|ofcom|ofgem|caa\b|chargeback|breach\s+of\s+contract|data\s+protection|gdpr|report(?:ing)?\s+(?:you|this)\s+to)",
            ),
        ),
        (
            "urgency:stuck",
            re(
                r"(?i)\b(?:stranded|stuck\s+(?:at|in|on|outside)|locked\s+out|(?:can'?t|cannot)\s+get\s+(?:home|in|back)|sleeping\s+(?:at|in)\s+the\s+(?:airport|terminal|station)|missed\s+(?:my|our|the)\s+connect(?:ion|ing\s+flight)|no\s+hotel|left\s+behind|nowhere\s+to\s+(?:stay|sleep)|(?:flight|train|bus)\s+(?:leaves|departs|boards)\s+in|boarding\s+(?:now|in\s+\d+)|at\s+the\s+(?:gate|airport)\s+(?:now|right\s+now)|no\s+(?:power|heating|heat|water|electricity)|without\s+(?:power|heating|water|my\s+medication)|baby\s+formula|my\s+medication)",
            ),
        ),
    ]
});

static SOON: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:urgent(?:ly)?|asap|right\s+now|immediately|emergency|tonight|this\s+minute)\b")
});

/// Label `text`; `extra` adds phrases per label.
pub fn classify(text: &str, extra: &BTreeMap<String, Vec<String>>) -> Vec<Label> {
    let mut found: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for (label, re) in RULES.iter() {
        for m in re.find_iter(text) {
            found
                .entry(label.to_string())
                .or_default()
                .push((m.start(), m.end()));
        }
    }
    let lower = text.to_lowercase();
    for (label, phrases) in extra {
        for p in phrases {
            let p = p.trim().to_lowercase();
            if p.is_empty() || lower.len() != text.len() {
                continue;
            }
            for (at, _) in lower.match_indices(&p) {
                found
                    .entry(label.clone())
                    .or_default()
                    .push((at, at + p.len()));
            }
        }
    }
    let mut labels: Vec<Label> = found
        .into_iter()
        .map(|(label, spans)| {
            let score = if spans.len() >= 2 { 0.95 } else { 0.85 };
            spans.iter().fold(Label::new(&label, score), |l, &(s, e)| {
                l.at(&format!("\"{}\"", &text[s..e]), s, e)
            })
        })
        .collect();
    if !labels.iter().any(|l| l.name == "urgency:stuck") && cues::has_care_matter(text) {
        let soon: Vec<_> = SOON.find_iter(text).collect();
        if !soon.is_empty() {
            labels.push(soon.iter().fold(Label::new("urgency:stuck", 0.5), |l, m| {
                l.at(
                    &format!("\"{}\" with a care matter", m.as_str()),
                    m.start(),
                    m.end(),
                )
            }));
        }
    }
    labels
}

struct Urgency;

impl Classifier for Urgency {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "urgency-classifier",
            env!("CARGO_PKG_VERSION"),
            "Urgent messages: safety, outages, legal threats, customers stuck right now",
        )
        .config_key("extra")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let extra = config::parse::<BTreeMap<String, Vec<String>>>("extra")?.unwrap_or_default();
        if let Some(bad) = extra.keys().find(|k| !k.starts_with("urgency:")) {
            return Err(PluginError::NotConfigured(format!(
                "config key `extra`: label `{bad}` is not in the urgency: family"
            )));
        }
        Ok(classify(&message.text, &extra))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    LazyLock::force(&RULES);
    LazyLock::force(&SOON);
    switchboard_textscan::cues::warm();
    // Run the rules once, so the automata states they build are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = classify(text, &BTreeMap::new());
    }
}

switchboard_sdk::export_classifier!(Urgency, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        classify(text, &BTreeMap::new())
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    #[test]
    fn each_kind() {
        assert_eq!(
            names("The charger you sold me caught fire last night"),
            ["urgency:safety"]
        );
        assert_eq!(
            names("@AcmeCare is the app down? can't log in since 9am"),
            ["urgency:outage"]
        );
        assert_eq!(
            names("Refund me or my lawyer will be in touch"),
            ["urgency:legal"]
        );
        assert_eq!(
            names("Flight cancelled and I'm stranded at JFK with two kids"),
            ["urgency:stuck"]
        );
        assert_eq!(
            names("I'm locked out of my flat, the smart lock app fails"),
            ["urgency:stuck"]
        );
    }

    #[test]
    fn ordinary_complaints_are_not_urgent() {
        for text in [
            "my order #48213 never arrived and tracking hasn't moved in 6 days",
            "Just wanted to say the support team sorted my return in ten minutes",
            "the new ad is a bit much tbh",
            "I was charged twice for order 48213",
        ] {
            assert!(names(text).is_empty(), "{text}: {:?}", names(text));
        }
    }

    #[test]
    fn soon_words_need_a_care_matter() {
        assert_eq!(names("need my refund urgently"), ["urgency:stuck"]);
        assert!(names("urgent!!!").is_empty());
        let l = &classify("need my refund urgently", &BTreeMap::new())[0];
        assert_eq!(l.score, 0.5);
    }

    #[test]
    fn tenant_phrases_add_evidence() {
        let extra = BTreeMap::from([(
            "urgency:safety".to_string(),
            vec!["recall notice".to_string()],
        )]);
        let labels = classify("Is there a RECALL NOTICE for this kettle?", &extra);
        assert_eq!(labels[0].name, "urgency:safety");
        let span = labels[0].evidence[0].span.unwrap();
        assert_eq!(span.start, 11);
    }
}
