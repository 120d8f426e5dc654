//! LINE counts text in UTF-16 code units: the outbound length rule, and (by the same rule, which
//! LINE's mention docs do not spell out) the `index`/`length` of mentions and LINE emoji.

/// Length of `text` in UTF-16 code units (a character outside the BMP, such as most emoji,
/// counts 2).
pub fn utf16_len(text: &str) -> u32 {
    u32::try_from(text.encode_utf16().count()).unwrap_or(u32::MAX)
}

/// The byte range of the UTF-16 range `index..index+length` in `text`, if both ends fall on
/// character boundaries inside the text (never inside a surrogate pair).
pub fn utf16_range(text: &str, index: u64, length: u64) -> Option<std::ops::Range<usize>> {
    let end_unit = index.checked_add(length)?;
    let mut unit = 0u64;
    let mut start = None;
    for (byte, ch) in text.char_indices() {
        if unit == index {
            start = Some(byte);
        }
        if unit == end_unit {
            return start.map(|s| s..byte);
        }
        unit += ch.len_utf16() as u64;
    }
    if unit == index {
        start = Some(text.len());
    }
    (unit == end_unit).then_some(start?..text.len())
}

/// The slice a mention (`index`, `length`) points at. LINE says "index position ... for a
/// character in text"; read as UTF-16 code units first (how the Messaging API counts text), and
/// only accept a slice that starts with `@`; else try Unicode scalar values; else give up.
pub fn mention_slice(text: &str, index: u64, length: u64) -> Option<&str> {
    if let Some(r) = utf16_range(text, index, length)
        && text[r.clone()].starts_with('@')
    {
        return Some(&text[r]);
    }
    let start = text.char_indices().nth(usize::try_from(index).ok()?)?.0;
    let len = usize::try_from(length).ok()?;
    let end = text[start..]
        .char_indices()
        .nth(len)
        .map(|(b, _)| start + b)
        .or_else(|| (text[start..].chars().count() == len).then_some(text.len()))?;
    let s = &text[start..end];
    s.starts_with('@').then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_lengths() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("hello"), 5);
        assert_eq!(utf16_len("🍎"), 2); // LINE's own example
        assert_eq!(utf16_len("こんにちは"), 5);
        assert_eq!(utf16_len("𠮷"), 2); // a CJK Extension B ideograph
        assert_eq!(utf16_len("👨‍👩‍👧"), 8); // 3 emoji (2 each) + 2 ZWJ
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("e\u{301}"), 2);
    }

    #[test]
    fn ranges_respect_surrogates_and_bounds() {
        let t = "🍎 @bob hi";
        assert_eq!(utf16_range(t, 3, 4).map(|r| &t[r]), Some("@bob"));
        assert_eq!(utf16_range(t, 1, 2), None); // inside the surrogate pair
        assert_eq!(utf16_range(t, 3, 99), None);
        assert_eq!(utf16_range(t, 9, 1).map(|r| &t[r]), Some("i"));
        assert_eq!(utf16_range(t, 10, 0).map(|r| &t[r]), Some(""));
        assert_eq!(utf16_range(t, u64::MAX, 1), None);
    }

    #[test]
    fn mentions_read_as_utf16_with_a_scalar_fallback() {
        let t = "@openProfileUser Hello. @notOpenProfileUser Hello.";
        assert_eq!(mention_slice(t, 0, 16), Some("@openProfileUser"));
        // After an emoji, UTF-16 offsets are one more than scalar offsets.
        let t = "😀 @ana ok";
        assert_eq!(mention_slice(t, 3, 4), Some("@ana"));
        assert_eq!(mention_slice(t, 2, 4), Some("@ana")); // a scalar-value count also works
        assert_eq!(mention_slice(t, 5, 2), None);
        assert_eq!(mention_slice(t, 40, 2), None);
    }
}
