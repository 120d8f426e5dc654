//! Help-article suggester: picks the tenant's help article for the message's topic and writes a
//! short reply that links it. It never pastes the article (the host's `pasted-article` guard
//! would block that, and a wall of steps is not a reply).
//!
//! # Config
//!
//! - `articles` (required): JSON list of `{"url": …, "title": …, "topics": ["topic:app"],
//!   "keywords": ["basket", "crash"]}`; `topics` and `keywords` are optional, but an article
//!   with neither is never picked. A missing or malformed list is `not-configured`.
//! - `template`: the reply, with `{name}`, `{title}`, `{url}` and `{signature}`; it must contain
//!   `{url}`. Default: `Hi {name}, sorry about this. Here's how to sort it: {url} {signature}`.
//! - `min_score`: how much evidence an article needs (default 1.0: one topic label at full
//!   confidence, or two keywords).
//! - `skip_labels`: default `["spam", "troll", "abuse"]`: no link for these (≥ 0.5).
//!
//! # Choosing
//!
//! Each article scores the sum of the scores of the message's labels among its `topics`, plus
//! 0.5 per distinct keyword found in the text (whole words, any case). The best article at or
//! above `min_score` gets one draft (ties: the first listed); none → no draft. Confidence is
//! the score over 2.5, at most 0.9.
//!
//! The reply is shortened to the channel's length rule with the link and the signature kept
//! whole (sentences before them are dropped or cut at a word boundary); if not even the link
//! and the signature fit, there is no draft.

use serde::Deserialize;
use switchboard_sdk::prelude::*;
use switchboard_textscan::fit::{self as shared, Fit};
use switchboard_textscan::names::greeting_name;

/// The reply used when the tenant gives no `template`.
pub const DEFAULT_TEMPLATE: &str =
    "Hi {name}, sorry about this. Here's how to sort it: {url} {signature}";

/// One help article of the tenant's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// The suggester's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub articles: Vec<Article>,
    pub template: String,
    pub min_score: f32,
    pub skip_labels: Vec<String>,
}

fn bad(key: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::NotConfigured(format!("config key `{key}`: {why}"))
}

impl Settings {
    /// Settings from config values looked up by key.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        let raw = get("articles")
            .ok_or_else(|| bad("articles", "not set: list the tenant's help articles"))?;
        let articles: Vec<Article> = serde_json::from_str(&raw).map_err(|e| bad("articles", e))?;
        for a in &articles {
            if !(a.url.starts_with("https://") || a.url.starts_with("http://")) {
                return Err(bad(
                    "articles",
                    format!("`{}` is not an http(s) URL", a.url),
                ));
            }
        }
        let template = get("template").unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        if !template.contains("{url}") {
            return Err(bad(
                "template",
                "must contain {url}: the reply links the article",
            ));
        }
        let min_score = match get("min_score") {
            None => 1.0,
            Some(v) => v
                .trim()
                .trim_matches('"')
                .parse::<f32>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| bad("min_score", format!("expected a number ≥ 0, got {v:?}")))?,
        };
        let skip_labels = match get("skip_labels") {
            None => vec!["spam".into(), "troll".into(), "abuse".into()],
            Some(raw) => serde_json::from_str::<Vec<String>>(&raw)
                .unwrap_or_else(|_| raw.split(',').map(String::from).collect())
                .into_iter()
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        Ok(Settings {
            articles,
            template,
            min_score,
            skip_labels,
        })
    }
}

fn contains_word(haystack: &str, word: &str) -> bool {
    let word = word.trim().to_lowercase();
    if word.is_empty() {
        return false;
    }
    let hay = haystack.to_lowercase();
    hay.match_indices(&word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Each article's score for this message, with the reasons.
pub fn score(article: &Article, text: &str, labels: &[Label]) -> (f32, Vec<String>) {
    let mut score = 0.0;
    let mut why = Vec::new();
    for topic in &article.topics {
        let best = labels
            .iter()
            .filter(|l| l.name.eq_ignore_ascii_case(topic.trim()) && l.score.is_finite())
            .map(|l| l.score)
            .fold(0.0f32, f32::max);
        if best > 0.0 {
            score += best;
            why.push(format!("label {topic} ({best:.2})"));
        }
    }
    let mut seen = Vec::new();
    for k in &article.keywords {
        let k = k.trim().to_lowercase();
        if !seen.contains(&k) && contains_word(text, &k) {
            score += 0.5;
            why.push(format!("keyword \"{k}\""));
            seen.push(k);
        }
    }
    (score, why)
}

fn unit(u: LengthUnit) -> shared::LengthUnit {
    match u {
        LengthUnit::Characters => shared::LengthUnit::Characters,
        LengthUnit::Graphemes => shared::LengthUnit::Graphemes,
        LengthUnit::Weighted => shared::LengthUnit::Weighted,
        LengthUnit::Bytes => shared::LengthUnit::Bytes,
    }
}

/// Propose at most one draft linking the best article.
pub fn suggest(
    settings: &Settings,
    message: &Message,
    labels: &[Label],
    context: &CallContext,
) -> Vec<Draft> {
    let skip = labels.iter().any(|l| {
        l.score >= 0.5
            && settings
                .skip_labels
                .iter()
                .any(|s| l.name.eq_ignore_ascii_case(s))
    });
    if skip {
        return vec![];
    }
    let mut best: Option<(f32, &Article, Vec<String>)> = None;
    for a in &settings.articles {
        let (s, why) = score(a, &message.text, labels);
        if s >= settings.min_score && s > 0.0 && best.as_ref().is_none_or(|(b, _, _)| s > *b) {
            best = Some((s, a, why));
        }
    }
    let Some((s, article, why)) = best else {
        return vec![];
    };
    let signature = context.signature.clone().unwrap_or_default();
    let name = greeting_name(
        message.author.display_name.as_deref(),
        message.author.handle.as_deref(),
    );
    let title = if article.title.is_empty() {
        article.url.as_str()
    } else {
        article.title.as_str()
    };
    let mut template = settings.template.clone();
    if !signature.is_empty() && !template.contains("{signature}") {
        template.push_str(" {signature}");
    }
    // Values are inserted once, never rescanned.
    let mut text = String::new();
    let mut rest = template.as_str();
    while let Some(i) = rest.find('{') {
        text.push_str(&rest[..i]);
        rest = &rest[i..];
        let value = [
            ("{name}", name.as_str()),
            ("{title}", title),
            ("{url}", article.url.as_str()),
            ("{signature}", signature.as_str()),
        ]
        .into_iter()
        .find(|(p, _)| rest.starts_with(p));
        match value {
            Some((p, v)) => {
                text.push_str(v);
                rest = &rest[p.len()..];
            }
            None => {
                text.push('{');
                rest = &rest[1..];
            }
        }
    }
    text.push_str(rest);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");

    let mut rationale = format!(
        "help article \"{title}\" ({}: {})",
        article.url,
        why.join(", ")
    );
    let text = match &context.length_rule {
        None => text,
        Some(rule) => {
            // Keep everything from the link on (the link and the signature) whole.
            let url_at = text.find(&article.url).unwrap_or(0);
            let tail = text[url_at..].to_string();
            match shared::fit(&text, &tail, rule.max as usize, unit(rule.unit)) {
                Fit::AsIs(t) => t,
                Fit::Shortened(t) => {
                    rationale.push_str(&format!(
                        "; shortened to fit {} {}",
                        rule.max,
                        shared::unit_name(unit(rule.unit))
                    ));
                    t
                }
                Fit::Impossible => {
                    if shared::measure(&tail, unit(rule.unit)) <= rule.max as usize {
                        tail
                    } else {
                        return vec![];
                    }
                }
            }
        }
    };
    let visibility = if message.visibility == Visibility::Private
        || labels
            .iter()
            .any(|l| l.score >= 0.5 && l.name.starts_with("private:"))
    {
        Visibility::Private
    } else {
        Visibility::Public
    };
    vec![Draft {
        text,
        visibility,
        confidence: (s / 2.5).min(0.9),
        rationale,
    }]
}

struct HelpArticles;

impl ReplySuggester for HelpArticles {
    fn info() -> PluginInfo {
        ["articles", "template", "min_score", "skip_labels"].iter().fold(
            PluginInfo::new(
                "help-article-suggester",
                env!("CARGO_PKG_VERSION"),
                "Links the tenant's best help article for the message's topic, within the channel's length rule",
            ),
            |info, key| info.config_key(key),
        )
    }

    fn suggest(
        message: Message,
        labels: Vec<Label>,
        context: CallContext,
    ) -> Result<Vec<Draft>, PluginError> {
        let settings = Settings::from_lookup(config::get)?;
        Ok(suggest(&settings, &message, &labels, &context))
    }
}

switchboard_sdk::export_suggester!(HelpArticles);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Author, LengthRule, MessageAction, Origin};

    const ARTICLES: &str = r#"[
        {"url": "https://help.acme.example/app-basket", "title": "Get your basket back after an app crash", "topics": ["topic:app"], "keywords": ["basket", "crashed", "crash"]},
        {"url": "https://help.acme.example/where-is-my-order", "title": "Where is my order?", "topics": ["topic:delivery"], "keywords": ["tracking", "never arrived"]}
    ]"#;

    fn settings(extra: &[(&str, &str)]) -> Result<Settings, PluginError> {
        let mut map: std::collections::BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("articles".into()).or_insert(ARTICLES.into());
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn message(text: &str) -> Message {
        Message {
            tenant: "acme".into(),
            channel: "x".into(),
            external_id: "1".into(),
            conversation_key: "1".into(),
            in_reply_to: None,
            author: Author {
                id: "u".into(),
                handle: Some("@dave_rants".into()),
                display_name: None,
            },
            text: text.into(),
            language: None,
            visibility: Visibility::Public,
            origin: Origin::Mention,
            received_at: 0,
            attachments: vec![],
            action: MessageAction::Created,
            extra: vec![],
        }
    }

    fn ctx(max: Option<u32>) -> CallContext {
        CallContext {
            now: 0,
            length_rule: max.map(|max| LengthRule {
                max,
                unit: LengthUnit::Characters,
                description: String::new(),
            }),
            signature: Some("^Ana".into()),
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn links_the_best_article_for_the_topic() {
        let s = settings(&[]).unwrap();
        let d = suggest(
            &s,
            &message("your app crashed AGAIN and lost my basket"),
            &[Label::new("topic:app", 0.84)],
            &ctx(Some(280)),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].text,
            "Hi dave_rants, sorry about this. Here's how to sort it: https://help.acme.example/app-basket ^Ana"
        );
        assert!(
            d[0].rationale.contains("label topic:app (0.84)"),
            "{}",
            d[0].rationale
        );
        assert!(d[0].rationale.contains("keyword \"basket\""));
    }

    #[test]
    fn no_article_no_draft() {
        let s = settings(&[]).unwrap();
        assert!(suggest(&s, &message("love the new ad"), &[], &ctx(None)).is_empty());
        // One keyword alone is below the default threshold.
        assert!(suggest(&s, &message("tracking?"), &[], &ctx(None)).is_empty());
        assert!(
            suggest(
                &s,
                &message("app crashed"),
                &[Label::new("troll", 0.9), Label::new("topic:app", 1.0)],
                &ctx(None)
            )
            .is_empty()
        );
    }

    #[test]
    fn shortening_keeps_the_link_and_signature() {
        let s = settings(&[]).unwrap();
        let d = suggest(
            &s,
            &message("basket crash"),
            &[Label::new("topic:app", 1.0)],
            &ctx(Some(60)),
        );
        assert_eq!(
            d[0].text,
            "Hi dave_rants… https://help.acme.example/app-basket ^Ana"
        );
        assert!(d[0].text.chars().count() <= 60);
        let d = suggest(
            &s,
            &message("basket crash"),
            &[Label::new("topic:app", 1.0)],
            &ctx(Some(41)),
        );
        assert_eq!(d[0].text, "https://help.acme.example/app-basket ^Ana");
        assert!(
            suggest(
                &s,
                &message("basket crash"),
                &[Label::new("topic:app", 1.0)],
                &ctx(Some(30))
            )
            .is_empty()
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        for (key, value) in [
            ("articles", "nope"),
            ("articles", r#"[{"url": "ftp://x"}]"#),
            ("articles", r#"[{"url": "https://x", "body": "pasted"}]"#),
            ("template", "Hi {name}"),
            ("min_score", "-1"),
        ] {
            match settings(&[(key, value)]) {
                Err(PluginError::NotConfigured(m)) => assert!(m.contains(key), "{m}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
        match Settings::from_lookup(|_| None) {
            Err(PluginError::NotConfigured(m)) => assert!(m.contains("articles")),
            other => panic!("{other:?}"),
        }
    }
}
