//! Rude words and phrases, found through disguises and never inside other words.
//!
//! Matching runs on the [`normalize`]d text, as whole words: "Scunthorpe", "Dickens",
//! "assess" and "classify" contain no rude word. Each hit says whether it was disguised (the
//! original spelling, lowercased and with repeats collapsed, is not the word itself) so that a
//! reply guard can say "disguised" and a classifier can note it.

use std::sync::LazyLock;

use crate::Regex;

use crate::normalize::{normalize, plain};

/// What kind of rudeness a word or phrase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Swearing (`fuck`, `shit`, `crap`).
    Profanity,
    /// Calling someone names (`idiot`, `moron`, `pathetic`).
    Insult,
    /// Talking down to someone (`calm down`, `as I already said`): rude in a reply.
    Condescension,
    /// Running someone down without swearing (`useless`, `incompetent`, `clowns`, `liars`):
    /// abuse when aimed at a person, fair criticism when aimed at a product.
    Disparaging,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Profanity => "profanity",
            Kind::Insult => "insult",
            Kind::Condescension => "condescension",
            Kind::Disparaging => "disparaging",
        }
    }
}

/// The lexicon: `rude.tsv` beside this file, read once.
static LEXICON: LazyLock<Lexicon> =
    LazyLock::new(|| Lexicon::parse(include_str!("rude.tsv")).expect("rude.tsv"));

/// Words (a stem and its endings) and phrases of each kind, in the file's order.
#[derive(Debug, Default)]
struct Lexicon {
    stems: Vec<(Kind, String, Vec<String>)>,
    phrases: Vec<(Kind, String)>,
}

impl Lexicon {
    /// Read `rude.tsv`: a malformed line is an error naming it, never skipped.
    fn parse(text: &str) -> Result<Lexicon, String> {
        let mut lexicon = Lexicon::default();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("rude.tsv line {}: {why}: {line:?}", n + 1);
            let cols: Vec<&str> = line.split('\t').collect();
            let kind = match cols[0] {
                "profanity" => Kind::Profanity,
                "insult" => Kind::Insult,
                "condescension" => Kind::Condescension,
                "disparaging" => Kind::Disparaging,
                _ => return Err(bad("unknown kind")),
            };
            match cols[1..] {
                [phrase] if phrase.contains(' ') && phrase.trim() == phrase => {
                    lexicon.phrases.push((kind, phrase.to_string()));
                }
                [stem, endings]
                    if !stem.is_empty() && !stem.contains(' ') && !endings.trim().is_empty() =>
                {
                    let endings = endings
                        .split(' ')
                        .map(|e| match e {
                            "-" => Ok(String::new()),
                            "" => Err(bad("an empty ending (write `-` for the bare stem)")),
                            e => Ok(e.to_string()),
                        })
                        .collect::<Result<_, _>>()?;
                    lexicon.stems.push((kind, stem.to_string(), endings));
                }
                _ => {
                    return Err(bad(
                        "want `kind, stem, endings` or `kind, phrase of several words`",
                    ));
                }
            }
        }
        Ok(lexicon)
    }

    /// The stems of `kind` with their endings.
    fn stems(&self, kind: Kind) -> impl Iterator<Item = (&str, &[String])> {
        self.stems
            .iter()
            .filter(move |(k, ..)| *k == kind)
            .map(|(_, stem, endings)| (stem.as_str(), endings.as_slice()))
    }

    /// The phrases of `kind`.
    fn phrases(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.phrases
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, p)| p.as_str())
    }
}

/// A pattern for one normalised word or phrase (spaces match any run of whitespace).
fn word_pattern(word: &str) -> String {
    crate::escape(&normalize(word).text).replace(' ', r"\s+")
}

/// Every single-word entry of a kind, normalised: `fucking`, `shit`, ….
fn words(kind: Kind) -> Vec<String> {
    LEXICON
        .stems(kind)
        .flat_map(|(stem, endings)| {
            endings
                .iter()
                .map(move |e| normalize(&format!("{stem}{e}")).text)
        })
        .collect()
}

fn build(kind: Kind) -> Regex {
    let mut alts: Vec<String> = LEXICON
        .stems(kind)
        .flat_map(|(stem, endings)| endings.iter().map(move |e| format!("{stem}{e}")))
        .chain(LEXICON.phrases(kind).map(str::to_string))
        .map(|w| word_pattern(&w))
        .collect();
    // Longest first, so `fucking` wins over `fuck`.
    alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
    alts.dedup();
    crate::pattern(&format!(r"\b(?:{})\b", alts.join("|")))
}

/// Whether `token` (letters and `*`) spells `word` with each run of `*` standing for one or more
/// letters after the first (`f*ck`, `sh**`).
fn wildcard_match(token: &[u8], word: &[u8]) -> bool {
    match (token.first(), word.first()) {
        (None, None) => true,
        (Some(b'*'), Some(_)) => {
            let rest = {
                let mut r = token;
                while r.first() == Some(&b'*') {
                    r = &r[1..];
                }
                r
            };
            (1..=word.len()).any(|k| wildcard_match(rest, &word[k..]))
        }
        (Some(t), Some(w)) if t == w => wildcard_match(&token[1..], &word[1..]),
        _ => false,
    }
}

/// Words written with `*` for letters: each token of letters and `*` (starting with a letter and
/// containing a `*`) that spells a listed word.
fn starred(text: &str, kinds: &[Kind]) -> Vec<(usize, usize, Kind, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = b[i].is_ascii_alphabetic()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'*'));
        if !word_start {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'*') {
            j += 1;
        }
        let token = &b[i..j];
        if token.contains(&b'*') && !(j < b.len() && b[j].is_ascii_alphanumeric()) {
            'found: for (kind, list) in WORDS.iter() {
                if !kinds.contains(kind) {
                    continue;
                }
                for w in list {
                    if wildcard_match(token, w.as_bytes()) {
                        out.push((i, j, *kind, w.clone()));
                        break 'found;
                    }
                }
            }
        }
        i = j;
    }
    out
}

static WORDS: LazyLock<Vec<(Kind, Vec<String>)>> = LazyLock::new(|| {
    vec![
        (Kind::Profanity, words(Kind::Profanity)),
        (Kind::Insult, words(Kind::Insult)),
        (Kind::Disparaging, words(Kind::Disparaging)),
    ]
});

static PATTERNS: LazyLock<Vec<(Kind, Regex)>> = LazyLock::new(|| {
    vec![
        (Kind::Profanity, build(Kind::Profanity)),
        (Kind::Insult, build(Kind::Insult)),
        (Kind::Condescension, build(Kind::Condescension)),
        (Kind::Disparaging, build(Kind::Disparaging)),
    ]
});

/// One rude word or phrase in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    /// The word as normalised (`shit` for `sh1t`).
    pub term: String,
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
    /// Written with look-alike characters, symbols, invisible characters or spaced out.
    pub disguised: bool,
}

/// Every rude word or phrase of the given kinds in `text`, in order of position.
pub fn find(text: &str, kinds: &[Kind]) -> Vec<Hit> {
    let norm = normalize(text);
    let mut hits = Vec::new();
    for (kind, re) in PATTERNS.iter() {
        if !kinds.contains(kind) {
            continue;
        }
        for m in re.find_iter(&norm.text) {
            let (start, end) = norm.original_span(m.start(), m.end());
            let term = m.as_str().to_string();
            let original = plain(&text[start..end]);
            let disguised = term.contains('*')
                || original.split_whitespace().collect::<Vec<_>>()
                    != term.split_whitespace().collect::<Vec<_>>();
            hits.push(Hit {
                kind: *kind,
                term,
                start,
                end,
                disguised,
            });
        }
    }
    for (s, e, kind, term) in starred(&norm.text, kinds) {
        let (start, end) = norm.original_span(s, e);
        if !hits.iter().any(|h| h.start < end && start < h.end) {
            hits.push(Hit {
                kind,
                term,
                start,
                end,
                disguised: true,
            });
        }
    }
    hits.sort_by_key(|h| (h.start, h.kind));
    hits
}

/// Every kind a reply must never contain: profanity, insults and condescension.
pub const IN_REPLIES: &[Kind] = &[Kind::Profanity, Kind::Insult, Kind::Condescension];

/// A tenant's own list of rude phrases, matched the same way (normalised, whole words).
#[derive(Debug, Clone)]
pub struct PhraseList(Option<Regex>);

impl PhraseList {
    pub fn new(phrases: &[String]) -> Self {
        let alts: Vec<String> = phrases
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(word_pattern)
            .collect();
        if alts.is_empty() {
            return PhraseList(None);
        }
        let pattern = format!(r"\b(?:{})\b", alts.join("|"));
        PhraseList(crate::try_pattern(&pattern))
    }

    /// Hits of the list in `text`, reported as `kind`.
    pub fn find(&self, text: &str, kind: Kind) -> Vec<Hit> {
        let Some(re) = &self.0 else {
            return Vec::new();
        };
        let norm = normalize(text);
        re.find_iter(&norm.text)
            .map(|m| {
                let (start, end) = norm.original_span(m.start(), m.end());
                Hit {
                    kind,
                    term: m.as_str().to_string(),
                    start,
                    end,
                    disguised: plain(&text[start..end]) != m.as_str(),
                }
            })
            .collect()
    }
}

/// Build every pattern of this module now: a plugin's pre-initialisation calls this (through
/// [`crate::warm`]) so that calls start with the patterns compiled rather than compiling them.
pub fn warm() {
    LazyLock::force(&LEXICON);
    LazyLock::force(&WORDS);
    LazyLock::force(&PATTERNS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_lexicon_reads() {
        let l = Lexicon::parse(include_str!("rude.tsv")).unwrap();
        let count = |kind| (l.stems(kind).count(), l.phrases(kind).count());
        assert_eq!(count(Kind::Profanity), (26, 4));
        assert_eq!(count(Kind::Insult), (6, 0));
        assert_eq!(count(Kind::Disparaging), (17, 0));
        assert_eq!(count(Kind::Condescension), (0, 30));
        let (_, fuck) = l.stems(Kind::Profanity).next().unwrap();
        assert_eq!(fuck[0], "", "`-` is the bare stem");
    }

    #[test]
    fn a_malformed_row_is_an_error_naming_its_line() {
        for bad in [
            "rude\tidiot\t-",
            "insult\tidiot",
            "insult\tidiot\t",
            "insult\tidiot\t- s  ic",
            "insult\ttwo words\t-",
            "insult\tidiot\t-\textra",
        ] {
            let err = Lexicon::parse(&format!("# a comment\n{bad}\n")).unwrap_err();
            assert!(err.contains("line 2"), "{bad:?}: {err}");
        }
    }

    fn terms(text: &str, kinds: &[Kind]) -> Vec<(String, bool)> {
        find(text, kinds)
            .into_iter()
            .map(|h| (h.term, h.disguised))
            .collect()
    }

    const ALL: &[Kind] = &[
        Kind::Profanity,
        Kind::Insult,
        Kind::Condescension,
        Kind::Disparaging,
    ];

    #[test]
    fn plain_and_emphatic_words_are_not_disguised() {
        assert_eq!(terms("This is CRAP.", ALL), [("crap".into(), false)]);
        assert_eq!(
            terms("what the FUUUUCKING hell", ALL),
            [("fucking".into(), false)]
        );
        let h = &find("you absolute idiot", ALL)[0];
        assert_eq!(&"you absolute idiot"[h.start..h.end], "idiot");
    }

    #[test]
    fn disguises_are_seen_through() {
        for text in [
            "sh1t",
            "a$$hole",
            "i\u{200B}diot",
            "ｓｔｕｐｉｄ",
            "f u c k",
            "f*ck",
            "іdіоt",
            "b1tch",
        ] {
            let hits = find(text, ALL);
            assert_eq!(hits.len(), 1, "{text}: {hits:?}");
            assert!(hits[0].disguised, "{text}");
            assert_eq!((hits[0].start, hits[0].end), (0, text.len()), "{text}");
        }
    }

    #[test]
    fn no_scunthorpe_problem() {
        for text in [
            "Scunthorpe deliveries resume on Monday",
            "Dickens fans, sorry for the wait",
            "we will assess the damage",
            "classify this as a shipping issue",
            "a cocktail at the passport office in Essex",
            "Shiitake mushrooms, a class act, skyscraper",
            "pass the assessment, then as we said nothing",
            "Désolés pour ce retard, Camille",
        ] {
            let hits = find(text, &[Kind::Profanity, Kind::Insult]);
            assert!(hits.is_empty(), "{text}: {hits:?}");
        }
    }

    #[test]
    fn kinds_are_kept_apart() {
        let hits = find("Calm down, you useless clowns. Shit.", ALL);
        let kinds: Vec<Kind> = hits.iter().map(|h| h.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Condescension,
                Kind::Disparaging,
                Kind::Disparaging,
                Kind::Profanity
            ]
        );
        assert!(find("useless", IN_REPLIES).is_empty());
    }

    #[test]
    fn tenant_phrases_match_the_same_way() {
        let list = PhraseList::new(&["get a life".into(), "  ".into()]);
        assert_eq!(list.find("Get  a LIFE!", Kind::Insult).len(), 1);
        assert!(list.find("forget a lifetime", Kind::Insult).is_empty());
        assert!(
            PhraseList::new(&[])
                .find("anything", Kind::Insult)
                .is_empty()
        );
    }
}
