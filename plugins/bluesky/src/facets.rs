//! Rich-text facets (`app.bsky.richtext.facet`): resolving them in inbound posts and building
//! them for outbound text. Facet indexes count **UTF-8 bytes** (`byteStart` inclusive,
//! `byteEnd` exclusive), not characters.

use serde_json::{Value, json};

/// Facet feature types.
pub const LINK: &str = "app.bsky.richtext.facet#link";
pub const MENTION: &str = "app.bsky.richtext.facet#mention";
pub const TAG: &str = "app.bsky.richtext.facet#tag";

/// A post's text with its facets applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The text, with every link facet's displayed text replaced by its full URI.
    pub text: String,
    /// `(handle as displayed without '@', DID)` for each mention facet.
    pub mentions: Vec<(String, String)>,
    /// Full URIs of link facets.
    pub links: Vec<String>,
    /// Hashtags (without `#`).
    pub tags: Vec<String>,
    /// Facets that were ignored: out of range, not on a character boundary, overlapping or
    /// malformed.
    pub ignored: usize,
}

/// One facet's byte range, if it is usable on `text`.
fn range(facet: &Value, text: &str) -> Option<(usize, usize)> {
    let index = facet.get("index")?;
    let start = usize::try_from(index.get("byteStart")?.as_u64()?).ok()?;
    let end = usize::try_from(index.get("byteEnd")?.as_u64()?).ok()?;
    (start <= end
        && end <= text.len()
        && text.is_char_boundary(start)
        && text.is_char_boundary(end))
    .then_some((start, end))
}

/// Apply `facets` (the record's `facets` array, if any) to `text`. Never panics: unusable
/// facets are counted in [`Resolved::ignored`] and leave the text as it was.
pub fn resolve(text: &str, facets: Option<&Value>) -> Resolved {
    let mut out = Resolved::default();
    let mut usable: Vec<(usize, usize, &Value)> = Vec::new();
    for facet in facets.and_then(Value::as_array).into_iter().flatten() {
        match range(facet, text) {
            Some((s, e)) => usable.push((s, e, facet)),
            None => out.ignored += 1,
        }
    }
    usable.sort_by_key(|(s, e, _)| (*s, *e));

    let mut cursor = 0;
    let mut resolved = String::with_capacity(text.len());
    for (start, end, facet) in usable {
        if start < cursor {
            // Overlaps the previous facet: keep the first one.
            out.ignored += 1;
            continue;
        }
        let shown = &text[start..end];
        let mut replacement: Option<&str> = None;
        for feature in facet
            .get("features")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match feature.get("$type").and_then(Value::as_str) {
                Some(LINK) => {
                    if let Some(uri) = feature.get("uri").and_then(Value::as_str)
                        && !uri.is_empty()
                    {
                        out.links.push(uri.to_string());
                        replacement = Some(uri);
                    }
                }
                Some(MENTION) => {
                    if let Some(did) = feature.get("did").and_then(Value::as_str) {
                        let handle = shown.trim().trim_start_matches('@').to_string();
                        out.mentions.push((handle, did.to_string()));
                    }
                }
                Some(TAG) => {
                    if let Some(tag) = feature.get("tag").and_then(Value::as_str) {
                        out.tags.push(tag.to_string());
                    }
                }
                _ => {}
            }
        }
        resolved.push_str(&text[cursor..start]);
        resolved.push_str(replacement.unwrap_or(shown));
        cursor = end;
    }
    resolved.push_str(&text[cursor..]);
    out.text = resolved;
    out
}

/// Characters that end a link, mention or tag when they are its last character.
fn trailing_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '"' | '\'' | '…'
    )
}

/// Whether a token may start at byte `i` (start of text, or after whitespace or an opening
/// bracket).
fn at_token_start(text: &str, i: usize) -> bool {
    text[..i]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '{' | '"' | '\''))
}

/// The end (byte index) of the run of non-whitespace characters starting at `start`, with
/// trailing punctuation removed.
fn token_end(text: &str, start: usize) -> usize {
    let run_end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| start + i);
    let mut end = run_end;
    while end > start {
        let Some(c) = text[start..end].chars().next_back() else {
            break;
        };
        if !trailing_punctuation(c) {
            break;
        }
        end -= c.len_utf8();
    }
    end
}

fn facet(start: usize, end: usize, feature: Value) -> Value {
    json!({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
}

/// Facets for outbound `text`: every `http(s)://` URL becomes a link facet, every `@handle`
/// whose DID is in `known` (handle → DID, compared case-insensitively) a mention facet, and
/// every `#tag` a tag facet. Offsets are UTF-8 byte offsets into `text`.
pub fn build(text: &str, known: &[(String, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let step = c.len_utf8();
        if !at_token_start(text, i) {
            i += step;
            continue;
        }
        if rest.starts_with("https://") || rest.starts_with("http://") {
            let end = token_end(text, i);
            let scheme_len = if rest.starts_with("https://") { 8 } else { 7 };
            if end > i + scheme_len {
                out.push(facet(i, end, json!({"$type": LINK, "uri": &text[i..end]})));
                i = end;
                continue;
            }
        } else if c == '@' {
            let end = token_end(text, i);
            let handle = &text[i + 1..end];
            let valid = handle.contains('.')
                && handle
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if valid {
                if let Some((_, did)) = known
                    .iter()
                    .find(|(h, _)| h.trim_start_matches('@').eq_ignore_ascii_case(handle))
                {
                    out.push(facet(i, end, json!({"$type": MENTION, "did": did})));
                }
                i = end;
                continue;
            }
        } else if c == '#' {
            let end = token_end(text, i);
            let tag = &text[i + 1..end];
            let valid = !tag.is_empty()
                && !tag.chars().all(|c| c.is_ascii_digit())
                && !tag.contains('#')
                && tag.len() <= 640;
            if valid {
                out.push(facet(i, end, json!({"$type": TAG, "tag": tag})));
                i = end;
                continue;
            }
        }
        i += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(start: usize, end: usize, uri: &str) -> Value {
        json!({"index": {"byteStart": start, "byteEnd": end},
               "features": [{"$type": LINK, "uri": uri}]})
    }

    #[test]
    fn link_facets_are_expanded_by_byte_offsets() {
        // "✨ see example.com/a… now": ✨ is 3 bytes, so the link starts at byte 8.
        let text = "✨ see example.com/a… now";
        let start = text.find("example").unwrap();
        assert_eq!(start, 8);
        let end = start + "example.com/a…".len();
        let facets = json!([link(start, end, "https://example.com/a/very/long/path")]);
        let r = resolve(text, Some(&facets));
        assert_eq!(r.text, "✨ see https://example.com/a/very/long/path now");
        assert_eq!(r.links, vec!["https://example.com/a/very/long/path"]);
        assert_eq!(r.ignored, 0);
    }

    #[test]
    fn mentions_keep_the_handle_and_record_the_did_tags_are_listed() {
        let text = "hey @alice.bsky.social 🙂 #Refund";
        let m_start = text.find('@').unwrap();
        let t_start = text.find('#').unwrap();
        let facets = json!([
            {"index": {"byteStart": t_start, "byteEnd": text.len()},
             "features": [{"$type": TAG, "tag": "Refund"}]},
            {"index": {"byteStart": m_start, "byteEnd": m_start + 18},
             "features": [{"$type": MENTION, "did": "did:plc:alice"}]},
        ]);
        let r = resolve(text, Some(&facets));
        assert_eq!(r.text, text);
        assert_eq!(
            r.mentions,
            vec![("alice.bsky.social".to_string(), "did:plc:alice".to_string())]
        );
        assert_eq!(r.tags, vec!["Refund"]);
    }

    #[test]
    fn bad_facets_are_ignored_without_panicking() {
        let text = "héllo wörld";
        let facets = json!([
            link(0, 99, "https://out.of/range"),
            link(2, 4, "https://inside.a/char"), // byte 2 is inside 'é'
            link(5, 3, "https://reversed"),
            {"index": {"byteStart": -1, "byteEnd": 2}, "features": []},
            {"index": "nonsense"},
            "not an object",
            link(0, 6, "https://first"),
            link(3, 8, "https://overlaps"),
        ]);
        let r = resolve(text, Some(&facets));
        assert_eq!(r.ignored, 7);
        assert_eq!(r.text, "https://first wörld");
        assert_eq!(resolve(text, Some(&json!({"not": "a list"}))).text, text);
        assert_eq!(resolve(text, None).text, text);
    }

    #[test]
    fn outbound_facets_use_byte_offsets() {
        let text = "Désolé @casey.bsky.social! See https://help.acme.example/bags. #AcmeAir @nobody.example";
        let known = vec![("casey.bsky.social".to_string(), "did:plc:casey".to_string())];
        let facets = build(text, &known);
        assert_eq!(facets.len(), 3);
        let slice = |f: &Value| {
            let s = f["index"]["byteStart"].as_u64().unwrap() as usize;
            let e = f["index"]["byteEnd"].as_u64().unwrap() as usize;
            text[s..e].to_string()
        };
        assert_eq!(slice(&facets[0]), "@casey.bsky.social");
        assert_eq!(facets[0]["index"]["byteStart"], 9); // "Désolé " is 9 bytes
        assert_eq!(facets[0]["features"][0]["did"], "did:plc:casey");
        assert_eq!(slice(&facets[1]), "https://help.acme.example/bags");
        assert_eq!(
            facets[1]["features"][0]["uri"],
            "https://help.acme.example/bags"
        );
        assert_eq!(slice(&facets[2]), "#AcmeAir");
        assert_eq!(facets[2]["features"][0]["tag"], "AcmeAir");
        // Not at a token start, bare scheme, numeric tag: no facets.
        assert!(build("mail me@x.example or https:// or #123 or a#b", &known).is_empty());
    }
}
