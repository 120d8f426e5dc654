//! Measuring a text by a channel's length unit, and shortening a draft to fit the limit.
//!
//! Shared by every reply-suggester so that all of them shorten the same way: whole sentences
//! first, then at a word boundary, never cutting a link or the protected tail (the signature).

use unicode_segmentation::UnicodeSegmentation;

/// How a channel counts length (mirrors the contract's `length-unit`, which this pure crate
/// cannot depend on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// Unicode scalar values.
    Characters,
    /// Extended grapheme clusters.
    Graphemes,
    /// X-style weighting (URLs 23, CJK and emoji 2).
    Weighted,
    /// UTF-8 bytes.
    Bytes,
}

/// What one URL counts in the weighted unit, whatever its length (as on X).
pub const URL_WEIGHT: usize = 23;

/// Appended where the body is cut at a word boundary.
pub const ELLIPSIS: &str = "…";

/// The unit's name for humans (`shortened to fit 280 weighted characters`).
pub fn unit_name(unit: LengthUnit) -> &'static str {
    match unit {
        LengthUnit::Characters => "characters",
        LengthUnit::Graphemes => "graphemes",
        LengthUnit::Weighted => "weighted characters",
        LengthUnit::Bytes => "bytes",
    }
}

/// Length of `text` in `unit`.
pub fn measure(text: &str, unit: LengthUnit) -> usize {
    match unit {
        LengthUnit::Characters => text.chars().count(),
        LengthUnit::Graphemes => text.graphemes(true).count(),
        LengthUnit::Bytes => text.len(),
        LengthUnit::Weighted => weighted_len(text),
    }
}

/// X-style weight of one character: 1 for the code points X counts as light (U+0000–U+10FF:
/// Latin, Greek, Cyrillic, Arabic, Hebrew, Indic, Thai…, and the general punctuation ranges
/// U+2000–U+200D, U+2010–U+201F, U+2032–U+2037); 2 for everything else, which covers CJK,
/// Hangul, fullwidth forms and emoji.
pub fn char_weight(c: char) -> usize {
    let cp = c as u32;
    let light = cp <= 0x10FF
        || (0x2000..=0x200D).contains(&cp)
        || (0x2010..=0x201F).contains(&cp)
        || (0x2032..=0x2037).contains(&cp);
    if light { 1 } else { 2 }
}

/// Weighted length: every URL counts [`URL_WEIGHT`], every other character its
/// [`char_weight`]. An approximation of X's counting: emoji are weighed per code point (a ZWJ
/// sequence counts more than X's 2), and only `http://`, `https://` and `www.` links are
/// recognised as URLs.
pub fn weighted_len(text: &str) -> usize {
    let mut total = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            total += char_weight(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        total += token_weight(&rest[..end]);
        rest = &rest[end..];
    }
    total
}

fn token_weight(token: &str) -> usize {
    match find_url(token) {
        Some((start, end)) => {
            token[..start].chars().map(char_weight).sum::<usize>()
                + URL_WEIGHT
                + token_weight(&token[end..])
        }
        None => token.chars().map(char_weight).sum(),
    }
}

/// The byte range of the first URL in a whitespace-free `token`: from `http://`, `https://` or
/// `www.` (not preceded by a letter or digit) to the end of the token, less trailing
/// punctuation. The part after the prefix must contain a letter or digit.
pub fn find_url(token: &str) -> Option<(usize, usize)> {
    let lower = token.to_ascii_lowercase();
    let mut best: Option<(usize, usize)> = None;
    for prefix in ["https://", "http://", "www."] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(prefix) {
            let start = from + pos;
            from = start + prefix.len();
            let preceded_by_word = token[..start]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
            if preceded_by_word {
                continue;
            }
            let tail = token[start + prefix.len()..].trim_end_matches([
                '.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '…', '’', '”',
            ]);
            if !tail.chars().any(char::is_alphanumeric) {
                continue;
            }
            let end = start + prefix.len() + tail.len();
            if best.is_none_or(|(s, _)| start < s) {
                best = Some((start, end));
            }
            break;
        }
    }
    best
}

/// Split `body` into sentences that cover it exactly; each keeps its trailing whitespace. A
/// sentence ends after `.`, `!`, `?` or `…` (with any closing quotes or brackets) followed by
/// whitespace, after `。`, `！` or `？`, or at a line break.
pub fn split_sentences(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' | '…' | '。' | '！' | '？' => {
                while let Some(&(_, next)) = chars.peek() {
                    if matches!(
                        next,
                        '.' | '!'
                            | '?'
                            | '…'
                            | '"'
                            | '\''
                            | ')'
                            | ']'
                            | '’'
                            | '”'
                            | '」'
                            | '』'
                            | '）'
                    ) {
                        chars.next();
                    } else {
                        break;
                    }
                }
                matches!(c, '。' | '！' | '？')
                    || chars.peek().is_none_or(|&(_, next)| next.is_whitespace())
            }
            _ => false,
        };
        if ends {
            while chars.peek().is_some_and(|&(_, next)| next.is_whitespace()) {
                chars.next();
            }
            let end = chars.peek().map_or(body.len(), |&(i, _)| i);
            out.push(&body[start..end]);
            start = end;
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

/// The outcome of fitting a draft to a length limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// The text already fits.
    AsIs(String),
    /// The text was shortened to fit.
    Shortened(String),
    /// Nothing sensible fits: the draft should be dropped.
    Impossible,
}

/// Split off `signature` when `text` ends with it: (body, separator, signature).
fn split_signature<'a>(text: &'a str, signature: &'a str) -> (&'a str, &'a str, &'a str) {
    if signature.is_empty() {
        return (text, "", "");
    }
    match text.strip_suffix(signature) {
        Some(before) => {
            let body = before.trim_end();
            (body, &before[body.len()..], signature)
        }
        None => (text, "", ""),
    }
}

fn assemble(body: &str, sep: &str, signature: &str) -> String {
    match (body.is_empty(), signature.is_empty()) {
        (_, true) => body.to_string(),
        (true, false) => signature.to_string(),
        (false, false) => format!("{body}{sep}{signature}"),
    }
}

/// Fit `text` within `max` `unit`s. A `signature` at the end of the text is kept intact.
///
/// 1. Drop whole sentences between the first sentence and the signature, the later ones first,
///    then the last sentence of the body, until it fits.
/// 2. Otherwise cut the first sentence at a word boundary and add `…` (after a space when the
///    cut ends with a URL, so the ellipsis does not become part of the link).
///
/// If not even one word and the signature fit, the result is [`Fit::Impossible`].
pub fn fit(text: &str, signature: &str, max: usize, unit: LengthUnit) -> Fit {
    let fits = |t: &str| measure(t, unit) <= max;
    if fits(text) {
        return Fit::AsIs(text.to_string());
    }
    let (body, sep, signature) = split_signature(text, signature);
    let sentences = split_sentences(body);
    let Some(first) = sentences.first() else {
        return Fit::Impossible;
    };

    // 1. Drop sentences: the middle ones from the end backwards, then the last one.
    let n = sentences.len();
    let mut keep = vec![true; n];
    let order = (1..n.saturating_sub(1))
        .rev()
        .chain((n >= 2).then_some(n - 1));
    for drop in order {
        keep[drop] = false;
        let kept: String = sentences
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(s, _)| *s)
            .collect();
        let candidate = assemble(kept.trim_end(), sep, signature);
        if fits(&candidate) {
            return Fit::Shortened(candidate);
        }
    }

    // 2. Cut the first sentence at the longest word boundary that fits.
    let first = first.trim_end();
    let boundaries: Vec<usize> = first
        .char_indices()
        .zip(first.chars().skip(1))
        .filter(|((_, c), next)| !c.is_whitespace() && next.is_whitespace())
        .map(|((i, c), _)| i + c.len_utf8())
        .collect();
    for &cut in boundaries.iter().rev() {
        let prefix = first[..cut].trim_end_matches(|c: char| {
            c.is_whitespace()
                || matches!(c, ',' | ';' | ':' | '.' | '!' | '?' | '-' | '–' | '—' | '(')
        });
        if prefix.is_empty() {
            continue;
        }
        // Glued to a link, `…` would become part of it when the platform links the URL.
        let last_word = prefix.rsplit(char::is_whitespace).next().unwrap_or(prefix);
        let after_url = find_url(last_word).is_some_and(|(_, end)| end == last_word.len());
        let gap = if after_url { " " } else { "" };
        let candidate = assemble(&format!("{prefix}{gap}{ELLIPSIS}"), sep, signature);
        if fits(&candidate) {
            return Fit::Shortened(candidate);
        }
    }
    Fit::Impossible
}

#[cfg(test)]
mod tests {
    use super::*;
    use LengthUnit::*;

    fn shortened(fit: Fit) -> String {
        match fit {
            Fit::Shortened(t) => t,
            other => panic!("expected a shortened text, got {other:?}"),
        }
    }

    #[test]
    fn measures_each_unit() {
        let family = "👨‍👩‍👧";
        assert_eq!(measure(family, Characters), 5);
        assert_eq!(measure(family, Graphemes), 1);
        assert_eq!(measure(family, Bytes), 18);
        assert_eq!(measure("é😀", Characters), 2);
        assert_eq!(measure("é😀", Bytes), 6);
        assert_eq!(measure("日本語", Weighted), 6);
        assert_eq!(measure("ｈｉ", Weighted), 4);
        assert_eq!(measure("café — ok", Weighted), 9);
        assert_eq!(
            measure("see https://example.com/a/very/long/path/indeed.", Weighted),
            4 + 23 + 1
        );
        assert_eq!(measure("(www.example.com) x", Weighted), 1 + 23 + 1 + 2);
        assert_eq!(measure("https:// nohost", Weighted), 15);
        assert_eq!(measure("xhttps://a.b", Weighted), 12);
    }

    #[test]
    fn splits_sentences_without_losing_text() {
        let body = "Hi Ana! Sorry (really.) See https://x.com/a.b now. 谢谢。好的\nNext line… ok";
        let parts = split_sentences(body);
        assert_eq!(
            parts,
            [
                "Hi Ana! ",
                "Sorry (really.) ",
                "See https://x.com/a.b now. ",
                "谢谢。",
                "好的\n",
                "Next line… ",
                "ok"
            ]
        );
        assert_eq!(parts.concat(), body);
    }

    #[test]
    fn text_that_fits_is_untouched() {
        assert_eq!(
            fit("Short. ^ana", "^ana", 11, Characters),
            Fit::AsIs("Short. ^ana".into())
        );
    }

    #[test]
    fn drops_middle_sentences_first_then_the_last() {
        let text = "Sorry, Ana. One. Two. Please DM us. ^ana";
        assert_eq!(measure(text, Characters), 40);
        assert_eq!(
            shortened(fit(text, "^ana", 35, Characters)),
            "Sorry, Ana. One. Please DM us. ^ana"
        );
        assert_eq!(
            shortened(fit(text, "^ana", 34, Characters)),
            "Sorry, Ana. Please DM us. ^ana"
        );
        assert_eq!(
            shortened(fit(text, "^ana", 17, Characters)),
            "Sorry, Ana. ^ana"
        );
    }

    #[test]
    fn cuts_at_a_word_boundary_keeping_the_signature() {
        let text = "We are so sorry about the delay with your parcel, Ana. ^ana";
        let out = shortened(fit(text, "^ana", 30, Characters));
        assert_eq!(out, "We are so sorry about… ^ana");
        assert_eq!(measure(&out, Characters), 27);
        let out = shortened(fit(text, "^ana", 31, Characters));
        assert_eq!(out, "We are so sorry about the… ^ana");
        assert_eq!(measure(&out, Characters), 31);
    }

    #[test]
    fn characters_count_emoji_as_one() {
        let text = "Thanks 🎉🎉🎉 so much for this, Ana! It made our day. ^jo";
        let max = 40;
        let out = shortened(fit(text, "^jo", max, Characters));
        assert_eq!(out, "Thanks 🎉🎉🎉 so much for this, Ana! ^jo");
        assert_eq!(measure(&out, Characters), 37);
        assert!(
            measure(&out, Bytes) > max,
            "the emoji would not fit in bytes"
        );
    }

    #[test]
    fn graphemes_count_a_family_emoji_as_one() {
        let text = "Hi 👨‍👩‍👧 family, sorry about the mix-up with your booking today. ^ana";
        assert_eq!(measure(text, Graphemes), 65);
        let out = shortened(fit(text, "^ana", 30, Graphemes));
        assert_eq!(out, "Hi 👨‍👩‍👧 family, sorry about… ^ana");
        assert_eq!(measure(&out, Graphemes), 30);
        assert_eq!(
            measure(&out, Characters),
            34,
            "the same text is too long in characters"
        );
        assert!(out.ends_with(" ^ana"));
    }

    #[test]
    fn bytes_count_utf8() {
        let text = "Désolé, Zoë! Ça n'aurait pas dû arriver. ^zoé";
        assert_eq!(measure(text, Bytes), 51);
        let out = shortened(fit(text, "^zoé", 30, Bytes));
        assert_eq!(out, "Désolé, Zoë! ^zoé");
        assert_eq!(measure(&out, Bytes), 21);
        let out = shortened(fit(text, "^zoé", 20, Bytes));
        assert_eq!(out, "Désolé… ^zoé");
        assert_eq!(measure(&out, Bytes), 17);
    }

    #[test]
    fn weighted_counts_urls_and_cjk() {
        let text = "感謝 and details at https://help.example.com/articles/12345 with more words here. ^ana";
        assert_eq!(measure(text, Weighted), 4 + 16 + 23 + 22 + 5);
        assert_eq!(measure(text, Characters), 84);
        let out = shortened(fit(text, "^ana", 51, Weighted));
        assert_eq!(
            out,
            "感謝 and details at https://help.example.com/articles/12345 … ^ana"
        );
        assert_eq!(measure(&out, Weighted), 51);
        // The URL is never cut: with less room the whole URL goes.
        let out = shortened(fit(text, "^ana", 50, Weighted));
        assert_eq!(out, "感謝 and details at… ^ana");
        assert_eq!(measure(&out, Weighted), 26);
        // Whole sentences go before words: the middle one (with its URL) first.
        let text = "ありがとう! See https://example.com/faq. More text. ^ana";
        assert_eq!(
            measure(text, Weighted),
            10 + 1 + 1 + 4 + 23 + 1 + 1 + 10 + 5
        );
        let out = shortened(fit(text, "^ana", 50, Weighted));
        assert_eq!(out, "ありがとう! More text. ^ana");
        assert_eq!(measure(&out, Weighted), 27);
    }

    #[test]
    fn impossible_fits_are_reported() {
        assert_eq!(
            fit(
                "Sorry, Ana. ^a-very-long-signature",
                "^a-very-long-signature",
                20,
                Characters
            ),
            Fit::Impossible
        );
        assert_eq!(
            fit("Unbelievably. ^ana", "^ana", 8, Characters),
            Fit::Impossible
        );
        assert_eq!(fit("anything", "", 0, Bytes), Fit::Impossible);
    }

    #[test]
    fn without_a_signature_the_whole_text_is_body() {
        let out = shortened(fit("Hello there friend. Bye now.", "", 14, Characters));
        assert_eq!(out, "Hello there…");
        let out = shortened(fit("Hello there. ^ana elsewhere", "^ana", 14, Characters));
        assert_eq!(out, "Hello there.");
    }
}
