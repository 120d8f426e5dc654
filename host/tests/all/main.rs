//! The host's integration tests in one binary, in the style of wasmtime's `tests/all`: one
//! link of the whole host instead of one per file (linking was most of CI's time and once
//! filled its disk). Each module is what was a test file of its own; `common` holds the
//! helpers they share (real plugins built by `crates/builtin-plugins/build.rs`, loaded by path).
//!
//! Tests here run on parallel threads of one process: none may change the process's
//! environment or current directory.

#[allow(dead_code)]
mod common;

mod care;
mod cli;
mod console;
mod crash;
mod eval;
mod hostile;
mod incidents;
mod layers;
mod pipeline;
mod postgres;
mod preinit;
mod runtime;
mod server;
mod suggesters;
mod teams;
mod traces;
