//! Multinomial logistic regression on hashed features, trained with AdaGrad.
//!
//! Deterministic: the example order of each epoch comes from a fixed-seed generator, and
//! nothing depends on hash-map iteration or threads, so the same data always gives the same
//! model bytes.

use crate::features::{Feature, FeatureConfig};
use crate::model::{encode, softmax};

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
    if texts.len() != labels.len() {
        return Err(TrainError::Mismatch {
            texts: texts.len(),
            labels: labels.len(),
        });
    }
    if classes < 2 {
        return Err(TrainError::TooFewLabels(classes));
    }
    if texts.is_empty() {
        return Err(TrainError::Empty);
    }
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(TrainError::LabelOutOfRange(bad));
    }
    let feats: Vec<Vec<Feature>> = texts.iter().map(|t| config.features.extract(t).1).collect();
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if config.balanced && n > 0 {
                texts.len() as f32 / (classes as f32 * n as f32)
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
    let mut order: Vec<usize> = (0..texts.len()).collect();
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
            for f in &feats[i] {
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
            for f in &feats[i] {
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
    Ok(Weights {
        biases: b,
        weights: w,
    })
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
