//! Someone's private data in a text: payment cards, bank accounts, e-mail addresses, phone
//! numbers and postal addresses, each with its byte span.
//!
//! Card numbers are where precision matters most (an order id taken for a card moves a
//! harmless conversation private), so a card is a run of 12–19 digits that
//!
//! - stands alone (not glued to letters, not after `+`, `#` or inside a URL, so IBANs, phone
//!   numbers in international form, order references and links do not count),
//! - is typed the way cards are typed: unbroken, or in the groups printed on cards (4-4-4-4,
//!   4-4-4-4-3, Amex 4-6-5, Diners 4-6-4), with spaces, dashes or dots — possibly followed by a
//!   short group (expiry or security code) that is not part of it,
//! - has a length the issuer uses for that prefix (Visa 16 or 19, Mastercard 16, Amex 15, …),
//! - and passes the Luhn check.
//!
//! Thirteen-digit Visa numbers (withdrawn long ago) are not recognised: a 13-digit run that
//! starts with 4 is far more often a phone number.

use std::sync::LazyLock;

use crate::Regex;

fn re(pattern: &str) -> Regex {
    crate::pattern(pattern)
}

/// The Luhn (mod 10) check over decimal digits (each 0–9).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card scheme that issues numbers of this length with this prefix, if any.
pub fn card_scheme(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, d| acc * 10 + u32::from(*d))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    let between = |v: u32, lo: u32, hi: u32| (lo..=hi).contains(&v);
    if len < 6 {
        return None;
    }
    if p1 == 4 && (len == 16 || len == 19) {
        return Some("visa");
    }
    if (between(p2, 51, 55) || between(p4, 2221, 2720)) && len == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some("amex");
    }
    if between(p4, 2200, 2204) && between(len as u32, 16, 19) {
        return Some("mir");
    }
    if (p4 == 6011 || between(p3, 644, 649) || p2 == 65 || between(p6, 622126, 622925))
        && between(len as u32, 16, 19)
    {
        return Some("discover");
    }
    if p2 == 62 && between(len as u32, 16, 19) {
        return Some("unionpay");
    }
    if between(p4, 3528, 3589) && between(len as u32, 16, 19) {
        return Some("jcb");
    }
    if (between(p3, 300, 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39)
        && between(len as u32, 14, 19)
    {
        return Some("diners");
    }
    if matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
    ) && between(len as u32, 12, 19)
    {
        return Some("maestro");
    }
    if (p2 == 60 || p2 == 81 || p2 == 82 || p3 == 508) && len == 16 {
        return Some("rupay");
    }
    None
}

/// A card number found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardHit {
    pub start: usize,
    pub end: usize,
    pub scheme: &'static str,
}

/// Whether a digit group layout is one people type card numbers in.
fn card_layout(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [first @ .., last] if first.len() >= 2 => {
            first.iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
}

/// Whether the whitespace-separated token around byte `at` is a link.
fn in_url(text: &str, at: usize) -> bool {
    let start = text[..at].rfind(char::is_whitespace).map_or(0, |i| {
        i + text[i..].chars().next().map_or(1, char::len_utf8)
    });
    let token = &text[start..at];
    token.contains("://") || token.to_ascii_lowercase().starts_with("www.")
}

/// Maximal runs of digits joined by single separators (space, dash, dot, or two spaces):
/// `(start, end, groups)` with groups as byte ranges.
fn digit_runs(text: &str) -> Vec<Vec<(usize, usize)>> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut groups = Vec::new();
        let mut j = i;
        loop {
            let g = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((g, j));
            // A separator: ' ', '-', '.', or "  ", " - ", then a digit.
            let mut k = j;
            let mut seps = 0;
            while k < b.len() && matches!(b[k], b' ' | b'-' | b'.') && seps < 3 {
                k += 1;
                seps += 1;
            }
            let sep = &b[j..k];
            let ok_sep = matches!(sep, b" " | b"-" | b"." | b"  " | b" - ");
            if ok_sep && k < b.len() && b[k].is_ascii_digit() {
                j = k;
            } else {
                break;
            }
        }
        runs.push(groups);
        i = j;
    }
    runs
}

/// Whether the character before byte `start` rules out a number starting there: glued to a
/// word, a `+` (international phone), `#` (a reference), a currency sign, a path or query, or a
/// dash that joins it to a word (`ORD-4111…`).
fn bad_left(text: &str, start: usize) -> bool {
    let mut before = text[..start].chars().rev();
    match before.next() {
        None => false,
        Some('-') => before.next().is_some_and(char::is_alphanumeric),
        Some(c) => {
            c.is_alphanumeric()
                || matches!(
                    c,
                    '+' | '#' | '/' | '_' | '@' | '=' | '&' | '$' | '£' | '€' | ',' | '.'
                )
        }
    }
}

/// Whether the character after byte `end` rules out a number ending there.
fn bad_right(text: &str, end: usize) -> bool {
    text[end..]
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '@' | '%'))
}

/// Payment card numbers in `text` (see the module documentation for what counts).
pub fn find_cards(text: &str) -> Vec<CardHit> {
    let mut out = Vec::new();
    for groups in digit_runs(text) {
        let start = groups[0].0;
        let end = groups[groups.len() - 1].1;
        if bad_left(text, start) || bad_right(text, end) || in_url(text, start) {
            continue;
        }
        let sizes: Vec<usize> = groups.iter().map(|(s, e)| e - s).collect();
        let digits: Vec<u8> = groups
            .iter()
            .flat_map(|&(s, e)| text.as_bytes()[s..e].iter().map(|d| d - b'0'))
            .collect();
        // The whole run, or the run less a short trailing part (expiry, security code).
        let total = digits.len();
        for take in (1..=groups.len()).rev() {
            let used: usize = sizes[..take].iter().sum();
            if total - used > 4 {
                break;
            }
            // People type one separator throughout (`4111 1111 …`, `4111-1111-…`).
            let mut seps = groups[..take].windows(2).map(|w| &text[w[0].1..w[1].0]);
            let first_sep = seps.next();
            let consistent = seps.all(|s| Some(s) == first_sep);
            if !(12..=19).contains(&used) || !card_layout(&sizes[..take]) || !consistent {
                continue;
            }
            let number = &digits[..used];
            if let Some(scheme) = card_scheme(number)
                && luhn(number)
            {
                out.push(CardHit {
                    start,
                    end: groups[take - 1].1,
                    scheme,
                });
                break;
            }
        }
    }
    out
}

/// Whether `text` contains something shaped like a card number (13–19 digits with spaces or
/// dashes), whatever its check digit: used to keep card-shaped numbers out of phone matches.
pub fn card_shaped(text: &str) -> bool {
    CARD_SHAPE.is_match(text)
}

static CARD_SHAPE: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ \-]?\d){12,18}\b"));

/// Checks an IBAN's length and mod-97 check digits (spaces ignored).
pub fn iban_valid(candidate: &str) -> bool {
    let compact: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

static IBAN_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b"));

/// Valid IBANs in `text`, as byte ranges.
pub fn find_ibans(text: &str) -> Vec<(usize, usize)> {
    IBAN_CANDIDATE
        .find_iter(text)
        .filter(|m| iban_valid(m.as_str()))
        .map(|m| (m.start(), m.end()))
        .collect()
}

static SORT_CODE_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:sort\s*code\s*[:#]?\s*)?\d{2}-\d{2}-\d{2}\b[,;/ ]{1,3}(?:(?:account|acct|a/c)\s*(?:no\.?|number|num|#)?\s*[:#]?\s*)?\d{8}\b",
    )
});
static LABELLED_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:bank\s+)?(?:account|acct|a/c)\s*(?:no\.?|nr\.?|number|num|#)\s*(?:is\s*)?[:#]?\s*\d(?:[ \-]?\d){5,17}\b",
    )
});

/// Bank account numbers: IBANs (mod 97), UK sort code with account number, and numbers
/// labelled as an account number ("account no 12345678"). `(start, end, what)`.
pub fn find_accounts(text: &str) -> Vec<(usize, usize, &'static str)> {
    let mut out: Vec<(usize, usize, &'static str)> = find_ibans(text)
        .into_iter()
        .map(|(s, e)| (s, e, "IBAN"))
        .collect();
    for m in SORT_CODE_ACCOUNT.find_iter(text) {
        out.push((m.start(), m.end(), "sort code and account number"));
    }
    for m in LABELLED_ACCOUNT.find_iter(text) {
        if !out.iter().any(|&(s, e, _)| s < m.end() && m.start() < e) {
            out.push((m.start(), m.end(), "labelled account number"));
        }
    }
    out.sort();
    out
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b"));

/// E-mail addresses in `text`, as byte ranges.
pub fn find_emails(text: &str) -> Vec<(usize, usize)> {
    EMAIL
        .find_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect()
}

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        // International: +CC then groups.
        r"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){1,2}(?:[ .\-]?\d{2,4}){1,4}",
        // 00-prefixed international.
        r"|\b00[1-9]\d{0,2}(?:[ .\-]?\d{2,4}){2,5}\b",
        // North American: (415) 555-0100, 415-555-0100, 415.555.0100, 1-800-555-0100.
        r"|(?:\b1[ .\-])?(?:\(\d{3}\)\s?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}\b",
        // National with a trunk 0: 020 7946 0018, 07700 900123, 0612 34 56 78, 030-1234567.
        r"|(?:\(0\d{1,4}\)|\b0\d{1,4})[ .\-]\d{2,4}(?:[ .\-]?\d{2,4}){1,3}\b",
        // UK mobile written unbroken.
        r"|\b07\d{9}\b",
    ))
});
static PHONE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:phone|tel|telephone|mobile|cell|call\s+me|text\s+me|whatsapp|number\s+is)\b[^0-9\n]{0,15}(\+?\d[\d .\-()]{7,16}\d)",
    )
});

/// Phone numbers in `text` (international and national formats), as byte ranges. Card numbers,
/// IBAN digits and dates are not phone numbers.
pub fn find_phones(text: &str) -> Vec<(usize, usize)> {
    let cards = find_cards(text);
    let ibans = find_ibans(text);
    let overlaps = |s: usize, e: usize| {
        cards.iter().any(|c| c.start < e && s < c.end) || ibans.iter().any(|&(a, b)| a < e && s < b)
    };
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut push = |s: usize, e: usize, after_plus: bool| {
        let digits = text[s..e].bytes().filter(u8::is_ascii_digit).count();
        if (8..=15).contains(&digits)
            && !overlaps(s, e)
            && (after_plus || !bad_left(text, s))
            && !out.iter().any(|&(a, b)| a < e && s < b)
        {
            out.push((s, e));
        }
    };
    for m in PHONE.find_iter(text) {
        let s = if m.as_str().starts_with('+') {
            // `+` itself may follow a space or bracket; judge the character before it.
            if text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            m.start() + 1
        } else {
            m.start()
        };
        push(s, m.end(), s != m.start());
    }
    for c in PHONE_CUE.captures_iter(text) {
        if let Some(m) = c.get(1) {
            let plus = m.as_str().starts_with('+');
            push(m.start() + usize::from(plus), m.end(), plus);
        }
    }
    out.sort();
    // Report `+` with the number.
    out.into_iter()
        .map(|(s, e)| {
            if s > 0 && text.as_bytes()[s - 1] == b'+' {
                (s - 1, e)
            } else {
                (s, e)
            }
        })
        .collect()
}

static STREET: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'\-]+\s+){1,3}",
        r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Close|Court|Ct|Place|Pl|Terrace|Crescent|Square|Sq|Highway|Hwy|Parkway|Pkwy|Gardens|Grove|Row|Mews|Hill|Walk)\b\.?",
        r"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee)\s+\d{1,4}[a-z]?\b",
        r"|\b(?:Rue|Calle|Via|Avenida|Rua|Avenue|Boulevard|Place)\s+(?:(?:de|del|della|da|do|la|le|des|du|di)\s+)*[A-ZÀ-Ý][\w'\-]+(?:\s+[A-ZÀ-Ý][\w'\-]+)*,?\s+\d{1,4}\b",
        r"|\b\d{1,4},?\s+(?:rue|avenue|boulevard|place|chemin|allée)\s+(?:(?:de|la|le|des|du|d')\s*)*[A-ZÀ-Ý][\w'\-]+",
    ))
});
static UK_POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|[A-Z]{1,2}\d{2}) ?\d[ABD-HJLNP-UW-Z]{2}\b"));
static US_ZIP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])\s+\d{5}(?:-\d{4})?\b",
    )
});

/// Postal addresses: a street with a house number (English, German, French, Spanish, Italian
/// and Portuguese forms), a UK postcode, or a US state with its ZIP code. `(start, end, what)`.
pub fn find_addresses(text: &str) -> Vec<(usize, usize, &'static str)> {
    let mut out: Vec<(usize, usize, &'static str)> = Vec::new();
    for m in STREET.find_iter(text) {
        out.push((m.start(), m.end(), "street and number"));
    }
    for m in UK_POSTCODE.find_iter(text) {
        out.push((m.start(), m.end(), "UK postcode"));
    }
    for m in US_ZIP.find_iter(text) {
        out.push((m.start(), m.end(), "US state and ZIP code"));
    }
    out.sort();
    out
}

/// Build every pattern of this module now: a plugin's pre-initialisation calls this (through
/// [`crate::warm`]) so that calls start with the patterns compiled rather than compiling them.
pub fn warm() {
    LazyLock::force(&CARD_SHAPE);
    LazyLock::force(&IBAN_CANDIDATE);
    LazyLock::force(&SORT_CODE_ACCOUNT);
    LazyLock::force(&LABELLED_ACCOUNT);
    LazyLock::force(&EMAIL);
    LazyLock::force(&PHONE);
    LazyLock::force(&PHONE_CUE);
    LazyLock::force(&STREET);
    LazyLock::force(&UK_POSTCODE);
    LazyLock::force(&US_ZIP);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(text: &str) -> Vec<&str> {
        find_cards(text)
            .iter()
            .map(|c| &text[c.start..c.end])
            .collect()
    }

    #[test]
    fn luhn_and_iban_checks() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
    }

    #[test]
    fn cards_in_the_ways_people_type_them() {
        assert_eq!(
            cards("card 4111 1111 1111 1111 twice"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(cards("4111-1111-1111-1111."), ["4111-1111-1111-1111"]);
        assert_eq!(cards("amex 3782 822463 10005"), ["3782 822463 10005"]);
        assert_eq!(cards("(5500000000000004)"), ["5500000000000004"]);
        assert_eq!(
            cards("4111 1111 1111 1111 exp 12/27"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(cards("4111 1111 1111 1111 123"), ["4111 1111 1111 1111"]);
        let hit = &find_cards("diners 3056 930902 5904")[0];
        assert_eq!(hit.scheme, "diners");
    }

    #[test]
    fn numbers_that_are_not_cards() {
        for text in [
            "order 4111 1111 1111 1112",        // fails Luhn
            "ref 1234567812345670",             // Luhn-valid, no issuer starts with 1
            "IBAN DE89 3704 0044 0532 0130 00", // IBAN digits
            "DE89370400440532013000",
            "call +44 20 7946 0958 1234", // international phone
            "tracking 9400 1000 0000 0000 0000 00", // USPS
            "order #4111111111111111",
            "https://shop.example/o/4111111111111111",
            "49 170 1234 5678", // phone grouping
            "at 1700000000000 ms",
            "SKU4111111111111111",
        ] {
            assert!(cards(text).is_empty(), "{text}: {:?}", cards(text));
        }
    }

    #[test]
    fn accounts_emails_phones_addresses() {
        let t = "IBAN GB82 WEST 1234 5698 7654 32, sort code 20-00-00 account 12345678, account no: 55667788";
        let found: Vec<&str> = find_accounts(t).iter().map(|a| a.2).collect();
        assert_eq!(
            found,
            [
                "IBAN",
                "sort code and account number",
                "labelled account number"
            ]
        );
        assert_eq!(find_emails("mail jo.bloggs@gmail.com now").len(), 1);
        for t in [
            "+44 20 7946 0958",
            "call me on 07700 900123",
            "(415) 555-0100",
            "1-800-555-0100",
            "+1 415 555 0100",
            "0612 34 56 78",
            "my phone is 07700900123",
            "Tel: 030-1234567",
        ] {
            assert_eq!(find_phones(t).len(), 1, "{t}");
        }
        for t in [
            "order 48213 on 2026-11-20",
            "4111 1111 1111 1111",
            "costs $1,234,567.00",
            "purchase 113542617735902",
        ] {
            assert!(find_phones(t).is_empty(), "{t}: {:?}", find_phones(t));
        }
        for t in [
            "send it to 221B Baker Street, London NW1 6XE",
            "I live at 1600 Pennsylvania Avenue",
            "Hauptstraße 12, Berlin",
            "12 rue de la Paix",
            "Springfield, IL 62704",
        ] {
            assert!(!find_addresses(t).is_empty(), "{t}");
        }
        assert!(find_addresses("I waited 3 hours on the phone").is_empty());
    }
}
