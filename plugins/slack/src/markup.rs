//! Slack message markup to plain text, and plain text to Slack-safe text.
//!
//! In a message's `text`, Slack writes mentions, channel links, links and special mentions as
//! `<…>` control sequences and escapes the three characters `&`, `<` and `>` as `&amp;`,
//! `&lt;` and `&gt;` (docs.slack.dev/messaging/formatting-message-text). A raw `<` therefore
//! always opens a control sequence.

/// Resolve Slack markup:
///
/// | markup | text |
/// |---|---|
/// | `<@U123>` / `<@U123\|name>` | `@U123` / `@name` |
/// | `<#C123>` / `<#C123\|general>` | `#C123` / `#general` |
/// | `<!here>`, `<!channel>`, `<!everyone>` | `@here`, `@channel`, `@everyone` |
/// | `<!subteam^S123\|@team>` / `<!subteam^S123>` | `@team` / `@S123` |
/// | `<!date^…\|fallback>` | `fallback` |
/// | `<https://x\|label>` | `label (https://x)` |
/// | `<https://x>` | `https://x` |
/// | `<mailto:a@b.c\|a@b.c>` | `a@b.c` (a label that repeats the link is not doubled) |
///
/// and unescapes `&amp;`, `&lt;`, `&gt;` (once: `&amp;lt;` becomes `&lt;`). An unterminated
/// `<` is kept as written.
pub fn to_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&unescape(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push('<');
            rest = after;
            continue;
        };
        out.push_str(&control(&after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

/// One control sequence, without its angle brackets.
fn control(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(unescape(l)).filter(|l| !l.is_empty())),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return match label {
            Some(l) => at(&l),
            None => format!("@{}", unescape(user)),
        };
    }
    if let Some(channel) = target.strip_prefix('#') {
        return match label {
            Some(l) if l.starts_with('#') => l,
            Some(l) => format!("#{l}"),
            None => format!("#{}", unescape(channel)),
        };
    }
    if let Some(special) = target.strip_prefix('!') {
        let name = special.split('^').next().unwrap_or(special);
        return match (name, label) {
            ("here" | "channel" | "everyone", _) => format!("@{name}"),
            (_, Some(l)) if name == "subteam" => at(&l),
            ("subteam", None) => format!("@{}", special.split('^').nth(1).unwrap_or(name)),
            (_, Some(l)) => l,
            ("date", None) => String::new(),
            (_, None) => format!("@{}", unescape(special)),
        };
    }
    let url = unescape(target);
    match label {
        None => url,
        Some(l) if l == url || url.strip_prefix("mailto:") == Some(l.as_str()) => l,
        Some(l) => format!("{l} ({url})"),
    }
}

/// `@name`, without doubling an `@` the label already has.
fn at(label: &str) -> String {
    if label.starts_with('@') {
        label.to_string()
    } else {
        format!("@{label}")
    }
}

/// Undo Slack's escaping of `&`, `<` and `>`, in one pass.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (replacement, len) = if tail.starts_with("&amp;") {
            ('&', 5)
        } else if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(replacement);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Escape `&`, `<` and `>` so Slack shows a reply's text as written instead of reading
/// control sequences in it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_channels_and_specials() {
        assert_eq!(to_plain("hi <@U0LAN0Z89>!"), "hi @U0LAN0Z89!");
        assert_eq!(to_plain("<@U123|casey> there"), "@casey there");
        assert_eq!(to_plain("see <#C123|general>"), "see #general");
        assert_eq!(to_plain("see <#C123>"), "see #C123");
        assert_eq!(
            to_plain("<!here> <!channel> <!everyone> <!here|here>"),
            "@here @channel @everyone @here"
        );
        assert_eq!(
            to_plain("*Mentions*: <!subteam^S0123468791|@someone>"),
            "*Mentions*: @someone"
        );
        assert_eq!(to_plain("<!subteam^S01>"), "@S01");
        assert_eq!(
            to_plain("<!date^1392734382^{date} at {time}|Feb 18th, 2014 at 6:39 AM>"),
            "Feb 18th, 2014 at 6:39 AM"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            to_plain("read <https://example.com/help?a=1&amp;b=2|the guide>"),
            "read the guide (https://example.com/help?a=1&b=2)"
        );
        assert_eq!(to_plain("<https://google.com>"), "https://google.com");
        assert_eq!(
            to_plain("<mailto:bob@example.com|bob@example.com>"),
            "bob@example.com"
        );
        assert_eq!(
            to_plain("<https://example.com|https://example.com>"),
            "https://example.com"
        );
        assert_eq!(
            to_plain("<https://github.com/myorg/myrepo/issues/2|#2 test issue 2>"),
            "#2 test issue 2 (https://github.com/myorg/myrepo/issues/2)"
        );
    }

    #[test]
    fn the_golden_rich_text_message() {
        assert_eq!(
            to_plain(
                "<#C043YJGBY49|general> :cat: <@U043H11ES4V> <https://google.com> text text text"
            ),
            "#general :cat: @U043H11ES4V https://google.com text text text"
        );
    }

    #[test]
    fn entities_are_unescaped_once_and_stray_brackets_kept() {
        assert_eq!(to_plain("5 &lt; 6 &amp;&amp; 7 &gt; 3"), "5 < 6 && 7 > 3");
        assert_eq!(to_plain("&amp;lt; stays &lt;"), "&lt; stays <");
        assert_eq!(to_plain("AT&T &copy; &"), "AT&T &copy; &");
        assert_eq!(to_plain("unterminated <@U1 text"), "unterminated <@U1 text");
        assert_eq!(to_plain(""), "");
        assert_eq!(to_plain("héllo 🧳 <@U1|zoë>"), "héllo 🧳 @zoë");
    }

    #[test]
    fn escape_round_trips() {
        let text = "I <3 R&D > marketing";
        assert_eq!(escape(text), "I &lt;3 R&amp;D &gt; marketing");
        assert_eq!(to_plain(&escape(text)), text);
    }
}
