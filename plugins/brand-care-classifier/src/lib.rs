//! Brand matter or care issue: who should pick the message up.
//!
//! One label of the `matter:` family, or none when the message gives no sign either way:
//!
//! - `matter:care`: a customer with a problem or a question about their own order, flight,
//!   account… (`my order never arrived`, `how do I change my seat?`): the care team answers it;
//! - `matter:brand`: an opinion about the brand itself — its ads, campaigns, prices in general,
//!   values, public figures, praise or scorn with no question and no problem of the customer's
//!   own (`your new ad is tone deaf`, `love this brand`): the brand or social team decides
//!   whether and how to engage.
//!
//! Care wins when both appear: a complaint that also mentions the ad is still a complaint.
//!
//! Config: `brand_words` (list) — the tenant's own campaign names, slogans, ambassadors.

use std::sync::LazyLock;

use switchboard_sdk::prelude::*;
use switchboard_textscan::Regex;
use switchboard_textscan::cues::{self, Cue};

fn re(pattern: &str) -> Regex {
    switchboard_textscan::pattern(pattern)
}

/// The customer's own things: `my order`, `our flight`, `I was charged`.
static OWN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:my|our|mine|i\s+(?:was|am|have|had|ordered|bought|paid|booked|can'?t|cannot|didn'?t|never|need|want)|i'?ve|i'?m|me)\b",
    )
});

/// Talk about the brand as a brand.
static BRAND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:ads?|advert(?:s|isement|isements|ising)?|commercials?|campaigns?|slogan|logo|rebrand(?:ing)?|brand(?:ing)?|marketing|billboards?|sponsor(?:s|ship|ing|ed)?|ambassadors?|ceo|founder|boycott(?:ing)?|tone[\s-]?deaf|woke|politics|political|values|stance|super\s?bowl|mascot|jingle|packaging|collab(?:oration)?|limited\s+edition|influencers?|pr\s+stunt|press\s+release|stock|shares|layoffs|strike)\b",
    )
});

/// Opinions with no request: praise or scorn of the company at large.
static OPINION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:i\s+love|love\s+(?:this|your|you|the)|obsessed\s+with|big\s+fan|best\s+(?:brand|company|airline)|worst\s+(?:brand|company|airline)|never\s+(?:buying|flying|shopping)|hate\s+(?:this|your|you)|you\s+guys\s+rock|you\s+rock|so\s+proud|unfollow(?:ing|ed)?|cancel(?:led)?\s+culture|shame\s+on\s+you|disgusting\s+(?:ad|campaign))\b",
    )
});

/// Label `text`; `brand_words` are the tenant's own campaign names and the like (lowercase).
pub fn classify(text: &str, brand_words: &[String]) -> Vec<Label> {
    let care_cues = cues::care_cues(text);
    let own: Vec<_> = OWN.find_iter(text).collect();
    let problem: Vec<_> = care_cues.iter().filter(|c| c.2 == Cue::Problem).collect();
    let question = care_cues.iter().any(|c| c.2 == Cue::Question);
    let matter: Vec<_> = care_cues
        .iter()
        .filter(|c| matches!(c.2, Cue::Matter | Cue::Reference))
        .collect();

    // Care: a problem or a question, about something of the customer's own.
    let care_score = match (
        !problem.is_empty(),
        question,
        !own.is_empty(),
        !matter.is_empty(),
    ) {
        (true, _, true, true) => 0.9,
        (true, _, true, false) | (true, _, false, true) => 0.75,
        (false, true, true, true) => 0.8,
        (false, true, _, true) | (true, true, _, _) => 0.65,
        _ => 0.0,
    };
    if care_score > 0.0 {
        let mut label = Label::new("matter:care", care_score);
        for &&(s, e, cue) in problem.iter().chain(matter.iter()).take(4) {
            let what = if cue == Cue::Problem {
                "problem or request"
            } else {
                "the customer's own matter"
            };
            label = label.at(&format!("{what}: \"{}\"", &text[s..e]), s, e);
        }
        return vec![label];
    }

    let lower = text.to_lowercase();
    let mut spans: Vec<(usize, usize, &str)> = BRAND
        .find_iter(text)
        .map(|m| (m.start(), m.end(), "about the brand"))
        .chain(
            OPINION
                .find_iter(text)
                .map(|m| (m.start(), m.end(), "an opinion")),
        )
        .collect();
    if lower.len() == text.len() {
        for w in brand_words {
            for (at, _) in lower.match_indices(w.as_str()) {
                spans.push((at, at + w.len(), "the tenant's campaign or public figure"));
            }
        }
    }
    if spans.is_empty() {
        return vec![];
    }
    spans.sort();
    let score = if spans.len() >= 2 { 0.85 } else { 0.7 };
    vec![
        spans
            .iter()
            .fold(Label::new("matter:brand", score), |l, &(s, e, what)| {
                l.at(&format!("{what}: \"{}\"", &text[s..e]), s, e)
            }),
    ]
}

struct BrandCare;

impl Classifier for BrandCare {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "brand-care-classifier",
            env!("CARGO_PKG_VERSION"),
            "Brand matter (opinion about the brand) or care issue (a customer's own problem or question)",
        )
        .config_key("brand_words")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let words: Vec<String> = config::list("brand_words")
            .into_iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        Ok(classify(&message.text, &words))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    LazyLock::force(&OWN);
    LazyLock::force(&BRAND);
    LazyLock::force(&OPINION);
    switchboard_textscan::cues::warm();
    // Run the rules once, so the automata states they build are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = classify(text, &[]);
    }
}

switchboard_sdk::export_classifier!(BrandCare, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Option<String> {
        classify(text, &["#acmesummer".into()])
            .into_iter()
            .next()
            .map(|l| l.name)
    }

    #[test]
    fn care_issues() {
        for text in [
            "@AcmeCare my order #48213 never arrived and tracking hasn't moved in 6 days. Where is my order?",
            "I was charged twice for order 48213. I want a refund of the second charge.",
            "how do I change the seat on my booking?",
            "@united my bag didn't make the connection",
        ] {
            assert_eq!(name(text).as_deref(), Some("matter:care"), "{text}");
        }
    }

    #[test]
    fn brand_matters() {
        for text in [
            "Your new Super Bowl ad is tone deaf",
            "Love this brand, the #AcmeSummer campaign is gorgeous",
            "Why did your CEO say that on TV",
            "boycotting you until you drop that sponsorship",
        ] {
            assert_eq!(name(text).as_deref(), Some("matter:brand"), "{text}");
        }
    }

    #[test]
    fn a_complaint_that_mentions_the_ad_is_still_care() {
        assert_eq!(
            name("Saw your ad, ordered, and my parcel never arrived").as_deref(),
            Some("matter:care")
        );
        assert_eq!(name("hello"), None);
    }
}
