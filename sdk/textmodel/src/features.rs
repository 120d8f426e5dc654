//! Hashed features: word 1–2-grams and character n-grams of words.
//!
//! Hashing keeps the model a fixed-size table that needs no vocabulary at prediction time, so a
//! plugin can read weights straight out of its embedded bytes. Each feature remembers the token
//! it came from, which is how a prediction explains itself with spans.

use crate::tokenize::{Kind, Token, tokenize};

/// How text becomes features. Stored in the model, so prediction uses what training used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureConfig {
    /// The table has `2^hash_bits` rows.
    pub hash_bits: u8,
    /// Word n-grams up to this length (1 or 2).
    pub word_ngrams: u8,
    /// Character n-grams of words from `char_min` to `char_max` (0 turns them off).
    pub char_min: u8,
    pub char_max: u8,
    /// Weight of the word group and the character group after each is L2-normalised.
    pub word_weight: f32,
    pub char_weight: f32,
    /// Message-length tokens: one for each multiple of `length_step` characters below
    /// [`LENGTH_CAP`] that the text is longer than (`<len>140`, `<len>120`, …), as flags in the
    /// word group spanning the text's tokens. 0 turns them off.
    pub length_step: u8,
}

/// Length tokens stop here: an SMS is at most 160 characters.
pub const LENGTH_CAP: usize = 160;

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            hash_bits: 18,
            word_ngrams: 2,
            char_min: 2,
            char_max: 5,
            word_weight: 1.0,
            char_weight: 1.0,
            length_step: 0,
        }
    }
}

/// One feature occurrence: table row, value, and the token it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    pub index: u32,
    pub value: f32,
    pub token: u32,
}

/// FNV-1a, 64 bits: stable across platforms and releases (std's hasher is not).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl FeatureConfig {
    fn index(&self, parts: &[&[u8]]) -> u32 {
        let h = fnv1a(parts);
        ((h ^ (h >> 32)) as u32) & ((1u32 << self.hash_bits) - 1)
    }

    /// The tokens of `text` (with length tokens when `length_step` is set) and their features.
    pub fn extract(&self, text: &str) -> (Vec<Token>, Vec<Feature>) {
        let mut tokens = tokenize(text);
        self.push_length_tokens(text, &mut tokens);
        let features = self.features_of(&tokens);
        (tokens, features)
    }

    /// Append a `<len>N` flag for each multiple N of `length_step` (below [`LENGTH_CAP`]) that
    /// `text` is longer than, in characters, longest first; they span `tokens` from the first
    /// to the last, so evidence points at the whole message. Nothing for a text without tokens.
    pub fn push_length_tokens(&self, text: &str, tokens: &mut Vec<Token>) {
        let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
            return;
        };
        if self.length_step == 0 {
            return;
        }
        let (start, end) = (first.start, last.end);
        let chars = text.chars().count();
        let step = usize::from(self.length_step);
        let steps = (LENGTH_CAP - 1) / step;
        for k in (1..=steps).rev().filter(|k| chars > k * step) {
            tokens.push(Token {
                text: format!("<len>{}", k * step),
                kind: Kind::Flag,
                start,
                end,
            });
        }
    }

    /// Features of already tokenised text; values are L2-normalised per group.
    pub fn features_of(&self, tokens: &[Token]) -> Vec<Feature> {
        let mut words = Vec::with_capacity(tokens.len() * 2);
        let mut chars = Vec::new();
        let mut prev: Option<(usize, &str)> = None;
        for (t, token) in tokens.iter().enumerate() {
            let t32 = t as u32;
            words.push(Feature {
                index: self.index(&[b"w", token.text.as_bytes()]),
                value: 1.0,
                token: t32,
            });
            if token.kind == Kind::Flag {
                continue;
            }
            if self.word_ngrams >= 2 {
                let before = prev.map_or("<s>", |(_, p)| p);
                words.push(Feature {
                    index: self.index(&[b"b", before.as_bytes(), b" ", token.text.as_bytes()]),
                    value: 1.0,
                    token: t32,
                });
            }
            prev = Some((t, &token.text));
            if token.kind == Kind::Word && self.char_min > 0 {
                let base = token.text.strip_prefix("neg_").unwrap_or(&token.text);
                let padded: Vec<char> = std::iter::once('<')
                    .chain(base.chars())
                    .chain(std::iter::once('>'))
                    .collect();
                let mut buf = String::new();
                for n in self.char_min as usize..=self.char_max as usize {
                    if n > padded.len() {
                        break;
                    }
                    for window in padded.windows(n) {
                        buf.clear();
                        buf.extend(window);
                        chars.push(Feature {
                            index: self.index(&[b"c", buf.as_bytes()]),
                            value: 1.0,
                            token: t32,
                        });
                    }
                }
            }
        }
        if self.word_ngrams >= 2
            && let Some((t, p)) = prev
        {
            words.push(Feature {
                index: self.index(&[b"b", p.as_bytes(), b" </s>"]),
                value: 1.0,
                token: t as u32,
            });
        }
        normalise(&mut words, self.word_weight);
        normalise(&mut chars, self.char_weight);
        words.extend(chars);
        words
    }
}

/// Scale a group's values so that the merged vector has L2 norm `weight`.
fn normalise(group: &mut [Feature], weight: f32) {
    if group.is_empty() {
        return;
    }
    let mut idx: Vec<u32> = group.iter().map(|f| f.index).collect();
    idx.sort_unstable();
    let mut sum_sq = 0f32;
    let mut k = 0;
    while k < idx.len() {
        let run = idx[k..].iter().take_while(|&&x| x == idx[k]).count();
        sum_sq += (run * run) as f32;
        k += run;
    }
    let scale = weight / sum_sq.sqrt();
    for f in group {
        f.value *= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_point_at_tokens_and_are_normalised() {
        let cfg = FeatureConfig::default();
        let (tokens, feats) = cfg.extract("not good at all");
        assert!(feats.iter().all(|f| (f.token as usize) < tokens.len()));
        assert!(feats.iter().all(|f| f.index < 1 << cfg.hash_bits));
        // Each group has norm `weight` (here distinct rows, so a plain sum of squares).
        let words: f32 = feats
            .iter()
            .take(2 * tokens.len() + 1)
            .map(|f| f.value * f.value)
            .sum();
        assert!((words - 1.0).abs() < 1e-3, "{words}");
    }

    #[test]
    fn length_tokens_count_characters_and_span_the_message() {
        let cfg = FeatureConfig {
            length_step: 20,
            ..Default::default()
        };
        let text = " Call 09061701461 now to claim your £1000 prize! T&C apply ";
        assert_eq!(text.chars().count(), 59);
        let (tokens, feats) = cfg.extract(text);
        let length: Vec<&Token> = tokens
            .iter()
            .filter(|t| t.text.starts_with("<len>"))
            .collect();
        let names: Vec<&str> = length.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(names, ["<len>40", "<len>20"]);
        assert!(length.iter().all(|t| &text[t.start..t.end] == text.trim()));
        // Each is one word-group feature, and nothing else (no bigrams or character n-grams).
        let first = tokens.len() - 2;
        assert_eq!(
            feats.iter().filter(|f| f.token as usize >= first).count(),
            2
        );
        // Capped at an SMS: 159 steps of 1 at most, and none without tokens or when off.
        let long = "x".repeat(500);
        let one = FeatureConfig {
            length_step: 1,
            ..Default::default()
        };
        let count = |tokens: Vec<Token>| {
            tokens
                .iter()
                .filter(|t| t.text.starts_with("<len>"))
                .count()
        };
        assert_eq!(count(one.extract(&long).0), 159);
        assert!(one.extract(&" ".repeat(200)).0.is_empty());
        let off = FeatureConfig::default();
        assert_eq!(off.extract(text).0, tokenize(text));
    }

    #[test]
    fn same_text_same_features() {
        let cfg = FeatureConfig::default();
        assert_eq!(
            cfg.extract("Delayed again!!").1,
            cfg.extract("Delayed again!!").1
        );
        assert_eq!(cfg.extract("").1, vec![]);
    }
}
