//! Switchboard: a WebAssembly plugin host for social customer care.
//!
//! - [`contract`]: the WIT contract as the host sees it;
//! - [`runtime`]: engine, compile cache, sandboxed calls with deadlines and memory caps;
//! - [`capabilities`]: what a plugin may reach (config, kv, log, egress, files), per tenant;
//! - [`tenant`]: tenant configuration files;
//! - [`pipeline`]: a message through a tenant's classifiers, suggesters and length check;
//! - [`ingest`]: captured webhook requests (JSONL) as the CLI reads them.

pub mod capabilities;
pub mod contract;
pub mod ingest;
pub mod pipeline;
pub mod runtime;
pub mod tenant;
