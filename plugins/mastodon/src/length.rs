//! Mastodon's status length rule.
//!
//! Mastodon (`StatusLengthValidator`) counts Unicode scalar values (Ruby `String#length` on
//! UTF-8), after two rewrites:
//!
//! - every URL with an `http://` or `https://` scheme counts as 23 characters, however long;
//! - a mention of a remote account, `@user@remote.example`, counts as its local part `@user`
//!   (a local mention `@user` counts as written).
//!
//! URL detection follows twitter-text's shape closely enough for replies: the scheme must not
//! follow a letter, digit, `@`, `$` or `#`; the URL runs to the next whitespace or `<>"`, minus
//! trailing punctuation (`.,;:!?'"*`) and an unbalanced `)`; the host part must contain a letter
//! or digit. Mentions follow Mastodon's `MENTION_RE`: `@` not after `=`, `/` or a word
//! character, a username `[A-Za-z0-9_]+([.-]+[A-Za-z0-9_]+)*`, then optionally
//! `@domain` made of word characters joined by `.` or `-`.

/// The limit on one status in characters (Mastodon's default `MAX_CHARS`).
pub const MAX_CHARS: u32 = 500;
/// What one URL counts for.
pub const URL_WEIGHT: u32 = 23;

/// Length of `text` by Mastodon's rule.
pub fn measure(text: &str) -> u32 {
    let chars: Vec<char> = text.chars().collect();
    let mut count: u32 = 0;
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = url_at(&chars, i) {
            count = count.saturating_add(URL_WEIGHT);
            i = end;
        } else if let Some((local_end, end)) = mention_at(&chars, i) {
            count = count.saturating_add((local_end - i) as u32);
            i = end;
        } else {
            count = count.saturating_add(1);
            i += 1;
        }
    }
    count
}

fn starts_with_ci(chars: &[char], i: usize, prefix: &str) -> bool {
    let mut k = i;
    for p in prefix.chars() {
        match chars.get(k) {
            Some(c) if c.eq_ignore_ascii_case(&p) => k += 1,
            _ => return false,
        }
    }
    true
}

/// End (exclusive) of a URL starting at `i`, if one does.
fn url_at(chars: &[char], i: usize) -> Option<usize> {
    let scheme_len = if starts_with_ci(chars, i, "https://") {
        8
    } else if starts_with_ci(chars, i, "http://") {
        7
    } else {
        return None;
    };
    if i > 0 {
        let prev = chars[i - 1];
        if prev.is_alphanumeric() || matches!(prev, '@' | '$' | '#' | '＠' | '＃') {
            return None;
        }
    }
    let mut end = i + scheme_len;
    while end < chars.len() && !chars[end].is_whitespace() && !matches!(chars[end], '<' | '>' | '"')
    {
        end += 1;
    }
    // Trailing punctuation is sentence punctuation, not part of the URL.
    loop {
        if end <= i + scheme_len {
            break;
        }
        let last = chars[end - 1];
        let unbalanced_paren = last == ')' && {
            let body = &chars[i..end];
            body.iter().filter(|&&c| c == '(').count() < body.iter().filter(|&&c| c == ')').count()
        };
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '*') || unbalanced_paren
        {
            end -= 1;
        } else {
            break;
        }
    }
    let host_has_alnum = chars[i + scheme_len..end]
        .iter()
        .take_while(|c| !matches!(c, '/' | '?' | '#'))
        .any(|c| c.is_alphanumeric());
    host_has_alnum.then_some(end)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Run of `[first]+([.-]+[first]+)*` from `i`; end exclusive (`i` if none).
fn joined_run(chars: &[char], i: usize, unit: fn(char) -> bool) -> usize {
    let mut end = i;
    while end < chars.len() && unit(chars[end]) {
        end += 1;
    }
    if end == i {
        return i;
    }
    loop {
        let mut k = end;
        while k < chars.len() && matches!(chars[k], '.' | '-') {
            k += 1;
        }
        if k == end || k >= chars.len() || !unit(chars[k]) {
            return end;
        }
        while k < chars.len() && unit(chars[k]) {
            k += 1;
        }
        end = k;
    }
}

/// A mention at `i`: (end of `@user`, end of the whole `@user@domain`).
fn mention_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if chars[i] != '@' {
        return None;
    }
    if i > 0 && (is_word(chars[i - 1]) || matches!(chars[i - 1], '=' | '/')) {
        return None;
    }
    let user_end = joined_run(chars, i + 1, is_username_char);
    if user_end == i + 1 {
        return None;
    }
    if chars.get(user_end) == Some(&'@') {
        let domain_end = joined_run(chars, user_end + 1, is_word);
        if domain_end > user_end + 1 {
            return Some((user_end, domain_end));
        }
    }
    Some((user_end, user_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_counts_scalar_values() {
        assert_eq!(measure(""), 0);
        assert_eq!(measure("hello"), 5);
        // CJK: one character each.
        assert_eq!(measure("你好，世界"), 5);
        // A family emoji is five scalar values (three people, two zero-width joiners).
        assert_eq!(measure("👨‍👩‍👧"), 5);
        // A flag is two regional indicators; a skin-tone thumbs-up is two scalars.
        assert_eq!(measure("🇵🇹👍🏽"), 4);
        assert_eq!(measure("é"), 1);
        assert_eq!(measure("e\u{301}"), 2);
    }

    #[test]
    fn urls_count_23_whatever_their_length() {
        let long = format!("https://help.acme.example/{}", "a".repeat(300));
        assert_eq!(measure(&long), 23);
        assert_eq!(measure(&format!("See {long}.")), 4 + 23 + 1);
        assert_eq!(measure("http://x.io"), 23);
        // A short URL is still 23.
        assert_eq!(measure("(https://a.b)"), 1 + 23 + 1);
        // Balanced parentheses stay inside the URL.
        assert_eq!(measure("https://en.wikipedia.org/wiki/Foo_(bar)"), 23);
        // Not URLs: no host, glued to a word, no scheme.
        assert_eq!(measure("https://"), 8);
        assert_eq!(measure("xhttps://a.b"), 12);
        assert_eq!(measure("www.example.com"), 15);
        assert_eq!(measure("HTTPS://A.B/C"), 23);
    }

    #[test]
    fn remote_mentions_count_their_local_part() {
        assert_eq!(measure("@user@remote.example"), 5);
        assert_eq!(measure("@user"), 5);
        assert_eq!(measure("@casey@mastodon.social hi"), 6 + 3);
        assert_eq!(measure("@first.last@sub-domain.example.org."), 11 + 1);
        // Not mentions: an e-mail address, after a slash, a lone @.
        assert_eq!(measure("a@b.example"), 11);
        assert_eq!(measure("@ home"), 6);
        assert_eq!(measure("x/@user@host.example"), 20);
        // A mention inside a URL is part of the URL.
        assert_eq!(measure("https://mastodon.social/@user@other.example"), 23);
    }

    #[test]
    fn a_full_reply_mixes_everything() {
        let text = "@casey@mastodon.social 抱歉! 🙇 https://help.acme.example/articles/lost-luggage-claims-and-refunds ^ana";
        // "@casey" 6 + " 抱歉! 🙇 " 7 + URL 23 + " ^ana" 5
        assert_eq!(measure(text), 6 + 7 + 23 + 5);
        let at_limit = format!("@user@remote.example {}", "é".repeat(494));
        assert_eq!(measure(&at_limit), MAX_CHARS);
    }
}
