//! Switchboard: a WebAssembly plugin host for social customer care.
//!
//! This crate is the command line (`switchboard`) and the only one that sees every layer. The
//! layers are crates of their own, each depending only on those below it:
//!
//! | crate | owns |
//! |---|---|
//! | `switchboard-contract` | the WIT contract as the host sees it ([`contract`]) |
//! | `switchboard-runtime` | engine, compile cache, limits, sandboxed calls ([`runtime`]) and what a plugin may reach ([`capabilities`]) |
//! | `switchboard-store` | schema, migrations, queries and row types ([`store`]), and the time they run on ([`clock`]) |
//! | `switchboard-care` | tenant config ([`tenant`]), [`pipeline`], [`policy`], [`guards`], [`hours`], the durable engine ([`worker`]) and the care workflow ([`care`]) |
//! | `switchboard-server` | `switchboard serve`: ingress, API, workers, registry, watch ([`server`]) and its metrics ([`ops`]) |
//!
//! The modules here re-export those crates under the paths the host has always had, and add
//! the command line's own front ends: [`eval`] (a classifier's quality and cost), [`replay`]
//! (stored or captured traffic through a candidate tenant), [`ingest`] (captured webhook
//! requests as the CLI reads them) and [`traces`] (OTLP export for `serve`).

pub use switchboard_care::{guards, hours, pipeline, policy, tenant, worker};
pub use switchboard_contract as contract;
pub use switchboard_runtime as runtime;
pub use switchboard_runtime::capabilities;
pub use switchboard_server as server;
pub use switchboard_server::ops;
pub use switchboard_store as store;
pub use switchboard_store::clock;

/// The care workflow: its rules ([`switchboard_care::care`]) and what the engine does with them
/// ([`switchboard_care::workflow`]), under one path.
pub mod care {
    pub use switchboard_care::care::*;
    pub use switchboard_care::worker::kind_for_send;
    pub use switchboard_care::workflow::{ClockView, SweepReport};
}

pub mod eval;
pub mod ingest;
pub mod replay;
pub mod traces;
