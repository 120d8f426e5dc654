//! Filling `{placeholders}` and tidying the result.

use std::collections::BTreeMap;

use switchboard_sdk::Author;

/// Whether `c` may appear in a placeholder name (`{help_url}`, `{order-id}`, `{site.name}`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// If `s` starts with a placeholder, its name and its length in bytes (braces included).
fn placeholder_at(s: &str) -> Option<(&str, usize)> {
    let inner = s.strip_prefix('{')?;
    let end = inner.find(|c: char| !is_name_char(c))?;
    if end == 0 || !inner[end..].starts_with('}') {
        return None;
    }
    Some((&inner[..end], end + 2))
}

/// The names of every placeholder in `template`, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (i, _) in template.match_indices('{') {
        if let Some((name, _)) = placeholder_at(&template[i..]) {
            out.push(name);
        }
    }
    out
}

/// A filled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// The text, tidied.
    pub text: String,
    /// Placeholders with no variable, dropped from the text (each name once, in order).
    pub unknown: Vec<String>,
}

/// Replace each `{name}` with `vars[name]`; drop placeholders that have no variable. Values are
/// inserted as they are and never scanned for placeholders themselves. Braces that do not form
/// a placeholder (`{ }`, `{`) stay. A placeholder that comes out empty takes the space before
/// it along when punctuation follows. The result is tidied with [`tidy`].
pub fn fill(template: &str, vars: &BTreeMap<String, String>) -> Filled {
    let mut text = String::with_capacity(template.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        text.push_str(&rest[..i]);
        rest = &rest[i..];
        match placeholder_at(rest) {
            Some((name, len)) => {
                let value = vars.get(name).map(String::as_str).unwrap_or_default();
                if !vars.contains_key(name) && !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_string());
                }
                text.push_str(value);
                rest = &rest[len..];
                // `Thanks {x}.` with an empty `x` reads `Thanks.`, not `Thanks .`.
                if value.is_empty() && rest.starts_with([',', '.', '!', '?', ';', ':', ')']) {
                    while text.ends_with([' ', '\t']) {
                        text.pop();
                    }
                }
            }
            None => {
                text.push('{');
                rest = &rest[1..];
            }
        }
    }
    text.push_str(rest);
    Filled {
        text: tidy(&text),
        unknown,
    }
}

/// Collapse runs of spaces and tabs inside each line to one space, drop spaces at line ends,
/// and trim the whole text. Line breaks are kept.
pub fn tidy(text: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut in_gap = false;
            for c in line.trim_end().chars() {
                if c == ' ' || c == '\t' {
                    if !in_gap && !out.is_empty() {
                        out.push(' ');
                    }
                    in_gap = true;
                } else {
                    out.push(c);
                    in_gap = false;
                }
            }
            out
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// The name to greet the author by, never invented: the first word of the display name (with
/// punctuation and emoji at its edges removed; words that are only symbols are skipped); else
/// the handle without its leading `@` (and without a `@server` suffix, as on Mastodon); else
/// `there`.
pub fn greeting_name(author: &Author) -> String {
    switchboard_textscan::names::greeting_name(
        author.display_name.as_deref(),
        author.handle.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(display: Option<&str>, handle: Option<&str>) -> Author {
        Author {
            id: "u1".into(),
            handle: handle.map(String::from),
            display_name: display.map(String::from),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn name_is_the_first_word_of_the_display_name() {
        assert_eq!(
            greeting_name(&author(Some("Ana Silva"), Some("@ana"))),
            "Ana"
        );
        assert_eq!(
            greeting_name(&author(Some("  Jean-Luc Picard "), None)),
            "Jean-Luc"
        );
        assert_eq!(greeting_name(&author(Some("🌸 Maria, RN"), None)), "Maria");
        assert_eq!(greeting_name(&author(Some("山田太郎"), None)), "山田太郎");
    }

    #[test]
    fn name_falls_back_to_the_handle_without_at() {
        assert_eq!(greeting_name(&author(None, Some("@bob_92"))), "bob_92");
        assert_eq!(
            greeting_name(&author(Some("   "), Some("@bob_92"))),
            "bob_92"
        );
        assert_eq!(
            greeting_name(&author(Some("🔥🔥"), Some("carol.bsky.social"))),
            "carol.bsky.social"
        );
        assert_eq!(
            greeting_name(&author(None, Some("@dee@mastodon.social"))),
            "dee"
        );
    }

    #[test]
    fn name_falls_back_to_there() {
        assert_eq!(greeting_name(&author(None, None)), "there");
        assert_eq!(greeting_name(&author(Some(""), Some("@"))), "there");
    }

    #[test]
    fn fills_known_and_drops_unknown_placeholders() {
        let v = vars(&[("name", "Ana"), ("help_url", "https://help.example.com")]);
        let f = fill("Hi {name}, see {help_url} {nope}. {nope} {other}", &v);
        assert_eq!(f.text, "Hi Ana, see https://help.example.com.");
        assert_eq!(f.unknown, ["nope", "other"]);
    }

    #[test]
    fn values_are_not_rescanned_and_stray_braces_stay() {
        let v = vars(&[("name", "{signature}")]);
        let f = fill("Hi {name} { } {", &v);
        assert_eq!(f.text, "Hi {signature} { } {");
        assert!(f.unknown.is_empty());
        assert_eq!(placeholders("a {b} {c-d} {e f} {}"), ["b", "c-d"]);
    }

    #[test]
    fn empty_values_leave_no_double_spaces() {
        let v = vars(&[("name", "Ana"), ("signature", "")]);
        let f = fill(
            "  Hi {name},  thanks!   {signature}\nBye  {signature} now ",
            &v,
        );
        assert_eq!(f.text, "Hi Ana, thanks!\nBye now");
    }
}
