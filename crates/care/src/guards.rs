//! Reply guards: checks every draft must pass before it can go out, whoever wrote it (a
//! template, a model, an agent). Each finding says which guard, how serious, why, and where in
//! the text. A draft with a blocking finding never goes out automatically.
//!
//! ```toml
//! [guards]
//! deflection = "block"       # block | warn | off, for each guard
//! allowed_contacts = ["help.acme.example"]   # the tenant's own addresses a reply may give
//! [[guards.help_articles]]
//! url = "https://help.acme.example/app-basket"
//! text = "To restore your basket, open the app, tap Account, then ..."   # or file = "path"
//! ```
//!
//! The guards: `length` (the channel's own rule, as the connector measures it), `deflection`
//! (sending the customer to a phone line, an e-mail address or a shop instead of answering),
//! `private-data` (card numbers, IBANs, e-mail addresses: someone's data in a public reply),
//! `pasted-article` (help-article text where a link should stand), `rudeness` (profanity and
//! condescension, also disguised with look-alike characters) and `sales-pitch`.
//!
//! Card numbers (Luhn and issuer ranges), IBANs, e-mail addresses and rude words are found by
//! `switchboard-textscan`, the same code the classifier plugins use on customers' messages.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use switchboard_textscan::{pii, rude};

/// How seriously a guard's finding is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The draft cannot go out automatically.
    Block,
    /// Shown to the agent; does not stop the draft.
    Warn,
    /// The guard does not run.
    Off,
}

fn block() -> Severity {
    Severity::Block
}

/// A help article a reply should link to rather than paste.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticleConfig {
    pub url: String,
    pub title: Option<String>,
    /// The article's text, inline…
    pub text: Option<String>,
    /// …or in a file relative to the tenant config.
    pub file: Option<std::path::PathBuf>,
}

/// The `[guards]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardsConfig {
    #[serde(default = "block")]
    pub length: Severity,
    #[serde(default = "block")]
    pub deflection: Severity,
    #[serde(default = "block")]
    pub private_data: Severity,
    #[serde(default = "block")]
    pub pasted_article: Severity,
    #[serde(default = "block")]
    pub rudeness: Severity,
    #[serde(default = "block")]
    pub sales_pitch: Severity,
    /// Domains, addresses or numbers of the tenant's own that a reply may contain.
    #[serde(default)]
    pub allowed_contacts: Vec<String>,
    #[serde(default)]
    pub help_articles: Vec<ArticleConfig>,
    /// More words or phrases that count as rude, and as a sales pitch, for this tenant.
    #[serde(default)]
    pub extra_rude: Vec<String>,
    #[serde(default)]
    pub extra_pitch: Vec<String>,
}

impl Default for GuardsConfig {
    fn default() -> Self {
        toml::from_str("").expect("guards defaults")
    }
}

/// One reason a draft is not fit to send as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub guard: String,
    pub severity: Severity,
    pub reason: String,
    /// Byte range in the draft's text, where there is one.
    pub span: Option<(usize, usize)>,
}

struct Article {
    url: String,
    title: String,
    words: Vec<String>,
}

/// A tenant's guards, ready to check drafts.
pub struct Guards {
    config: GuardsConfig,
    articles: Vec<Article>,
    extra_rude: rude::PhraseList,
    extra_pitch: Option<Regex>,
}

impl std::fmt::Debug for Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards")
            .field("config", &self.config)
            .finish()
    }
}

/// A draft is pasted from an article when it shares this many consecutive words with it.
const PASTE_RUN_WORDS: usize = 10;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in guard pattern")
}

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    // Toll-free vanity numbers (1-800-FLOWERS) and any run of 7+ digits with the usual
    // separators, with an optional country code.
    re(
        r"(?i)\b1[-. ]?8(?:00|33|44|55|66|77|88)[-. ]?[a-z0-9]{3}[-. ]?[a-z0-9]{4}\b|(?:\+|\b)\d(?:[\d .()\-]{5,}\d)",
    )
});
static DEFLECTION_PHRASES: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:call|ring|phone|telephone|dial|give)\s+(?:us|our\s+(?:team|hotline|helpline|support|customer\s+service))|\b(?:call|ring|phone|telephone|dial)\s+(?:our|the)\s+(?:[\w-]+\s+){0,3}?(?:number|line|hotline|helpline|call\s+cent(?:re|er))\b|\be-?mail\s+(?:us|our\s+(?:team|support))|\bcontact\s+(?:us|our\s+(?:team|support|customer\s+service))\s+(?:at|on|via|by)|\b(?:visit|pop\s+into|go\s+to)\s+(?:your|our|a|the)\s+(?:nearest\s+|local\s+)?(?:store|shop|branch)\b|\bsend\s+(?:us\s+)?(?:a\s+)?(?:letter|fax)\b",
    )
});
static PITCH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:upgrade\s+to|buy\s+now|special\s+offer|limited[\s-]+time|\d+\s*%\s*off|discount\s+code|promo(?:tion(?:al)?)?\s+code|coupon|check\s+out\s+our\s+(?:new|latest)|why\s+not\s+try|premium\s+(?:plan|membership|tier)|sign\s+up\s+(?:for|to)\s+our|subscribe\s+to\s+our|don'?t\s+miss\s+(?:out|our)|exclusive\s+deal|add\s+(?:a\s+)?(?:protection|warranty)\s+plan)\b",
    )
});

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The longest run of consecutive words `a` shares with `b`.
fn longest_shared_run(a: &[String], b: &[String]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

fn phrase_list(items: &[String]) -> Option<Regex> {
    let items: Vec<String> = items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(regex::escape)
        .collect();
    if items.is_empty() {
        return None;
    }
    Regex::new(&format!(r"(?i)\b(?:{})\b", items.join("|"))).ok()
}

impl Guards {
    /// Build from config; article files are read relative to `base`.
    pub fn new(config: GuardsConfig, base: &Path) -> Result<Self, String> {
        let mut articles = Vec::new();
        for a in &config.help_articles {
            let text = match (&a.text, &a.file) {
                (Some(t), None) => t.clone(),
                (None, Some(f)) => std::fs::read_to_string(base.join(f)).map_err(|e| {
                    format!(
                        "[guards] help article {}: cannot read {}: {e}",
                        a.url,
                        f.display()
                    )
                })?,
                _ => {
                    return Err(format!(
                        "[guards] help article {}: give exactly one of `text` and `file`",
                        a.url
                    ));
                }
            };
            articles.push(Article {
                url: a.url.clone(),
                title: a.title.clone().unwrap_or_else(|| a.url.clone()),
                words: words(&text),
            });
        }
        Ok(Guards {
            extra_rude: rude::PhraseList::new(&config.extra_rude),
            extra_pitch: phrase_list(&config.extra_pitch),
            config,
            articles,
        })
    }

    fn allowed(&self, found: &str) -> bool {
        let found = found.to_lowercase();
        self.config
            .allowed_contacts
            .iter()
            .any(|a| !a.is_empty() && found.contains(&a.to_lowercase()))
    }

    /// Check one draft. `measured` is its length by the channel's rule (`None` when the
    /// connector could not measure it), `limit` the channel's maximum.
    pub fn check(&self, text: &str, measured: Option<u32>, limit: u32) -> Vec<Finding> {
        let mut out = Vec::new();
        let c = &self.config;
        let mut push = |guard: &str, severity: Severity, reason: String, span| {
            if severity != Severity::Off {
                out.push(Finding {
                    guard: guard.into(),
                    severity,
                    reason,
                    span,
                });
            }
        };

        match measured {
            Some(n) if n > limit => push(
                "length",
                c.length,
                format!("{n} by the channel's rule, over its limit of {limit}"),
                None,
            ),
            None => push(
                "length",
                c.length,
                "the connector could not measure this draft".into(),
                None,
            ),
            _ => {}
        }

        for m in DEFLECTION_PHRASES.find_iter(text) {
            push(
                "deflection",
                c.deflection,
                format!(
                    "sends the customer elsewhere (\"{}\") instead of answering here",
                    m.as_str()
                ),
                Some((m.start(), m.end())),
            );
        }
        for m in PHONE.find_iter(text) {
            let digits = m
                .as_str()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .count();
            if digits >= 7 && !self.allowed(m.as_str()) && !pii::card_shaped(m.as_str()) {
                push(
                    "deflection",
                    c.deflection,
                    "gives a phone number: answer here rather than sending the customer to a phone line".into(),
                    Some((m.start(), m.end())),
                );
            }
        }

        for card in pii::find_cards(text) {
            push(
                "private-data",
                c.private_data,
                format!("contains a payment card number ({})", card.scheme),
                Some((card.start, card.end)),
            );
        }
        for (start, end) in pii::find_ibans(text) {
            push(
                "private-data",
                c.private_data,
                "contains a bank account number (IBAN)".into(),
                Some((start, end)),
            );
        }
        for (start, end) in pii::find_emails(text) {
            if !self.allowed(&text[start..end]) {
                push(
                    "private-data",
                    c.private_data,
                    "contains an e-mail address that is not one of the tenant's own".into(),
                    Some((start, end)),
                );
            }
        }

        let draft_words = words(text);
        for a in &self.articles {
            let run = longest_shared_run(&draft_words, &a.words);
            if run >= PASTE_RUN_WORDS {
                push(
                    "pasted-article",
                    c.pasted_article,
                    format!(
                        "repeats {run} words in a row of the help article \"{}\": link {} instead",
                        a.title, a.url
                    ),
                    None,
                );
            }
        }

        // Rude words are matched through disguises (textscan normalises look-alikes, symbols,
        // invisible characters and repeats); a disguised one has no span worth showing.
        let hits: Vec<rude::Hit> = rude::find(text, rude::IN_REPLIES)
            .into_iter()
            .chain(self.extra_rude.find(text, rude::Kind::Insult))
            .collect();
        let (plain, disguised): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| !h.disguised);
        for h in &plain {
            push(
                "rudeness",
                c.rudeness,
                format!("rude or condescending: \"{}\"", &text[h.start..h.end]),
                Some((h.start, h.end)),
            );
        }
        if plain.is_empty()
            && let Some(h) = disguised.first()
        {
            push(
                "rudeness",
                c.rudeness,
                format!("rude, disguised with look-alike characters: \"{}\"", h.term),
                None,
            );
        }

        for m in PITCH
            .find_iter(text)
            .chain(self.extra_pitch.iter().flat_map(|r| r.find_iter(text)))
        {
            push(
                "sales-pitch",
                c.sales_pitch,
                format!("sales pitch in a care reply: \"{}\"", m.as_str()),
                Some((m.start(), m.end())),
            );
        }
        out
    }
}

/// Whether any finding stops a draft from going out automatically.
pub fn blocks(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guards(extra: &str) -> Guards {
        let config: GuardsConfig = toml::from_str(extra).unwrap();
        Guards::new(config, Path::new(".")).unwrap()
    }

    fn found(g: &Guards, text: &str) -> Vec<String> {
        g.check(text, Some(10), 280)
            .into_iter()
            .map(|f| f.guard)
            .collect()
    }

    #[test]
    fn luhn_and_iban_checks() {
        use pii::{iban_valid, luhn};
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
    }

    #[test]
    fn a_human_reply_passes_every_guard() {
        let g = guards("");
        for text in [
            "Hi Casey, sorry your parcel is late. That's on us. DM us your order number and we'll chase it today. ^Ana",
            "Désolés pour ce retard, Camille. Envoyez-nous un message privé et on s'en occupe. ^Ana",
            "ごめんなさい、配送が遅れています。DMで注文番号を教えてください。^Ana",
            "Thank you, Sam! 🎉 We'll pass this on to the team. ^Ana",
            "Your order 12345 shipped today. ^Ana",
        ] {
            assert!(
                found(&g, text).is_empty(),
                "{text}: {:?}",
                g.check(text, Some(10), 280)
            );
        }
    }

    #[test]
    fn length_uses_the_measured_value() {
        let g = guards("");
        let f = g.check("x", Some(281), 280);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].guard, "length");
        assert!(f[0].reason.contains("281") && f[0].reason.contains("280"));
        assert!(g.check("x", Some(280), 280).is_empty());
        assert_eq!(g.check("x", None, 280)[0].guard, "length");
    }

    #[test]
    fn deflection_is_caught_with_its_span() {
        let g = guards("");
        for text in [
            "Please call us on 1-800-FLOWERS and we'll help.",
            "Sorry! Ring our helpline, they can sort it.",
            "Email us at the address on our website.",
            "Rufen Sie uns an: +49 30 1234567",
            "Best to visit your nearest store for that.",
            "Please call our 1-800 number for kettle refunds.",
            "Just ring the customer service line tomorrow.",
        ] {
            assert!(
                found(&g, text).contains(&"deflection".to_string()),
                "{text}"
            );
        }
        let f = g.check("Call us on 0800 123 4567.", Some(10), 280);
        let span = f
            .iter()
            .find(|f| f.guard == "deflection")
            .unwrap()
            .span
            .unwrap();
        assert_eq!(&"Call us on 0800 123 4567."[span.0..span.1], "Call us");
        // The tenant's own help line, when allowed, is not a finding by number.
        let g = guards("allowed_contacts = [\"0800 123 4567\"]");
        assert!(
            !g.check("Our status page lists 0800 123 4567 outages.", Some(1), 280)
                .iter()
                .any(|f| f.guard == "deflection")
        );
    }

    #[test]
    fn private_data_cards_ibans_and_addresses() {
        let g = guards("allowed_contacts = [\"acme.example\"]");
        assert_eq!(
            found(&g, "Card 4111 1111 1111 1111 is blocked"),
            vec!["private-data"]
        );
        assert!(
            found(&g, "Order 4111 1111 1111 1112 shipped").is_empty(),
            "not Luhn-valid"
        );
        assert_eq!(
            found(&g, "Refund to GB82 WEST 1234 5698 7654 32 sent"),
            vec!["private-data"]
        );
        assert_eq!(
            found(&g, "We wrote to jo.bloggs@gmail.com"),
            vec!["private-data"]
        );
        assert!(found(&g, "Our form is at care@acme.example").is_empty());
        // A card number written with full-width digits is not a match for the ASCII pattern, but
        // text around it in any script does not hide an ASCII one.
        assert_eq!(
            found(&g, "カード番号 5500-0000-0000-0004 を確認しました"),
            vec!["private-data"]
        );
    }

    #[test]
    fn pasted_article_text_is_caught_and_a_link_is_fine() {
        let g = guards(
            r#"
            [[help_articles]]
            url = "https://help.acme.example/basket"
            title = "Restore your basket"
            text = "To restore your basket, open the app, tap Account, then Saved baskets, and choose the basket you lost. If it is not there, sign out and sign in again."
            "#,
        );
        let pasted = "Hi! To restore your basket, open the app, tap Account, then Saved baskets, and choose the basket. ^Ana";
        let f = g.check(pasted, Some(10), 280);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].reason.contains("https://help.acme.example/basket"));
        assert!(
            found(
                &g,
                "Sorry! Here's how to get your basket back: https://help.acme.example/basket ^Ana"
            )
            .is_empty()
        );
    }

    #[test]
    fn rudeness_plain_and_disguised() {
        let g = guards("extra_rude = [\"get a life\"]");
        assert_eq!(
            found(&g, "Calm down, we are working on it."),
            vec!["rudeness"]
        );
        assert_eq!(
            found(&g, "As I already said, it's shipped."),
            vec!["rudeness"]
        );
        assert_eq!(found(&g, "That's sh1t luck"), vec!["rudeness"]);
        assert_eq!(found(&g, "get a life"), vec!["rudeness"]);
        // Zero-width characters and full-width letters do not hide it.
        let f = g.check("you are an i\u{200B}diot", Some(1), 280);
        assert_eq!(f.len(), 1);
        assert!(f[0].reason.contains("disguised") && f[0].span.is_none());
        assert_eq!(found(&g, "ｓｔｕｐｉｄ question"), vec!["rudeness"]);
        // Words that merely contain a rude one are fine.
        assert!(
            found(
                &g,
                "Scunthorpe deliveries resume on Monday; Dickens fans, sorry for the wait"
            )
            .is_empty()
        );
        assert!(found(&g, "We'll classify this as a shipping issue").is_empty());
    }

    #[test]
    fn sales_pitch_is_caught() {
        let g = guards("extra_pitch = [\"AcmePlus\"]");
        assert_eq!(
            found(&g, "Sorry! Why not try our express delivery?"),
            vec!["sales-pitch"]
        );
        assert_eq!(
            found(&g, "Use discount code SORRY for 20% off"),
            vec!["sales-pitch", "sales-pitch"]
        );
        assert_eq!(
            found(&g, "Join AcmePlus for free returns"),
            vec!["sales-pitch"]
        );
    }

    #[test]
    fn severity_warn_and_off() {
        let g = guards("sales_pitch = \"warn\"\nrudeness = \"off\"");
        let f = g.check("Calm down and upgrade to premium", Some(1), 280);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warn);
        assert!(!blocks(&f));
        assert!(blocks(&guards("").check("Calm down", Some(1), 280)));
    }
}
