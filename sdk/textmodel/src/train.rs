//! Multinomial logistic regression on hashed features, trained with AdaGrad.
//!
//! Deterministic: the example order of each epoch comes from a fixed-seed generator, and
//! nothing depends on hash-map iteration or threads, so the same data always gives the same
//! model bytes.

use crate::features::{Feature, FeatureConfig, fnv1a};
use crate::model::{Model, encode, softmax};

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub features: FeatureConfig,
    pub epochs: u32,
    pub learning_rate: f32,
    /// L2 penalty, applied to the weights an example touches.
    pub l2: f32,
    /// Weigh each class by `n / (classes × n_class)`: favours macro-F1 over accuracy.
    pub balanced: bool,
    /// Return the mean of the weights after each epoch rather than the last ones: steadier
    /// on small, noisy data.
    pub average: bool,
    /// Seed for the shuffling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            features: FeatureConfig::default(),
            epochs: 10,
            learning_rate: 0.2,
            l2: 1e-5,
            balanced: false,
            average: true,
            seed: 0x5eed,
        }
    }
}

/// Why training could not start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrainError {
    #[error("{texts} texts but {labels} labels")]
    Mismatch { texts: usize, labels: usize },
    #[error("need at least two labels, got {0}")]
    TooFewLabels(usize),
    #[error("label index {0} is out of range")]
    LabelOutOfRange(usize),
    #[error("no training examples")]
    Empty,
}

/// A small deterministic generator (SplitMix64) for shuffling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Float weights before encoding, for callers that want to inspect or combine them.
#[derive(Debug, Clone)]
pub struct Weights {
    pub biases: Vec<f32>,
    /// `2^hash_bits × labels`, row-major.
    pub weights: Vec<f32>,
}

/// Train on `texts` with `labels[i]` an index into `label_names`; returns the model bytes.
pub fn train(
    texts: &[&str],
    labels: &[usize],
    label_names: &[String],
    config: &TrainConfig,
) -> Result<Vec<u8>, TrainError> {
    let w = train_weights(texts, labels, label_names.len(), config)?;
    Ok(encode(&config.features, label_names, &w.biases, &w.weights))
}

/// Train and return the float weights.
pub fn train_weights(
    texts: &[&str],
    labels: &[usize],
    classes: usize,
    config: &TrainConfig,
) -> Result<Weights, TrainError> {
    check(texts.len(), labels, classes)?;
    let feats: Vec<Vec<Feature>> = texts.iter().map(|t| config.features.extract(t).1).collect();
    let refs: Vec<&[Feature]> = feats.iter().map(Vec::as_slice).collect();
    Ok(fit(&refs, labels, classes, config))
}

fn check(texts: usize, labels: &[usize], classes: usize) -> Result<(), TrainError> {
    if texts != labels.len() {
        return Err(TrainError::Mismatch {
            texts,
            labels: labels.len(),
        });
    }
    if classes < 2 {
        return Err(TrainError::TooFewLabels(classes));
    }
    if texts == 0 {
        return Err(TrainError::Empty);
    }
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(TrainError::LabelOutOfRange(bad));
    }
    Ok(())
}

/// The training loop on already extracted features (inputs checked by the caller).
fn fit(feats: &[&[Feature]], labels: &[usize], classes: usize, config: &TrainConfig) -> Weights {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if config.balanced && n > 0 {
                feats.len() as f32 / (classes as f32 * n as f32)
            } else {
                1.0
            }
        })
        .collect();

    let rows = 1usize << config.features.hash_bits;
    let mut w = vec![0f32; rows * classes];
    let mut g2 = vec![1e-6f32; rows * classes];
    let mut b = vec![0f32; classes];
    let mut bg2 = vec![1e-6f32; classes];
    let mut order: Vec<usize> = (0..feats.len()).collect();
    let mut rng = SplitMix(config.seed);
    let mut scores = vec![0f32; classes];
    let mut grad = vec![0f32; classes];
    let lr = config.learning_rate;
    let mut w_sum = vec![0f32; if config.average { w.len() } else { 0 }];
    let mut b_sum = vec![0f32; classes];
    for _ in 0..config.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            scores.copy_from_slice(&b);
            for f in feats[i] {
                let row = &w[f.index as usize * classes..][..classes];
                for (s, wk) in scores.iter_mut().zip(row) {
                    *s += f.value * wk;
                }
            }
            let p = softmax(&scores);
            let cw = class_weight[labels[i]];
            for k in 0..classes {
                grad[k] = cw * (p[k] - if k == labels[i] { 1.0 } else { 0.0 });
            }
            for k in 0..classes {
                bg2[k] += grad[k] * grad[k];
                b[k] -= lr * grad[k] / bg2[k].sqrt();
            }
            for f in feats[i] {
                let base = f.index as usize * classes;
                for k in 0..classes {
                    let g = grad[k] * f.value + config.l2 * w[base + k];
                    g2[base + k] += g * g;
                    w[base + k] -= lr * g / g2[base + k].sqrt();
                }
            }
        }
        if config.average {
            for (s, x) in w_sum.iter_mut().zip(&w) {
                *s += x;
            }
            for (s, x) in b_sum.iter_mut().zip(&b) {
                *s += x;
            }
        }
    }
    if config.average && config.epochs > 0 {
        let n = config.epochs as f32;
        w = w_sum.into_iter().map(|x| x / n).collect();
        b = b_sum.into_iter().map(|x| x / n).collect();
    }
    Weights {
        biases: b,
        weights: w,
    }
}

impl Weights {
    /// Move label `positive`'s decision point from probability `threshold` to 0.5: afterwards
    /// its probability is at least 0.5 exactly when it was at least `threshold` before.
    ///
    /// Subtracting `logit(threshold)` from the label's bias divides its odds against the other
    /// labels together by `threshold / (1 − threshold)`; every other label keeps its
    /// probability relative to the rest. Biases are stored unquantised, so the shift survives
    /// [`encode`] exactly. `threshold` outside (0, 1) is clamped to [0.001, 0.999].
    pub fn fold_threshold(&mut self, positive: usize, threshold: f32) {
        let t = threshold.clamp(0.001, 0.999);
        self.biases[positive] -= (t / (1.0 - t)).ln();
    }
}

/// Fold of each example for `folds`-fold cross-validation, stratified by label: each label's
/// examples, in order of a stable hash of their text, are dealt to the folds in turn. Depends
/// on the texts alone (not on file order or a generator), so it is reproducible.
pub fn stratified_folds(texts: &[&str], labels: &[usize], folds: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| (labels[i], fnv1a(&[b"cv-fold:", texts[i].as_bytes()]), i));
    let mut fold = vec![0; texts.len()];
    let mut dealt = 0;
    for (n, &i) in order.iter().enumerate() {
        if n > 0 && labels[i] != labels[order[n - 1]] {
            dealt = 0;
        }
        fold[i] = dealt % folds.max(1);
        dealt += 1;
    }
    fold
}

/// Log-odds of label `positive` against all the others together, from raw scores.
pub fn log_odds(scores: &[f32], positive: usize) -> f32 {
    let max = scores
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != positive)
        .map(|(_, &s)| s)
        .fold(f32::NEG_INFINITY, f32::max);
    let rest: f32 = scores
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != positive)
        .map(|(_, &s)| (s - max).exp())
        .sum();
    scores[positive] - max - rest.ln()
}

/// Out-of-fold log-odds of label `positive` for every example: `folds` models, each trained
/// on the other folds ([`stratified_folds`]), quantised as a shipped model is, and scoring the
/// fold it did not see. Fewer than 2 folds count as 2.
pub fn out_of_fold_log_odds(
    texts: &[&str],
    labels: &[usize],
    classes: usize,
    positive: usize,
    config: &TrainConfig,
    folds: usize,
) -> Result<Vec<f32>, TrainError> {
    check(texts.len(), labels, classes)?;
    if positive >= classes {
        return Err(TrainError::LabelOutOfRange(positive));
    }
    let folds = folds.max(2);
    let feats: Vec<Vec<Feature>> = texts.iter().map(|t| config.features.extract(t).1).collect();
    let fold_of = stratified_folds(texts, labels, folds);
    let names: Vec<String> = (0..classes).map(|k| k.to_string()).collect();
    let mut out = vec![0f32; texts.len()];
    for fold in 0..folds {
        let train: Vec<usize> = (0..texts.len()).filter(|&i| fold_of[i] != fold).collect();
        if train.len() == texts.len() {
            continue;
        }
        let f: Vec<&[Feature]> = train.iter().map(|&i| feats[i].as_slice()).collect();
        let l: Vec<usize> = train.iter().map(|&i| labels[i]).collect();
        let w = fit(&f, &l, classes, config);
        let bytes = encode(&config.features, &names, &w.biases, &w.weights);
        let model = Model::from_bytes(&bytes).expect("a model just encoded");
        for i in (0..texts.len()).filter(|&i| fold_of[i] == fold) {
            out[i] = log_odds(&model.scores(texts[i]), positive);
        }
    }
    Ok(out)
}

/// The decision threshold, as a probability, that maximises F1 of the positive class when
/// examples with `log_odds[i]` above it are called positive (`is_positive[i]`: the truth).
///
/// F1 only changes where the threshold passes an example, so every cut between two distinct
/// scores is tried; the threshold is placed halfway (in log-odds) between the two scores on
/// either side of the best cut. Of equally good cuts the highest threshold wins. Without
/// positives, 0.5.
pub fn best_f1_threshold(log_odds: &[f32], is_positive: &[bool]) -> f32 {
    let positives = is_positive.iter().filter(|&&p| p).count();
    if positives == 0 || log_odds.is_empty() {
        return 0.5;
    }
    let mut order: Vec<usize> = (0..log_odds.len()).collect();
    order.sort_by(|&a, &b| log_odds[b].total_cmp(&log_odds[a]));
    // Cut after `taken` examples: they are called positive.
    let (mut best_f1, mut best_taken) = (0.0f64, 0usize);
    let mut tp = 0usize;
    for (n, &i) in order.iter().enumerate() {
        tp += usize::from(is_positive[i]);
        let taken = n + 1;
        if taken < order.len() && log_odds[order[taken]] == log_odds[i] {
            continue;
        }
        let f1 = 2.0 * tp as f64 / (taken + positives) as f64;
        if f1 > best_f1 {
            (best_f1, best_taken) = (f1, taken);
        }
    }
    let last_in = log_odds[order[best_taken - 1]];
    let cut = match order.get(best_taken) {
        Some(&next) => (last_in + log_odds[next]) / 2.0,
        None => last_in - 1.0,
    };
    1.0 / (1.0 + (-cut).exp())
}

/// Train with label `positive`'s decision threshold chosen by `folds`-fold cross-validation
/// on these examples ([`out_of_fold_log_odds`], [`best_f1_threshold`]) and folded into the
/// model ([`Weights::fold_threshold`]), so that the stored model's probability crosses 0.5
/// where the chosen threshold was. Returns the model bytes and the threshold.
pub fn train_with_cv_threshold(
    texts: &[&str],
    labels: &[usize],
    label_names: &[String],
    positive: usize,
    config: &TrainConfig,
    folds: usize,
) -> Result<(Vec<u8>, f32), TrainError> {
    let classes = label_names.len();
    let oof = out_of_fold_log_odds(texts, labels, classes, positive, config, folds)?;
    let truth: Vec<bool> = labels.iter().map(|&l| l == positive).collect();
    let threshold = best_f1_threshold(&oof, &truth);
    let mut w = train_weights(texts, labels, classes, config)?;
    w.fold_threshold(positive, threshold);
    Ok((
        encode(&config.features, label_names, &w.biases, &w.weights),
        threshold,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    fn toy() -> (Vec<&'static str>, Vec<usize>, Vec<String>) {
        let texts = vec![
            "great flight, thank you",
            "love the crew, great service",
            "thanks, awesome trip",
            "delayed again, terrible",
            "lost my bag, awful service",
            "worst airline, delayed and rude",
        ];
        let labels = vec![0, 0, 0, 1, 1, 1];
        (texts, labels, vec!["positive".into(), "negative".into()])
    }

    #[test]
    fn learns_a_separable_toy_set_and_round_trips() {
        let (texts, labels, names) = toy();
        let cfg = TrainConfig {
            features: FeatureConfig {
                hash_bits: 12,
                ..Default::default()
            },
            epochs: 20,
            ..Default::default()
        };
        let bytes = train(&texts, &labels, &names, &cfg).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        assert_eq!(model.labels, names);
        assert_eq!(model.features, cfg.features);
        for (t, &l) in texts.iter().zip(&labels) {
            assert_eq!(model.predict(t).best, l, "{t}");
        }
        let p = model.predict("terrible, delayed");
        assert_eq!(model.labels[p.best], "negative");
        assert!(p.probabilities[p.best] > 0.5);
        let top = &p.evidence[0];
        assert!(top.token == "terrible" || top.token == "delayed", "{p:?}");
        assert_eq!(&"terrible, delayed"[top.start..top.end], top.token);
        // The quantised model agrees with the float weights it was made from.
        let w = train_weights(&texts, &labels, 2, &cfg).unwrap();
        let (_, feats) = cfg.features.extract("terrible, delayed");
        let float_scores: Vec<f32> = (0..2)
            .map(|k| {
                w.biases[k]
                    + feats
                        .iter()
                        .map(|f| f.value * w.weights[f.index as usize * 2 + k])
                        .sum::<f32>()
            })
            .collect();
        let q = model.scores("terrible, delayed");
        for k in 0..2 {
            assert!(
                (q[k] - float_scores[k]).abs() < 0.05,
                "{q:?} vs {float_scores:?}"
            );
        }
    }

    #[test]
    fn training_is_deterministic() {
        let (texts, labels, names) = toy();
        let cfg = TrainConfig {
            features: FeatureConfig {
                hash_bits: 10,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            train(&texts, &labels, &names, &cfg).unwrap(),
            train(&texts, &labels, &names, &cfg).unwrap()
        );
    }

    /// A small imbalanced spam/ham set with some overlap, so probabilities spread out.
    fn spammy() -> (Vec<String>, Vec<usize>, Vec<String>) {
        let ham = [
            "see you at lunch",
            "call me when you are home",
            "ok thanks, talk later",
            "are we still on for dinner",
            "running late, be there soon",
            "did you get my text",
            "happy birthday, have a great day",
            "can you call mum tonight",
            "free for a chat tomorrow?",
            "the meeting moved to three",
        ];
        let spam = [
            "urgent! you have won a prize, call now",
            "free entry: text win to claim your prize",
            "you have won cash, call to claim",
        ];
        let mut texts = Vec::new();
        let mut labels = Vec::new();
        for i in 0..4 {
            for h in ham {
                texts.push(format!("{h} {i}"));
                labels.push(0);
            }
            for s in spam {
                texts.push(format!("{s} {i}"));
                labels.push(1);
            }
        }
        (texts, labels, vec!["ham".into(), "spam".into()])
    }

    fn small() -> TrainConfig {
        TrainConfig {
            features: FeatureConfig {
                hash_bits: 12,
                ..Default::default()
            },
            epochs: 3,
            learning_rate: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn folding_a_threshold_moves_the_decision_point_to_one_half() {
        let (texts, labels, names) = spammy();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let probe: Vec<&str> = texts
            .iter()
            .copied()
            .chain(["call me", "win", "text me when you win", "prize dinner"])
            .collect();
        // Two labels, and three (the fold is one-vs-rest, so it holds for any number).
        for (labels, names) in [
            (labels.clone(), names.clone()),
            (
                labels.iter().enumerate().map(|(i, &l)| l + i % 2).collect(),
                vec!["a".to_string(), "b".into(), "c".into()],
            ),
        ] {
            let positive = 1;
            let cfg = small();
            let w = train_weights(&texts, &labels, names.len(), &cfg).unwrap();
            let before_bytes = encode(&cfg.features, &names, &w.biases, &w.weights);
            let before = Model::from_bytes(&before_bytes).unwrap();
            let p_before: Vec<f32> = probe
                .iter()
                .map(|t| before.predict(t).probabilities[positive])
                .collect();
            for threshold in [0.05f32, 0.2, 0.35, 0.65, 0.9] {
                let mut folded = w.clone();
                folded.fold_threshold(positive, threshold);
                let after_bytes = encode(&cfg.features, &names, &folded.biases, &folded.weights);
                let after = Model::from_bytes(&after_bytes).unwrap();
                let logit = (threshold / (1.0 - threshold)).ln();
                for (t, &pb) in probe.iter().zip(&p_before) {
                    let pa = after.predict(t).probabilities[positive];
                    // The positive label's odds are divided by threshold / (1 − threshold) …
                    let shift = log_odds(&before.scores(t), positive)
                        - log_odds(&after.scores(t), positive);
                    assert!((shift - logit).abs() < 1e-3, "{t}: {shift} vs {logit}");
                    // … so 0.5 after decides as `threshold` did before.
                    if (pb - threshold).abs() > 1e-4 {
                        assert_eq!(
                            pa >= 0.5,
                            pb >= threshold,
                            "{t}: {pb} → {pa} at {threshold}"
                        );
                    }
                }
            }
            // The check above has teeth: some probes sit between 0.5 and a tried threshold.
            assert!(
                p_before
                    .iter()
                    .any(|&p| (0.05..0.5).contains(&p) || (0.5..0.9).contains(&p)),
                "{p_before:?}"
            );
        }
    }

    #[test]
    fn the_f1_best_cut_is_chosen_halfway_between_scores() {
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        // Cutting after 0.0 keeps 3 of 3 positives with 1 false alarm: F1 6/7, the best.
        let scores = [3.0, 2.0, 1.0, 0.0, -1.0, -2.0];
        let truth = [true, true, false, true, false, false];
        let t = best_f1_threshold(&scores, &truth);
        assert!((t - sigmoid(-0.5)).abs() < 1e-6, "{t}");
        // Order of the examples does not matter.
        let t2 = best_f1_threshold(
            &[-2.0, 0.0, 3.0, -1.0, 1.0, 2.0],
            &[false, true, true, false, false, true],
        );
        assert_eq!(t, t2);
        // Separable: halfway between the lowest positive and the highest negative.
        let t = best_f1_threshold(&[4.0, 2.0, -2.0], &[true, true, false]);
        assert!((t - 0.5).abs() < 1e-6, "{t}");
        // Equal scores are never split; equally good cuts keep the higher threshold.
        let t = best_f1_threshold(&[1.0, 1.0, 0.0, -1.0], &[true, false, true, false]);
        assert!((t - sigmoid(-0.5)).abs() < 1e-6, "{t}");
        let t = best_f1_threshold(&[2.0, 1.0, 0.0, -1.0], &[true, false, false, true]);
        assert!((t - sigmoid(1.5)).abs() < 1e-6, "{t}");
        // Everything positive: below the lowest score. No positives: 0.5.
        assert!(best_f1_threshold(&[1.0, 0.0], &[true, true]) < sigmoid(0.0));
        assert_eq!(best_f1_threshold(&[1.0, 0.0], &[false, false]), 0.5);
        assert_eq!(best_f1_threshold(&[], &[]), 0.5);
    }

    #[test]
    fn folds_are_stratified_and_depend_on_the_texts_alone() {
        let (texts, labels, _) = spammy();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let folds = stratified_folds(&texts, &labels, 4);
        for label in 0..2 {
            let mut per_fold = [0; 4];
            for (i, &f) in folds.iter().enumerate() {
                if labels[i] == label {
                    per_fold[f] += 1;
                }
            }
            // 40 ham and 12 spam: 10 and 3 in every fold.
            assert!(per_fold.iter().all(|&n| n == per_fold[0]), "{per_fold:?}");
        }
        let rev_texts: Vec<&str> = texts.iter().rev().copied().collect();
        let rev_labels: Vec<usize> = labels.iter().rev().copied().collect();
        let rev_folds = stratified_folds(&rev_texts, &rev_labels, 4);
        assert!(folds.iter().eq(rev_folds.iter().rev()));
    }

    #[test]
    fn cv_threshold_training_folds_the_chosen_threshold_deterministically() {
        let (texts, labels, names) = spammy();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let cfg = small();
        let (bytes, threshold) =
            train_with_cv_threshold(&texts, &labels, &names, 1, &cfg, 4).unwrap();
        assert!(threshold > 0.0 && threshold < 1.0, "{threshold}");
        assert_eq!(
            train_with_cv_threshold(&texts, &labels, &names, 1, &cfg, 4).unwrap(),
            (bytes.clone(), threshold)
        );
        // The threshold is what the out-of-fold scores call F1-best …
        let oof = out_of_fold_log_odds(&texts, &labels, 2, 1, &cfg, 4).unwrap();
        let truth: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
        assert_eq!(threshold, best_f1_threshold(&oof, &truth));
        // … and the model is the plain one with that threshold folded in.
        let mut w = train_weights(&texts, &labels, 2, &cfg).unwrap();
        w.fold_threshold(1, threshold);
        assert_eq!(bytes, encode(&cfg.features, &names, &w.biases, &w.weights));
        assert_ne!(bytes, train(&texts, &labels, &names, &cfg).unwrap());
        assert_eq!(
            out_of_fold_log_odds(&texts, &labels, 2, 2, &cfg, 4).unwrap_err(),
            TrainError::LabelOutOfRange(2)
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let names = vec!["a".to_string(), "b".to_string()];
        let cfg = TrainConfig::default();
        assert_eq!(
            train(&["x"], &[0, 1], &names, &cfg).unwrap_err(),
            TrainError::Mismatch {
                texts: 1,
                labels: 2
            }
        );
        assert_eq!(
            train(&["x"], &[2], &names, &cfg).unwrap_err(),
            TrainError::LabelOutOfRange(2)
        );
        assert_eq!(
            train(&[], &[], &names, &cfg).unwrap_err(),
            TrainError::Empty
        );
    }
}
