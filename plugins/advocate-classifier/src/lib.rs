//! Advocate classifier: praise worth thanking, and not the sarcastic kind.
//!
//! Labels:
//!
//! - `advocate`: genuine praise — thanks, love, great service, hearts — with the praise as
//!   evidence. A polite "thanks" at the end of a complaint is not advocacy.
//! - `sarcasm`: praise words used to complain ("great, another delay", "thanks for nothing",
//!   "love waiting 2 hours on hold", "best airline ever 🙄"); raised instead of `advocate`, so
//!   the thank-you template never answers a complaint.
//!
//! Sarcasm is judged per sentence: praise counts as sarcastic when the sentence carries an
//! explicit marker (`thanks for nothing`, `yeah right`, `/s`, 🙄, 🙃, `#not`), or when the
//! praise is followed — or, for an interjection such as "great," at the start, preceded — by a
//! misfortune (delay, cancelled, lost, ignored, on hold, again, another, still…) with no sign
//! that it was put right (found, fixed, sorted, refunded, quickly…).

use std::sync::LazyLock;

use switchboard_sdk::prelude::*;
use switchboard_textscan::Regex;
use switchboard_textscan::cues::{self, Cue};

fn re(pattern: &str) -> Regex {
    switchboard_textscan::pattern(pattern)
}

static PRAISE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\b(?:thank\s*(?:you|u|ya)|thanks|thx|ty|cheers|kudos|shout[\s-]?out|well\s+done|love(?:d|s)?|loving|amazing|awesome|brilliant|excellent|fantastic|wonderful|superb|outstanding|great|best|perfect|lovely|impressed|grateful|appreciate(?:d)?|legend(?:s)?|5\s+stars|five\s+stars|recommend(?:ed)?|above\s+and\s+beyond|made\s+my\s+day|you\s+rock|the\s+best)\b|❤️?|♥️?|💕|💖|💙|💚|💜|😍|🥰|👏|🙌|🙏|⭐|🌟|👍)",
    )
});

/// Praise words that are also plain politeness ("thanks in advance").
fn is_thanks(word: &str) -> bool {
    let w = word.to_lowercase();
    w.starts_with("thank")
        || matches!(
            w.as_str(),
            "thx" | "ty" | "cheers" | "🙏" | "appreciate" | "appreciated"
        )
}

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\bthanks?\s+(?:a\s+lot\s+)?for\s+nothing\b|\byeah\s+right\b|\bnot\s*!|#not\b|/s\b|\bso\s+much\s+for\b|\bjust\s+(?:great|perfect|brilliant|fantastic|wonderful)\b|\boh\s+(?:great|good|wonderful|perfect|brilliant)\b|\bwhat\s+a\s+(?:great|wonderful|fantastic)\s+(?:way|start)\b|\bnothing\s+(?:says|like)\b|\bcan'?t\s+wait\b|\bgreat\s+job\s+(?:losing|ruining|cancel)|\bgood\s+job\s+(?:losing|ruining|cancel)|\bappreciate\s+(?:being|the)\s+(?:ignored|wait)|🙄|🙃|😒|😤|🤡|🤦)",
    )
});

static MISFORTUNE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:delay(?:ed|s)?|cancel(?:l?ed|lation)|lost|losing|lose|ignored|ignoring|on\s+hold|hold\s+(?:for|music)|waiting|wait(?:ed)?\s+\d|stuck|stranded|broken|broke|damaged|late|again|another|still|never|nothing|no\s+one|nobody|worst|charged|overcharged|rude|missing|missed|crash(?:ed|es)?|down|hours?|error|useless|terrible|awful|disappointed|ruined|ruining|fail(?:ed|s)?|not\s+working|doesn'?t\s+work)\b",
    )
});

static REMEDY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:found|finding|fixed|fixing|sorted|sorting|resolved|solved|helped|helping|refunded|replaced|rebooked|quick(?:ly)?|fast|speedy|prompt(?:ly)?|in\s+(?:no\s+time|minutes|ten\s+minutes)|despite|even\s+though|made\s+up\s+for|turned\s+(?:it\s+)?around|saved)\b",
    )
});

static CONTRAST: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(?:but|although|though|however|except|shame)\b"));

/// Sentences of `text` as byte ranges (end after `.`, `!`, `?` or a line break).
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n') {
            let end = i + c.len_utf8();
            if text[start..end].trim().len() > 1 {
                out.push((start, end));
                start = end;
            }
        }
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        out.push((start, text.len()));
    }
    out
}

/// Label `text`.
pub fn classify(text: &str) -> Vec<Label> {
    let mut genuine: Vec<(usize, usize)> = Vec::new();
    let mut sarcastic: Vec<(usize, usize, String)> = Vec::new();
    let all = sentences(text);
    for (n, &(s, e)) in all.iter().enumerate() {
        let sentence = &text[s..e];
        let praise: Vec<_> = PRAISE.find_iter(sentence).collect();
        if praise.is_empty() {
            if let Some(m) = MARKER.find(sentence) {
                sarcastic.push((s + m.start(), s + m.end(), "sarcasm marker".into()));
            }
            continue;
        }
        let remedy = REMEDY.is_match(sentence);
        if let Some(m) = MARKER.find(sentence) {
            sarcastic.push((s + m.start(), s + m.end(), "sarcasm marker".into()));
            continue;
        }
        let first = &praise[0];
        // A sentence that is only praise ("Fantastic.") before a sentence about a misfortune.
        let bare = sentence
            .trim_matches(|c: char| !c.is_alphanumeric())
            .eq_ignore_ascii_case(first.as_str());
        if bare && let Some(&(ns, ne)) = all.get(n + 1) {
            let next = &text[ns..ne];
            if let Some(m) = MISFORTUNE.find(next)
                && !REMEDY.is_match(next)
                && !PRAISE.is_match(next)
            {
                sarcastic.push((
                    s + first.start(),
                    ns + m.end(),
                    format!("\"{}\" before \"{}\"", first.as_str(), m.as_str()),
                ));
                continue;
            }
        }
        let after_misfortune = MISFORTUNE.find(&sentence[first.end()..]);
        // Mixed feedback ("great crew, but the flight was late") is neither.
        if let Some(m) = &after_misfortune
            && CONTRAST.is_match(&sentence[first.end()..first.end() + m.start()])
        {
            continue;
        }
        // An interjection ("Great, …", "Wow, thanks") opening a sentence about a misfortune.
        let interjection = sentence[..first.start()].trim().is_empty()
            || sentence[..first.start()]
                .trim()
                .to_lowercase()
                .trim_end_matches(',')
                .ends_with("wow");
        let before_misfortune = MISFORTUNE.find(&sentence[..first.start()]);
        match (after_misfortune, before_misfortune) {
            (Some(m), _)
                if !remedy
                    && (interjection
                        || praise.iter().all(|p| !is_thanks(p.as_str()))
                        || sentence[first.end()..]
                            .trim_start()
                            .to_lowercase()
                            .starts_with("for")) =>
            {
                let at = s + first.end() + m.start();
                sarcastic.push((
                    s + first.start(),
                    at + m.len(),
                    format!("praise \"{}\" about \"{}\"", first.as_str(), m.as_str()),
                ));
            }
            (None, Some(m))
                if !remedy && !praise.iter().any(|p| is_thanks(p.as_str())) && interjection =>
            {
                sarcastic.push((
                    s + m.start(),
                    s + first.end(),
                    format!("\"{}\" after \"{}\"", first.as_str(), m.as_str()),
                ));
            }
            _ => genuine.extend(praise.iter().map(|p| (s + p.start(), s + p.end()))),
        }
    }

    let mut labels = Vec::new();
    if !sarcastic.is_empty() {
        labels.push(sarcastic.iter().fold(
            Label::new("sarcasm", if sarcastic.len() > 1 { 0.85 } else { 0.7 }),
            |l, (s, e, note)| l.at(note, *s, *e),
        ));
    }
    // Thanks at the end of a complaint is politeness, not advocacy.
    let complaint = cues::care_cues(text)
        .iter()
        .any(|c| matches!(c.2, Cue::Problem | Cue::Question))
        && !REMEDY.is_match(text);
    let strong: Vec<_> = genuine
        .iter()
        .filter(|&&(s, e)| !is_thanks(&text[s..e]))
        .collect();
    let counts = if complaint {
        strong.len()
    } else {
        genuine.len()
    };
    if sarcastic.is_empty() && counts > 0 {
        let score = (0.45 + 0.2 * counts as f32).min(0.95);
        let evidence: Vec<&(usize, usize)> = if complaint {
            strong
        } else {
            genuine.iter().collect()
        };
        labels.push(
            evidence
                .iter()
                .fold(Label::new("advocate", score), |l, &&(s, e)| {
                    l.at(&format!("praise: \"{}\"", &text[s..e]), s, e)
                }),
        );
    }
    labels
}

struct Advocate;

impl Classifier for Advocate {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "advocate-classifier",
            env!("CARGO_PKG_VERSION"),
            "Advocates (praise worth thanking), not sarcastic praise",
        )
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        Ok(classify(&message.text))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    LazyLock::force(&PRAISE);
    LazyLock::force(&MARKER);
    LazyLock::force(&MISFORTUNE);
    LazyLock::force(&REMEDY);
    LazyLock::force(&CONTRAST);
    switchboard_textscan::cues::warm();
    // Run the rules once, so the automata states they build are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = classify(text);
    }
}

switchboard_sdk::export_classifier!(Advocate, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        classify(text).into_iter().map(|l| l.name).collect()
    }

    #[test]
    fn genuine_praise() {
        for text in [
            "Just wanted to say the support team sorted my return in ten minutes. Amazing service, thank you!",
            "Love you guys ❤️",
            "Thank you for finding my lost bag so quickly!",
            "Great service on my flight to Lisbon today, the crew were lovely",
            "🙌🙌 best customer service ever",
            "thanks!",
        ] {
            assert_eq!(names(text), ["advocate"], "{text}");
        }
    }

    #[test]
    fn sarcastic_praise_is_not_advocacy() {
        for text in [
            "Great, another delay.",
            "thanks for nothing",
            "Love waiting 2 hours on hold",
            "Best airline ever 🙄",
            "Wow, thanks for losing my bag again",
            "Oh great, the app crashed again",
            "Amazing how you lost my bag twice",
            "Fantastic. Flight cancelled, no hotel, no one answering.",
            "Thanks a lot, now I'm stuck in Denver",
        ] {
            assert_eq!(names(text), ["sarcasm"], "{text}");
        }
    }

    #[test]
    fn polite_thanks_in_a_complaint_is_not_advocacy() {
        assert!(names("My order hasn't arrived, can you check? Thanks").is_empty());
        assert!(names("where is my refund? thank you").is_empty());
    }

    #[test]
    fn evidence_points_at_the_praise() {
        let text = "Amazing service, thank you!";
        let l = &classify(text)[0];
        let spans: Vec<&str> = l
            .evidence
            .iter()
            .map(|e| &text[e.span.unwrap().start as usize..e.span.unwrap().end as usize])
            .collect();
        assert_eq!(spans, ["Amazing", "thank you"]);
    }
}
