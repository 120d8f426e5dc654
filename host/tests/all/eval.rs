//! `switchboard eval` as a user runs it: exact counts on a small labelled file worked out by
//! hand, compare mode, the held-back selection, and bad rows that do not stop the run.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use serde_json::Value;
use switchboard_textmodel::split::{Dedup, is_held_out};

fn switchboard(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("eval")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .current_dir(repo_root())
        .output()
        .expect("run switchboard")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Five rows, one without a label. With the keyword classifier told that "refund" is
/// `topic:refund` and "delayed" is `topic:delay`, the predictions are, by hand:
/// refund→refund ✓, delay→delay ✓, refund→other ✗ (no phrase), other→other ✓.
const FILE: &str = "\
id,message,reason
1,I want a refund now,refund
2,\"Flight delayed again, thanks\",delay
3,my bag is lost,Refund
4,hello there,other
5,no label here,
";

const A: &str = r#"labels={"topic:refund": ["refund"], "topic:delay": ["delayed"]}"#;
const B: &str = r#"labels={"topic:refund": ["refund", "bag"]}"#;

fn write_file(dir: &Path) -> String {
    let path = dir.join("labelled.csv");
    std::fs::write(&path, FILE).unwrap();
    path.display().to_string()
}

fn cell(report: &Value, gold: &str, predicted: &str) -> u64 {
    report["confusion"][gold][predicted].as_u64().unwrap()
}

fn f1(report: &Value, label: &str) -> f64 {
    report["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == label)
        .unwrap()["f1"]
        .as_f64()
        .unwrap()
}

#[test]
fn exact_counts_on_a_hand_checked_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    let out = switchboard(
        &[
            "keyword-classifier",
            &file,
            "--text-col",
            "message",
            "--label-col",
            "reason",
            "--family",
            "topic",
            "--none-label",
            "other",
            "--normalize",
            "-c",
            A,
            "--format",
            "json",
        ],
        dir.path(),
    );
    let r = json(&out);
    assert_eq!(r["rows"], 4);
    assert_eq!(r["skipped_rows"], 1);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["correct"], 3);
    assert_eq!(r["accuracy"], 0.75);
    assert_eq!(cell(&r, "refund", "refund"), 1);
    assert_eq!(cell(&r, "refund", "other"), 1);
    assert_eq!(cell(&r, "delay", "delay"), 1);
    assert_eq!(cell(&r, "other", "other"), 1);
    assert_eq!(cell(&r, "other", "refund"), 0);
    // refund: P 1/1, R 1/2; other: P 1/2, R 1/1; delay: 1.
    assert!((f1(&r, "refund") - 2.0 / 3.0).abs() < 1e-9);
    assert!((f1(&r, "other") - 2.0 / 3.0).abs() < 1e-9);
    assert!((r["macro_f1"].as_f64().unwrap() - (1.0 + 4.0 / 3.0) / 3.0).abs() < 1e-9);
    assert!(r["mean_us_per_message"].as_f64().unwrap() > 0.0);

    // Without --normalize, "Refund" is its own gold label and never predicted.
    let out = switchboard(
        &[
            "keyword-classifier",
            &file,
            "--text-col",
            "1",
            "--label-col",
            "2",
            "--family",
            "topic",
            "--none-label",
            "other",
            "-c",
            A,
            "--format",
            "json",
            "--limit",
            "3",
        ],
        dir.path(),
    );
    let r = json(&out);
    assert_eq!(r["rows"], 3);
    assert_eq!(cell(&r, "Refund", "other"), 1);

    // The table names the figures too.
    let out = switchboard(
        &[
            "keyword-classifier",
            &file,
            "--text-col",
            "message",
            "--label-col",
            "reason",
            "--family",
            "topic",
            "--none-label",
            "other",
            "--normalize",
            "-c",
            A,
        ],
        dir.path(),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("accuracy 0.7500") && table.contains("µs/message"),
        "{table}"
    );
}

#[test]
fn compare_mode_counts_who_got_which_rows_right() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    let out = switchboard(
        &[
            "keyword-classifier",
            &file,
            "--text-col",
            "message",
            "--label-col",
            "reason",
            "--family",
            "topic",
            "--none-label",
            "other",
            "--normalize",
            "-c",
            A,
            "--compare",
            "keyword-classifier",
            "--compare-config",
            B,
            "--format",
            "json",
        ],
        dir.path(),
    );
    let c = json(&out);
    // B: refund ✓, delayed → other ✗, bag → refund ✓, hello → other ✓.
    assert_eq!(c["a"]["correct"], 3);
    assert_eq!(c["b"]["correct"], 3);
    assert_eq!(c["only_a_correct"], 1);
    assert_eq!(c["only_b_correct"], 1);
    assert_eq!(c["both_correct"], 2);
    assert_eq!(c["neither_correct"], 0);
    let delta = |label: &str| {
        c["f1_delta"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["label"] == label)
            .unwrap()["delta"]
            .as_f64()
            .unwrap()
    };
    assert!((delta("delay") + 1.0).abs() < 1e-9);
    assert!((delta("refund") - 1.0 / 3.0).abs() < 1e-9);
    assert!(delta("other").abs() < 1e-9);
}

#[test]
fn holdout_selects_exactly_the_rows_the_models_never_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let sms = shared_data().join("datasets/sms_spam.train.tsv");
    let text = std::fs::read_to_string(&sms).unwrap();
    let mut dedup = Dedup::default();
    let held: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, t)| is_held_out(t) && dedup.first(t))
        .take(60)
        .collect();
    let out = switchboard(
        &[
            "spam-classifier",
            sms.to_str().unwrap(),
            "--no-header",
            "--text-col",
            "1",
            "--label-col",
            "0",
            "--family",
            "spam",
            "--none-label",
            "ham",
            "--holdout",
            "--limit",
            "60",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let r = json(&out);
    assert_eq!(r["rows"], 60);
    let spam = held.iter().filter(|(l, _)| *l == "spam").count() as u64;
    let support = |l: &str| {
        r["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["label"] == l)
            .unwrap()["support"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(support("spam"), spam);
    assert_eq!(support("ham"), 60 - spam);
}

#[test]
fn a_failing_row_is_counted_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    // A config the plugin refuses makes every call fail: reported, exit code 1, no abort.
    let out = switchboard(
        &[
            "keyword-classifier",
            &file,
            "--text-col",
            "message",
            "--label-col",
            "reason",
            "--family",
            "topic",
            "-c",
            "labels={not json",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["errors"], 4);
    assert_eq!(r["rows"], 0);
    assert!(
        r["error_examples"][0].as_str().unwrap().contains("labels"),
        "{r}"
    );
}
