//! The first-party plugins as wasm32-wasip2 components, built by this crate's build script so
//! that `cargo run` and `cargo test` on a fresh clone have them with no manual step.
//!
//! It is a crate of its own, with no dependencies, so that the plugins build while the host's
//! dependencies compile, and a change to a plugin rebuilds only the layers that name plugins by
//! name (care and up), never the runtime or the store.

/// The folder holding `<plugin-name>.wasm` for every plugin crate in `plugins/`,
/// `host/test-plugins/` and `examples/`.
pub const DIR: &str = env!("SWITCHBOARD_BUILTIN_PLUGIN_DIR");
