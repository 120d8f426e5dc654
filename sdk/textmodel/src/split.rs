//! The held-back split: which rows a built-in model never trains on.
//!
//! A row is held back when the stable hash of its normalised text falls in a
//! [`HOLDOUT_PERCENT`] bucket. Because the decision depends on the text alone, identical
//! texts (retweets, repeated SMS) always land on the same side; [`Dedup`] then keeps one copy
//! of each on either side. Training (`build.rs`) and evaluation (`switchboard eval --holdout`)
//! call the same functions, so they agree on every row.

use std::collections::HashSet;

use crate::features::fnv1a;

/// Share of distinct texts held back for evaluation.
pub const HOLDOUT_PERCENT: u64 = 20;

/// The text as compared for duplicates: lowercase, whitespace collapsed, trimmed.
pub fn dedup_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Whether `text` belongs to the held-back part.
pub fn is_held_out(text: &str) -> bool {
    let h = fnv1a(&[b"holdout:", dedup_key(text).as_bytes()]);
    h % 100 < HOLDOUT_PERCENT
}

/// Which part of a labelled file to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Rows a built-in model trains on.
    Train,
    /// Rows held back for measuring it.
    HeldOut,
}

impl Part {
    pub fn contains(self, text: &str) -> bool {
        is_held_out(text) == (self == Part::HeldOut)
    }
}

/// Keeps the first row of each distinct text.
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashSet<String>,
}

impl Dedup {
    /// True the first time a text (by [`dedup_key`]) is offered.
    pub fn first(&mut self, text: &str) -> bool {
        self.seen.insert(dedup_key(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_fall_on_the_same_side_and_are_kept_once() {
        let a = "@united Thanks  for NOTHING";
        let b = "@united thanks for nothing ";
        assert_eq!(dedup_key(a), dedup_key(b));
        assert_eq!(is_held_out(a), is_held_out(b));
        let mut d = Dedup::default();
        assert!(d.first(a));
        assert!(!d.first(b));
    }

    #[test]
    fn about_a_fifth_is_held_back() {
        let held = (0..10_000)
            .filter(|i| is_held_out(&format!("message {i}")))
            .count();
        assert!((1_700..2_300).contains(&held), "{held}");
    }
}
