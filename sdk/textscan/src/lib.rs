//! Text scanning shared by the host's reply guards and Switchboard's rule-based plugins.
//!
//! One implementation of each check, so that what a classifier flags in a customer's message
//! and what a guard blocks in a draft never drift apart:
//!
//! - [`normalize`]: the text as a reader sees it once disguises are undone (zero-width
//!   characters, full-width forms, leetspeak, repeated and spaced-out letters), with a map back
//!   to byte spans of the original;
//! - [`rude`]: profanity, insults and condescension, matched on the normalised text as whole
//!   words (so "Scunthorpe", "Dickens" and "assess" are not rude);
//! - [`pii`]: payment cards (Luhn, issuer ranges, lengths, the groupings people type), IBANs
//!   (mod 97), e-mail addresses, phone numbers and postal addresses;
//! - [`cues`]: signs of a care matter (an order, a problem, a question), shared by classifiers
//!   that must tell a complaint from a jeer;
//! - [`names`]: the name to greet a customer by;
//! - [`fit`]: measuring by a channel's length unit and shortening a draft to fit it.
//!
//! Pure Rust with no host calls: it compiles natively and for `wasm32-wasip2`.

pub mod cues;
pub mod fit;
pub mod names;
pub mod normalize;
pub mod pii;
pub mod rude;

#[cfg(feature = "full-regex")]
mod compiled;

#[cfg(feature = "full-regex")]
pub use compiled::{Captures, Match, Regex};
pub use regex_lite::escape;
#[cfg(not(feature = "full-regex"))]
pub use regex_lite::{Captures, Match, Regex};

/// Build every built-in pattern and the rude-word lexicon now, for a plugin's pre-initialisation
/// (see `switchboard_sdk`'s `init = …`): with it, a call finds them built instead of building
/// them. Calls no host import, so it is safe in `init`.
pub fn warm() {
    cues::warm();
    pii::warm();
    rude::warm();
}

/// Customer messages a plugin's pre-initialisation runs its own rules over once, after
/// [`warm`]: the `regex` crate builds its automata's states lazily, on the text it meets, so
/// states built here are in the snapshot and every call starts with them. Varied on purpose
/// (complaint with an order number, praise, contact details, a threat, abuse, non-English); any text is correct,
/// these only make calls cheaper.
pub const WARM_UP_TEXTS: &[&str] = &[
    "@airline my flight UA123 was delayed 3 hours and my bag never arrived (order #48213). Worst service ever, I want a refund!!",
    "Thanks so much @acme, the team sorted my order in minutes. Brilliant customer service :) #happy",
    "Call me on +44 7700 900123 or mail jo.bloggs@example.com, card 4111 1111 1111 1111 was charged twice",
    "This is f***ing useless, you idiots. I'll see you in court, my lawyer will be in touch. Is the app down?",
    "There's smoke in the cabin and people are stuck on the tarmac right now, please help asap",
    "¿Dónde está mi pedido? Je n'ai toujours rien reçu. Wo bleibt meine Bestellung? great, another delay...",
];

/// Compile a built-in pattern. Plugins run in a fresh instance per message, so a pattern not
/// built by the plugin's pre-initialisation ([`warm`]) is compiled on every call: without the
/// `full-regex` feature `regex-lite` does that several times faster than `regex` (no Unicode
/// tables, no DFA). With it (the host, and the rule plugins, which build every pattern in their
/// `init`) the pattern is compiled to a full DFA (`regex-automata`, see [`Regex`]), with Unicode
/// off so that matches are the same: classes, `\b` and case folding are ASCII; the word lists
/// are written for that.
pub fn pattern(pattern: &str) -> Regex {
    build(pattern, true).unwrap_or_else(|| panic!("built-in pattern {pattern:?} does not compile"))
}

/// [`pattern`] for patterns built from tenant input: `None` if it does not compile. With
/// `full-regex` it skips the full DFA: a plugin may build a tenant's pattern on every call.
pub fn try_pattern(pattern: &str) -> Option<Regex> {
    build(pattern, false)
}

#[cfg(feature = "full-regex")]
fn build(pattern: &str, full_dfa: bool) -> Option<Regex> {
    Regex::build(pattern, false, full_dfa)
        .or_else(|_| Regex::build(pattern, true, full_dfa))
        .ok()
}

#[cfg(not(feature = "full-regex"))]
fn build(pattern: &str, _full_dfa: bool) -> Option<Regex> {
    Regex::new(pattern).ok()
}
