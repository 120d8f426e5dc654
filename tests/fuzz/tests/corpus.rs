//! Replays the committed fuzz inputs on stable: every seed (`fuzz/seeds/<target>/`) and every
//! crash the fuzzer found (`fuzz/regressions/<target>/`) goes through its target, which
//! panics on the bugs it checks for. Also checks that the seeds do their job: signed platform
//! payloads pass the harness's signature and reach the parser.

use std::path::{Path, PathBuf};

use switchboard_fuzz_targets::{TARGETS, Verdict, run};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the folder does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str, target: &str) -> Vec<(PathBuf, Verdict)> {
    inputs(kind, target)
        .into_iter()
        .map(|file| {
            let data = std::fs::read(&file).unwrap();
            let verdict = std::panic::catch_unwind(|| run(target, &data))
                .unwrap_or_else(|_| panic!("{target} panicked on {}", file.display()));
            (file, verdict)
        })
        .collect()
}

#[test]
fn every_target_has_a_fuzz_binary_and_seeds() {
    for (name, _) in TARGETS {
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
        assert!(
            !inputs("seeds", name).is_empty(),
            "no seeds in fuzz/seeds/{name}"
        );
    }
}

#[test]
fn saved_crashes_no_longer_crash() {
    for (name, _) in TARGETS {
        replay("regressions", name);
    }
}

#[test]
fn seeds_run_and_reach_past_the_signature_checks() {
    for (name, _) in TARGETS {
        let verdicts = replay("seeds", name);
        if name.starts_with("connector_") || *name == "ingress" {
            // The harness signs these as the platform would: none may fail verification.
            for (file, v) in &verdicts {
                let signed = std::fs::read(file)
                    .unwrap()
                    .first()
                    .is_some_and(|f| f & 1 == 1);
                if !signed {
                    continue;
                }
                assert_ne!(
                    *v,
                    Verdict::Unauthorized,
                    "{name}: the harness's signature was refused for {}",
                    file.display()
                );
            }
        }
        // Each target's seeds include inputs it accepts, so the fuzzer starts deep.
        assert!(
            verdicts.iter().any(|(_, v)| *v == Verdict::Accepted),
            "{name}: no seed is accepted: {verdicts:?}"
        );
    }
}

#[test]
fn the_same_seeds_unsigned_are_refused_as_unauthorized() {
    for (name, _) in TARGETS {
        // Mastodon is polled: its webhook decodes captured statuses and checks no signature.
        let signs = name.starts_with("connector_") || *name == "ingress";
        if !signs || *name == "connector_mastodon" {
            continue;
        }
        for file in inputs("seeds", name) {
            let mut data = std::fs::read(&file).unwrap();
            if data.first().is_none_or(|flags| flags & 0b111 != 1) {
                continue; // not a signed POST
            }
            data[0] &= !1;
            assert_eq!(
                run(name, &data),
                Verdict::Unauthorized,
                "{name}: {} unsigned",
                file.display()
            );
        }
    }
}

#[test]
fn every_email_seed_is_accepted_for_its_provider() {
    // One target covers three providers with three schemes (Basic auth, Mailgun's signed
    // fields put first in the body): each sample must get through its own.
    let verdicts = replay("seeds", "connector_email");
    for provider in ["postmark", "mailgun", "sendgrid"] {
        assert!(
            verdicts
                .iter()
                .any(|(f, _)| f.to_string_lossy().contains(provider)),
            "no {provider} seed"
        );
    }
    for (file, v) in verdicts {
        assert_eq!(v, Verdict::Accepted, "{}", file.display());
    }
}
