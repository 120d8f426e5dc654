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
