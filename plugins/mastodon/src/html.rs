//! Mastodon status HTML (`content`) to plain text.
//!
//! Mastodon serves a small, sanitised HTML subset: `<p>`, `<br>`, `<a>` (links, `u-url mention`
//! mentions, `mention hashtag` hashtags), `<span class="invisible|ellipsis">` inside links, and,
//! since 4.x, lists, block quotes, `<pre>`/`<code>`, `<b>`/`<i>`/`<del>`. The rules here:
//!
//! - `<br>` is a newline; a paragraph or other block (`</p><p>`, `<blockquote>`, `<ul>`, …) is a
//!   blank line; `<li>` starts a new line with `- `;
//! - a mention or hashtag link keeps its visible text (`@user`, `#tag`);
//! - any other `http(s)` link becomes its `href` (the invisible/ellipsis spans Mastodon uses to
//!   shorten it are irrelevant then); a link whose text is not the URL itself (remote software
//!   may write `<a href="…">click here</a>`) becomes `text (href)`;
//! - an element with class `quote-inline` (the `RE: <link>` fallback Mastodon adds to quote
//!   posts for clients without quote support) is dropped: the quote is reported in `extra`;
//! - every other tag is dropped and its text kept; entities (`&amp;`, `&#39;`, `&#x1F600;`, …)
//!   are decoded; the result is trimmed.

/// Plain text of a Mastodon HTML fragment.
pub fn to_text(html: &str) -> String {
    let mut r = Renderer::default();
    let mut rest = html;
    while !rest.is_empty() {
        match rest.find('<') {
            None => {
                r.text(rest);
                break;
            }
            Some(i) => {
                if i > 0 {
                    r.text(&rest[..i]);
                }
                rest = &rest[i..];
                if let Some(after) = rest.strip_prefix("<!--") {
                    rest = after.find("-->").map_or("", |j| &after[j + 3..]);
                    continue;
                }
                let starts_tag = rest[1..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
                if !starts_tag {
                    r.text("<");
                    rest = &rest[1..];
                    continue;
                }
                let end = tag_end(rest);
                let Some(end) = end else {
                    // An unterminated tag: keep it as text rather than losing the rest.
                    r.text(rest);
                    break;
                };
                r.tag(&rest[1..end]);
                rest = &rest[end + 1..];
            }
        }
    }
    r.finish()
}

/// Index of the `>` closing the tag that starts at `s[0] == '<'`, skipping quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

struct Tag {
    name: String,
    closing: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_ascii_whitespace().any(|x| x == class))
    }
}

fn parse_tag(inner: &str) -> Tag {
    let inner = inner.trim_end_matches('/').trim();
    let (closing, inner) = match inner.strip_prefix('/') {
        Some(r) => (true, r.trim_start()),
        None => (false, inner),
    };
    let name_end = inner
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(inner.len());
    let name = inner[..name_end].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut rest = inner[name_end..].trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (raw, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    match body.find(q) {
                        Some(j) => (&body[..j], &body[j + 1..]),
                        None => (body, ""),
                    }
                }
                _ => {
                    let j = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..j], &after[j..])
                }
            };
            value = decode_entities(raw);
            rest = remaining;
        }
        if !key.is_empty() {
            attrs.push((key, value));
        }
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    }
    Tag {
        name,
        closing,
        attrs,
    }
}

const BLOCKS: &[&str] = &[
    "p",
    "div",
    "blockquote",
    "ul",
    "ol",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

struct Link {
    href: Option<String>,
    mention: bool,
    start: usize,
}

#[derive(Default)]
struct Renderer {
    out: String,
    links: Vec<Link>,
    /// Inside a dropped element: its tag name and how deep the same tag is nested in it.
    skipping: Option<(String, usize)>,
    pending_break: bool,
}

impl Renderer {
    fn text(&mut self, raw: &str) {
        if self.skipping.is_some() || raw.is_empty() {
            return;
        }
        if self.pending_break {
            self.pending_break = false;
            self.paragraph_break();
        }
        self.out.push_str(&decode_entities(raw));
    }

    fn trim_trailing_spaces(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }

    fn paragraph_break(&mut self) {
        if self.links.is_empty() && !self.out.trim().is_empty() {
            self.trim_trailing_spaces();
            while !self.out.ends_with("\n\n") {
                self.out.push('\n');
            }
        }
    }

    fn tag(&mut self, inner: &str) {
        if inner.starts_with('!') {
            return; // doctype or similar
        }
        let tag = parse_tag(inner);
        if let Some((name, depth)) = &mut self.skipping {
            if *name == tag.name {
                if tag.closing {
                    if *depth == 0 {
                        self.skipping = None;
                        self.pending_break = true;
                    } else {
                        *depth -= 1;
                    }
                } else {
                    *depth += 1;
                }
            }
            return;
        }
        if !tag.closing && tag.has_class("quote-inline") && !is_void(&tag.name) {
            self.skipping = Some((tag.name, 0));
            return;
        }
        match (tag.name.as_str(), tag.closing) {
            ("br", _) => {
                self.pending_break = false;
                self.trim_trailing_spaces();
                self.out.push('\n');
            }
            ("li", false) => {
                self.pending_break = false;
                if !self.out.trim().is_empty() {
                    self.trim_trailing_spaces();
                    if !self.out.ends_with('\n') {
                        self.out.push('\n');
                    }
                }
                self.out.push_str("- ");
            }
            ("a", false) => {
                if self.pending_break {
                    self.pending_break = false;
                    self.paragraph_break();
                }
                let mention = tag.has_class("mention") || tag.has_class("hashtag");
                self.links.push(Link {
                    href: tag.attr("href").map(String::from),
                    mention,
                    start: self.out.len(),
                });
            }
            ("a", true) => {
                if let Some(link) = self.links.pop() {
                    let inner = self.out.split_off(link.start);
                    self.out.push_str(&link_text(&link, &inner));
                }
            }
            (name, false) if BLOCKS.contains(&name) => {
                self.pending_break = false;
                self.paragraph_break();
            }
            (name, true) if BLOCKS.contains(&name) => self.pending_break = true,
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        // Unclosed links keep their text as written.
        self.links.clear();
        let mut text = String::with_capacity(self.out.len());
        let mut newlines = 0;
        for line in self.out.trim().split('\n') {
            let line = line.trim_end();
            if line.is_empty() {
                newlines += 1;
                continue;
            }
            if !text.is_empty() {
                text.push_str(if newlines > 0 { "\n\n" } else { "\n" });
            }
            newlines = 0;
            text.push_str(line);
        }
        text
    }
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "br" | "img" | "hr" | "wbr" | "input" | "meta" | "link"
    )
}

/// What a link turns into, given its whole inner text (hidden spans included).
fn link_text(link: &Link, inner: &str) -> String {
    let shown = inner.trim();
    let href = link
        .href
        .as_deref()
        .map(str::trim)
        .filter(|h| h.starts_with("http://") || h.starts_with("https://"));
    let Some(href) = href else {
        return inner.to_string();
    };
    if link.mention || shown.starts_with('@') || shown.starts_with('#') {
        return shown.to_string();
    }
    let bare = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"))
        .unwrap_or(href);
    let shown_core = shown.trim_end_matches(['…', '.']).trim_end();
    let same = shown.is_empty()
        || shown == href
        || shown == bare
        || (shown_core.len() >= 4
            && (href.starts_with(shown_core) || bare.starts_with(shown_core)));
    if same {
        href.to_string()
    } else {
        format!("{shown} ({href})")
    }
}

/// Decode HTML character references; unknown named ones are kept as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|j| j + 1);
        let decoded = end
            .filter(|&j| rest.as_bytes().get(j) == Some(&b';'))
            .and_then(|j| entity(&rest[1..j]).map(|c| (c, j + 1)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return Some(
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{FFFD}'),
        );
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "zwj" => '\u{200D}',
        "zwnj" => '\u{200C}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_and_entities() {
        assert_eq!(
            to_text(
                "<p>Hi &amp; welcome!<br>It&#39;s &quot;fine&quot; &lt;3</p><p>Second&#x1F600;</p>"
            ),
            "Hi & welcome!\nIt's \"fine\" <3\n\nSecond😀"
        );
        assert_eq!(to_text("plain text, no tags"), "plain text, no tags");
        assert_eq!(to_text("a &unknown; &amp b & c"), "a &unknown; &amp b & c");
        assert_eq!(to_text("x < y <!-- hidden --> z"), "x < y  z");
        assert_eq!(to_text(""), "");
    }

    #[test]
    fn mentions_hashtags_and_links() {
        let html = r#"<p><span class="h-card" translate="no"><a href="http://localhost:3000/@mastodonpy_test" class="u-url mention">@<span>mastodonpy_test</span></a></span> hello! <a href="https://awoo.space/tags/awoo" class="mention hashtag" rel="tag">#<span>awoo</span></a> see <a href="https://example.com/help/a?b=1&amp;c=2" rel="nofollow"><span class="invisible">https://</span><span class="ellipsis">example.com/help/</span><span class="invisible">a?b=1&amp;c=2</span></a></p>"#;
        assert_eq!(
            to_text(html),
            "@mastodonpy_test hello! #awoo see https://example.com/help/a?b=1&c=2"
        );
        assert_eq!(
            to_text(r#"<a href="https://x.example/p">click here</a>"#),
            "click here (https://x.example/p)"
        );
        assert_eq!(
            to_text(r#"<a href="https://x.example/very/long/path">x.example/very/…</a>"#),
            "https://x.example/very/long/path"
        );
        assert_eq!(
            to_text(r#"<a href="mailto:a@b.example">write us</a>"#),
            "write us"
        );
    }

    #[test]
    fn quote_inline_fallback_is_dropped_and_lists_are_lines() {
        let html = r#"<p class="quote-inline">RE: <a href="http://localhost:3000/@t/1"><span class="invisible">http://</span>localhost:3000/@t/1</a></p><p>yoooo</p>"#;
        assert_eq!(to_text(html), "yoooo");
        assert_eq!(
            to_text("<p>Steps:</p><ul><li>one</li><li>two</li></ul><p>done</p>"),
            "Steps:\n\n- one\n- two\n\ndone"
        );
        assert_eq!(
            to_text("<blockquote><p>quoted</p></blockquote><p>reply</p>"),
            "quoted\n\nreply"
        );
    }

    #[test]
    fn broken_markup_does_not_lose_text() {
        assert_eq!(to_text("<p>open <b>bold"), "open bold");
        assert_eq!(to_text("tail <a href=\"x"), "tail <a href=\"x");
        assert_eq!(
            to_text("<a href='https://q.example'>https://q.example</a>"),
            "https://q.example"
        );
    }
}
