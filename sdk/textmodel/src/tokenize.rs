//! A tokeniser for short social posts.
//!
//! What a bag of words loses on tweets and SMS is kept here as tokens: emoji and emoticons,
//! `!`/`?` runs, elongations ("soooo"), shouting, and negation scope ("not happy" becomes
//! `neg_happy`). What only adds sparsity is normalised: URLs, @mentions and numbers. Every token
//! keeps the byte span of the text it came from, so a classifier can point at its evidence.

/// What a token stands for; flags mark a property of the previous word rather than a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A (normalised) word; character n-grams are taken from these.
    Word,
    /// A placeholder or symbol: `<url>`, `<user>`, `<num>`, an emoji, an emoticon, `!`, `?`.
    Symbol,
    /// A property of the word at the same span: `<elong>`, `<caps>`.
    Flag,
}

/// One token and the bytes `start..end` of the original text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Emoticons recognised as whole tokens (case-sensitive: `:D` is not `:d`).
const EMOTICONS: &[&str] = &[
    ":-)", ":)", ":-(", ":(", ":-D", ":D", ":-P", ":P", ":p", ";-)", ";)", ":'(", ":/", ":-/",
    "<3", ":o", ":O", "=)", "=(", ":|", "xD", "XD", "^_^", "-_-",
];

/// Words that open a negation scope (after apostrophes are normalised).
fn is_negator(word: &str) -> bool {
    matches!(
        word,
        "not"
            | "no"
            | "never"
            | "cannot"
            | "nor"
            | "without"
            | "nothing"
            | "nobody"
            | "none"
            | "nowhere"
            | "neither"
            | "dont"
            | "cant"
            | "wont"
            | "didnt"
            | "doesnt"
            | "isnt"
            | "wasnt"
            | "arent"
            | "werent"
            | "havent"
            | "hasnt"
            | "hadnt"
            | "couldnt"
            | "shouldnt"
            | "wouldnt"
            | "aint"
    ) || word.ends_with("n't")
}

/// Words a negation scope reaches at most.
const NEGATION_REACH: usize = 4;

/// Emoji and pictographs: each is a token of its own.
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2300..=0x23FF | 0x2B00..=0x2BFF
        | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x2190..=0x21FF)
        && !is_emoji_modifier(c)
}

/// Joiners, variation selectors and skin tones: part of the emoji before them.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c as u32,
        0xFE0E | 0xFE0F | 0x200D | 0x1F3FB..=0x1F3FF | 0x20E3
    )
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '\''
}

/// Punctuation that ends a negation scope.
fn ends_clause(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '\n')
}

/// Tokenise `text`. Deterministic and total: any input gives a (possibly empty) token list.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut negation_left = 0usize;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let at_chunk_start = i == 0 || text[..i].ends_with(char::is_whitespace);
        if c.is_whitespace() {
            if c == '\n' {
                negation_left = 0;
            }
            i += c.len_utf8();
            continue;
        }
        // URLs: the whole whitespace-delimited chunk.
        if at_chunk_start && starts_with_url(rest) {
            let end = i + rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(symbol("<url>", i, end));
            i = end;
            continue;
        }
        // Emoticons, at the start of a chunk or after a word.
        if let Some(e) = EMOTICONS.iter().find(|e| rest.starts_with(**e)) {
            let end = i + e.len();
            let next_ok = text[end..]
                .chars()
                .next()
                .is_none_or(|n| !n.is_alphanumeric());
            if next_ok {
                out.push(symbol(&e.to_lowercase(), i, end));
                i = end;
                continue;
            }
        }
        // @mentions.
        if c == '@' && rest[1..].starts_with(is_word_char) {
            let len = 1 + rest[1..]
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len() - 1);
            out.push(symbol("<user>", i, i + len));
            i += len;
            continue;
        }
        if is_emoji(c) {
            let mut end = i + c.len_utf8();
            while let Some(m) = text[end..].chars().next().filter(|m| is_emoji_modifier(*m)) {
                end += m.len_utf8();
            }
            out.push(symbol(&c.to_string(), i, end));
            i = end;
            continue;
        }
        if c == '!' || c == '?' {
            let run = rest
                .find(|ch: char| ch != '!' && ch != '?')
                .unwrap_or(rest.len());
            let text_ = if run > 1 {
                format!("{c}{c}")
            } else {
                c.to_string()
            };
            out.push(symbol(&text_, i, i + run));
            negation_left = 0;
            i += run;
            continue;
        }
        if matches!(c, '£' | '$' | '€' | '¥' | '%' | '&' | '+' | '*') {
            out.push(symbol(&c.to_string(), i, i + c.len_utf8()));
            i += c.len_utf8();
            continue;
        }
        if c == '#' && rest[1..].starts_with(char::is_alphanumeric) {
            // A hashtag is read as its word.
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let len = rest
                .char_indices()
                .find(|&(k, ch)| {
                    !(is_word_char(ch) || ch == '\u{2019}')
                        || (ch == '\'' || ch == '\u{2019}')
                            && !rest[k + ch.len_utf8()..].starts_with(char::is_alphabetic)
                })
                .map(|(k, _)| k)
                .unwrap_or(rest.len());
            let raw = &rest[..len];
            let (start, end) = (i, i + len);
            i = end;
            push_word(&mut out, raw, start, end, &mut negation_left);
            continue;
        }
        if ends_clause(c) {
            negation_left = 0;
        }
        i += c.len_utf8();
    }
    out
}

fn starts_with_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.")
}

fn symbol(text: &str, start: usize, end: usize) -> Token {
    Token {
        text: text.into(),
        kind: Kind::Symbol,
        start,
        end,
    }
}

fn push_word(out: &mut Vec<Token>, raw: &str, start: usize, end: usize, negation_left: &mut usize) {
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    let digits = raw.chars().filter(|c| c.is_ascii_digit()).count();
    if digits > 0 && letters == 0 {
        let t = if digits >= 5 { "<longnum>" } else { "<num>" };
        out.push(symbol(t, start, end));
        return;
    }
    let mut word: String = raw
        .chars()
        .map(|c| match c {
            '\u{2019}' => '\'',
            d if d.is_ascii_digit() => '0',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect();
    let shouting = letters >= 3 && raw.chars().all(|c| !c.is_lowercase());
    let (collapsed, elongated) = collapse_runs(&word);
    word = collapsed;
    // "don't" and "dont" are the same word in tweets.
    let bare: String = word.chars().filter(|&c| c != '\'').collect();
    let negated = *negation_left > 0;
    let text = if negated {
        format!("neg_{word}")
    } else {
        word.clone()
    };
    out.push(Token {
        text,
        kind: Kind::Word,
        start,
        end,
    });
    if elongated {
        out.push(Token {
            text: "<elong>".into(),
            kind: Kind::Flag,
            start,
            end,
        });
    }
    if shouting {
        out.push(Token {
            text: "<caps>".into(),
            kind: Kind::Flag,
            start,
            end,
        });
    }
    if is_negator(&word) || is_negator(&bare) {
        *negation_left = NEGATION_REACH;
    } else if negated {
        *negation_left -= 1;
    }
}

/// Collapse runs of three or more of the same letter to two ("soooo" → "soo").
fn collapse_runs(word: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut prev = None;
    let mut run = 0;
    let mut collapsed = false;
    for c in word.chars() {
        if Some(c) == prev && c.is_alphabetic() {
            run += 1;
        } else {
            prev = Some(c);
            run = 1;
        }
        if run <= 2 {
            out.push(c);
        } else {
            collapsed = true;
        }
    }
    (out, collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn urls_mentions_and_numbers_are_normalised() {
        assert_eq!(
            texts("@united flight 1234 delayed http://t.co/xyz call 08452810075"),
            [
                "<user>",
                "flight",
                "<num>",
                "delayed",
                "<url>",
                "call",
                "<longnum>"
            ]
        );
    }

    #[test]
    fn emoji_and_emoticons_are_tokens_with_spans() {
        let s = "love it 😍😍 :) thanks👍🏽";
        let toks = tokenize(s);
        let names: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(names, ["love", "it", "😍", "😍", ":)", "thanks", "👍"]);
        let thumbs = toks.last().unwrap();
        assert_eq!(&s[thumbs.start..thumbs.end], "👍🏽");
    }

    #[test]
    fn negation_marks_the_following_words_until_punctuation() {
        assert_eq!(
            texts("I'm not happy with this, but fine"),
            [
                "i'm",
                "not",
                "neg_happy",
                "neg_with",
                "neg_this",
                "but",
                "fine"
            ]
        );
        assert_eq!(texts("don’t like it"), ["don't", "neg_like", "neg_it"]);
        assert_eq!(texts("never again!"), ["never", "neg_again", "!"]);
    }

    #[test]
    fn elongation_and_shouting_are_flags() {
        let toks = tokenize("soooo GOOD");
        let names: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(names, ["soo", "<elong>", "good", "<caps>"]);
        assert_eq!(toks[3].kind, Kind::Flag);
        assert_eq!((toks[2].start, toks[2].end), (6, 10));
    }

    #[test]
    fn punctuation_runs_hashtags_and_mixed_numbers() {
        assert_eq!(texts("what?!? #fail 150p"), ["what", "??", "fail", "000p"]);
    }

    #[test]
    fn spans_are_inside_the_text_for_any_input() {
        for s in [
            "",
            "   ",
            "@",
            "#",
            "http://",
            "a'",
            "'",
            "é👍🏽\u{200d}x",
            ":)",
            "x:)y",
            "‍",
        ] {
            for t in tokenize(s) {
                assert!(t.start < t.end && t.end <= s.len(), "{s:?}: {t:?}");
                assert!(s.is_char_boundary(t.start) && s.is_char_boundary(t.end));
            }
        }
    }
}
