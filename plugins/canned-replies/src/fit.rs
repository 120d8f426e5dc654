//! Measuring and shortening drafts: the shared [`switchboard_textscan::fit`], in the contract's
//! length units.

use switchboard_sdk::LengthUnit;
use switchboard_textscan::fit as shared;

pub use shared::{ELLIPSIS, Fit, URL_WEIGHT, char_weight, find_url, split_sentences, weighted_len};

/// The shared crate's unit for the contract's.
pub fn unit(unit: LengthUnit) -> shared::LengthUnit {
    match unit {
        LengthUnit::Characters => shared::LengthUnit::Characters,
        LengthUnit::Graphemes => shared::LengthUnit::Graphemes,
        LengthUnit::Weighted => shared::LengthUnit::Weighted,
        LengthUnit::Bytes => shared::LengthUnit::Bytes,
    }
}

/// The unit's name for humans (`shortened to fit 280 weighted characters`).
pub fn unit_name(u: LengthUnit) -> &'static str {
    shared::unit_name(unit(u))
}

/// Length of `text` in `u`.
pub fn measure(text: &str, u: LengthUnit) -> usize {
    shared::measure(text, unit(u))
}

/// Fit `text` within `max` units, keeping a trailing `signature` intact (see
/// [`switchboard_textscan::fit::fit`]).
pub fn fit(text: &str, signature: &str, max: usize, u: LengthUnit) -> Fit {
    shared::fit(text, signature, max, unit(u))
}
