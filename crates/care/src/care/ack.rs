//! Telling an acknowledgement ("thanks, we're looking into it") from a response that moves the
//! case. Only a response stops the service-level clock: a team that answers every post within a
//! minute with "we're on it" has not met its target.
//!
//! A reply is an acknowledgement when every sentence in it is a greeting, an apology, a thank-you
//! for writing, a promise to look or get back, or the signature; one sentence with anything else
//! (an answer, a step, a link, a question for the customer) makes it a response. Agents can
//! override this when they send.

use std::sync::LazyLock;

use regex::Regex;

/// Sentences that carry no progress on the case.
static HOLDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(?:
            (?:hi|hello|hey|dear|good\s(?:morning|afternoon|evening))(?:\s[\w@'-]+){0,2}
          | (?:(?:we(?:'re|\sare)|i(?:'m|\sam))\s)?(?:so\s|really\s|very\s)?sorry\b(?:\s(?:about|for|that|to\shear|your|the|this)\b[^.!?]*)?
          | (?:we|i)\s(?:apologi[sz]e|understand)\b[^.!?]*
          | thanks?(?:\syou)?(?:\sso\smuch)?(?:\sfor\s(?:reaching\sout|getting\sin\stouch|contacting\sus|your\s(?:message|patience|feedback)|letting\sus\sknow|writing|flagging\sthis))?[^.!?]*
          | (?:we(?:'re|\sare)|i(?:'m|\sam))\s(?:looking\sinto|checking|on|investigating)\s(?:it|this|that)\b[^.!?]*
          | (?:we(?:'ll|\swill)|i(?:'ll|\swill))\s(?:look\sinto|check|investigate|get\sback|come\sback|reply|respond|update\syou|follow\sup|be\sin\stouch)\b[^.!?]*
          | (?:please\s)?bear\swith\sus\b[^.!?]*
          | (?:we(?:'ve|\shave)|i(?:'ve|\shave))\s(?:passed|forwarded|shared|escalated)\s(?:this|it|that)\b[^.!?]*
          | (?:this|that)\s(?:isn't|is\snot)\sgood\senough\b[^.!?]*
          | (?:it's|that's|this\sis|that\sis)\son\sus\b[^.!?]*
          | we\shear\syou\b[^.!?]*
        )$",
    )
    .expect("holding-sentence pattern")
});

/// Whether `text` only acknowledges (see the module doc). `signature` (e.g. `^Ana`) is ignored.
pub fn is_acknowledgement(text: &str, signature: Option<&str>) -> bool {
    let mut body = text.to_string();
    if let Some(sig) = signature.filter(|s| !s.trim().is_empty()) {
        body = body.replace(sig.trim(), " ");
    }
    // Links and @-mentions of other accounts are content; a link always moves the case.
    if body.contains("://") || body.contains("www.") {
        return false;
    }
    let sentences: Vec<String> = body
        .split(['.', '!', '?', '\n', ';'])
        .map(|s| {
            s.trim()
                .trim_start_matches(['-', '—', ',', ' '])
                .replace('’', "'")
        })
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .collect();
    if sentences.is_empty() {
        return true;
    }
    // A question to the customer asks for what is needed to move on: a response.
    if text.contains('?') {
        return false;
    }
    // "Hi Sam, sorry about this" is two holding clauses in one sentence; a clause of one or two
    // capitalised words is the customer's name.
    sentences.iter().all(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .all(|clause| {
                let words: Vec<&str> = clause.split_whitespace().collect();
                HOLDING.is_match(clause)
                    || words
                        .iter()
                        .all(|w| w.starts_with('^') || w.starts_with('@'))
                    || (words.len() <= 2
                        && words
                            .iter()
                            .all(|w| w.chars().next().is_some_and(char::is_uppercase)))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::is_acknowledgement;

    #[test]
    fn holding_replies_are_acknowledgements() {
        for text in [
            "Thanks for reaching out! We're looking into it. ^Ana",
            "Hi Sam, sorry about this. We'll get back to you shortly.",
            "Hi Casey, I'm sorry. This isn't good enough and it's on us. I'm looking into it now and will reply here within the hour. ^Ana",
            "We hear you. We've passed this on to the team.",
            "Thank you for your patience, we're on it.",
            "Hello! Please bear with us while we check.",
            "Sorry, Sam, we're looking into it.",
        ] {
            assert!(is_acknowledgement(text, Some("^Ana")), "{text}");
        }
    }

    #[test]
    fn replies_that_move_the_case_are_responses() {
        for text in [
            "Hi Casey, sorry order 48213 is late. Your refund of £12 went out today. ^Ana",
            "Sorry, Sam, losing your basket is frustrating. Steps to restore it: https://help.acme.example/app-basket ^Ana",
            "Hi! Can you DM us your order number so we can chase it?",
            "Your parcel is at the depot and will arrive tomorrow before 12.",
            "We've refunded the double charge; it shows in 3-5 days.",
            "Hi Casey, your refund went out today.",
            "Sorry about the wait, the courier has it and delivers tomorrow.",
        ] {
            assert!(!is_acknowledgement(text, Some("^Ana")), "{text}");
        }
    }
}
