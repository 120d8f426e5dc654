//! The matching logic, free of any host call so that it can be benchmarked natively.

use std::collections::BTreeMap;

/// One label and the phrases that raise it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub label: String,
    /// Lowercased phrases.
    pub phrases: Vec<String>,
}

/// A phrase found in the text: byte range in the original text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub phrase: String,
    pub start: usize,
    pub end: usize,
}

/// Built-in lists, used for a label when the tenant configures none. Kept short on purpose:
/// they are a starting point, tenants tune them.
pub const DEFAULT_SPAM: &[&str] = &[
    "free entry",
    "you have won",
    "you've won",
    "claim your prize",
    "claim now",
    "txt stop",
    "text stop",
    "urgent! call",
    "click here",
    "winner!",
    "cash prize",
    "guaranteed prize",
    "£1000",
    "free ringtone",
    "100% free",
    "buy followers",
    "crypto giveaway",
    "dm for promo",
    "limited time offer",
    "to claim",
    "prize reward",
    "won a",
    "call 09",
    "claim your",
    "you have been selected",
    "awarded",
    "guaranteed",
    "150p",
    "per msg",
    "to opt out",
    "reply stop",
    "send stop",
    "text stop",
    "unsubscribe",
    "camera phone",
    "free msg",
    "freemsg",
    "ringtone",
    "urgent!",
];
pub const DEFAULT_PROFANITY: &[&str] = &[
    "fuck", "fucking", "shit", "bullshit", "asshole", "bastard", "bitch", "dickhead", "crap",
    "wtf", "stfu", "damn you", "piss off",
];
pub const DEFAULT_DEFLECTION: &[&str] = &[
    "call us",
    "call our",
    "give us a call",
    "1-800",
    "1800-",
    "phone our",
    "email us at",
    "e-mail us at",
    "send an email to",
    "contact our call center",
    "visit our website",
    "ring us",
];

impl Rule {
    pub fn new(label: &str, phrases: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        Rule {
            label: label.to_string(),
            phrases: phrases
                .into_iter()
                .map(|p| p.as_ref().trim().to_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }
}

/// The default rule set: spam, profanity, deflection.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::new("spam", DEFAULT_SPAM),
        Rule::new("profanity", DEFAULT_PROFANITY),
        Rule::new("deflection", DEFAULT_DEFLECTION),
    ]
}

/// Lowercase `text`, keeping for each byte of the result the byte offset of the original
/// character it came from, so hits map back to spans in the original text.
fn lower_with_offsets(text: &str) -> (String, Vec<usize>) {
    let mut lower = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len() + 1);
    for (i, c) in text.char_indices() {
        if c.is_ascii() {
            lower.push(c.to_ascii_lowercase());
            offsets.push(i);
        } else {
            for lc in c.to_lowercase() {
                let before = lower.len();
                lower.push(lc);
                offsets.extend(std::iter::repeat_n(i, lower.len() - before));
            }
        }
    }
    offsets.push(text.len());
    (lower, offsets)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Find every phrase of `rule` in `text`, as whole words (a phrase that starts or ends with a
/// non-word character, such as `1-800` or `£1000`, matches at that edge without a boundary).
pub fn find(rule: &Rule, lower: &str, offsets: &[usize]) -> Vec<Hit> {
    let bytes = lower.as_bytes();
    let mut hits = Vec::new();
    for phrase in &rule.phrases {
        let pb = phrase.as_bytes();
        let need_left = pb.first().is_some_and(|&b| is_word_byte(b));
        let need_right = pb.last().is_some_and(|&b| is_word_byte(b));
        let mut from = 0;
        while let Some(pos) = lower[from..].find(phrase.as_str()) {
            let start = from + pos;
            let end = start + phrase.len();
            let left_ok = !need_left || start == 0 || !is_word_byte(bytes[start - 1]);
            let right_ok = !need_right || end == bytes.len() || !is_word_byte(bytes[end]);
            if left_ok && right_ok {
                hits.push(Hit {
                    phrase: phrase.clone(),
                    start: offsets[start],
                    end: offsets[end],
                });
            }
            from = start + phrase.len().max(1);
            while !lower.is_char_boundary(from) {
                from += 1;
            }
        }
    }
    hits
}

/// Score from the number of distinct phrases hit: 1 → 0.6, 2 → 0.84, 3 → 0.94 …
pub fn score(distinct_phrases: usize) -> f32 {
    1.0 - 0.4f32.powi(distinct_phrases as i32)
}

/// Run every rule over `text`; returns label → hits for the labels that matched.
pub fn classify(rules: &[Rule], text: &str) -> BTreeMap<String, Vec<Hit>> {
    let (lower, offsets) = lower_with_offsets(text);
    let mut out = BTreeMap::new();
    for rule in rules {
        let hits = find(rule, &lower, &offsets);
        if !hits.is_empty() {
            out.entry(rule.label.clone())
                .or_insert_with(Vec::new)
                .extend(hits);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        let rules = vec![Rule::new("profanity", ["crap"])];
        assert!(classify(&rules, "Scrap metal").is_empty());
        let hits = &classify(&rules, "This is CRAP.")["profanity"];
        assert_eq!((hits[0].start, hits[0].end), (8, 12));
    }

    #[test]
    fn spans_point_into_the_original_text_after_non_ascii() {
        let rules = vec![Rule::new("deflection", ["call us"])];
        let text = "Ünïcödé 😀 — please CALL US now";
        let hit = &classify(&rules, text)["deflection"][0];
        assert_eq!(&text[hit.start..hit.end], "CALL US");
    }

    #[test]
    fn phrases_with_symbols_match_at_their_edges() {
        let rules = vec![Rule::new("deflection", ["1-800"])];
        assert_eq!(classify(&rules, "ring 1-800-555-0100").len(), 1);
    }

    #[test]
    fn score_grows_with_distinct_phrases() {
        assert!(score(1) < score(2) && score(2) < score(3) && score(3) < 1.0);
    }
}
