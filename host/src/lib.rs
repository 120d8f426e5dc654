//! Switchboard: a WebAssembly plugin host for social customer care.
//!
//! - [`contract`]: the WIT contract as the host sees it;
//! - [`runtime`]: engine, compile cache, sandboxed calls with deadlines and memory caps;
//! - [`capabilities`]: what a plugin may reach (config, kv, log, egress, files), per tenant;
//! - [`tenant`]: tenant configuration files;
//! - [`pipeline`]: a message through classifiers, care policy, suggesters and reply guards;
//! - [`policy`], [`guards`], [`hours`]: the tenant's care policy (CEL rules), reply guards and
//!   business hours;
//! - [`store`]: the durable store (SQLite by default, PostgreSQL by URL);
//! - [`worker`]: the durable pipeline: accept, process, resume after a crash, deliver;
//! - [`replay`]: stored or captured traffic through a candidate tenant, and shadow reports;
//! - [`ingest`]: captured webhook requests (JSONL) as the CLI reads them;
//! - [`server`]: `switchboard serve`: webhook ingress, background workers, hot swap, and the
//!   admin and agent API; [`ops`]: its metrics;
//! - [`care`]: service-level clocks, the out-of-hours reply, resolution and satisfaction
//!   surveys, and the period report; [`clock`]: the time they run on;
//! - [`eval`]: a classifier's quality and cost on a labelled file (`switchboard eval`).

pub mod capabilities;
pub mod care;
pub mod clock;
pub mod contract;
pub mod eval;
pub mod guards;
pub mod hours;
pub mod ingest;
pub mod ops;
pub mod pipeline;
pub mod policy;
pub mod replay;
pub mod runtime;
pub mod server;
pub mod store;
pub mod tenant;
pub mod worker;
