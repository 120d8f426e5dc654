//! The name to greet a customer by, never invented.

/// The first word of the display name (punctuation and emoji at its edges removed; words that
/// are only symbols skipped); else the handle without its leading `@` (and without a `@server`
/// suffix, as on Mastodon); else `there`. Every reply-suggester greets the same way.
pub fn greeting_name(display_name: Option<&str>, handle: Option<&str>) -> String {
    let from_display = display_name.and_then(|name| {
        name.split_whitespace()
            .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
            .find(|word| !word.is_empty())
    });
    if let Some(word) = from_display {
        return word.to_string();
    }
    let from_handle = handle.and_then(|handle| {
        let handle = handle.trim().trim_start_matches('@');
        let local = handle.split('@').next().unwrap_or("").trim();
        (!local.is_empty()).then_some(local)
    });
    from_handle.unwrap_or("there").to_string()
}
