//! X's weighted post length, after the published twitter-text v3 configuration
//! (`config/v3.json`): `maxWeightedTweetLength` 280, `scale` 100, `defaultWeight` 200,
//! `transformedURLLength` 23, `emojiParsingEnabled` true, and weight 100 for the code point
//! ranges U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F and U+2032–U+2037.
//!
//! As in twitter-text's `parseTweet`: the text is NFC-normalised first; then, walking it, a URL
//! weighs `transformedURLLength * scale`, an emoji sequence weighs `defaultWeight` once however
//! many code points it has, and any other code point its range weight; the length is the sum
//! divided by `scale`.
//!
//! Two documented approximations of the reference implementation, which carries the full IANA
//! TLD list and Twitter's emoji regular expression:
//! - URLs: `http://` / `https://` followed by a host; or, without a scheme, a domain whose last
//!   label is a common generic TLD (list below) or any two-letter country TLD. As in
//!   twitter-text, a scheme-less domain with a country TLD counts only with a path (`example.jp`
//!   alone is text, `example.jp/a` a URL) except `.co` and `.tv`, and a domain right after
//!   `@`, `#`, `$`, a letter or a digit (an e-mail address, a cashtag) is not a URL.
//! - Emoji: a grapheme cluster of two or more code points that is a flag (regional-indicator
//!   pair), a keycap, or a pictograph with a ZWJ, variation selector 16, skin-tone modifier or
//!   tag sequence. A lone pictograph code point already weighs 200 by its range, and a lone
//!   `©`/`®` without U+FE0F is text (100), as in twitter-text.

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Largest weighted length of one post.
pub const MAX_WEIGHTED_LENGTH: u32 = 280;
/// Weights are in hundredths.
pub const SCALE: u32 = 100;
/// Weight of a code point outside the light ranges, and of one emoji sequence.
pub const DEFAULT_WEIGHT: u32 = 200;
/// What every URL counts, whatever its real length.
pub const TRANSFORMED_URL_LENGTH: u32 = 23;

/// Code point ranges (inclusive) that weigh 100.
const LIGHT_RANGES: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];

/// Generic TLDs recognised in scheme-less URLs (any two-letter TLD is a country TLD): one a line
/// in `length/generic_tlds.txt`, `#` comments.
const GENERIC_TLDS: &str = include_str!("length/generic_tlds.txt");

fn generic_tlds() -> impl Iterator<Item = &'static str> {
    GENERIC_TLDS
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Country TLDs that count without a path, as in twitter-text's special short domains.
const SPECIAL_CCTLDS: &[&str] = &["co", "tv"];

/// The weight of one code point.
fn char_weight(c: char) -> u32 {
    let cp = c as u32;
    if LIGHT_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp)) {
        SCALE
    } else {
        DEFAULT_WEIGHT
    }
}

/// A code point that can start an emoji sequence.
fn is_pictographic(c: char) -> bool {
    matches!(c as u32,
        0xA9 | 0xAE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x21FF | 0x2300..=0x23FF
        | 0x24C2 | 0x25A0..=0x25FF | 0x2600..=0x27BF | 0x2934 | 0x2935 | 0x2B00..=0x2BFF
        | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x1F000..=0x1FAFF)
}

/// Whether a grapheme cluster is one emoji sequence of several code points.
fn is_emoji_sequence(cluster: &str) -> bool {
    let mut chars = cluster.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    if rest.is_empty() {
        return false;
    }
    let regional = |c: char| (0x1F1E6..=0x1F1FF).contains(&(c as u32));
    if regional(first) {
        return rest.iter().any(|&c| regional(c));
    }
    if rest.contains(&'\u{20E3}') {
        return first.is_ascii_digit() || first == '#' || first == '*';
    }
    is_pictographic(first)
        && rest.iter().any(|&c| {
            let cp = c as u32;
            c == '\u{200D}'
                || c == '\u{FE0F}'
                || (0x1F3FB..=0x1F3FF).contains(&cp)
                || (0xE0020..=0xE007F).contains(&cp)
        })
}

/// Byte ranges of the URLs in `text`.
pub fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // Candidates start at a word boundary of ASCII alphanumerics.
        let prev = text[..i].chars().next_back();
        let boundary = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_'));
        if boundary && bytes[i].is_ascii_alphanumeric() {
            let blocked = prev.is_some_and(|p| "@＠#＃$-_./".contains(p));
            if let Some(end) = url_at(text, i, blocked) {
                spans.push((i, end));
                i = end;
                continue;
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    spans
}

/// The end of a URL starting at byte `start`, if one does.
fn url_at(text: &str, start: usize, blocked_without_scheme: bool) -> Option<usize> {
    let rest = &text[start..];
    let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
    let scheme_len = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        0
    };
    let host_start = start + scheme_len;
    let host_len = text[host_start..]
        .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.' || c == '_'))
        .unwrap_or(text.len() - host_start);
    let host = text[host_start..host_start + host_len].trim_end_matches(['.', '-', '_']);
    if host.is_empty() || !host.split('.').all(label_fits) {
        return None;
    }
    let mut end = host_start + host.len();
    // Optional port.
    if text[end..].starts_with(':') {
        let digits = text[end + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len() - end - 1);
        if digits > 0 {
            end += 1 + digits;
        }
    }
    let path_end = path_end(text, end);
    let has_path = path_end > end;
    if scheme_len == 0 {
        if blocked_without_scheme {
            return None;
        }
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
            return None;
        }
        let tld = labels[labels.len() - 1].to_ascii_lowercase();
        if !tld.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let generic = generic_tlds().any(|generic| generic == tld);
        let country = tld.len() == 2;
        if !(generic || country) {
            return None;
        }
        if country && !generic && !has_path && !SPECIAL_CCTLDS.contains(&tld.as_str()) {
            return None;
        }
        // Only ASCII domains are recognised without a scheme.
        if !host.is_ascii() {
            return None;
        }
    } else if !host.contains('.') && !host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    Some(path_end)
}

/// DNS allows 63 bytes per label, counted as sent: an internationalised label by its punycode
/// (`xn--…`) form. twitter-text does not link a host that fails this, so its text counts in full.
fn label_fits(label: &str) -> bool {
    const MAX_LABEL: usize = 63;
    if label.is_ascii() {
        return label.len() <= MAX_LABEL;
    }
    // Each code point costs at least one output character, so a longer label cannot fit (and
    // the encoding below stays small).
    if label.chars().count() > MAX_LABEL {
        return false;
    }
    punycode(&label.to_lowercase()).is_some_and(|p| "xn--".len() + p.len() <= MAX_LABEL)
}

/// RFC 3492 punycode of one label. Written here rather than taken from `idna`, whose 1.x
/// releases build only with ICU's compiled Unicode data: hundreds of kilobytes in every
/// instance of the plugin for one short function.
fn punycode(label: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    fn digit(d: u32) -> char {
        // 0–25 are `a`–`z`, 26–35 are `0`–`9`.
        char::from(if d < 26 {
            b'a' + d as u8
        } else {
            b'0' + (d - 26) as u8
        })
    }
    fn adapt(delta: u32, points: u32, first: bool) -> u32 {
        let mut delta = if first { delta / 700 } else { delta / 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + 38)
    }
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut output: String = label.chars().filter(char::is_ascii).collect();
    let basic = output.len() as u32;
    if basic > 0 {
        output.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (128u32, 0u32, 72u32, basic);
    while (handled as usize) < input.len() {
        let m = *input.iter().filter(|&&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

/// Bidirectional formatting marks: twitter-text ends a URL before them, so a link wrapped in
/// isolates (as right-to-left clients send it) keeps its marks out of the 23.
fn is_directional_mark(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The end of a `/path?query#fragment` starting at `from` (or `from` if there is none), with
/// trailing punctuation left out as twitter-text does.
fn path_end(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    if !(rest.starts_with('/') || rest.starts_with('?') || rest.starts_with('#')) {
        return from;
    }
    let len = rest
        .find(|c: char| c.is_whitespace() || is_directional_mark(c))
        .unwrap_or(rest.len());
    let mut candidate = &rest[..len];
    loop {
        let trimmed = candidate.trim_end_matches(['.', ',', '!', '?', ';', ':', '\'', '"', '…']);
        let trimmed = if trimmed.ends_with(')')
            && trimmed.matches('(').count() < trimmed.matches(')').count()
        {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        if trimmed.len() == candidate.len() {
            break;
        }
        candidate = trimmed;
    }
    from + candidate.len()
}

/// The weighted length of `text` (what X compares with 280).
pub fn measure(text: &str) -> u32 {
    let normalized: String = text.nfc().collect();
    let urls = url_spans(&normalized);
    let mut total: u64 = 0;
    let mut pos = 0;
    for (start, end) in urls
        .iter()
        .copied()
        .chain([(normalized.len(), normalized.len())])
    {
        for cluster in normalized[pos..start].graphemes(true) {
            if is_emoji_sequence(cluster) {
                total += u64::from(DEFAULT_WEIGHT);
            } else {
                total += cluster
                    .chars()
                    .map(|c| u64::from(char_weight(c)))
                    .sum::<u64>();
            }
        }
        if end > start {
            total += u64::from(TRANSFORMED_URL_LENGTH * SCALE);
        }
        pos = end;
    }
    u32::try_from(total / u64::from(SCALE)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_counts_one_cjk_two() {
        assert_eq!(measure(""), 0);
        assert_eq!(measure("hello"), 5);
        assert_eq!(measure("Olá, café"), 9);
        assert_eq!(measure("こんにちは"), 10);
        assert_eq!(measure("你好 world"), 10);
        assert_eq!(measure(&"a".repeat(280)), 280);
        assert_eq!(measure(&"界".repeat(140)), 280);
        assert_eq!(measure(&"界".repeat(141)), 282);
        // General punctuation in the light ranges: en dash, curly quotes, prime.
        assert_eq!(measure("–“”′"), 4);
        // Outside them: the ellipsis U+2026 and the euro sign weigh 2.
        assert_eq!(measure("…€"), 4);
    }

    #[test]
    fn nfc_first() {
        // e + combining acute composes to é (1), not 2.
        assert_eq!(measure("e\u{301}"), 1);
        // Hangul jamo compose to one syllable of weight 2.
        assert_eq!(measure("\u{1100}\u{1161}"), 2);
    }

    #[test]
    fn emoji_sequences_weigh_two() {
        assert_eq!(measure("😀"), 2);
        assert_eq!(measure("👨‍👩‍👧‍👦"), 2);
        assert_eq!(measure("👍🏽"), 2);
        assert_eq!(measure("🇵🇹"), 2);
        assert_eq!(measure("🏴󠁧󠁢󠁳󠁣󠁴󠁿"), 2);
        assert_eq!(measure("❤️"), 2);
        assert_eq!(measure("1️⃣"), 2);
        assert_eq!(measure("🇵🇹🇧🇷"), 4);
        assert_eq!(measure("hi 👋🏻!"), 6);
        // Text-style © alone is in the light range.
        assert_eq!(measure("©"), 1);
        assert_eq!(measure("©️"), 2);
    }

    #[test]
    fn urls_count_twenty_three() {
        assert_eq!(measure("https://example.com"), 23);
        assert_eq!(
            measure("see https://help.example.com/articles/123-a-very-long-path?x=1&y=2 now"),
            4 + 23 + 4
        );
        assert_eq!(measure("http://a.co"), 23);
        assert_eq!(measure("example.com"), 23);
        assert_eq!(measure("go to example.com/help."), 6 + 23 + 1);
        assert_eq!(measure("t.co/abc"), 23);
        assert_eq!(measure("example.co"), 23);
        // A country TLD without a path or scheme is text.
        assert_eq!(measure("example.jp"), 10);
        assert_eq!(measure("example.jp/a"), 23);
        // E-mail addresses and cashtags are not URLs.
        assert_eq!(measure("me@example.com"), 14);
        assert_eq!(measure("a.b"), 3);
        assert_eq!(measure("(https://example.com/x)"), 1 + 23 + 1);
        assert_eq!(
            url_spans("a https://x.com/i b example.org c"),
            vec![(2, 17), (20, 31)]
        );
    }

    #[test]
    fn punycode_matches_rfc_3492_samples() {
        assert_eq!(punycode("bücher").as_deref(), Some("bcher-kva"));
        // RFC 3492 7.1 (L), lower-cased.
        assert_eq!(
            punycode("3年b組金八先生").as_deref(),
            Some("3b-ww4c5e180e575a65lsy2b")
        );
        // (A) Arabic (Egyptian).
        assert_eq!(
            punycode("ليهمابتكلموشعربي؟").as_deref(),
            Some("egbpdaj6bu4bxfgehfvwxn")
        );
    }

    #[test]
    fn mixed() {
        let text = "@acme 你好 👨‍👩‍👧 https://acme.example/help ✈️";
        // "@acme " 6 + 你好 4 + " " 1 + family 2 + " " 1 + url 23 + " " 1 + plane 2
        assert_eq!(measure(text), 40);
    }

    /// Every row of `generic_tlds.txt` is one the code can match (lower-case letters; more than
    /// two, since two letters make a country TLD), listed once: a malformed row fails here.
    #[test]
    fn generic_tld_rows_are_well_formed() {
        let tlds: Vec<&str> = generic_tlds().collect();
        assert!(tlds.contains(&"com") && tlds.contains(&"solutions"));
        for (i, tld) in tlds.iter().enumerate() {
            let letters = tld.bytes().all(|b| b.is_ascii_lowercase());
            assert!(letters && tld.len() > 2, "malformed row {tld:?}");
            assert!(!tlds[..i].contains(tld), "{tld:?} is listed twice");
        }
    }
}
