//! Signs that a message carries a care matter: something of the customer's own (an order, a
//! flight, an account) or a problem with it, or a question. Several classifiers need the same
//! answer to "is there anything here to answer?" — a troll has nothing; a complaint with a swear
//! word does — so the word lists live here once.

use std::sync::LazyLock;

use crate::Regex;

fn re(pattern: &str) -> Regex {
    crate::pattern(pattern)
}

/// Things a customer has with a brand.
static MATTER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:orders?|deliver(?:y|ies|ed)|parcels?|packages?|shipments?|tracking|refunds?|charged?|charges|payments?|paid|cards?|accounts?|log\s?in|login|password|bookings?|reservations?|flights?|bags?|luggage|baggage|suitcases?|seats?|tickets?|boarding|gate|check[\s-]?in|app|website|site|subscriptions?|invoices?|bills?|billing|returns?|exchange|items?|products?|basket|cart|warranty|receipt|wifi|connection|upgrade|voucher|points|miles|membership|plan|contract|installation|appointment|engineer|driver|courier|store|branch)\b",
    )
});

/// Something gone wrong, or help asked for.
static PROBLEM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:never\s+(?:arrived|came|got|received|showed)|not\s+(?:arrived|received|working|loading|showing|delivered)|(?:doesn'?t|does\s+not|won'?t|can'?t|cannot|couldn'?t|didn'?t|isn'?t|wasn'?t|hasn'?t|haven'?t|aren'?t|not)\s+\w+|broken|damaged|missing|lost|cancel(?:l?ed)?|delay(?:ed|s)?|late|stuck|stranded|crash(?:ed|es|ing)?|error|failed|wrong|twice|double|overcharged|still\s+(?:waiting|nothing|no)|waiting|hold|help|fix|issue|problem|complain(?:t)?|refund|where\s+is|when\s+will|how\s+(?:do|can|long)|why\s+(?:is|was|did|does|has|have|can)|anyone|please)\b",
    )
});

static QUESTION: LazyLock<Regex> = LazyLock::new(|| re(r"\?"));
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| re(r"#?\b[A-Z]{0,4}-?\d{4,}\b"));

/// A care cue: where, and what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// Something of the customer's own (`order`, `flight`, `account`).
    Matter,
    /// A problem or a request for help (`never arrived`, `can't log in`, `help`).
    Problem,
    /// A question mark.
    Question,
    /// An order, booking or ticket reference (`#48213`, `AB-123456`).
    Reference,
}

/// Every care cue in `text`: `(start, end, cue)` in order of position.
pub fn care_cues(text: &str) -> Vec<(usize, usize, Cue)> {
    let mut out = Vec::new();
    for (cue, re) in [
        (Cue::Matter, &*MATTER),
        (Cue::Problem, &*PROBLEM),
        (Cue::Question, &*QUESTION),
        (Cue::Reference, &*REFERENCE),
    ] {
        out.extend(re.find_iter(text).map(|m| (m.start(), m.end(), cue)));
    }
    out.sort_by_key(|c| (c.0, c.1));
    out
}

/// Whether there is anything in `text` for a care team to answer.
pub fn has_care_matter(text: &str) -> bool {
    !care_cues(text).is_empty()
}

/// Build every pattern of this module now: a plugin's pre-initialisation calls this (through
/// [`crate::warm`]) so that calls start with the patterns compiled rather than compiling them.
pub fn warm() {
    LazyLock::force(&MATTER);
    LazyLock::force(&PROBLEM);
    LazyLock::force(&QUESTION);
    LazyLock::force(&REFERENCE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_have_cues_and_jeers_do_not() {
        assert!(has_care_matter(
            "your app is crap, it crashed AGAIN and lost my basket"
        ));
        assert!(has_care_matter("fuck you, where is my refund"));
        assert!(has_care_matter("order 48213"));
        assert!(!has_care_matter("what a load of crap lol"));
        assert!(!has_care_matter("you guys are clowns"));
        let cues = care_cues("my flight was delayed?");
        let kinds: Vec<Cue> = cues.iter().map(|c| c.2).collect();
        assert_eq!(kinds, [Cue::Matter, Cue::Problem, Cue::Question]);
    }
}
