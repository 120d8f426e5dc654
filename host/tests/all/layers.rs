//! The house's layering, checked: crates depend only on crates of a lower layer, and inside a
//! crate no module uses a module of a higher layer. The compiler already refuses a cycle between
//! crates; this also refuses a dependency that points up or sideways, and the module-level
//! cycles the compiler allows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Each layer crate, its folder and its layer (lower numbers lower).
const CRATES: &[(&str, &str, u8)] = &[
    ("switchboard-contract", "crates/contract", 0),
    ("switchboard-builtin-plugins", "crates/builtin-plugins", 0),
    ("switchboard-runtime", "crates/runtime", 1),
    ("switchboard-store", "crates/store", 1),
    ("switchboard-care", "crates/care", 2),
    ("switchboard-server", "crates/server", 3),
    ("switchboard", "host", 4),
];

/// Each crate's top-level modules, lowest first: a module may use only those before it. The
/// crate root (`lib.rs`) is not listed: it declares the modules and, in the runtime and the
/// store, holds the core type (`Runtime`, `Store`) that the modules extend.
const MODULES: &[(&str, &[&str])] = &[
    ("crates/contract", &[]),
    ("crates/builtin-plugins", &[]),
    (
        "crates/runtime",
        &[
            "error",
            "limits",
            "preinit",
            "cache",
            "validate",
            "metrics",
            "capabilities",
        ],
    ),
    (
        "crates/store",
        &[
            "clock",
            "tx",
            "group",
            "team",
            "care",
            "incidents",
            "server",
            "report",
        ],
    ),
    (
        "crates/care",
        &[
            "traces", "hours", "guards", "policy", "care", "tenant", "pipeline", "worker",
            "workflow",
        ],
    ),
    (
        "crates/server",
        &[
            "ops",
            "registry",
            "watch",
            "api",
            "care_api",
            "incidents_api",
            "team_api",
            "console",
            "ingress",
            "workers",
        ],
    ),
    ("host", &["traces", "ingest", "replay", "eval", "output"]),
];

/// The `switchboard-*` crates named in a manifest's `[dependencies]`.
fn internal_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        if name.starts_with("switchboard") && CRATES.iter().any(|(n, ..)| *n == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[test]
fn crates_depend_only_on_lower_layers() {
    let layer: BTreeMap<&str, u8> = CRATES.iter().map(|(n, _, l)| (*n, *l)).collect();
    let mut wrong = Vec::new();
    for (name, dir, own) in CRATES {
        let deps = internal_dependencies(&workspace().join(dir).join("Cargo.toml"));
        for dep in deps {
            if layer[dep.as_str()] >= *own {
                wrong.push(format!("{name} (layer {own}) depends on {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "upward or sideways: {wrong:#?}");
    // The check reads something: the care layer sits on the runtime and the store.
    let care = internal_dependencies(&workspace().join("crates/care/Cargo.toml"));
    assert!(care.contains(&"switchboard-store".to_string()), "{care:?}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code (not its comments) names through `crate::` or, from a
/// file directly under `src/`, through `super::`.
fn modules_used(source: &str, top_level_file: bool) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut prefixes = vec!["crate::"];
        if top_level_file {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[at + prefix.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let brace = rest.starts_with('{');
                if brace {
                    let inner = rest[1..].split('}').next().unwrap_or("");
                    out.extend(
                        inner
                            .split(',')
                            .map(|p| p.trim().split("::").next().unwrap_or("").trim().to_string()),
                    );
                } else {
                    out.push(name);
                }
            }
        }
    }
    out
}

#[test]
fn modules_use_only_modules_of_lower_layers() {
    let mut wrong = Vec::new();
    let mut edges = 0;
    for (dir, order) in MODULES {
        let src = workspace().join(dir).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // Every real module of the crate must have its place in the order.
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = top.trim_end_matches(".rs");
            if !["lib", "main"].contains(&top) && !order.contains(&top) {
                wrong.push(format!("{dir}: module `{top}` has no layer in this test"));
            }
        }
        let rank = |m: &str| order.iter().position(|o| *o == m);
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = top.trim_end_matches(".rs").to_string();
            let Some(own) = rank(&top) else { continue };
            let source = std::fs::read_to_string(file).unwrap();
            let top_level_file = rel.components().count() == 1;
            for used in modules_used(&source, top_level_file) {
                // Names that are not modules of this crate: items of the root, re-exports.
                let Some(theirs) = rank(&used) else { continue };
                if theirs == own {
                    continue;
                }
                edges += 1;
                if theirs > own {
                    wrong.push(format!(
                        "{dir}/src/{}: `{top}` uses `{used}`, a higher layer",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The check reads something: the care layer alone has dozens of downward uses.
    assert!(edges > 30, "only {edges} module uses found");
}

#[test]
fn the_check_sees_an_upward_use() {
    let used = modules_used(
        "use crate::{worker::Engine, tenant};\n// crate::server in a comment\nlet x = crate::pipeline::run();",
        true,
    );
    assert_eq!(used, ["worker", "tenant", "pipeline"]);
    assert_eq!(
        modules_used("use super::registry::Registry;", true),
        ["registry"]
    );
    assert!(modules_used("use super::registry::Registry;", false).is_empty());
}
