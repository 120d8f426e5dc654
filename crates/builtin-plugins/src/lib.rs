//! The first-party plugins as wasm32-wasip2 components, built by this crate's build script so
//! that `cargo run` and `cargo test` on a fresh clone have them with no manual step.
//!
//! It is a crate of its own, with no dependencies, so that the plugins build while the host's
//! dependencies compile, and a change to a plugin rebuilds only the layers that name plugins by
//! name (care and up), never the runtime or the store.

/// The folder holding `<plugin-name>.wasm` for every first-party plugin crate in `plugins/`:
/// the plugins a tenant config may name.
pub const DIR: &str = env!("SWITCHBOARD_BUILTIN_PLUGIN_DIR");

/// The folder holding `<package>.wasm` for the test fixtures (`host/test-plugins/`) and the
/// third-party examples (`examples/`). Kept apart from [`DIR`] so that no tenant can name a
/// fixture (a hostile plugin among them); tests load these by path.
pub const FIXTURES_DIR: &str = env!("SWITCHBOARD_FIXTURE_PLUGIN_DIR");
