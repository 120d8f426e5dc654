//! Abuse classifier: the "don't feed the animals" decision.
//!
//! Labels (bare names: each is yes or no):
//!
//! - `profanity`: swearing, also disguised (`sh1t`, `ｆｕｃｋ`, `f u c k`, zero-width characters);
//!   never inside other words ("Scunthorpe", "Dickens", "assess").
//! - `abuse`: an insult aimed at a person — the agent, the staff, "you" — (`you idiots`, `your
//!   staff are useless`, `fuck you`), as opposed to a harsh word about a product (`the app is
//!   useless` is a complaint, not abuse).
//! - `troll`: profanity or abuse with nothing to answer: no order, flight, account, problem,
//!   question or reference in the message. A complaint with a swear word is not a troll.
//!
//! Matching (normalisation, word lists, care cues) is `switchboard-textscan`'s, the same code the
//! host's rudeness guard uses on drafts.
//!
//! Config: `extra_profanity`, `extra_insults` (lists of words or phrases, JSON array or comma
//! separated) add to the built-in lists for this tenant.

use std::sync::LazyLock;

use switchboard_sdk::prelude::*;
use switchboard_textscan::Regex;
use switchboard_textscan::normalize::normalize;
use switchboard_textscan::{cues, rude};

/// Words that name a person or people on the brand's side (or the reader).
static TARGET: LazyLock<Regex> = LazyLock::new(|| {
    switchboard_textscan::pattern(
        r"(?i)\b(?:you|u|ya|yu|youre|you're|ur|your|yours|yourself|yourselves|y'?all|staff|agents?|employees?|reps?|representatives?|team|ceo|managers?|management|people|guys|lot|whoever|everyone\s+there|muppets)\b",
    )
});

/// Things, not people: a harsh word about one of these is criticism, not abuse.
static THING: LazyLock<Regex> = LazyLock::new(|| {
    switchboard_textscan::pattern(
        r"(?i)\b(?:app|website|site|service|product|company|airline|flight|update|system|policy|process|food|seat|delivery|order|experience|software|phone|device|store|shop|customer\s+service|support|wifi|prices?)\b",
    )
});

/// Profanity aimed at someone, on the normalised (collapsed) text.
static DIRECTED: LazyLock<Regex> = LazyLock::new(|| {
    switchboard_textscan::pattern(
        r"\b(?:(?:fuck|f\*ck|fck|fuk|screw|damn)\s+(?:you|u|ya|yu|yourself|yourselves|of)|stfu|(?:pis|sod|bugger)\s+of|go\s+to\s+hel|kys|kil\s+yourself|shut\s+up)\b",
    )
});

/// Insults that are nouns for people: plural ones in a message to a brand are aimed at its
/// people (`clowns`, `idiots`).
fn plural_person_noun(term: &str) -> bool {
    matches!(
        term,
        "idiots"
            | "morons"
            | "imbeciles"
            | "clowns"
            | "losers"
            | "liars"
            | "thieves"
            | "croks"
            | "scamers"
            | "scumbags"
            | "bastards"
            | "dickheads"
            | "asholes"
            | "arseholes"
            | "twats"
            | "wankers"
            | "cunts"
    )
}

/// Built-in plus tenant lists.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub profanity: Vec<String>,
    pub insults: Vec<String>,
}

/// Label `text`.
pub fn classify(text: &str, extra: &Extra) -> Vec<Label> {
    let mut hits = rude::find(
        text,
        &[
            rude::Kind::Profanity,
            rude::Kind::Insult,
            rude::Kind::Disparaging,
        ],
    );
    hits.extend(rude::PhraseList::new(&extra.profanity).find(text, rude::Kind::Profanity));
    hits.extend(rude::PhraseList::new(&extra.insults).find(text, rude::Kind::Insult));
    let note = |h: &rude::Hit, what: &str| {
        let disguised = if h.disguised { ", disguised" } else { "" };
        format!("{what} \"{}\"{disguised}", h.term)
    };

    let mut labels = Vec::new();
    let profane: Vec<&rude::Hit> = hits
        .iter()
        .filter(|h| h.kind == rude::Kind::Profanity)
        .collect();
    if !profane.is_empty() {
        let mut terms: Vec<&str> = profane.iter().map(|h| h.term.as_str()).collect();
        terms.sort_unstable();
        terms.dedup();
        let score = 1.0 - 0.4f32.powi(terms.len() as i32);
        labels.push(profane.iter().fold(Label::new("profanity", score), |l, h| {
            l.at(&note(h, "swear word"), h.start, h.end)
        }));
    }

    // Abuse: insults and disparaging words aimed at a person, and profanity aimed at someone.
    let mut abuse = Label::new("abuse", 0.0);
    for h in &hits {
        if h.kind == rude::Kind::Profanity {
            continue;
        }
        // Up to 40 bytes of the same sentence before the word.
        let window_start = text[..h.start]
            .rfind(['.', '!', '?', '\n'])
            .map_or(0, |i| i + 1)
            .max(h.start.saturating_sub(40));
        let window_start = (window_start..=h.start)
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(h.start);
        let before = text[window_start..h.start].to_lowercase();
        let target = TARGET.find_iter(&before).last();
        let aimed = match target {
            Some(t) => !THING.is_match(&before[t.end()..]),
            None => {
                plural_person_noun(&h.term)
                    || text[h.end..]
                        .trim_start()
                        .to_lowercase()
                        .starts_with("like you")
            }
        };
        if aimed {
            let why = match target {
                Some(t) => format!(
                    "{} aimed at \"{}\"",
                    note(h, "insult"),
                    before[t.start()..t.end()].trim()
                ),
                None => note(h, "insult aimed at people"),
            };
            abuse = abuse.at(&why, h.start, h.end);
        }
    }
    let norm = normalize(text);
    for m in DIRECTED.find_iter(&norm.text) {
        let (s, e) = norm.original_span(m.start(), m.end());
        abuse = abuse.at(
            &format!("profanity aimed at someone: \"{}\"", m.as_str()),
            s,
            e,
        );
    }
    if !abuse.evidence.is_empty() {
        abuse.score = (0.6 + 0.15 * abuse.evidence.len() as f32).min(0.95);
        labels.push(abuse);
    }

    // Troll: rude, and nothing to answer.
    if !labels.is_empty() && !cues::has_care_matter(text) {
        let score = if labels.len() == 2 { 0.9 } else { 0.75 };
        labels.push(Label::new("troll", score).because(
            "rude with nothing to answer: no order, account, problem, question or reference",
        ));
    }
    labels
}

struct AbuseClassifier;

impl Classifier for AbuseClassifier {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "abuse-classifier",
            env!("CARGO_PKG_VERSION"),
            "Profanity, abuse aimed at a person, and trolls (abuse with nothing to answer)",
        )
        .config_key("extra_profanity")
        .config_key("extra_insults")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let extra = Extra {
            profanity: config::list("extra_profanity"),
            insults: config::list("extra_insults"),
        };
        Ok(classify(&message.text, &extra))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    LazyLock::force(&TARGET);
    LazyLock::force(&THING);
    LazyLock::force(&DIRECTED);
    switchboard_textscan::rude::warm();
    switchboard_textscan::cues::warm();
    // Run the rules once, so the automata states they build are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = classify(text, &Extra::default());
    }
}

switchboard_sdk::export_classifier!(AbuseClassifier, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        classify(text, &Extra::default())
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    #[test]
    fn a_jeer_is_a_troll_and_a_complaint_is_not() {
        assert_eq!(
            names("@AcmeCare what a load of crap lol"),
            ["profanity", "troll"]
        );
        assert_eq!(
            names(
                "@AcmeCare your app is crap, it crashed AGAIN and lost my basket. Worst update ever."
            ),
            ["profanity"]
        );
        assert_eq!(names("you guys are a bunch of clowns"), ["abuse", "troll"]);
        assert_eq!(
            names("fuck you, where is my refund?"),
            ["profanity", "abuse"]
        );
    }

    #[test]
    fn abuse_is_aimed_at_people_not_products() {
        assert_eq!(names("your staff are useless idiots"), ["abuse", "troll"]);
        assert!(names("the app is useless since the update, my order is stuck").is_empty());
        assert_eq!(names("You're pathetic."), ["abuse", "troll"]);
        assert!(names("That was a stupid mistake by the courier with my parcel").is_empty());
    }

    #[test]
    fn disguises_and_scunthorpe() {
        for text in [
            "sh1t",
            "ｆｕｃｋ",
            "f u c k",
            "a$$hole",
            "b\u{200B}itch",
            "FUUUUCK",
        ] {
            let labels = classify(text, &Extra::default());
            let p = labels.iter().find(|l| l.name == "profanity");
            assert!(p.is_some(), "{text}: {labels:?}");
            let span = p.unwrap().evidence[0].span.unwrap();
            assert_eq!(
                (span.start as usize, span.end as usize),
                (0, text.len()),
                "{text}"
            );
        }
        for text in [
            "Scunthorpe store closed early",
            "Reading Dickens on my delayed train",
            "please assess the damage to my suitcase",
            "Shiitake risotto was great",
        ] {
            assert!(names(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn tenant_words_add_to_the_lists() {
        let extra = Extra {
            profanity: vec!["feck".into()],
            insults: vec!["numpties".into()],
        };
        let labels = classify("feck off you numpties", &extra);
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["profanity", "abuse", "troll"]);
    }
}
