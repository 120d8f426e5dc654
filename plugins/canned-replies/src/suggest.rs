//! Choosing templates by label, filling them and fitting them: the whole suggester without
//! the host.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use switchboard_sdk::{CallContext, Draft, Label, Message, Visibility};
use switchboard_textscan::Regex;
use switchboard_textscan::pii;

use crate::fit::{self, Fit};
use crate::settings::{DEFAULT_KEY, Settings};
use crate::template;

/// A label counts as present for `skip_labels` and `private_labels` from this score up.
pub const PRESENT: f32 = 0.5;

/// A label's drafts are as confident as the label, discounted for being canned.
pub const LABEL_CONFIDENCE_FACTOR: f32 = 0.9;

/// Confidence of a `default` template's draft.
pub const DEFAULT_CONFIDENCE: f32 = 0.3;

fn is_present(labels: &[Label], names: &[String]) -> bool {
    labels
        .iter()
        .any(|l| l.score >= PRESENT && names.iter().any(|n| n.eq_ignore_ascii_case(l.name.trim())))
}

static ORDER_REF: LazyLock<Regex> = LazyLock::new(|| {
    switchboard_textscan::pattern(
        r"(?i)\b(?:order|purchase|booking|reservation|ref(?:erence)?|confirmation|invoice)(?:\s*(?:no\.?|number|num|id|ref))?\s*(?:is\s*)?[:#]?\s*#?([A-Z0-9][A-Z0-9\-]{2,18}[A-Z0-9])\b|(?:^|\s)#(\d{4,12})\b",
    )
});

/// Build this module's patterns now (the plugin's pre-initialisation).
pub fn warm() {
    LazyLock::force(&ORDER_REF);
}

/// The order id the customer wrote (`order #48213`, `booking ref AB12CD`, `#48213`), if any:
/// it must contain a digit and must not be a card or phone number. Never guessed.
pub fn order_id(text: &str) -> Option<String> {
    // Most messages have no reference at all: look for card and phone numbers only if needed.
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let cards = pii::find_cards(text);
    let phones = std::cell::OnceCell::new();
    ORDER_REF.captures_iter(text).find_map(|c| {
        let m = c.get(1).or_else(|| c.get(2))?;
        let phones = phones.get_or_init(|| pii::find_phones(text));
        let private = cards.iter().any(|k| k.start < m.end() && m.start() < k.end)
            || phones.iter().any(|&(a, b)| a < m.end() && m.start() < b);
        (m.as_str().chars().any(|ch| ch.is_ascii_digit()) && !private)
            .then(|| m.as_str().to_string())
    })
}

/// The tone for this message: the tone of the highest-scored label (≥ 0.5) that asks for one,
/// else the tenant's tone.
pub fn tone<'a>(settings: &'a Settings, labels: &[Label]) -> &'a str {
    let mut sorted: Vec<&Label> = labels
        .iter()
        .filter(|l| l.score.is_finite() && l.score >= PRESENT)
        .collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    sorted
        .iter()
        .find_map(|l| settings.tone_by_label.get(&l.name.trim().to_lowercase()))
        .unwrap_or(&settings.tone)
}

/// The variables a template can use: the tenant's `vars`, then the built-ins `{name}`,
/// `{handle}`, `{signature}`, `{channel}` and `{order_id}` (only when the message has one),
/// which a `vars` entry cannot override.
pub fn variables(
    settings: &Settings,
    message: &Message,
    context: &CallContext,
) -> BTreeMap<String, String> {
    let mut vars = settings.vars.clone();
    vars.insert("name".into(), template::greeting_name(&message.author));
    vars.insert(
        "handle".into(),
        message
            .author
            .handle
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_string(),
    );
    vars.insert(
        "signature".into(),
        template::tidy(context.signature.as_deref().unwrap_or("")),
    );
    vars.insert("channel".into(), message.channel.clone());
    vars.remove("order_id");
    let wanted = settings
        .templates
        .values()
        .flatten()
        .any(|t| t.contains("{order_id}"));
    if let Some(id) = wanted.then(|| order_id(&message.text)).flatten() {
        vars.insert("order_id".into(), id);
    }
    vars
}

/// One template to try, with the draft's confidence and the reason it was chosen.
struct Candidate<'a> {
    template: &'a str,
    confidence: f32,
    rationale: String,
}

/// Templates in the order they are tried: each label's (highest score first, each name once),
/// then the `default` ones.
fn candidates<'a>(
    settings: &'a Settings,
    labels: &[Label],
    tone: &str,
    has_order_id: bool,
) -> Vec<Candidate<'a>> {
    // A key's templates in the chosen tone, or its plain (warm) ones; of those, the variants
    // that use the order id when the customer gave one, the others when not.
    let toned = |key: &str| -> Option<Vec<&'a String>> {
        let list = settings
            .templates
            .get(&format!("{key}@{tone}"))
            .or_else(|| settings.templates.get(key))?;
        let uses = |t: &String| template::placeholders(t).contains(&"order_id");
        let with_id: Vec<&String> = list.iter().filter(|t| uses(t)).collect();
        Some(if has_order_id && !with_id.is_empty() {
            with_id
        } else {
            list.iter().filter(|t| !uses(t)).collect()
        })
    };
    let mut sorted: Vec<&Label> = labels.iter().filter(|l| l.score.is_finite()).collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |list: Vec<&'a String>, confidence: f32, reason: &str| {
        let n = list.len();
        for (i, t) in list.into_iter().enumerate() {
            let nth = if n > 1 {
                format!(" ({} of {n})", i + 1)
            } else {
                String::new()
            };
            out.push(Candidate {
                template: t,
                confidence,
                rationale: format!("{reason}{nth}"),
            });
        }
    };
    for label in sorted {
        let key = label.name.trim().to_lowercase();
        if key == DEFAULT_KEY || !seen.insert(key.clone()) {
            continue;
        }
        if let Some(list) = toned(&key) {
            let confidence = (label.score * LABEL_CONFIDENCE_FACTOR).clamp(0.0, 1.0);
            push(list, confidence, &format!("template for label \"{key}\""));
        }
    }
    if let Some(list) = toned(DEFAULT_KEY) {
        push(list, DEFAULT_CONFIDENCE, "default template");
    }
    out
}

/// What shortening must keep whole at the end of `text`: the signature, and a link that
/// stands right before it (`… steps here: https://help.example/x ^ana`) with it.
pub fn protected_tail(text: &str, signature: &str) -> String {
    let body = text.strip_suffix(signature).unwrap_or(text).trim_end();
    if signature.is_empty() || body.len() == text.len() {
        return signature.to_string();
    }
    let last = body.rsplit(char::is_whitespace).next().unwrap_or("");
    let is_link = fit::find_url(last).is_some_and(|(s, _)| s == 0);
    if is_link && body.len() > last.len() {
        text[body.len() - last.len()..].to_string()
    } else {
        signature.to_string()
    }
}

/// Propose drafts for `message`, best first. See the crate documentation for the rules.
pub fn suggest(
    settings: &Settings,
    message: &Message,
    labels: &[Label],
    context: &CallContext,
) -> Vec<Draft> {
    if is_present(labels, &settings.skip_labels) {
        return Vec::new();
    }
    let visibility = if matches!(message.visibility, Visibility::Private)
        || is_present(labels, &settings.private_labels)
    {
        Visibility::Private
    } else {
        Visibility::Public
    };
    let vars = variables(settings, message, context);
    let signature = vars["signature"].clone();
    let tone = tone(settings, labels);

    let mut drafts: Vec<Draft> = Vec::new();
    let mut texts = HashSet::new();
    for candidate in candidates(settings, labels, tone, vars.contains_key("order_id")) {
        if drafts.len() >= settings.max_drafts {
            break;
        }
        let placeholders = template::placeholders(candidate.template);
        // Every reply is signed: a template without `{signature}` gets it appended.
        let signs = placeholders.contains(&"signature");
        let source = if signs || signature.is_empty() {
            candidate.template.to_string()
        } else {
            format!("{} {{signature}}", candidate.template.trim_end())
        };
        let filled = template::fill(&source, &vars);
        let mut notes = vec![candidate.rationale];
        if tone != crate::settings::TONES[0] {
            notes.push(format!("{tone} tone"));
        }
        if !filled.unknown.is_empty() {
            let names: Vec<String> = filled.unknown.iter().map(|n| format!("{{{n}}}")).collect();
            let s = if names.len() > 1 { "s" } else { "" };
            notes.push(format!(
                "dropped unknown placeholder{s} {}",
                names.join(", ")
            ));
        }
        let text = match &context.length_rule {
            None => filled.text.clone(),
            Some(rule) => match fit::fit(
                &filled.text,
                &protected_tail(&filled.text, &signature),
                rule.max as usize,
                rule.unit,
            ) {
                Fit::AsIs(text) => text,
                Fit::Shortened(text) => {
                    notes.push(format!(
                        "shortened to fit {} {}",
                        rule.max,
                        fit::unit_name(rule.unit)
                    ));
                    text
                }
                Fit::Impossible => continue,
            },
        };
        // Shortening must never cost the signature (it can only be lost if a template put it
        // somewhere other than the end).
        let lost_signature =
            !signature.is_empty() && filled.text.contains(&signature) && !text.contains(&signature);
        if text.is_empty() || text == signature || lost_signature || !texts.insert(text.clone()) {
            continue;
        }
        drafts.push(Draft {
            text,
            visibility,
            confidence: candidate.confidence,
            rationale: notes.join("; "),
        });
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::measure;
    use switchboard_sdk::{Author, LengthRule, LengthUnit, MessageAction, Origin};

    fn message(display: Option<&str>, handle: Option<&str>) -> Message {
        Message {
            tenant: "acme".into(),
            channel: "mastodon".into(),
            external_id: "m1".into(),
            conversation_key: "c1".into(),
            in_reply_to: None,
            author: Author {
                id: "u1".into(),
                handle: handle.map(String::from),
                display_name: display.map(String::from),
            },
            text: "My order never arrived".into(),
            language: None,
            visibility: Visibility::Public,
            origin: Origin::Mention,
            received_at: 0,
            attachments: Vec::new(),
            action: MessageAction::Created,
            extra: Vec::new(),
        }
    }

    fn ana() -> Message {
        message(Some("Ana Silva"), Some("@ana"))
    }

    fn context(signature: Option<&str>, rule: Option<(u32, LengthUnit)>) -> CallContext {
        CallContext {
            now: 0,
            length_rule: rule.map(|(max, unit)| LengthRule {
                max,
                unit,
                description: String::new(),
            }),
            signature: signature.map(String::from),
            time_zone: "Europe/Lisbon".into(),
        }
    }

    fn signed() -> CallContext {
        context(Some("^jo"), None)
    }

    fn settings(templates: &[(&str, &[&str])]) -> Settings {
        Settings {
            templates: templates
                .iter()
                .map(|(k, list)| (k.to_string(), list.iter().map(|t| t.to_string()).collect()))
                .collect(),
            ..Settings::default()
        }
    }

    fn texts(drafts: &[Draft]) -> Vec<&str> {
        drafts.iter().map(|d| d.text.as_str()).collect()
    }

    #[test]
    fn built_in_default_greets_by_display_name_and_signs() {
        let drafts = suggest(&Settings::default(), &ana(), &[], &signed());
        assert_eq!(drafts.len(), 1);
        assert_eq!(
            drafts[0].text,
            "Hi Ana, thanks for getting in touch. Could you tell us a bit more about what happened? We'll take it from there. ^jo"
        );
        assert_eq!(drafts[0].confidence, 0.3);
        assert_eq!(drafts[0].rationale, "default template");
        assert!(matches!(drafts[0].visibility, Visibility::Public));
    }

    #[test]
    fn name_falls_back_to_handle_then_there() {
        let s = settings(&[("default", &["Hi {name}! {signature}"])]);
        let by_handle = suggest(&s, &message(None, Some("@bob")), &[], &signed());
        assert_eq!(texts(&by_handle), ["Hi bob! ^jo"]);
        let nobody = suggest(&s, &message(None, None), &[], &signed());
        assert_eq!(texts(&nobody), ["Hi there! ^jo"]);
    }

    #[test]
    fn vars_handle_and_channel_are_filled() {
        let mut s = settings(&[(
            "default",
            &["{handle} on {channel}: see {help_url} {signature}"],
        )]);
        s.vars
            .insert("help_url".into(), "https://help.example.com".into());
        s.vars.insert("name".into(), "Mallory".into());
        let drafts = suggest(&s, &ana(), &[], &signed());
        assert_eq!(
            texts(&drafts),
            ["@ana on mastodon: see https://help.example.com ^jo"]
        );
        // `vars` cannot override a built-in variable.
        let s2 = Settings {
            vars: s.vars.clone(),
            ..settings(&[("default", &["Hi {name}"])])
        };
        assert_eq!(texts(&suggest(&s2, &ana(), &[], &signed())), ["Hi Ana ^jo"]);
    }

    #[test]
    fn unknown_placeholders_are_dropped_and_noted() {
        let s = settings(&[(
            "default",
            &["Hi {name}, your parcel {parcel_id} is on its way{eta}. {signature}"],
        )]);
        let drafts = suggest(&s, &ana(), &[], &signed());
        assert_eq!(texts(&drafts), ["Hi Ana, your parcel is on its way. ^jo"]);
        assert_eq!(
            drafts[0].rationale,
            "default template; dropped unknown placeholders {parcel_id}, {eta}"
        );
        let s = settings(&[("default", &["Hi {name} {x}"])]);
        assert_eq!(
            suggest(&s, &ana(), &[], &signed())[0].rationale,
            "default template; dropped unknown placeholder {x}"
        );
    }

    #[test]
    fn unsigned_templates_get_the_signature_and_no_signature_leaves_no_gap() {
        let s = settings(&[
            ("default", &["Thanks, {name}!"]),
            ("advocate", &["Cheers {name} {signature}!"]),
        ]);
        assert_eq!(
            texts(&suggest(&s, &ana(), &[], &signed())),
            ["Thanks, Ana! ^jo"]
        );
        let unsigned = context(None, None);
        let labels = [Label::new("advocate", 0.9)];
        assert_eq!(
            texts(&suggest(&s, &ana(), &labels, &unsigned)),
            ["Cheers Ana!", "Thanks, Ana!"]
        );
    }

    #[test]
    fn spam_profanity_and_trolls_get_no_reply() {
        let s = Settings::default();
        for name in ["spam", "profanity", "troll", "Spam"] {
            let labels = [Label::new("sentiment:negative", 0.9), Label::new(name, 0.5)];
            assert!(suggest(&s, &ana(), &labels, &signed()).is_empty(), "{name}");
        }
        let weak = [Label::new("spam", 0.49), Label::new("profanity", 0.2)];
        assert_eq!(suggest(&s, &ana(), &weak, &signed()).len(), 1);
        // A tenant can turn skipping off.
        let open = Settings {
            skip_labels: Vec::new(),
            ..Settings::default()
        };
        assert_eq!(
            suggest(&open, &ana(), &[Label::new("spam", 1.0)], &signed()).len(),
            1
        );
    }

    #[test]
    fn private_labels_and_private_messages_make_private_drafts() {
        let s = Settings::default();
        let private = suggest(&s, &ana(), &[Label::new("private-data", 0.7)], &signed());
        assert_eq!(private.len(), 1);
        assert!(matches!(private[0].visibility, Visibility::Private));
        let below = suggest(&s, &ana(), &[Label::new("private-data", 0.3)], &signed());
        assert!(matches!(below[0].visibility, Visibility::Public));
        let mut dm = ana();
        dm.visibility = Visibility::Private;
        assert!(matches!(
            suggest(&s, &dm, &[], &signed())[0].visibility,
            Visibility::Private
        ));
    }

    #[test]
    fn higher_scored_labels_come_first_and_default_last() {
        let s = settings(&[
            ("topic:refund", &["Refund for {name}."]),
            ("sentiment:negative", &["Sorry, {name}."]),
            ("default", &["Hello {name}."]),
        ]);
        let labels = [
            Label::new("topic:refund", 0.6),
            Label::new("sentiment:negative", 0.8),
            Label::new("topic:other", 0.99),
        ];
        let drafts = suggest(&s, &ana(), &labels, &signed());
        assert_eq!(
            texts(&drafts),
            ["Sorry, Ana. ^jo", "Refund for Ana. ^jo", "Hello Ana. ^jo"]
        );
        let confidences: Vec<f32> = drafts.iter().map(|d| d.confidence).collect();
        assert_eq!(confidences, [0.8 * 0.9, 0.6 * 0.9, 0.3]);
        assert_eq!(
            drafts[0].rationale,
            "template for label \"sentiment:negative\""
        );
        assert_eq!(drafts[1].rationale, "template for label \"topic:refund\"");
        assert_eq!(drafts[2].rationale, "default template");
    }

    #[test]
    fn identical_texts_are_kept_once_and_max_drafts_caps() {
        let s = settings(&[
            ("a", &["Same text.", "A two."]),
            ("b", &["Same text.", "B two."]),
            ("default", &["Same text."]),
        ]);
        let labels = [Label::new("b", 0.9), Label::new("a", 0.7)];
        let all = suggest(
            &Settings {
                max_drafts: 10,
                ..s.clone()
            },
            &ana(),
            &labels,
            &signed(),
        );
        assert_eq!(texts(&all), ["Same text. ^jo", "B two. ^jo", "A two. ^jo"]);
        assert_eq!(all[0].rationale, "template for label \"b\" (1 of 2)");
        let two = suggest(&Settings { max_drafts: 2, ..s }, &ana(), &labels, &signed());
        assert_eq!(texts(&two), ["Same text. ^jo", "B two. ^jo"]);
    }

    #[test]
    fn built_in_negative_drafts_apologise_then_default() {
        let labels = [
            Label::new("sentiment:negative", 0.8),
            Label::new("deflection", 0.9),
        ];
        let drafts = suggest(&Settings::default(), &ana(), &labels, &signed());
        assert_eq!(drafts.len(), 3);
        assert!(
            drafts[0]
                .text
                .starts_with("Sorry, Ana, that's not good enough and it's on us.")
        );
        assert!(
            drafts[1]
                .text
                .starts_with("We're sorry, Ana, we got this wrong.")
        );
        assert!(
            drafts[2]
                .text
                .starts_with("Hi Ana, thanks for getting in touch.")
        );
        assert!(drafts.iter().all(|d| d.text.ends_with(" ^jo")));
    }

    #[test]
    fn drafts_are_fitted_to_the_length_rule() {
        let ctx = context(Some("^jo"), Some((60, LengthUnit::Characters)));
        let drafts = suggest(
            &Settings::default(),
            &ana(),
            &[Label::new("sentiment:negative", 0.8)],
            &ctx,
        );
        assert_eq!(
            texts(&drafts),
            [
                "Sorry, Ana, that's not good enough and it's on us. ^jo",
                "We're sorry, Ana, we got this wrong. We'll put it right. ^jo",
                "Hi Ana, thanks for getting in touch. ^jo",
            ]
        );
        for d in &drafts {
            assert!(measure(&d.text, LengthUnit::Characters) <= 60, "{}", d.text);
            assert!(
                d.rationale.ends_with("; shortened to fit 60 characters"),
                "{}",
                d.rationale
            );
        }
    }

    #[test]
    fn drafts_that_cannot_fit_are_dropped() {
        let ctx = context(
            Some("^jo, customer care team lead"),
            Some((30, LengthUnit::Graphemes)),
        );
        assert!(suggest(&Settings::default(), &ana(), &[], &ctx).is_empty());
        let s = settings(&[(
            "default",
            &["Hi.", "Supercalifragilisticexpialidocious indeed."],
        )]);
        let ctx = context(Some("^jo"), Some((12, LengthUnit::Bytes)));
        assert_eq!(texts(&suggest(&s, &ana(), &[], &ctx)), ["Hi. ^jo"]);
    }

    #[test]
    fn order_id_is_taken_from_the_text_or_its_variant_is_skipped() {
        assert_eq!(
            order_id("my order #48213 never arrived").as_deref(),
            Some("48213")
        );
        assert_eq!(
            order_id("booking ref AB12CD please").as_deref(),
            Some("AB12CD")
        );
        assert_eq!(order_id("it's #48213").as_deref(), Some("48213"));
        assert_eq!(order_id("my order never arrived"), None);
        assert_eq!(
            order_id("order number is 4111 1111 1111 1111"),
            None,
            "a card"
        );
        assert_eq!(order_id("my order is late, since Monday"), None, "no digit");
        let s = settings(&[(
            "topic:delivery",
            &[
                "Sorry, {name}, we're chasing order {order_id} now. {signature}",
                "Sorry, {name}, DM us the order number and we'll chase it. {signature}",
            ],
        )]);
        let labels = [Label::new("topic:delivery", 0.9)];
        let mut m = ana();
        m.text = "order #48213 never arrived".into();
        assert_eq!(
            texts(&suggest(&s, &m, &labels, &signed())),
            ["Sorry, Ana, we're chasing order 48213 now. ^jo"],
            "with the id, only the variant that uses it"
        );
        let without = suggest(&s, &ana(), &labels, &signed());
        assert_eq!(
            texts(&without),
            ["Sorry, Ana, DM us the order number and we'll chase it. ^jo"]
        );
        assert!(without.iter().all(|d| !d.text.contains('{')));
    }

    #[test]
    fn tone_comes_from_the_label_or_the_tenant() {
        let mut s = Settings::default();
        let labels = [Label::new("sentiment:negative", 0.9)];
        let warm = suggest(&s, &ana(), &labels, &signed());
        assert!(
            warm[0]
                .text
                .starts_with("Sorry, Ana, that's not good enough")
        );
        s.tone = "brief".into();
        let brief = suggest(&s, &ana(), &labels, &signed());
        assert_eq!(
            brief[0].text,
            "Sorry, Ana, that's on us. DM us the order number and we'll fix it. ^jo"
        );
        assert!(
            brief[0].rationale.ends_with("brief tone"),
            "{}",
            brief[0].rationale
        );
        s.tone_by_label
            .insert("urgency:legal".into(), "formal".into());
        let formal = suggest(
            &s,
            &ana(),
            &[
                Label::new("sentiment:negative", 0.9),
                Label::new("urgency:legal", 0.85),
            ],
            &signed(),
        );
        assert!(
            formal[0].text.starts_with("We apologise, Ana"),
            "{}",
            formal[0].text
        );
    }

    #[test]
    fn shortening_keeps_a_closing_link_and_the_signature() {
        let s = settings(&[(
            "default",
            &[
                "Hi {name}, sorry the app lost your basket. We are fixing the crash today. Steps to restore it: https://help.example.com/app-basket {signature}",
            ],
        )]);
        let ctx = context(Some("^jo"), Some((70, LengthUnit::Characters)));
        let d = &suggest(&s, &ana(), &[], &ctx)[0];
        assert!(
            d.text.ends_with("https://help.example.com/app-basket ^jo"),
            "{}",
            d.text
        );
        assert!(measure(&d.text, LengthUnit::Characters) <= 70, "{}", d.text);
        assert_eq!(
            protected_tail("See https://x.example/a ^jo", "^jo"),
            "https://x.example/a ^jo"
        );
        assert_eq!(protected_tail("See it here. ^jo", "^jo"), "^jo");
    }
}
