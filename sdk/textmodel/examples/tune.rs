//! Pick features and training settings by cross-validation on the TRAINING part only, and
//! (with `--holdout`) report the chosen settings once on the held-back part.
//!
//! `cargo run --release -p switchboard-textmodel --features build --example tune -- sentiment [--holdout]`
//! (`spam`, `sentiment`, `reason`, `intent`); `--grid=epochs,lr,l2,balanced,bits,cmin,cmax,charweight,average`
//! (repeatable) tries other settings instead of the recipe's.

use std::path::Path;

use switchboard_textmodel::build::{self, Recipe, train_rows};
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

struct Scores {
    accuracy: f64,
    macro_f1: f64,
    f1: Vec<(String, f64)>,
}

fn score(model: &Model, rows: &[(String, String)]) -> Scores {
    let c = model.labels.len();
    let mut confusion = vec![vec![0usize; c]; c];
    for (text, gold) in rows {
        let g = model.labels.iter().position(|l| l == gold).unwrap();
        confusion[g][model.predict(text).best] += 1;
    }
    let correct: usize = (0..c).map(|k| confusion[k][k]).sum();
    let f1: Vec<(String, f64)> = (0..c)
        .map(|k| {
            let tp = confusion[k][k] as f64;
            let pred: f64 = (0..c).map(|g| confusion[g][k] as f64).sum();
            let gold: f64 = confusion[k].iter().sum::<usize>() as f64;
            let (p, r) = (tp / pred.max(1.0), tp / gold.max(1.0));
            (
                model.labels[k].clone(),
                if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                },
            )
        })
        .collect();
    Scores {
        accuracy: correct as f64 / rows.len() as f64,
        macro_f1: f1.iter().map(|x| x.1).sum::<f64>() / c as f64,
        f1,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("sentiment");
    let holdout = args.iter().any(|a| a == "--holdout");
    let recipe = recipe(name);
    let ds = recipe.dataset;
    let dir = switchboard_textmodel::build::data_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    let train = ds.load(&dir, Part::Train).unwrap();
    // Without --grid: the recipe's own settings.
    let mut grid = vec![];
    let spec: Vec<f32> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--grid="))
        .flat_map(|g| g.split(',').map(|x| x.parse::<f32>().unwrap()))
        .collect();
    // --grid=epochs,lr,l2,balanced,bits,cmin,cmax,charweight,average (repeatable)
    for g in spec.chunks(9) {
        grid.push(TrainConfig {
            features: FeatureConfig {
                hash_bits: g[4] as u8,
                word_ngrams: 2,
                char_min: g[5] as u8,
                char_max: g[6] as u8,
                word_weight: 1.0,
                char_weight: g[7],
                length_step: 0,
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
    for (i, cfg) in grid.iter().enumerate() {
        let t = std::time::Instant::now();
        if holdout {
            let test = ds.load(&dir, Part::HeldOut).unwrap();
            let bytes = train_rows(&train, cfg);
            let model = Model::from_bytes(&bytes).unwrap();
            let s = score(&model, &test);
            println!(
                "[{i}] HOLDOUT n={} acc {:.4} macroF1 {:.4} {:?} ({:.1?})",
                test.len(),
                s.accuracy,
                s.macro_f1,
                s.f1.iter()
                    .map(|(l, f)| format!("{l}={f:.3}"))
                    .collect::<Vec<_>>(),
                t.elapsed()
            );
            continue;
        }
        let folds = 5;
        let (mut acc, mut mf1) = (0.0, 0.0);
        let mut per = vec![];
        for fold in 0..folds {
            let in_fold = |t: &str| fnv1a(&[b"fold:", t.as_bytes()]) % folds == fold;
            let tr: Vec<_> = train.iter().filter(|(t, _)| !in_fold(t)).cloned().collect();
            let te: Vec<_> = train.iter().filter(|(t, _)| in_fold(t)).cloned().collect();
            let bytes = train_rows(&tr, cfg);
            let model = Model::from_bytes(&bytes).unwrap();
            let s = score(&model, &te);
            acc += s.accuracy / folds as f64;
            mf1 += s.macro_f1 / folds as f64;
            per = s.f1;
        }
        println!(
            "[{i}] CV acc {acc:.4} macroF1 {mf1:.4} last fold {:?} ({:.1?}) {cfg:?}",
            per.iter()
                .map(|(l, f)| format!("{l}={f:.3}"))
                .collect::<Vec<_>>(),
            t.elapsed()
        );
    }
}
