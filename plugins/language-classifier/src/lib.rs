//! Language classifier: which language a message is written in, as `language:<bcp47>`.
//!
//! Detection is [`whatlang`](https://crates.io/crates/whatlang) (MIT licence; trigram and
//! script profiles compiled into the plugin, no data files), on the text with mentions, links
//! and `#` signs removed. Tags are two-letter where one exists (`en`, `es`, `fr`, `de`, `pt`,
//! `it`, `nl`, `ja`, …), otherwise whatlang's ISO 639-3 code, which is also valid BCP 47.
//!
//! When the platform already gave the message a `language`, that tag is the label (the
//! platform knows its users' settings; this plugin never overrides it), with evidence saying
//! whether the text agrees; if detection is reliable and disagrees, a second label
//! `language-disagreement` says so, for an agent to look at.
//!
//! Config: `languages` — the tags to choose between (list, e.g. `["en", "es", "fr"]`); by
//! default [`DEFAULT_LANGUAGES`]. An unknown tag is `not-configured`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use switchboard_sdk::prelude::*;
use whatlang::{Detector, Lang};

/// ISO 639-3 (whatlang) to the shortest BCP 47 tag.
const TWO_LETTER: &[(&str, &str)] = &[
    ("eng", "en"),
    ("spa", "es"),
    ("fra", "fr"),
    ("deu", "de"),
    ("por", "pt"),
    ("ita", "it"),
    ("nld", "nl"),
    ("rus", "ru"),
    ("ukr", "uk"),
    ("pol", "pl"),
    ("ces", "cs"),
    ("slk", "sk"),
    ("swe", "sv"),
    ("dan", "da"),
    ("nob", "nb"),
    ("fin", "fi"),
    ("hun", "hu"),
    ("ron", "ro"),
    ("bul", "bg"),
    ("hrv", "hr"),
    ("srp", "sr"),
    ("slv", "sl"),
    ("ell", "el"),
    ("tur", "tr"),
    ("ara", "ar"),
    ("heb", "he"),
    ("pes", "fa"),
    ("hin", "hi"),
    ("ben", "bn"),
    ("urd", "ur"),
    ("tha", "th"),
    ("vie", "vi"),
    ("ind", "id"),
    ("zlm", "ms"),
    ("tgl", "tl"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("cmn", "zh"),
    ("cat", "ca"),
    ("lit", "lt"),
    ("lav", "lv"),
    ("est", "et"),
    ("afr", "af"),
    ("epo", "eo"),
];

/// Languages considered when the tenant lists none: the common languages of social care. Short
/// posts are easily mistaken for a close relative (Spanish for Afrikaans or Catalan, Dutch for
/// Afrikaans), so the long tail is left out unless a tenant asks for it.
pub const DEFAULT_LANGUAGES: &[&str] = &[
    "en", "es", "fr", "de", "pt", "it", "nl", "ru", "uk", "pl", "tr", "ar", "he", "fa", "hi", "ja",
    "ko", "zh", "sv", "da", "nb", "fi", "cs", "el", "ro", "hu", "id", "vi", "th",
];

/// The BCP 47 tag for a whatlang language.
pub fn tag(lang: Lang) -> &'static str {
    let code = lang.code();
    TWO_LETTER
        .iter()
        .find(|(three, _)| *three == code)
        .map_or(code, |(_, two)| two)
}

/// Every language by its BCP 47 primary tag and by its ISO 639-3 code. Built once (in the
/// plugin's pre-initialisation): scanning both tables for each configured language on every
/// call was a quarter of a call's time.
static BY_TAG: LazyLock<BTreeMap<&'static str, Lang>> = LazyLock::new(|| {
    let mut by_tag = BTreeMap::new();
    for &lang in Lang::all() {
        by_tag.entry(lang.code()).or_insert(lang);
        by_tag.entry(tag(lang)).or_insert(lang);
    }
    by_tag
});

/// [`DEFAULT_LANGUAGES`] as whatlang languages.
static DEFAULT_ALLOW: LazyLock<Vec<Lang>> = LazyLock::new(|| {
    DEFAULT_LANGUAGES
        .iter()
        .filter_map(|t| lang_of(t))
        .collect()
});

/// The whatlang language for a BCP 47 tag (`en`, `en-GB`, `eng`), if it knows it.
pub fn lang_of(tag_text: &str) -> Option<Lang> {
    let primary = tag_text
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    BY_TAG.get(primary.as_str()).copied()
}

/// The longest platform tag kept (RFC 5646's 35-character buffer): with `language:` in front it
/// stays well within the host's 128-byte label names.
const MAX_TAG: usize = 35;

/// The platform's tag as far as it is BCP 47-shaped (a primary of 2–8 letters, then subtags of
/// 1–8 letters or digits) and within [`MAX_TAG`]; `None` if not even the primary is. The sender
/// chooses this field: an oversized one must not make the output (and the message) fail.
pub fn well_formed_tag(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let mut end = 0;
    for (i, sub) in raw.split(['-', '_']).enumerate() {
        let (ok, next) = if i == 0 {
            (
                (2..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphabetic()),
                sub.len(),
            )
        } else {
            (
                (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric()),
                end + 1 + sub.len(),
            )
        };
        if !ok || next > MAX_TAG {
            break;
        }
        end = next;
    }
    (end > 0).then(|| &raw[..end])
}

/// The text without what is not language: mentions, links, `#` signs, digits.
fn prose(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !w.starts_with('@') && !w.contains("://") && !w.starts_with("www."))
        .map(|w| w.trim_start_matches('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Label a message's `text`, given the platform's tag if any and the languages to choose from
/// (empty: all).
pub fn classify(text: &str, platform: Option<&str>, allow: &[Lang]) -> Vec<Label> {
    let allow = if allow.is_empty() {
        DEFAULT_ALLOW.clone()
    } else {
        allow.to_vec()
    };
    let detector = Detector::with_allowlist(allow);
    let prose = prose(text);
    let detected = detector.detect(&prose);
    let platform = platform.and_then(well_formed_tag);
    match (platform, detected) {
        (None, None) => vec![],
        (None, Some(info)) => {
            let reliable = if info.is_reliable() {
                "reliable"
            } else {
                "unreliable"
            };
            vec![
                Label::new(
                    &format!("language:{}", tag(info.lang())),
                    info.confidence() as f32,
                )
                .because(&format!(
                    "detected {} ({}, confidence {:.2}, {reliable})",
                    info.lang().eng_name(),
                    tag(info.lang()),
                    info.confidence()
                )),
            ]
        }
        (Some(given), detected) => {
            let given_tag = given.to_ascii_lowercase();
            let primary = given_tag.split(['-', '_']).next().unwrap_or("").to_string();
            let mut label =
                Label::new(&format!("language:{given_tag}"), 1.0).because("given by the platform");
            let mut out = Vec::new();
            match detected {
                None => label = label.because("the text is too short or mixed to check"),
                Some(info) if tag(info.lang()) == primary || info.lang().code() == primary => {
                    label = label.because(&format!(
                        "the text agrees: detected {} (confidence {:.2})",
                        tag(info.lang()),
                        info.confidence()
                    ));
                }
                Some(info) => {
                    let note = format!(
                        "the text reads as {} (confidence {:.2}{})",
                        tag(info.lang()),
                        info.confidence(),
                        if info.is_reliable() {
                            ", reliable"
                        } else {
                            ", unreliable"
                        }
                    );
                    label = label.because(&note);
                    if info.is_reliable() {
                        out.push(
                            Label::new("language-disagreement", info.confidence() as f32)
                                .because(&format!("the platform says {given_tag}; {note}")),
                        );
                    }
                }
            }
            out.insert(0, label);
            out
        }
    }
}

struct Language;

impl Classifier for Language {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "language-classifier",
            env!("CARGO_PKG_VERSION"),
            "The message's language (whatlang), agreeing or disagreeing with the platform's tag",
        )
        .config_key("languages")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let mut allow = Vec::new();
        for t in config::list("languages") {
            allow.push(lang_of(&t).ok_or_else(|| {
                PluginError::NotConfigured(format!(
                    "config key `languages`: unknown language tag `{t}`"
                ))
            })?);
        }
        Ok(classify(&message.text, message.language.as_deref(), &allow))
    }
}

/// Pre-initialisation: the tag tables are in the snapshot every call starts from. (Not a
/// detection: whatlang's `HashMap`s ask for randomness, which `init` may not.)
fn init() {
    LazyLock::force(&BY_TAG);
    LazyLock::force(&DEFAULT_ALLOW);
}

switchboard_sdk::export_classifier!(Language, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_posts() {
        assert_eq!(
            top("Mi pedido nunca llegó y nadie me responde"),
            "language:es"
        );
        assert_eq!(top("Waar blijft mijn pakket?"), "language:nl");
        assert_eq!(top("Où est ma commande ?"), "language:fr");
    }

    fn top(text: &str) -> String {
        classify(text, None, &[])[0].name.clone()
    }

    #[test]
    fn the_seven_languages() {
        for (text, want) in [
            (
                "@AcmeCare my order never arrived and the tracking hasn't moved in six days",
                "language:en",
            ),
            (
                "Mi pedido nunca llegó y nadie me responde, quiero mi dinero de vuelta",
                "language:es",
            ),
            (
                "Ma commande n'est jamais arrivée et personne ne répond à mes messages",
                "language:fr",
            ),
            (
                "Meine Bestellung ist nie angekommen und niemand antwortet mir",
                "language:de",
            ),
            (
                "Meu pedido nunca chegou e ninguém responde às minhas mensagens",
                "language:pt",
            ),
            (
                "Il mio ordine non è mai arrivato e nessuno risponde ai miei messaggi",
                "language:it",
            ),
            (
                "Mijn bestelling is nooit aangekomen en niemand beantwoordt mijn berichten",
                "language:nl",
            ),
        ] {
            assert_eq!(top(text), want, "{text}");
        }
    }

    #[test]
    fn the_platforms_tag_is_kept_and_checked() {
        let text = "Ma commande n'est jamais arrivée et personne ne répond à mes messages";
        let agree = classify(text, Some("fr-FR"), &[]);
        assert_eq!(agree.len(), 1);
        assert_eq!(agree[0].name, "language:fr-fr");
        assert!(agree[0].evidence[1].note.starts_with("the text agrees"));
        let disagree = classify(text, Some("en"), &[]);
        assert_eq!(disagree[0].name, "language:en");
        assert_eq!(disagree[1].name, "language-disagreement");
    }

    #[test]
    fn an_oversized_or_malformed_platform_tag_never_makes_an_oversized_label() {
        let text = "Ma commande n'est jamais arrivée et personne ne répond à mes messages";
        let long = format!("fr-{}", "x".repeat(200));
        let labels = classify(text, Some(&long), &[]);
        assert_eq!(labels[0].name, "language:fr");
        let junk = classify(text, Some(&"é".repeat(100)), &[]);
        assert_eq!(junk[0].name, "language:fr");
        for l in labels.iter().chain(&junk) {
            assert!(l.name.len() <= 128, "{}", l.name);
        }
    }

    #[test]
    fn tags_map_both_ways() {
        assert_eq!(lang_of("pt-BR"), Some(Lang::Por));
        assert_eq!(lang_of("nl"), Some(Lang::Nld));
        assert_eq!(lang_of("xx"), None);
        assert_eq!(tag(Lang::Jpn), "ja");
    }
}
