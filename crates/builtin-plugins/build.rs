//! Builds every plugin crate in `plugins/`, `host/test-plugins/` and `examples/` as a wasm32-wasip2
//! component, so that `cargo run` and `cargo test` on a fresh clone have the plugins with no
//! manual step.
//! First-party plugins (`plugins/`) land in `target/wasm-plugins/<name>.wasm`, the folder tenants
//! name plugins from, exported as `DIR`; test fixtures and third-party examples
//! (`host/test-plugins/`, `examples/`) land in `target/wasm-plugins/fixtures/`, exported as
//! `FIXTURES_DIR`, which no tenant config can reach by name: tests load them by path.

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
    // Only `plugins/` is first party; the rest are fixtures.
    let first_party = &sources[0];
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

    let crates: Vec<(String, bool)> = sources
        .iter()
        .flat_map(|dir| {
            plugin_crates(dir)
                .into_iter()
                .map(move |(name, _)| (name, dir != first_party))
        })
        .collect();
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
    let fixtures_dir = target_dir.join("fixtures");
    println!(
        "cargo:rustc-env=SWITCHBOARD_BUILTIN_PLUGIN_DIR={}",
        target_dir.display()
    );
    println!(
        "cargo:rustc-env=SWITCHBOARD_FIXTURE_PLUGIN_DIR={}",
        fixtures_dir.display()
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
    std::fs::create_dir_all(&fixtures_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", fixtures_dir.display()));
    for (name, fixture) in &crates {
        let from = built.join(format!("{}.wasm", name.replace('-', "_")));
        let file = format!("{name}.wasm");
        let to = if *fixture {
            // A copy left in the first-party folder by an older build would stay nameable.
            let stale = target_dir.join(&file);
            if stale.exists() {
                std::fs::remove_file(&stale).unwrap_or_else(|e| panic!("{}: {e}", stale.display()));
            }
            fixtures_dir.join(&file)
        } else {
            target_dir.join(&file)
        };
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
