//! Host capabilities offered to plugins, one module each (in the spirit of Spin's factors):
//! each owns its per-call state and the policy that fences it to one tenant and one plugin.
//!
//! - [`config`]: configuration values and write-only secrets;
//! - [`kv`]: the key-value store, namespaced per (tenant, plugin);
//! - [`log`]: plugin logs and stdout/stderr into `tracing`;
//! - [`egress`]: `wasi:http` outbound requests behind the allow-list and address checks;
//! - [`wasi`]: the locked-down WASI context (no env, no sockets, at most one granted directory).

pub mod config;
pub mod egress;
pub mod kv;
pub mod log;
pub mod wasi;
