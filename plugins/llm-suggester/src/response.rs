//! The endpoint's answer: status codes to typed errors, the content to a clean, fitted draft.

use switchboard_sdk::{CallContext, Draft, Label, LengthUnit, Message, PluginError, Visibility};
use switchboard_textscan::fit::{self as shared, Fit};

use crate::prompt::Settings;

/// `choices[0].message.content` of a successful response, or the typed error for the status.
pub fn content(status: u16, body: &[u8], retry_after: Option<u32>) -> Result<String, PluginError> {
    match status {
        200..=299 => {}
        429 => return Err(PluginError::RateLimited(retry_after)),
        401 | 403 => {
            return Err(PluginError::NotConfigured(format!(
                "secret `{}`: the endpoint refused the API key (HTTP {status})",
                crate::API_KEY
            )));
        }
        500..=599 => {
            return Err(PluginError::Unavailable(format!(
                "the chat-completions endpoint answered HTTP {status}"
            )));
        }
        _ => {
            return Err(PluginError::NotConfigured(format!(
                "config keys `endpoint`/`model`: the chat-completions endpoint answered HTTP {status}"
            )));
        }
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        PluginError::Internal(format!("chat-completions response is not JSON: {e}"))
    })?;
    value["choices"][0]["message"]["content"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            PluginError::Internal(
                "chat-completions response has no choices[0].message.content".into(),
            )
        })
}

/// The model's text as a plain reply: code fences, surrounding quotes, markdown emphasis,
/// headings, bullets and a leading `Reply:` removed; whitespace collapsed.
pub fn clean(content: &str) -> String {
    let mut text = content.trim().to_string();
    // Code fences (with an optional language tag).
    if text.starts_with("```") {
        text = text
            .trim_start_matches("```")
            .trim_start_matches(|c: char| c.is_alphanumeric())
            .trim_end_matches("```")
            .to_string();
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            let l = l.trim_start_matches('#').trim_start();
            let l = l
                .strip_prefix("- ")
                .or_else(|| l.strip_prefix("* "))
                .unwrap_or(l);
            l.to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let mut text = lines.join(" ");
    for marker in ["**", "__", "`"] {
        text = text.replace(marker, "");
    }
    for prefix in ["Reply:", "Draft:", "Response:", "Answer:"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.trim_start().to_string();
        }
    }
    let quotes = [('"', '"'), ('“', '”'), ('\'', '\''), ('«', '»')];
    loop {
        let t = text.trim();
        let stripped = quotes.iter().find_map(|(open, close)| {
            t.strip_prefix(*open)
                .and_then(|r| r.strip_suffix(*close))
                .filter(|inner| !inner.contains(*open) || open != close)
        });
        match stripped {
            Some(inner) if !inner.is_empty() => text = inner.trim().to_string(),
            _ => break,
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn unit(u: LengthUnit) -> shared::LengthUnit {
    match u {
        LengthUnit::Characters => shared::LengthUnit::Characters,
        LengthUnit::Graphemes => shared::LengthUnit::Graphemes,
        LengthUnit::Weighted => shared::LengthUnit::Weighted,
        LengthUnit::Bytes => shared::LengthUnit::Bytes,
    }
}

/// The draft for the model's `content`: cleaned, signed, fitted. `None` when nothing is left or
/// nothing fits.
pub fn draft(
    settings: &Settings,
    message: &Message,
    labels: &[Label],
    context: &CallContext,
    content: &str,
) -> Option<Draft> {
    let mut text = clean(content);
    if text.is_empty() {
        return None;
    }
    let signature = context
        .signature
        .as_deref()
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if !signature.is_empty() && !text.ends_with(&signature) {
        text = format!("{text} {signature}");
    }
    let mut rationale = format!("LLM draft ({})", settings.model);
    let (max, u) = match &context.length_rule {
        Some(rule) => (rule.max as usize, unit(rule.unit)),
        None => (settings.max_chars as usize, shared::LengthUnit::Characters),
    };
    let text = match shared::fit(&text, &signature, max, u) {
        Fit::AsIs(t) => t,
        Fit::Shortened(t) => {
            rationale.push_str(&format!(
                "; shortened to fit {max} {}",
                shared::unit_name(u)
            ));
            t
        }
        Fit::Impossible => return None,
    };
    if text.trim() == signature {
        return None;
    }
    let private = message.visibility == Visibility::Private
        || labels
            .iter()
            .any(|l| l.score >= 0.5 && l.name.starts_with("private:"));
    Some(Draft {
        text,
        visibility: if private {
            Visibility::Private
        } else {
            Visibility::Public
        },
        confidence: 0.6,
        rationale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_typed_errors() {
        assert!(matches!(
            content(429, b"", Some(7)),
            Err(PluginError::RateLimited(Some(7)))
        ));
        assert!(matches!(
            content(503, b"", None),
            Err(PluginError::Unavailable(_))
        ));
        match content(401, b"{\"error\":\"bad key sk-123\"}", None) {
            Err(PluginError::NotConfigured(m)) => {
                assert!(m.contains("api-key") && !m.contains("sk-123"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(content(404, b"", None), Err(PluginError::NotConfigured(m)) if m.contains("endpoint"))
        );
        assert!(matches!(
            content(200, b"<html>", None),
            Err(PluginError::Internal(_))
        ));
        assert!(matches!(
            content(200, b"{\"choices\":[]}", None),
            Err(PluginError::Internal(_))
        ));
        assert!(matches!(
            content(
                200,
                br#"{"choices":[{"message":{"role":"assistant","content":"Hi"}}]}"#,
                None
            )
            .as_deref(),
            Ok("Hi")
        ));
    }

    #[test]
    fn cleaning_removes_wrapping_and_markdown() {
        assert_eq!(
            clean("\"Sorry, Ana! We'll fix it.\""),
            "Sorry, Ana! We'll fix it."
        );
        assert_eq!(clean("Reply: **Sorry**, Ana."), "Sorry, Ana.");
        assert_eq!(clean("```text\nSorry, Ana.\n```"), "Sorry, Ana.");
        assert_eq!(clean("# Reply\n- Sorry,\n- Ana."), "Reply Sorry, Ana.");
        assert_eq!(clean("“Sorry.”"), "Sorry.");
        assert_eq!(clean("  "), "");
    }
}
