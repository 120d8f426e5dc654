//! Pick features and training settings by cross-validation on the TRAINING part only, and
//! (with `--holdout`) report the chosen settings once on the held-back part.
//!
//! `cargo run --release -p switchboard-textmodel --features build --example tune -- sentiment [--holdout]`
//! (`spam`, `sentiment`, `reason`, `intent`).
//!
//! - `--grid=epochs,lr,l2,balanced,bits,cmin,cmax,charweight,average[,wordngrams[,lengthstep]]`
//!   (repeatable) tries other settings instead of the recipe's.
//! - The recipe's build-time threshold choice (`Recipe::threshold`) is part of what is
//!   cross-validated (nested): each outer fold's model picks its threshold by an inner
//!   cross-validation on that fold's training rows only. `--cv-threshold=LABEL[:FOLDS]` adds
//!   one (5 inner folds by default), `--no-cv-threshold` drops it.
//! - `--repeats=N` repeats the 5-fold cross-validation over N different partitions (steadier
//!   figures, N times the time).
//! - `--errors` lists the cross-validation mistakes (training rows only).
//!
//! Figures are pooled over the folds: one confusion matrix over every training row (per repeat).

use std::path::Path;

use switchboard_textmodel::build::{self, CvThreshold, Recipe, train_rows_with};
use switchboard_textmodel::split::Part;
use switchboard_textmodel::{FeatureConfig, Model, TrainConfig, features::fnv1a};

fn recipe(name: &str) -> Recipe {
    match name {
        "spam" => build::SMS_SPAM,
        "sentiment" => build::AIRLINE_SENTIMENT,
        "reason" => build::AIRLINE_COMPLAINT_REASON,
        "intent" => build::BITEXT_INTENT,
        other => panic!("unknown dataset {other} (spam, sentiment, reason, intent)"),
    }
}

/// `confusion[gold][predicted]`, in the model's label order.
fn confusion(model: &Model, rows: &[(String, String)]) -> Vec<Vec<usize>> {
    let c = model.labels.len();
    let mut confusion = vec![vec![0usize; c]; c];
    for (text, gold) in rows {
        let g = model.labels.iter().position(|l| l == gold).unwrap();
        confusion[g][model.predict(text).best] += 1;
    }
    confusion
}

/// Accuracy, macro-F1 and each label's precision/recall/F1.
fn summary(labels: &[String], confusion: &[Vec<usize>]) -> String {
    let c = labels.len();
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..c).map(|k| confusion[k][k]).sum();
    let mut macro_f1 = 0.0;
    let mut per = Vec::new();
    for k in 0..c {
        let tp = confusion[k][k] as f64;
        let pred: f64 = (0..c).map(|g| confusion[g][k] as f64).sum();
        let gold: f64 = confusion[k].iter().sum::<usize>() as f64;
        let (p, r) = (tp / pred.max(1.0), tp / gold.max(1.0));
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        macro_f1 += f1 / c as f64;
        per.push(format!("{}: P {p:.3} R {r:.3} F1 {f1:.4}", labels[k]));
    }
    format!(
        "n={total} acc {:.4} macroF1 {macro_f1:.4} [{}]",
        correct as f64 / total.max(1) as f64,
        per.join(", ")
    )
}

fn add(total: &mut Vec<Vec<usize>>, part: &[Vec<usize>]) {
    if total.is_empty() {
        *total = part.to_vec();
    } else {
        for (t, p) in total.iter_mut().flatten().zip(part.iter().flatten()) {
            *t += p;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("sentiment");
    let holdout = args.iter().any(|a| a == "--holdout");
    let show_errors = args.iter().any(|a| a == "--errors");
    let repeats: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--repeats="))
        .map_or(1, |n| n.parse().unwrap());
    let recipe = recipe(name);
    let ds = recipe.dataset;
    let dir = switchboard_textmodel::build::data_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    let train = ds.load(&dir, Part::Train).unwrap();
    // Without --grid: the recipe's own settings.
    let mut grid = vec![];
    // --grid=epochs,lr,l2,balanced,bits,cmin,cmax,charweight,average[,wordngrams[,lengthstep]] (repeatable)
    for spec in args.iter().filter_map(|a| a.strip_prefix("--grid=")) {
        let g: Vec<f32> = spec.split(',').map(|x| x.parse::<f32>().unwrap()).collect();
        assert!(
            (9..=11).contains(&g.len()),
            "--grid takes 9 to 11 numbers: {spec}"
        );
        grid.push(TrainConfig {
            features: FeatureConfig {
                hash_bits: g[4] as u8,
                word_ngrams: g.get(9).map_or(2, |&n| n as u8),
                char_min: g[5] as u8,
                char_max: g[6] as u8,
                word_weight: 1.0,
                char_weight: g[7],
                length_step: g.get(10).map_or(0, |&n| n as u8),
            },
            epochs: g[0] as u32,
            learning_rate: g[1],
            l2: g[2],
            balanced: g[3] > 0.0,
            average: g[8] > 0.0,
            seed: 0x5eed,
        });
    }
    if grid.is_empty() {
        grid.push(recipe.config);
    }
    let mut threshold = recipe.threshold;
    for a in &args {
        if let Some(spec) = a.strip_prefix("--cv-threshold=") {
            let (label, folds) = spec.split_once(':').unwrap_or((spec, "5"));
            threshold = Some(CvThreshold {
                label: label.to_string().leak(),
                folds: folds.parse().unwrap(),
            });
        } else if a == "--no-cv-threshold" {
            threshold = None;
        }
    }
    for (i, cfg) in grid.iter().enumerate() {
        let t = std::time::Instant::now();
        if holdout {
            let test = ds.load(&dir, Part::HeldOut).unwrap();
            let (bytes, chosen) = train_rows_with(&train, cfg, threshold);
            let model = Model::from_bytes(&bytes).unwrap();
            println!(
                "[{i}] HOLDOUT {} threshold {chosen:?} ({:.1?})",
                summary(&model.labels, &confusion(&model, &test)),
                t.elapsed()
            );
            continue;
        }
        let folds = 5;
        let mut total = Vec::new();
        let mut labels = Vec::new();
        let mut chosen = Vec::new();
        for (repeat, fold) in (0..repeats).flat_map(|r| (0..folds).map(move |f| (r, f))) {
            // Repeat 0 is the original partition; later ones salt the hash.
            let salt = if repeat == 0 {
                String::new()
            } else {
                format!("{repeat}:")
            };
            let in_fold =
                |t: &str| fnv1a(&[b"fold:", salt.as_bytes(), t.as_bytes()]) % folds == fold;
            let tr: Vec<_> = train.iter().filter(|(t, _)| !in_fold(t)).cloned().collect();
            let te: Vec<_> = train.iter().filter(|(t, _)| in_fold(t)).cloned().collect();
            let (bytes, th) = train_rows_with(&tr, cfg, threshold);
            let model = Model::from_bytes(&bytes).unwrap();
            add(&mut total, &confusion(&model, &te));
            if show_errors {
                for (text, gold) in &te {
                    let p = model.predict(text);
                    if model.labels[p.best] != *gold {
                        println!(
                            "  {gold} as {} ({:.3}): {text}",
                            model.labels[p.best], p.probabilities[p.best]
                        );
                    }
                }
            }
            labels = model.labels.clone();
            chosen.extend(th.map(|x| format!("{x:.3}")));
        }
        println!(
            "[{i}] CV {} thresholds [{}] ({:.1?}) {cfg:?}",
            summary(&labels, &total),
            chosen.join(" "),
            t.elapsed()
        );
    }
}
