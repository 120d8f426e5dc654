//! Bluesky's length rule: a post's text holds at most 300 graphemes (extended grapheme
//! clusters, what a reader sees as one character) and 3000 UTF-8 bytes.

use unicode_segmentation::UnicodeSegmentation;

/// Longest post, in graphemes.
pub const MAX_GRAPHEMES: u32 = 300;

/// Length of `text` in extended grapheme clusters.
pub fn measure(text: &str) -> u32 {
    u32::try_from(text.graphemes(true).count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphemes_not_scalars_or_bytes() {
        assert_eq!(measure(""), 0);
        assert_eq!(measure("hello"), 5);
        // Family emoji: 5 scalar values joined by ZWJ, one grapheme.
        assert_eq!(measure("👨‍👩‍👧"), 1);
        // Flag: two regional indicators.
        assert_eq!(measure("🇵🇹🇯🇵"), 2);
        // e + combining acute, and a skin-tone modifier.
        assert_eq!(measure("e\u{301}👍🏽"), 2);
        // Thai with a combining vowel mark.
        assert_eq!(measure("สวัสดี"), 4);
        assert_eq!(measure("日本語"), 3);
        // CRLF is one grapheme.
        assert_eq!(measure("a\r\nb"), 3);
        assert_eq!(measure(&"👨‍👩‍👧".repeat(300)), 300);
    }
}
