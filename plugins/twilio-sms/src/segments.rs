//! SMS segmentation: how many SMS parts a body is sent (and billed) as.
//!
//! A body made only of GSM 03.38 characters is GSM-7: 160 septets in one SMS, 153 per part when
//! concatenated; the extension characters `^ { } \ [ ~ ] | €` and form feed take two septets (an
//! escape and the character) and are never split across parts. Any other character makes the
//! whole body UCS-2: 70 UTF-16 code units in one SMS, 67 per part, a surrogate pair (most emoji)
//! never split. Twilio's optional Smart Encoding (replacing e.g. curly quotes with straight ones)
//! is not modelled: with it enabled Twilio may send fewer parts than counted here.

/// The encoding an SMS body needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets a character takes in GSM-7, or `None` if it is not in the GSM 03.38 alphabet.
fn septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding `text` is sent in.
pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Pack units of the given sizes into parts: one part if the total fits `single`, else parts of
/// at most `multi`, never splitting a unit.
fn pack(sizes: impl Iterator<Item = usize> + Clone, single: usize, multi: usize) -> u32 {
    let total: usize = sizes.clone().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let (mut parts, mut used) = (1u32, 0usize);
    for size in sizes {
        if used + size > multi {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    parts
}

/// How many SMS parts `text` is sent as (0 for an empty text).
pub fn count(text: &str) -> u32 {
    match encoding(text) {
        Encoding::Gsm7 => pack(text.chars().map(|c| septets(c).unwrap_or(1)), 160, 153),
        Encoding::Ucs2 => pack(text.chars().map(char::len_utf16), 70, 67),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_limits() {
        assert_eq!(count(""), 0);
        assert_eq!(encoding("Hello @ £5, ok?"), Encoding::Gsm7);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(encoding("{€}"), Encoding::Gsm7);
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
        // An escape pair is not split: 152 + a 2-septet char starts a new part.
        assert_eq!(count(&format!("{}€{}", "a".repeat(152), "a".repeat(10))), 2);
        assert_eq!(
            count(&format!("{}€{}", "a".repeat(152), "a".repeat(152))),
            3
        );
    }

    #[test]
    fn ucs2_limits() {
        assert_eq!(encoding("naïve ☕"), Encoding::Ucs2); // ï and ☕ are not GSM
        assert_eq!(count(&"é".repeat(200)), 2); // é is GSM-7
        assert_eq!(count(&"你".repeat(70)), 1);
        assert_eq!(count(&"你".repeat(71)), 2);
        assert_eq!(count(&"你".repeat(134)), 2);
        assert_eq!(count(&"你".repeat(135)), 3);
        // Emoji are two UTF-16 units; a pair never straddles parts.
        assert_eq!(count(&"😀".repeat(35)), 1);
        assert_eq!(count(&"😀".repeat(36)), 2);
        assert_eq!(count(&format!("{}😀", "x".repeat(66))), 1); // 68 units
        assert_eq!(
            count(&format!("{}😀{}", "你".repeat(66), "你".repeat(3))),
            2
        );
        // One emoji turns a GSM text into UCS-2: 100 letters + 🙂 is 2 parts, not 1.
        assert_eq!(count(&format!("{}🙂", "a".repeat(100))), 2);
    }
}
