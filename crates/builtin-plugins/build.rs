//! Builds every plugin crate in `plugins/`, `host/test-plugins/` and `examples/` as a wasm32-wasip2
//! component, so that `cargo run` and `cargo test` on a fresh clone have the plugins with no
//! manual step.
//! The components land in `target/wasm-plugins/<name>.wasm`; the crate exports that folder as
//! `DIR`, from the `SWITCHBOARD_BUILTIN_PLUGIN_DIR` compile-time variable set here.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = crate_dir.ancestors().nth(2).unwrap().to_path_buf();
    let sources = [
        workspace.join("plugins"),
        workspace.join("host/test-plugins"),
        workspace.join("examples"),
    ];
    for watched in sources
        .iter()
        .chain([&workspace.join("sdk"), &workspace.join("wit")])
    {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let crates: Vec<(String, PathBuf)> =
        sources.iter().flat_map(|dir| plugin_crates(dir)).collect();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                workspace.join(d)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-plugins");
    println!(
        "cargo:rustc-env=SWITCHBOARD_BUILTIN_PLUGIN_DIR={}",
        target_dir.display()
    );
    if crates.is_empty() {
        return;
    }
    ensure_target();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for (name, _) in &crates {
        cmd.args(["-p", name]);
    }
    // The outer build's flags and wrappers (clippy, coverage, host RUSTFLAGS) are not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().expect("running cargo to build the plugins");
    if !output.status.success() {
        panic!(
            "building the wasm plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let built = target_dir.join(TARGET).join("release");
    for (name, _) in &crates {
        let from = built.join(format!("{}.wasm", name.replace('-', "_")));
        let to = target_dir.join(format!("{name}.wasm"));
        let new = std::fs::read(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        if std::fs::read(&to).ok().as_deref() != Some(&new[..]) {
            std::fs::write(&to, &new).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
        }
    }
}

/// Crates under `dir` that build a `cdylib` (a component), by package name.
fn plugin_crates(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(doc) = text.parse::<toml::Table>() else {
            continue;
        };
        let is_cdylib = doc
            .get("lib")
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str());
        if let (true, Some(name)) = (is_cdylib, name) {
            out.push((name.to_string(), entry.path()));
        }
    }
    out.sort();
    out
}

/// Make sure the wasm target's standard library is installed; add it with rustup if not.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok();
    let has_target = sysroot
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|root| root.join("lib/rustlib").join(TARGET).exists());
    if has_target {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build plugins)");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => panic!("the {TARGET} target is missing; install it with `rustup target add {TARGET}`"),
    }
}
