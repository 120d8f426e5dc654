//! The compact model format and prediction.
//!
//! Layout (little-endian): `SBTM`, version 1 or 2 (2 when the model has length tokens: one
//! more byte of [`FeatureConfig`]), the [`FeatureConfig`], the labels, one f32 bias
//! and one f32 scale per label, then `2^hash_bits × labels` i8 weights, row by row. A plugin
//! embeds these bytes with `include_bytes!` and predicts straight from them: nothing is copied
//! or decoded per call beyond the short header, which matters because every call runs in a
//! fresh instance.

use crate::features::{Feature, FeatureConfig};
use crate::tokenize::Token;

const MAGIC: &[u8; 4] = b"SBTM";
/// Version 2 adds the length step after the character n-gram range; a model without length
/// tokens is still written as version 1, byte for byte as before.
const VERSION: u8 = 2;

/// Why bytes are not a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("not a textmodel (bad magic)")]
    BadMagic,
    #[error("unsupported textmodel version {0}")]
    Version(u8),
    #[error("truncated textmodel: {0}")]
    Truncated(&'static str),
    #[error("invalid textmodel: {0}")]
    Invalid(&'static str),
}

/// A model read from bytes it borrows.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    pub features: FeatureConfig,
    pub labels: Vec<String>,
    biases: Vec<f32>,
    scales: Vec<f32>,
    weights: &'a [u8],
}

/// A token's share of the evidence for a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The token as the model saw it (`neg_happy`, `<url>`, `late`).
    pub token: String,
    /// Bytes of the original text.
    pub start: usize,
    pub end: usize,
    /// How much it pushed the label above the average label (log-odds units).
    pub weight: f32,
}

/// The model's answer for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Probability of each label, in the model's label order.
    pub probabilities: Vec<f32>,
    /// Index of the most probable label.
    pub best: usize,
    /// The tokens that pushed hardest towards `best`, strongest first (at most 5).
    pub evidence: Vec<Contribution>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).ok_or(ModelError::Truncated(what))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(ModelError::Truncated(what))?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn f32(&mut self, what: &'static str) -> Result<f32, ModelError> {
        let b = self.take(4, what)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Serialise float weights (`rows × labels`, row-major) into the model format, quantising each
/// label's column to i8 with its own scale.
pub fn encode(
    features: &FeatureConfig,
    labels: &[String],
    biases: &[f32],
    weights: &[f32],
) -> Vec<u8> {
    let c = labels.len();
    let mut scales = vec![0f32; c];
    for row in weights.chunks(c) {
        for (k, w) in row.iter().enumerate() {
            scales[k] = scales[k].max(w.abs());
        }
    }
    for s in &mut scales {
        *s = if *s > 0.0 { *s / 127.0 } else { 1.0 };
    }
    let mut out = Vec::with_capacity(64 + weights.len());
    out.extend_from_slice(MAGIC);
    out.push(if features.length_step == 0 {
        1
    } else {
        VERSION
    });
    out.extend_from_slice(&[
        features.hash_bits,
        features.word_ngrams,
        features.char_min,
        features.char_max,
    ]);
    if features.length_step != 0 {
        out.push(features.length_step);
    }
    out.extend_from_slice(&features.word_weight.to_le_bytes());
    out.extend_from_slice(&features.char_weight.to_le_bytes());
    out.extend_from_slice(&(c as u16).to_le_bytes());
    for l in labels {
        out.extend_from_slice(&(l.len() as u16).to_le_bytes());
        out.extend_from_slice(l.as_bytes());
    }
    for b in biases {
        out.extend_from_slice(&b.to_le_bytes());
    }
    for s in &scales {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for row in weights.chunks(c) {
        for (k, w) in row.iter().enumerate() {
            out.push((w / scales[k]).round().clamp(-127.0, 127.0) as i8 as u8);
        }
    }
    out
}

impl<'a> Model<'a> {
    /// Read a model; checks the header and that the weight table is complete.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>, ModelError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let version = r.u8("version")?;
        if !(1..=VERSION).contains(&version) {
            return Err(ModelError::Version(version));
        }
        let (hash_bits, word_ngrams) = (r.u8("hash bits")?, r.u8("word n-grams")?);
        let (char_min, char_max) = (r.u8("char n-grams")?, r.u8("char n-grams")?);
        let length_step = if version >= 2 {
            r.u8("length step")?
        } else {
            0
        };
        let features = FeatureConfig {
            hash_bits,
            word_ngrams,
            char_min,
            char_max,
            word_weight: r.f32("word weight")?,
            char_weight: r.f32("char weight")?,
            length_step,
        };
        if !(1..=24).contains(&features.hash_bits) || features.char_min > features.char_max {
            return Err(ModelError::Invalid("feature settings"));
        }
        let c = r.u16("label count")? as usize;
        if c < 2 {
            return Err(ModelError::Invalid("fewer than two labels"));
        }
        let mut labels = Vec::with_capacity(c);
        for _ in 0..c {
            let n = r.u16("label")? as usize;
            let s = std::str::from_utf8(r.take(n, "label")?)
                .map_err(|_| ModelError::Invalid("label is not UTF-8"))?;
            labels.push(s.to_string());
        }
        let biases = (0..c)
            .map(|_| r.f32("biases"))
            .collect::<Result<Vec<_>, _>>()?;
        let scales = (0..c)
            .map(|_| r.f32("scales"))
            .collect::<Result<Vec<_>, _>>()?;
        let n = (1usize << features.hash_bits) * c;
        let weights = r.take(n, "weights")?;
        if r.at != bytes.len() {
            return Err(ModelError::Invalid("trailing bytes"));
        }
        Ok(Model {
            features,
            labels,
            biases,
            scales,
            weights,
        })
    }

    fn weight(&self, row: u32, class: usize) -> f32 {
        let c = self.labels.len();
        self.weights[row as usize * c + class] as i8 as f32 * self.scales[class]
    }

    /// Raw scores (log-odds up to a constant) of each label.
    pub fn scores(&self, text: &str) -> Vec<f32> {
        let (_, feats) = self.features.extract(text);
        let mut scores = self.biases.clone();
        for f in &feats {
            for (k, s) in scores.iter_mut().enumerate() {
                *s += f.value * self.weight(f.index, k);
            }
        }
        scores
    }

    /// Predict `text`'s label, with probabilities and the tokens behind the best one.
    pub fn predict(&self, text: &str) -> Prediction {
        let (tokens, feats) = self.features.extract(text);
        let mut scores = self.biases.clone();
        for f in &feats {
            for (k, s) in scores.iter_mut().enumerate() {
                *s += f.value * self.weight(f.index, k);
            }
        }
        let probabilities = softmax(&scores);
        let best = argmax(&probabilities);
        let evidence = self.contributions(&tokens, &feats, best);
        Prediction {
            probabilities,
            best,
            evidence,
        }
    }

    /// The tokens of `text` that push hardest towards label `class` (at most 5, strongest
    /// first); empty if `class` is out of range.
    pub fn explain(&self, text: &str, class: usize) -> Vec<Contribution> {
        if class >= self.labels.len() {
            return Vec::new();
        }
        let (tokens, feats) = self.features.extract(text);
        self.contributions(&tokens, &feats, class)
    }

    /// Per token: its features' weight for `class` above their mean over all labels.
    fn contributions(
        &self,
        tokens: &[Token],
        feats: &[Feature],
        class: usize,
    ) -> Vec<Contribution> {
        let c = self.labels.len();
        let mut per_token = vec![0f32; tokens.len()];
        for f in feats {
            let mean: f32 = (0..c).map(|k| self.weight(f.index, k)).sum::<f32>() / c as f32;
            per_token[f.token as usize] += f.value * (self.weight(f.index, class) - mean);
        }
        // Flags share their word's span: fold them into one piece of evidence per span.
        let mut evidence: Vec<Contribution> = Vec::new();
        for (t, w) in tokens.iter().zip(per_token) {
            match evidence
                .iter_mut()
                .find(|e| e.start == t.start && e.end == t.end)
            {
                Some(e) => e.weight += w,
                None => evidence.push(Contribution {
                    token: t.text.clone(),
                    start: t.start,
                    end: t.end,
                    weight: w,
                }),
            }
        }
        evidence.retain(|e| e.weight > 0.0);
        evidence.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.start.cmp(&b.start)));
        evidence.truncate(5);
        evidence
    }
}

/// Probabilities from scores (numerically stable).
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (k, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = k;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        let cfg = FeatureConfig {
            hash_bits: 4,
            ..Default::default()
        };
        let labels = vec!["a".to_string(), "b".to_string()];
        let bytes = encode(&cfg, &labels, &[0.0, 0.0], &[0.5; 32]);
        assert!(Model::from_bytes(&bytes).is_ok());
        for cut in 0..bytes.len() {
            assert!(Model::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Model::from_bytes(&bad).unwrap_err(), ModelError::BadMagic);
        bad = bytes.clone();
        bad[4] = 9;
        assert_eq!(Model::from_bytes(&bad).unwrap_err(), ModelError::Version(9));
    }

    #[test]
    fn length_tokens_need_version_2_and_round_trip() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let plain = FeatureConfig {
            hash_bits: 4,
            ..Default::default()
        };
        let v1 = encode(&plain, &labels, &[0.0, 0.0], &[0.5; 32]);
        assert_eq!(v1[4], 1);
        let with_length = FeatureConfig {
            length_step: 20,
            ..plain
        };
        let v2 = encode(&with_length, &labels, &[0.0, 0.0], &[0.5; 32]);
        assert_eq!((v2[4], v2.len()), (2, v1.len() + 1));
        assert_eq!(Model::from_bytes(&v1).unwrap().features, plain);
        assert_eq!(Model::from_bytes(&v2).unwrap().features, with_length);
        for cut in 0..v2.len() {
            assert!(Model::from_bytes(&v2[..cut]).is_err(), "cut at {cut}");
        }
    }
}
