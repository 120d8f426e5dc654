//! Canned replies: a reply-suggester that drafts short, signed replies from templates chosen by
//! the message's labels, and fits them to the channel's length limit.
//!
//! # The practice it serves
//!
//! Good social care replies are short and human: they fit the channel's limit, are signed by a
//! real person, are personal without guessing at the customer's life (the only personal detail
//! used is the name the customer shows), carry no sales pitch, never send the customer off to
//! "call our 1-800 number", apologise for and own mistakes, and thank advocates. The built-in
//! templates follow that; tenants' own templates should too. Trolls and spammers get nothing:
//! a reply only feeds them.
//!
//! # Config
//!
//! Every key is optional. A key that is set but malformed fails the call with
//! `plugin-error::not-configured` naming the key.
//!
//! - `templates`: JSON object mapping a label name (`topic:refund`, `sentiment:negative`,
//!   `advocate`, …) or `default` to a template string or a list of them, e.g.
//!   `{"topic:refund": "Sorry, {name}, … {signature}", "default": ["…", "…"]}`. Keys are
//!   matched case-insensitively. When set, it replaces the built-in templates entirely (so
//!   without a `default` key there is no fallback draft).
//! - `vars`: JSON object of extra variables, e.g. `{"help_url": "https://help.example.com"}`
//!   (numbers and booleans are taken as their JSON text).
//! - `skip_labels`: list (JSON array, or comma/newline separated); default
//!   `["spam", "profanity", "troll"]`. If any label of one of these names has a score ≥ 0.5, no
//!   drafts are returned. An empty list turns skipping off.
//! - `private_labels`: list; default `["private-data"]` and the private-data classifier's
//!   `private:card-number`, `private:account-number`, `private:email`, `private:phone`,
//!   `private:postal-address`. When one of these labels has a score ≥ 0.5, drafts are
//!   `private` (move the conversation to a private message).
//! - `tone`: `warm` (default), `formal` or `brief`; `tone_by_label`: JSON object of label →
//!   tone (`{"urgency:legal": "formal"}`), the highest-scored such label (≥ 0.5) wins. A
//!   template value may be an object of tone variants, `{"warm": …, "formal": …, "brief": …}`
//!   (also keyed `label@tone`); a tone without its own variant uses the plain one.
//!
//! A template that guesses at the customer's life ("your family", "your holiday", "hope you're
//! having…") is refused as `not-configured`: be personal with what the customer showed, no more.
//! - `max_drafts`: whole number, default 3.
//!
//! # Built-in templates (used when `templates` is not set)
//!
//! - `default`: thanks for getting in touch, asks what happened, "we'll take it from there".
//! - `sentiment:negative` (two): a plain apology that owns the problem ("that's not good enough
//!   and it's on us") and asks for the order or booking number in a private message; and one
//!   that admits "we got this wrong" and asks what happened and when, so it can be put right.
//! - `sentiment:positive`: thanks, "we'll pass it on to the team".
//! - `advocate`: thanks for the support.
//!
//! None of them pitches a product or points to a phone line; all end with `{signature}`.
//!
//! # Variables
//!
//! A template refers to variables as `{name}` (letters, digits, `_`, `-`, `.`):
//!
//! - `{name}`: the first word of the author's display name (punctuation and emoji at its edges
//!   removed); else the handle without its leading `@` (and without a `@server` suffix); else
//!   `there`. Nothing else is ever guessed.
//! - `{handle}`: the author's handle as the channel gives it, or empty.
//! - `{signature}`: the call context's signature (e.g. `^ana`), or empty.
//! - `{channel}`: the message's channel name.
//! - `{order_id}`: see below.
//! - every key of `vars` (the four above cannot be overridden).
//!
//! `{order_id}`: the order, booking or reference id the customer wrote (`order #48213`), never
//! guessed and never a card or phone number. A label whose templates include variants with
//! `{order_id}` uses only those when the message has an id, and only the others when not.
//!
//! Placeholders without a variable are removed from the text and listed in the rationale
//! (`dropped unknown placeholder {order_id}`). Values are inserted as they are, never expanded
//! again. Runs of spaces left by empty variables are collapsed (and a space before punctuation
//! that follows an empty variable removed); the text is trimmed. Every reply is signed: when
//! there is a signature and a template has no `{signature}`, it is appended after a space.
//!
//! # Choosing drafts
//!
//! Labels are considered in descending score order (each name once). Each label that has
//! templates yields one draft per template, with confidence = label score × 0.9 and rationale
//! `template for label "topic:refund"` (with `(2 of 3)` when the label has several). Then come
//! the `default` templates, with confidence 0.3 and rationale `default template`. Identical
//! texts are kept once (the first, best one); empty drafts and drafts that cannot fit are
//! skipped; at most `max_drafts` drafts are returned, best first.
//!
//! Drafts are `public`, unless the message itself is private (a direct message is answered in
//! private) or a `private_labels` label is present.
//!
//! # Fitting the channel's length rule
//!
//! With a `length-rule` in the call context, each draft is measured in the rule's unit:
//!
//! - `characters`: Unicode scalar values;
//! - `graphemes`: extended grapheme clusters (`👨‍👩‍👧` counts 1);
//! - `bytes`: UTF-8 bytes;
//! - `weighted`: an X-style approximation: each URL (`http://…`, `https://…`, `www.…`) counts
//!   23; CJK, Hangul, fullwidth forms, emoji and other characters outside the ranges X counts as
//!   light (U+0000–U+10FF and the general punctuation U+2000–U+200D, U+2010–U+201F,
//!   U+2032–U+2037) count 2, per code point; everything else counts 1.
//!
//! A draft that is too long is shortened, keeping the signature (when the text ends with it)
//! intact:
//!
//! 1. whole sentences are dropped from the middle: those between the first sentence and the
//!    last, later ones first, then the last sentence of the body, until it fits;
//! 2. if the first sentence and the signature are still too long, the sentence is cut at a word
//!    boundary (URLs are never split) and `…` is added (after a space when the cut ends with a
//!    URL, so the ellipsis does not become part of the link).
//!
//! The rationale then says `shortened to fit N <unit>` (e.g. `shortened to fit 500
//! characters`). A draft that cannot fit even then (e.g. the signature alone is too long, or
//! not even its first word fits) is dropped. Without a length rule nothing is shortened.
//!
//! # Layout
//!
//! The logic lives in plain functions that never call the host: [`settings`] (defaults and
//! config parsing from a lookup function), [`template`] (variables and filling), [`fit`]
//! (measuring and shortening) and [`suggest`] (the whole pipeline). Only the trait
//! implementation below reads the host's config.

pub mod fit;
pub mod settings;
pub mod suggest;
pub mod template;

use switchboard_sdk::prelude::*;

use crate::settings::{CONFIG_KEYS, Settings};

/// The reply-suggester.
pub struct CannedReplies;

impl ReplySuggester for CannedReplies {
    fn info() -> PluginInfo {
        CONFIG_KEYS.iter().fold(
            PluginInfo::new(
                "canned-replies",
                env!("CARGO_PKG_VERSION"),
                "Short, signed template replies chosen by label and fitted to the channel's length limit",
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
        Ok(suggest::suggest(&settings, &message, &labels, &context))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    suggest::warm();
    switchboard_textscan::pii::warm();
    // Look for order numbers once, so the automata states that builds are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = suggest::order_id(text);
    }
}

switchboard_sdk::export_suggester!(CannedReplies, init = init);
