//! The text as a reader sees it once look-alike tricks are undone, with a map back to the
//! original bytes.
//!
//! People who want a rude word past a filter write it with zero-width characters inside
//! (`i\u{200B}diot`), in full-width forms (`ｓｔｕｐｉｄ`), with Cyrillic look-alikes, with digits
//! and symbols for letters (`sh1t`, `a$$hole`), with letters repeated (`fuuuuck`) or spaced out
//! (`f u c k`). [`normalize`] undoes all of these, lowercases, and collapses every run of one
//! repeated letter to a single letter, so that matching is done once, on one canonical form.
//! Word lists must be put through [`normalize`] too (they then collapse the same way: `asshole`
//! becomes `ashole`).
//!
//! An asterisk between letters (`f*ck`, `sh*t`) is kept as `*`: it stands for an unknown
//! letter, and [`crate::rude`] lets it match any letter after a word's first.

/// A normalised text and, for each of its bytes, the byte range of the original character it
/// came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl Normalized {
    /// The byte range in the original text that produced bytes `start..end` of the normalised
    /// text (`end` exclusive, `start < end`).
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        let end = end.max(start + 1).min(self.ends.len());
        let start = start.min(end - 1);
        (self.starts[start], self.ends[end - 1])
    }
}

/// Characters that are invisible or only decorate the previous one: dropped.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{034F}'
            | '\u{0300}'..='\u{036F}'
            | '\u{FE00}'..='\u{FE0F}'
    )
}

/// Full-width ASCII to ASCII, common Cyrillic and Greek look-alikes to Latin, and accented
/// Latin vowels to plain ones. Everything else is kept (lowercased later).
fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        'а' | 'А' | 'α' => 'a',
        'е' | 'Е' | 'ε' => 'e',
        'о' | 'О' | 'ο' | 'Ο' => 'o',
        'р' | 'Р' | 'ρ' => 'p',
        'с' | 'С' => 'c',
        'х' | 'Х' | 'χ' => 'x',
        'у' | 'У' => 'y',
        'і' | 'І' | 'ι' => 'i',
        'к' | 'К' | 'κ' => 'k',
        'т' | 'Т' | 'τ' => 't',
        'ѕ' | 'Ѕ' => 's',
        'ԁ' => 'd',
        'à'..='å' | 'À'..='Å' => 'a',
        'è'..='ë' | 'È'..='Ë' => 'e',
        'ì'..='ï' | 'Ì'..='Ï' => 'i',
        'ò'..='ö' | 'Ò'..='Ö' => 'o',
        'ù'..='ü' | 'Ù'..='Ü' => 'u',
        _ => c,
    }
}

/// The letter a digit or symbol stands for in leetspeak.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        _ => return None,
    })
}

#[derive(Clone, Copy)]
struct Piece {
    c: char,
    start: usize,
    end: usize,
}

/// Normalise `text` (see the module documentation).
pub fn normalize(text: &str) -> Normalized {
    // 1. Drop invisibles, fold look-alikes, lowercase.
    let mut pieces: Vec<Piece> = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if is_invisible(c) {
            // An invisible character glued to a letter belongs to it, for spans.
            if let Some(last) = pieces.last_mut()
                && last.end == i
            {
                last.end = i + c.len_utf8();
            }
            continue;
        }
        let end = i + c.len_utf8();
        for lc in fold(c).to_lowercase() {
            pieces.push(Piece {
                c: lc,
                start: i,
                end,
            });
        }
    }

    // 2. Leetspeak: a run of digit/symbol stand-ins becomes letters when a letter follows it, or
    //    when a letter precedes it and the run is digits or `$`/`@` (`sh1t`, `a$$hole`, `idi0t`);
    //    `crap!` and `$100` stay as they are.
    let mut i = 0;
    while i < pieces.len() {
        if leet(pieces[i].c).is_none() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < pieces.len() && leet(pieces[j].c).is_some() {
            j += 1;
        }
        let before = i > 0 && pieces[i - 1].c.is_alphabetic();
        let after = j < pieces.len() && pieces[j].c.is_alphabetic();
        let wordy = pieces[i..j]
            .iter()
            .all(|p| p.c.is_ascii_digit() || matches!(p.c, '$' | '@'));
        if after || (before && wordy) {
            for p in &mut pieces[i..j] {
                p.c = leet(p.c).unwrap_or(p.c);
            }
        }
        i = j;
    }

    // 3. Spaced-out letters: four or more single letters separated by one and the same
    //    separator (`f u c k`, `s.h.i.t`) are joined.
    let mut joined: Vec<Piece> = Vec::with_capacity(pieces.len());
    let is_letter = |p: &Piece| p.c.is_alphabetic();
    let mut i = 0;
    while i < pieces.len() {
        let single_start = is_letter(&pieces[i]) && (i == 0 || !is_letter(&pieces[i - 1]));
        if single_start && i + 2 < pieces.len() {
            let sep = pieces[i + 1].c;
            if matches!(sep, ' ' | '.' | '-' | '_' | '*') {
                let mut k = i;
                let mut letters = vec![i];
                while k + 2 < pieces.len()
                    && pieces[k + 1].c == sep
                    && is_letter(&pieces[k + 2])
                    && !(k + 3 < pieces.len() && is_letter(&pieces[k + 3]))
                {
                    k += 2;
                    letters.push(k);
                }
                if letters.len() >= 4 {
                    joined.extend(letters.iter().map(|&l| pieces[l]));
                    i = k + 1;
                    continue;
                }
            }
        }
        joined.push(pieces[i]);
        i += 1;
    }

    // 4. Collapse runs of one repeated letter.
    let mut text_out = String::with_capacity(joined.len());
    let mut starts = Vec::with_capacity(joined.len());
    let mut ends = Vec::with_capacity(joined.len());
    let mut prev: Option<char> = None;
    for p in joined {
        if p.c.is_alphabetic() && prev == Some(p.c) {
            let n = p.c.len_utf8();
            let len = ends.len();
            for e in &mut ends[len - n..] {
                *e = p.end;
            }
            continue;
        }
        prev = Some(p.c);
        text_out.push(p.c);
        for _ in 0..p.c.len_utf8() {
            starts.push(p.start);
            ends.push(p.end);
        }
    }
    Normalized {
        text: text_out,
        starts,
        ends,
    }
}

/// Lowercase `text` and collapse repeated letters, without undoing any disguise: what a plain
/// (undisguised, maybe emphatic) spelling of a word normalises to.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = None;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphabetic() && prev == Some(c) {
            continue;
        }
        prev = Some(c);
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> String {
        normalize(text).text
    }

    #[test]
    fn undoes_disguises() {
        assert_eq!(n("i\u{200B}diot"), "idiot");
        assert_eq!(n("ｓｔｕｐｉｄ"), "stupid");
        assert_eq!(n("sh1t"), "shit");
        assert_eq!(n("a$$hole"), "ashole");
        assert_eq!(n("FUUUUCK"), "fuck");
        assert_eq!(n("f u c k off"), "fuck of");
        assert_eq!(n("s.h.i.t"), "shit");
        assert_eq!(n("іdіоt"), "idiot", "Cyrillic look-alikes");
        assert_eq!(n("f*ck"), "f*ck");
    }

    #[test]
    fn leaves_ordinary_text_readable() {
        assert_eq!(n("crap! $100, order 4111"), "crap! $100, order 4111");
        assert_eq!(n("I am a b c"), "i am a b c");
        assert_eq!(n("Scunthorpe"), "scunthorpe");
    }

    #[test]
    fn spans_map_back_to_the_original() {
        let text = "you ａ＄＄hole!";
        let norm = normalize(text);
        let start = norm.text.find("ashole").unwrap();
        let (s, e) = norm.original_span(start, start + "ashole".len());
        assert_eq!(&text[s..e], "ａ＄＄hole");
        let text = "i\u{200B}d\u{200B}iot x";
        let norm = normalize(text);
        let (s, e) = norm.original_span(0, 5);
        assert_eq!(&text[s..e], "i\u{200B}d\u{200B}iot");
    }

    #[test]
    fn plain_only_lowercases_and_collapses() {
        assert_eq!(plain("FUUUCK"), "fuck");
        assert_eq!(plain("sh1t"), "sh1t");
    }
}
