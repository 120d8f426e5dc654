//! The care workflow on the engine: what the desk does with a conversation after the pipeline
//! has stored it. Service-level clocks and surveys ([`clocks`]), teams and sign-off ([`team`]),
//! incidents ([`incidents`]). Each is an `impl Engine` block over the rules in [`crate::care`].

pub mod clocks;
pub mod incidents;
pub mod replay;
pub mod shadow;
pub mod team;

pub use clocks::{ClockView, SweepReport};
