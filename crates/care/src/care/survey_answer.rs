//! Reading a customer's reply to the satisfaction survey ("How did we do? Reply with a number
//! from 1 (poor) to 5 (great).").
//!
//! Customers answer in whatever form comes to hand — "4/5", "greaaat!!!", "👍🏽", "★★★☆☆",
//! "pas mal" — and just as often ignore the survey and write about something else. The two
//! mistakes do not cost the same: a missed rating loses one data point, a question swallowed as a
//! rating leaves a customer unanswered. So [`parse_answer`] is conservative: a long reply, a
//! question, complaint or inquiry vocabulary, a number that may be an order number, amount or
//! duration, and strongly contradictory signals all give `None`, and the message goes through the
//! pipeline like any other.
//!
//! How a reply is read:
//! - **Numbers** on the 1-5 scale ("4", "4.5", "4,5"), or with an explicit scale ("7/10",
//!   "3 out of 5", "4 de 5", "80%", "5 stars", "five stars"). A scale maps to 1-5 by rounding
//!   `n × 5 / scale` half up, then clamping (0/10 → 1). A bare number is believed only when every
//!   other word is known harmless ("I'd give it a 4", "5, thanks!"): "I waited 3 days" is `None`.
//! - **Words** from a small lexicon (English, plus common Spanish, French, German, Portuguese),
//!   case- and accent-insensitive, with elongation ("greaaat") and short phrases ("love it",
//!   "could be better", "pas mal"). "very"/"really"/"muy"/"sehr" push 4 → 5 and 2 → 1.
//!   Negation ("not", "wasn't", "pas", "nicht", "não", up to three words ahead) turns a rating of
//!   3 or more into 2, and a negative into a hedged 3 — "not bad" is 3, because CSAT counts only
//!   4-5 as satisfied and "not bad" is faint praise; "not bad at all" is 4.
//! - **Emoji**: counted stars (⭐⭐⭐⭐ → 4; with empty stars, filled/total: ★★★☆☆ → 3), faces,
//!   hands and hearts, and text emoticons (":)", "<3"). Skin tones, variation selectors and
//!   zero-width joiners are ignored, so 👍🏽 and ❤️ read as 👍 and ❤.
//!
//! Signals then combine: an explicit number or star count is the answer, unless another explicit
//! one disagrees or a word/emoji sits 3 or more points away ("1 👍"); otherwise word and emoji
//! signals are averaged (half up) unless they span 3 or more points ("👍 😡", "great but slow").
//! A thank-you alone is 4, but it is politeness, not an opinion: "terrible, thanks" is 1, and
//! "no thanks" declines the survey.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

/// A satisfaction answer on a 1-5 scale, and the form the customer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rating {
    pub score: u8,
    pub form: AnswerForm,
}

/// How the customer expressed the rating (reports show which forms customers use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerForm {
    /// Digits or a number word on an explicit scale ("4", "7/10", "five stars").
    Number,
    /// Rating words ("great", "not bad", "muy bien").
    Word,
    /// Emoji, counted stars or text emoticons ("👍", "★★★☆☆", ":)").
    Emoji,
}

/// Reads `text` as an answer to the satisfaction survey, or `None` when it is not one (or not
/// clearly one) and should be handled as a normal message.
pub fn parse_answer(text: &str) -> Option<Rating> {
    let text = text.trim();
    if text.is_empty() || too_long(text) || asks(text) {
        return None;
    }
    let toks = tokenize(text);
    let mut consumed = vec![false; toks.len()];
    let mut signals = Vec::new();
    let has_bare_number = read_numbers(&toks, &mut consumed, &mut signals)?;
    let unknown_words = read_words(&toks, &consumed, &mut signals)?;
    if has_bare_number && unknown_words > 0 {
        // "I waited 3 days", "5pm": the number is about something else.
        return None;
    }
    read_glyphs(&toks, &consumed, &mut signals);
    combine(signals)
}

/// Survey answers are short; anything longer is a message in its own right.
const MAX_WORDS: usize = 8;
/// How many words after "not" a rating word is still negated ("wasn't really that helpful").
const NEGATION_REACH: u8 = 3;
/// Signals this far apart (e.g. 4 and 1) contradict each other: no answer rather than a guess.
const STRONG_DISAGREEMENT: u8 = 3;

fn too_long(text: &str) -> bool {
    let words = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count();
    words > MAX_WORDS
}

/// A question mark with words is a question ("ok?", "good? where is my refund"); "5?" alone is
/// still a (hesitant) rating.
fn asks(text: &str) -> bool {
    text.contains(['?', '¿', '？']) && text.chars().any(char::is_alphabetic)
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Lower-cased, accent-folded word ("très" → "tres"); French elisions split off ("n'", "est").
    Word(String),
    Num(Number),
    Slash,
    Percent,
    Star {
        filled: bool,
    },
    /// A scored emoji or emoticon.
    Face(u8, Weight),
    /// `#`, `$`, `€`, `£`, `¥`, `@`: a number near one is a reference or an amount.
    Symbol,
    /// Punctuation or an emoji without a score: ends a negation's reach.
    Punct(char),
}

/// A non-negative decimal in hundredths, so "4,5" and "4.50" are both 450 and no float is
/// compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Number {
    hundredths: u64,
    integral: bool,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || is_modifier(c) {
            i += 1;
        } else if let Some((len, score)) = emoticon_at(&chars, i) {
            toks.push(Tok::Face(score, Weight::Plain));
            i += len;
        } else if c.is_ascii_digit() {
            let (number, len) = scan_number(&chars, i);
            toks.push(Tok::Num(number));
            i += len;
        } else if c.is_alphabetic() {
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let joins = matches!(d, '\'' | '’' | 'ʼ' | '‘' | '-')
                    && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if d.is_alphabetic() || d.is_ascii_digit() || is_combining(d) || joins {
                    i += 1;
                } else {
                    break;
                }
            }
            let word = fold(&chars[start..i].iter().collect::<String>());
            push_word(&mut toks, word);
        } else {
            toks.push(match glyph(c) {
                Some(Glyph::Star { filled }) => Tok::Star { filled },
                Some(Glyph::Face(score, weight)) => Tok::Face(score, weight),
                Some(Glyph::Unscored) => Tok::Punct(c),
                None => match c {
                    '/' | '⁄' => Tok::Slash,
                    '%' => Tok::Percent,
                    '#' | '$' | '€' | '£' | '¥' | '@' => Tok::Symbol,
                    _ => Tok::Punct(c),
                },
            });
            i += 1;
        }
    }
    toks
}

/// French elision: "n'est" is "n'" (a negator) + "est", "c'était" is "c'" + "etait".
fn push_word(toks: &mut Vec<Tok>, word: String) {
    for prefix in ["qu'", "c'", "d'", "j'", "l'", "m'", "n'", "s'", "t'"] {
        if let Some(rest) = word.strip_prefix(prefix)
            && !rest.is_empty()
        {
            toks.push(Tok::Word(prefix.to_string()));
            toks.push(Tok::Word(rest.to_string()));
            return;
        }
    }
    toks.push(Tok::Word(word));
}

/// Digits with an optional decimal part of one or two digits after `.` or `,`; "1,000" is not a
/// decimal (it stops at the comma).
fn scan_number(chars: &[char], start: usize) -> (Number, usize) {
    let digit = |c: char| u64::from(c.to_digit(10).unwrap_or(0));
    let mut i = start;
    let mut whole: u64 = 0;
    while let Some(&c) = chars.get(i).filter(|c| c.is_ascii_digit()) {
        whole = whole.saturating_mul(10).saturating_add(digit(c));
        i += 1;
    }
    let mut number = Number {
        hundredths: whole.saturating_mul(100),
        integral: true,
    };
    if matches!(chars.get(i), Some('.' | ',')) {
        let fraction: Vec<char> = chars[i + 1..]
            .iter()
            .copied()
            .take_while(char::is_ascii_digit)
            .collect();
        if matches!(fraction.len(), 1 | 2) {
            let tenths = digit(fraction[0]) * 10;
            let rest = fraction.get(1).map_or(0, |&c| digit(c));
            number.hundredths = number.hundredths.saturating_add(tenths + rest);
            number.integral = false;
            i += 1 + fraction.len();
        }
    }
    (number, i - start)
}

/// Lower case, accents off, typographic apostrophes straight: one spelling per word in the
/// lexicon covers "Très", "tres" and "TRÈS".
fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ß' => out.push_str("ss"),
            'œ' => out.push_str("oe"),
            '’' | 'ʼ' | '‘' => out.push('\''),
            c if is_combining(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36F}')
}

/// Parts of an emoji sequence that change its look, not its meaning: variation selectors, skin
/// tones, zero-width joiner, keycap, gender signs, flag tags.
fn is_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}'
            | '\u{FE0F}'
            | '\u{200D}'
            | '\u{20E3}'
            | '\u{1F3FB}'..='\u{1F3FF}'
            | '\u{2640}'
            | '\u{2642}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Text emoticons and their ratings, from `survey_answer/emoticons.tsv`; longest first, so ">:("
/// wins over ":(".
static EMOTICONS: LazyLock<Vec<(&str, u8)>> = LazyLock::new(|| {
    let mut emoticons = table(EMOTICONS_TSV, emoticon_row);
    emoticons.sort_by_key(|(emoticon, _)| Reverse(emoticon.chars().count()));
    emoticons
});

/// An emoticon starting at `i`, if one stands there on its own ("<30" and "http://" are not).
fn emoticon_at(chars: &[char], i: usize) -> Option<(usize, u8)> {
    EMOTICONS.iter().find_map(|&(emoticon, score)| {
        let len = emoticon.chars().count();
        let matches =
            chars.len() >= i + len && emoticon.chars().eq(chars[i..i + len].iter().copied());
        let after = chars.get(i + len).copied();
        let stands_alone = !after.is_some_and(|c| c.is_alphanumeric() || c == '/');
        (matches && stands_alone).then_some((len, score))
    })
}

#[derive(Clone, Copy)]
enum Glyph {
    Star { filled: bool },
    Face(u8, Weight),
    Unscored,
}

/// Scored emoji and stars, from `survey_answer/emoji.tsv`.
static EMOJI: LazyLock<HashMap<char, Glyph>> =
    LazyLock::new(|| table(EMOJI_TSV, emoji_row).into_iter().collect());

fn glyph(c: char) -> Option<Glyph> {
    EMOJI.get(&c).copied().or(match c {
        // Other pictographs (😂, 😭, 📦, flags…) are too ambiguous to score.
        '\u{1F000}'..='\u{1FAFF}'
        | '\u{2190}'..='\u{21FF}'
        | '\u{2300}'..='\u{23FF}'
        | '\u{2600}'..='\u{27BF}'
        | '\u{2B00}'..='\u{2BFF}' => Some(Glyph::Unscored),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Signals

/// How much a signal decides: an explicit number or star count outranks words and faces, which
/// outrank a thank-you.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weight {
    Explicit,
    Plain,
    Weak,
}

#[derive(Debug, Clone, Copy)]
struct Signal {
    /// Token index, so the form is that of the first signal the customer wrote.
    at: usize,
    score: u8,
    form: AnswerForm,
    weight: Weight,
}

fn combine(mut signals: Vec<Signal>) -> Option<Rating> {
    signals.sort_by_key(|s| s.at);
    let of = |w: Weight| signals.iter().filter(move |s| s.weight == w);
    if let Some(first) = of(Weight::Explicit).next() {
        let agree = of(Weight::Explicit).all(|s| s.score == first.score)
            && of(Weight::Plain).all(|s| s.score.abs_diff(first.score) < STRONG_DISAGREEMENT);
        return agree.then_some(Rating {
            score: first.score,
            form: first.form,
        });
    }
    let pool: Vec<&Signal> = if of(Weight::Plain).next().is_some() {
        of(Weight::Plain).collect()
    } else {
        of(Weight::Weak).collect()
    };
    let first = pool.first()?;
    let lo = pool.iter().map(|s| s.score).min()?;
    let hi = pool.iter().map(|s| s.score).max()?;
    if hi - lo >= STRONG_DISAGREEMENT {
        return None;
    }
    let sum: u64 = pool.iter().map(|s| u64::from(s.score)).sum();
    let count = pool.len() as u64;
    Some(Rating {
        score: round_half_up(sum * 100, count * 100),
        form: first.form,
    })
}

/// `numerator / denominator` rounded half up and clamped to the 1-5 scale.
fn round_half_up(numerator: u64, denominator: u64) -> u8 {
    let rounded = (numerator.saturating_mul(2) + denominator) / (denominator * 2).max(1);
    rounded.clamp(1, 5) as u8
}

/// `hundredths / 100` out of `scale`, on 1-5.
fn rescale(hundredths: u64, scale: u64) -> u8 {
    round_half_up(hundredths.saturating_mul(5), scale.saturating_mul(100))
}

// ---------------------------------------------------------------------------------------------
// Numbers

const STAR_UNITS: &[&str] = &[
    "star",
    "stars",
    "estrella",
    "estrellas",
    "etoile",
    "etoiles",
    "stern",
    "sterne",
    "sternen",
    "estrela",
    "estrelas",
];

/// Number words, believed only with a scale ("five stars") or alone ("Four!"): "one of the best"
/// and French "un bon service" are not ratings.
fn number_word(word: &str) -> Option<u64> {
    let value = match word {
        "zero" | "cero" => 0,
        "one" | "uno" | "una" | "un" | "une" | "eins" | "um" | "uma" => 1,
        "two" | "dos" | "deux" | "zwei" | "dois" | "duas" => 2,
        "three" | "tres" | "trois" | "drei" => 3,
        "four" | "cuatro" | "quatre" | "vier" | "quatro" => 4,
        "five" | "cinco" | "cinq" | "funf" => 5,
        "ten" | "diez" | "dix" | "zehn" | "dez" => 10,
        _ => return None,
    };
    Some(value * 100)
}

/// Finds the numbers and their scales, marking the tokens they use. `None`: a number that
/// cannot be a rating (out of scale, an amount, a reference), which makes the whole reply
/// suspect. `Some(true)`: a bare number was read, so the caller must check its context.
fn read_numbers(toks: &[Tok], consumed: &mut [bool], signals: &mut Vec<Signal>) -> Option<bool> {
    let has_symbol = toks.contains(&Tok::Symbol);
    let alone = toks
        .iter()
        .filter(|t| matches!(t, Tok::Word(_) | Tok::Num(_)))
        .count()
        == 1;
    let mut has_bare = false;
    let mut i = 0;
    while i < toks.len() {
        let Some((number, spelled)) = numeral(&toks[i]) else {
            i += 1;
            continue;
        };
        let scaled = scale_after(toks, i + 1);
        if spelled && scaled.is_none() && !alone {
            i += 1;
            continue;
        }
        if has_symbol {
            return None;
        }
        let (score, used) = match scaled {
            Some((scale, used)) => {
                if !scale.integral || !matches!(scale.hundredths, 500 | 1000 | 10000) {
                    return None;
                }
                if number.hundredths > scale.hundredths {
                    return None;
                }
                (rescale(number.hundredths, scale.hundredths / 100), used)
            }
            None => {
                if !(100..=500).contains(&number.hundredths) {
                    return None;
                }
                has_bare |= !spelled;
                (rescale(number.hundredths, 5), 0)
            }
        };
        signals.push(Signal {
            at: i,
            score,
            form: AnswerForm::Number,
            weight: Weight::Explicit,
        });
        consumed[i..=i + used].fill(true);
        i += used + 1;
    }
    Some(has_bare)
}

fn numeral(tok: &Tok) -> Option<(Number, bool)> {
    match tok {
        Tok::Num(n) => Some((*n, false)),
        Tok::Word(w) => number_word(w).map(|hundredths| {
            let n = Number {
                hundredths,
                integral: true,
            };
            (n, true)
        }),
        _ => None,
    }
}

/// The scale written after a number at `start`, and how many tokens it takes: "/10",
/// "out of 5", "de 5", "%", "stars", "-star", "⭐"; a fraction may add a unit ("4/5 stars").
fn scale_after(toks: &[Tok], start: usize) -> Option<(Number, usize)> {
    let word = |k: usize| match toks.get(k) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let number_at = |k: usize| toks.get(k).and_then(numeral).map(|(n, _)| n);
    let unit_at = |k: usize| match toks.get(k) {
        // One star is a unit ("5⭐"); a row of them is a count of its own ("5 ⭐⭐⭐⭐⭐").
        Some(Tok::Star { filled: true }) if !matches!(toks.get(k + 1), Some(Tok::Star { .. })) => {
            Some(1)
        }
        Some(Tok::Word(w)) if STAR_UNITS.contains(&w.as_str()) => Some(1),
        Some(Tok::Punct('-')) if word(k + 1).is_some_and(|w| STAR_UNITS.contains(&w)) => Some(2),
        _ => None,
    };
    let five = Number {
        hundredths: 500,
        integral: true,
    };
    let hundred = Number {
        hundredths: 10000,
        integral: true,
    };
    let fraction_from = match (toks.get(start), word(start), word(start + 1)) {
        (Some(Tok::Slash), _, _) => Some(start + 1),
        (_, Some("out"), Some("of")) => Some(start + 2),
        (_, Some("outta" | "of" | "over" | "de" | "sur" | "von"), _) => Some(start + 1),
        (Some(Tok::Percent), _, _) => return Some((hundred, 1)),
        _ => None,
    };
    if let Some(at) = fraction_from {
        let scale = number_at(at)?;
        let unit = unit_at(at + 1).unwrap_or(0);
        return Some((scale, at + 1 - start + unit));
    }
    unit_at(start).map(|used| (five, used))
}

// ---------------------------------------------------------------------------------------------
// Words

/// What a word or phrase means for a survey answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Score(u8),
    /// A thank-you: 4 on its own, outweighed by any real opinion.
    Thanks,
    /// Strengthens the next rating word: 4 → 5, 2 → 1.
    Boost,
    /// "super": a booster before a rating word ("super helpful"), 5 on its own ("super!").
    BoostOr(u8),
    /// Softens without changing the rating ("pretty good" is 4).
    Hedge,
    Negator,
    /// Known and harmless: allowed around a bare number ("I'd give it a 4").
    Filler,
    /// Complaint or inquiry vocabulary: the message is about something else.
    Topic,
}

/// Folded spellings (see [`fold`]) and what they mean, from `survey_answer/words.tsv`; phrases
/// are space-separated words and win over their parts.
static LEXICON: LazyLock<Vec<(&str, Lex)>> = LazyLock::new(|| table(WORDS_TSV, word_row));

/// Words that decline rather than rate: followed by a thank-you ("no thanks", "non merci") they
/// refuse the survey.
const REFUSALS: &[&str] = &["no", "nah", "nope", "non", "nein", "nao"];

fn lookup(phrase: &str) -> Option<Lex> {
    LEXICON
        .iter()
        .find(|(key, _)| *key == phrase)
        .map(|&(_, lex)| lex)
}

/// Collapses runs of a letter: "greaaat" and "great" both become "great", "gooood" and "good"
/// both "god".
fn collapse(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut last = None;
    for c in word.chars() {
        if last != Some(c) {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// The longest lexicon phrase starting at word token `i` (up to 4 words), then the single word,
/// then — only for a word with a doubled letter — its elongation-free form. Returns the number
/// of tokens used.
fn lexicon_at(toks: &[Tok], consumed: &[bool], i: usize) -> (usize, Option<Lex>) {
    let words: Vec<&str> = toks[i..]
        .iter()
        .zip(&consumed[i..])
        .take(4)
        .map_while(|(t, &used)| match t {
            Tok::Word(w) if !used => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let Some(&first) = words.first() else {
        return (1, None);
    };
    for n in (1..=words.len()).rev() {
        if let Some(lex) = lookup(&words[..n].join(" ")) {
            return (n, Some(lex));
        }
    }
    let short = collapse(first);
    if short.len() < first.len() {
        let elongated = LEXICON
            .iter()
            .find(|(key, _)| !key.contains(' ') && collapse(key) == short)
            .map(|&(_, lex)| lex);
        return (1, elongated);
    }
    (1, None)
}

/// Reads rating words with negation and boosters. `None`: complaint or inquiry vocabulary, or a
/// refusal. Otherwise the number of words it did not know.
fn read_words(toks: &[Tok], consumed: &[bool], signals: &mut Vec<Signal>) -> Option<usize> {
    let mut unknown = 0;
    let mut negation: u8 = 0;
    let mut boost = false;
    let mut refusal = false;
    let mut i = 0;
    while i < toks.len() {
        let word = match &toks[i] {
            Tok::Word(w) if !consumed[i] => w.as_str(),
            _ => {
                negation = 0;
                boost = false;
                i += 1;
                continue;
            }
        };
        let (len, lex) = lexicon_at(toks, consumed, i);
        let after_refusal = refusal;
        refusal = len == 1 && REFUSALS.contains(&word);
        let mut rate = |score: u8, negation: u8, boost: bool| {
            let score = if negation > 0 {
                match score {
                    3.. => 2,
                    _ if followed_by(toks, i + len, &["at", "all"]) => 4,
                    _ => 3,
                }
            } else if boost {
                match score {
                    4 => 5,
                    2 => 1,
                    s => s,
                }
            } else {
                score
            };
            signals.push(Signal {
                at: i,
                score,
                form: AnswerForm::Word,
                weight: Weight::Plain,
            });
        };
        match lex {
            Some(Lex::Topic) => return None,
            Some(Lex::Thanks) if after_refusal => return None,
            Some(Lex::Thanks) => {
                signals.push(Signal {
                    at: i,
                    score: 4,
                    form: AnswerForm::Word,
                    weight: Weight::Weak,
                });
                (negation, boost) = (0, false);
            }
            Some(Lex::BoostOr(_)) if rates(toks, consumed, i + len) => boost = true,
            Some(Lex::Score(score) | Lex::BoostOr(score)) => {
                rate(score, negation, boost);
                (negation, boost) = (0, false);
            }
            Some(Lex::Boost) => boost = true,
            Some(Lex::Negator) => (negation, boost) = (NEGATION_REACH, false),
            Some(Lex::Hedge | Lex::Filler) => {
                negation = negation.saturating_sub(1);
                boost = false;
            }
            None => {
                unknown += 1;
                negation = negation.saturating_sub(1);
                boost = false;
            }
        }
        i += len;
    }
    Some(unknown)
}

/// Whether the word at `i` rates or boosts (so a preceding "super" is a booster).
fn rates(toks: &[Tok], consumed: &[bool], i: usize) -> bool {
    i < toks.len()
        && matches!(
            lexicon_at(toks, consumed, i).1,
            Some(Lex::Score(_) | Lex::BoostOr(_) | Lex::Boost)
        )
}

fn followed_by(toks: &[Tok], i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| matches!(toks.get(i + k), Some(Tok::Word(t)) if t == w))
}

// ---------------------------------------------------------------------------------------------
// Emoji

/// Faces become plain signals; the stars not used as a number's unit ("5⭐") become one counted,
/// explicit signal — except a lone star beside a number, which decorates it ("5 stars ⭐").
fn read_glyphs(toks: &[Tok], consumed: &[bool], signals: &mut Vec<Signal>) {
    let has_number = signals.iter().any(|s| s.form == AnswerForm::Number);
    let (mut filled, mut empty, mut first_star) = (0u64, 0u64, None);
    for (at, tok) in toks.iter().enumerate().filter(|&(at, _)| !consumed[at]) {
        match *tok {
            Tok::Face(score, weight) => signals.push(Signal {
                at,
                score,
                form: AnswerForm::Emoji,
                weight,
            }),
            Tok::Star { filled: is_filled } => {
                first_star.get_or_insert(at);
                if is_filled {
                    filled += 1;
                } else {
                    empty += 1;
                }
            }
            _ => {}
        }
    }
    if let Some(at) = first_star.filter(|_| !(has_number && filled == 1 && empty == 0)) {
        let score = if empty == 0 {
            filled.clamp(1, 5) as u8
        } else {
            rescale(filled * 100, filled + empty)
        };
        signals.push(Signal {
            at,
            score,
            form: AnswerForm::Emoji,
            weight: Weight::Explicit,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

// The word, emoji and emoticon tables are data, beside this file: `(file name, contents)`.
const WORDS_TSV: (&str, &str) = ("words.tsv", include_str!("survey_answer/words.tsv"));
const EMOJI_TSV: (&str, &str) = ("emoji.tsv", include_str!("survey_answer/emoji.tsv"));
const EMOTICONS_TSV: (&str, &str) = ("emoticons.tsv", include_str!("survey_answer/emoticons.tsv"));

/// The rows of a `<key> TAB <meaning>` table, each read by `row`; blank lines and `#` comments
/// are skipped. A row that does not read is an error naming its line, never skipped.
fn table_rows<T>(
    (file, text): (&'static str, &'static str),
    row: fn(&'static str, &str) -> Option<T>,
) -> impl Iterator<Item = Result<T, String>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(move |(n, line)| {
            let read = match line.split('\t').collect::<Vec<_>>()[..] {
                [key, meaning] if !key.is_empty() && key.trim() == key => row(key, meaning),
                _ => None,
            };
            read.ok_or_else(|| format!("survey_answer/{file}:{}: malformed row {line:?}", n + 1))
        })
}

/// A whole table. The tables are compiled in and `every_table_row_parses` reads them all, so a
/// malformed row fails the tests before it could panic here.
fn table<T>(
    file: (&'static str, &'static str),
    row: fn(&'static str, &str) -> Option<T>,
) -> Vec<T> {
    table_rows(file, row)
        .map(|row| row.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn word_row(key: &'static str, meaning: &str) -> Option<(&'static str, Lex)> {
    Some((key, lex(meaning)?))
}

/// An emoji is one character: the tokenizer looks characters up one at a time.
fn emoji_row(key: &'static str, meaning: &str) -> Option<(char, Glyph)> {
    let mut chars = key.chars();
    let emoji = chars.next().filter(|_| chars.next().is_none())?;
    Some((emoji, glyph_meaning(meaning)?))
}

fn emoticon_row(key: &'static str, meaning: &str) -> Option<(&'static str, u8)> {
    Some((key, score(meaning)?))
}

fn score(meaning: &str) -> Option<u8> {
    meaning.parse().ok().filter(|score| (1..=5).contains(score))
}

/// A meaning in `words.tsv`.
fn lex(meaning: &str) -> Option<Lex> {
    Some(match meaning {
        "thanks" => Lex::Thanks,
        "boost" => Lex::Boost,
        "hedge" => Lex::Hedge,
        "not" => Lex::Negator,
        "filler" => Lex::Filler,
        "topic" => Lex::Topic,
        _ => match meaning.strip_prefix("boost-or-") {
            Some(alone) => Lex::BoostOr(score(alone)?),
            None => Lex::Score(score(meaning)?),
        },
    })
}

/// A meaning in `emoji.tsv`; 🙏 (`thanks`) is as weak as the word.
fn glyph_meaning(meaning: &str) -> Option<Glyph> {
    Some(match meaning {
        "star" => Glyph::Star { filled: true },
        "empty-star" => Glyph::Star { filled: false },
        "thanks" => Glyph::Face(4, Weight::Weak),
        _ => Glyph::Face(score(meaning)?, Weight::Plain),
    })
}

#[cfg(test)]
mod tests {
    use super::AnswerForm::{Emoji, Number, Word};
    use super::*;

    /// Checks a whole table and reports every mismatch with its input, not just the first.
    fn check(table: &[(&str, Option<(u8, AnswerForm)>)]) {
        let failures: Vec<String> = table
            .iter()
            .filter_map(|&(input, expected)| {
                let expected = expected.map(|(score, form)| Rating { score, form });
                let got = parse_answer(input);
                (got != expected).then(|| format!("{input:?}: expected {expected:?}, got {got:?}"))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} inputs misread:\n{}",
            failures.len(),
            table.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn numbers_on_the_scale_or_with_an_explicit_one() {
        check(&[
            ("5", Some((5, Number))),
            ("1", Some((1, Number))),
            ("  2 ", Some((2, Number))),
            ("5!", Some((5, Number))),
            ("4/5", Some((4, Number))),
            ("4 / 5", Some((4, Number))),
            ("5/5!!!", Some((5, Number))),
            ("3 out of 5", Some((3, Number))),
            ("3 outta 5", Some((3, Number))),
            ("4 out of 5 stars", Some((4, Number))),
            ("5 stars", Some((5, Number))),
            ("5 stars!!! amazing service", Some((5, Number))),
            ("5-star service", Some((5, Number))),
            ("5⭐", Some((5, Number))),
            ("5 ⭐⭐⭐⭐⭐", Some((5, Number))),
            ("5 stars ⭐", Some((5, Number))),
            ("5stars", Some((5, Number))),
            ("cinco estrellas", Some((5, Number))),
            ("5 étoiles", Some((5, Number))),
            ("5\u{FE0F}\u{20E3}", Some((5, Number))),
            ("10/10", Some((5, Number))),
            ("10/10 would recommend", Some((5, Number))),
            ("7/10", Some((4, Number))),
            ("3/10", Some((2, Number))),
            ("0/10", Some((1, Number))),
            ("0 stars", Some((1, Number))),
            ("10 out of 10", Some((5, Number))),
            ("4.5", Some((5, Number))),
            ("4,5", Some((5, Number))),
            ("4.4", Some((4, Number))),
            ("1.5", Some((2, Number))),
            ("4.5/5", Some((5, Number))),
            ("100%", Some((5, Number))),
            ("80%", Some((4, Number))),
            ("five stars", Some((5, Number))),
            ("Four!", Some((4, Number))),
            ("one star", Some((1, Number))),
            ("five out of five", Some((5, Number))),
            ("4 de 5", Some((4, Number))),
            ("4 sur 5", Some((4, Number))),
            ("4 von 5 Sternen", Some((4, Number))),
            ("I'd give it a 4", Some((4, Number))),
            ("a solid 4", Some((4, Number))),
            ("5, thanks!", Some((5, Number))),
            ("4 :)", Some((4, Number))),
            ("3/5 great", Some((3, Number))),
            ("Great service, thank you! 5/5", Some((5, Number))),
        ]);
    }

    #[test]
    fn numbers_that_are_not_ratings() {
        check(&[
            ("9", None),
            ("0", None),
            ("42", None),
            ("10", None),
            ("6/5", None),
            ("12/25", None),
            ("6 stars", None),
            ("4 or 5", None),
            ("4-5", None),
            ("between 3 and 4", None),
            ("4 ⭐⭐⭐⭐⭐", None),
            ("1,000", None),
            ("10:30", None),
            ("$5", None),
            ("#4", None),
            ("5pm", None),
            ("3 days", None),
            ("I waited 3 days", None),
            ("order 12345 still missing", None),
            ("5 but where is my refund", None),
            ("1 👍", None),
            ("5, terrible", None),
        ]);
    }

    #[test]
    fn rating_words_phrases_and_languages() {
        check(&[
            ("excellent", Some((5, Word))),
            ("Great", Some((5, Word))),
            ("amazing!", Some((5, Word))),
            ("perfect", Some((5, Word))),
            ("awesome", Some((5, Word))),
            ("fantastic", Some((5, Word))),
            ("love it", Some((5, Word))),
            ("I love it!", Some((5, Word))),
            ("good", Some((4, Word))),
            ("Good.", Some((4, Word))),
            ("fine", Some((4, Word))),
            ("helpful", Some((4, Word))),
            ("thanks", Some((4, Word))),
            ("thank you!", Some((4, Word))),
            ("Thanks for your help", Some((4, Word))),
            ("ok", Some((3, Word))),
            ("OKAY", Some((3, Word))),
            ("meh", Some((3, Word))),
            ("average", Some((3, Word))),
            ("so-so", Some((3, Word))),
            ("so so", Some((3, Word))),
            ("could be better", Some((3, Word))),
            ("bad", Some((2, Word))),
            ("poor", Some((2, Word))),
            ("slow", Some((2, Word))),
            ("Too slow", Some((2, Word))),
            ("unhelpful", Some((2, Word))),
            ("terrible", Some((1, Word))),
            ("awful", Some((1, Word))),
            ("useless", Some((1, Word))),
            ("horrible", Some((1, Word))),
            ("worst", Some((1, Word))),
            ("never again", Some((1, Word))),
            ("Worst. Service. Ever.", Some((1, Word))),
            ("greaaat!!!", Some((5, Word))),
            ("gooood", Some((4, Word))),
            ("sooo good", Some((5, Word))),
            ("very good", Some((5, Word))),
            ("really bad", Some((1, Word))),
            ("pretty good, thanks", Some((4, Word))),
            ("super helpful", Some((5, Word))),
            ("Super!", Some((5, Word))),
            ("The agent was very helpful", Some((5, Word))),
            ("can't complain", Some((4, Word))),
            ("terrible, thanks", Some((1, Word))),
            ("good but slow", Some((3, Word))),
            ("not great, not terrible", Some((3, Word))),
            ("excelente", Some((5, Word))),
            ("muy bien", Some((5, Word))),
            ("Très bien", Some((5, Word))),
            ("pas mal", Some((4, Word))),
            ("nada mal", Some((4, Word))),
            ("vielen Dank", Some((4, Word))),
            ("Thanks, have a great day!", Some((4, Word))),
            ("sehr gut", Some((5, Word))),
            ("ótimo", Some((5, Word))),
            ("mais ou menos", Some((3, Word))),
            ("péssimo", Some((1, Word))),
            ("Gracias", Some((4, Word))),
            ("great 👍", Some((5, Word))),
        ]);
    }

    #[test]
    fn negation() {
        check(&[
            ("not good", Some((2, Word))),
            ("not great", Some((2, Word))),
            ("not helpful", Some((2, Word))),
            ("wasn't helpful", Some((2, Word))),
            ("wasn’t very helpful", Some((2, Word))),
            ("not ok", Some((2, Word))),
            ("no good", Some((2, Word))),
            ("not bad", Some((3, Word))),
            ("not too bad", Some((3, Word))),
            ("not bad at all", Some((4, Word))),
            ("nicht gut", Some((2, Word))),
            ("nicht schlecht", Some((3, Word))),
            ("no muy bien", Some((2, Word))),
            ("não foi bom", Some((2, Word))),
            ("c'était pas top", Some((2, Word))),
        ]);
    }

    #[test]
    fn emoji_stars_and_emoticons() {
        check(&[
            ("⭐⭐⭐⭐", Some((4, Emoji))),
            ("⭐️⭐️⭐️⭐️⭐️", Some((5, Emoji))),
            ("★★★☆☆", Some((3, Emoji))),
            ("☆☆☆☆☆", Some((1, Emoji))),
            ("😍", Some((5, Emoji))),
            ("🤩", Some((5, Emoji))),
            ("🥰", Some((5, Emoji))),
            ("\u{2764}\u{FE0F}", Some((5, Emoji))),
            ("😀", Some((4, Emoji))),
            ("😃", Some((4, Emoji))),
            ("😊", Some((4, Emoji))),
            ("🙂", Some((4, Emoji))),
            ("👍", Some((4, Emoji))),
            ("👍👍", Some((4, Emoji))),
            ("👍🏽", Some((4, Emoji))),
            ("😐", Some((3, Emoji))),
            ("😶", Some((3, Emoji))),
            ("🤷\u{200D}\u{2640}\u{FE0F}", Some((3, Emoji))),
            ("🙁", Some((2, Emoji))),
            ("😕", Some((2, Emoji))),
            ("👎🏻", Some((2, Emoji))),
            ("😡", Some((1, Emoji))),
            ("😠", Some((1, Emoji))),
            ("🤬", Some((1, Emoji))),
            ("😤", Some((1, Emoji))),
            ("💩", Some((1, Emoji))),
            (":)", Some((4, Emoji))),
            (":-(", Some((2, Emoji))),
            ("<3", Some((5, Emoji))),
            ("😊 thanks", Some((4, Emoji))),
            ("🙏", Some((4, Emoji))),
            ("👍 😡", None),
            ("😂", None),
            ("📦", None),
        ]);
    }

    #[test]
    fn replies_that_are_not_answers() {
        check(&[
            ("", None),
            ("   \n\t", None),
            ("?", None),
            ("ok?", None),
            ("is it good?", None),
            ("the app is great but where is my order?", None),
            ("Good? I still haven't received anything", None),
            ("still no refund", None),
            ("where is my order", None),
            ("I need help with my account", None),
            ("How do I reset my password", None),
            ("hi, I have another question", None),
            ("good morning, my package arrived damaged", None),
            ("Great, now I've been charged twice", None),
            ("great thanks but can you check my other order", None),
            (
                "This was honestly one of the best support experiences I have had",
                None,
            ),
            ("great but slow", None),
            ("not working", None),
            ("No thanks", None),
            ("No, thanks.", None),
            ("non merci", None),
            ("good morning", None),
            ("have a nice day", None),
            ("hello", None),
            ("stop", None),
            ("no", None),
            ("yes", None),
        ]);
    }

    #[test]
    fn form_serializes_lowercase() {
        let rating = Rating {
            score: 4,
            form: Emoji,
        };
        assert_eq!(
            serde_json::to_string(&rating).unwrap(),
            r#"{"score":4,"form":"emoji"}"#
        );
    }

    #[test]
    fn lexicon_keys_are_unique_and_folded() {
        for (i, (key, _)) in LEXICON.iter().enumerate() {
            assert_eq!(*key, fold(key), "{key:?} would never match a folded word");
            assert!(
                !LEXICON[..i].iter().any(|(k, _)| k == key),
                "{key:?} is listed twice"
            );
        }
    }

    /// Every row of every table reads (a malformed row fails here rather than panicking on first
    /// use).
    #[test]
    fn every_table_row_parses() {
        fn errors<T>(
            file: (&'static str, &'static str),
            row: fn(&'static str, &str) -> Option<T>,
        ) -> Vec<String> {
            table_rows(file, row).filter_map(Result::err).collect()
        }
        let errors = [
            errors(WORDS_TSV, word_row),
            errors(EMOJI_TSV, emoji_row),
            errors(EMOTICONS_TSV, emoticon_row),
        ]
        .concat();
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    #[test]
    fn a_malformed_row_is_an_error_not_skipped() {
        let text =
            "# comment\n\ngreat\t5\ngreat 5\ngood\tfive\n\t4\n good\t4\ngood\t4\textra\nfine\t6\n";
        let rows: Vec<_> = table_rows(("test.tsv", text), word_row).collect();
        assert_eq!(rows.len(), 7, "{rows:?}");
        assert_eq!(rows[0], Ok(("great", Lex::Score(5))));
        for (row, line) in rows[1..].iter().zip(4..) {
            let error = row.as_ref().expect_err("a malformed row");
            assert!(
                error.starts_with(&format!("survey_answer/test.tsv:{line}: malformed row")),
                "{error}"
            );
        }
    }

    /// Each emoji is listed once, and is a character the tokenizer looks up rather than skips or
    /// reads as part of a word or number; each emoticon is listed once.
    #[test]
    fn emoji_and_emoticons_are_listed_once_and_reachable() {
        let emoji: Vec<char> = table(EMOJI_TSV, emoji_row)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        for (i, c) in emoji.iter().enumerate() {
            assert!(!emoji[..i].contains(c), "{c:?} is listed twice");
            let skipped = c.is_whitespace() || is_modifier(*c);
            let in_a_word = c.is_alphabetic() || c.is_ascii_digit();
            assert!(!skipped && !in_a_word, "{c:?} would never be looked up");
        }
        for (i, (emoticon, _)) in EMOTICONS.iter().enumerate() {
            assert!(
                !EMOTICONS[..i].iter().any(|(e, _)| e == emoticon),
                "{emoticon:?} is listed twice"
            );
        }
    }

    /// Arbitrary mixes of the tricky pieces never panic and never leave the 1-5 scale.
    #[test]
    fn never_panics_and_stays_on_the_scale() {
        const PIECES: &[&str] = &[
            "5",
            "10",
            "4,5",
            "1,000",
            "/",
            "%",
            " ",
            "out of",
            "stars",
            "great",
            "not",
            "no",
            "thanks",
            "at all",
            "super",
            "👍",
            "🏽",
            "\u{FE0F}",
            "\u{200D}",
            "\u{20E3}",
            "⭐",
            "☆",
            ":)",
            ">:(",
            "<3",
            "é",
            "\u{301}",
            "İ",
            "ß",
            "'",
            "’",
            "-",
            ".",
            ",",
            "#",
            "?",
            "n'",
            "order",
            "😡",
            "\u{1F1FA}",
            "\u{0}",
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        for _ in 0..20_000 {
            let len = next(7);
            let text: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            if let Some(r) = parse_answer(&text) {
                assert!((1..=5).contains(&r.score), "{text:?} gave {r:?}");
            }
        }
    }
}
