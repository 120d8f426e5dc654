//! [`Regex`] for callers that build their patterns once: the host's reply guards and the rule
//! plugins, whose pre-initialisation builds them into the snapshot every call starts from.
//!
//! Built-in patterns are searched with fully compiled DFAs, built with the pattern, rather
//! than the `regex` crate's lazy DFA. A lazy DFA builds its states on the text it meets and
//! keeps them in a cache; a plugin runs in a fresh instance per call, so every call rebuilt
//! the states its message needed (determinisation was most of a rule plugin's time in `perf`)
//! and the instance reset then copied the cache pages it had dirtied back from the snapshot.
//! A full DFA is only read. Patterns from tenant input ([`crate::try_pattern`]) may be
//! built on every call, so they skip the DFA and keep the lazy one.
//!
//! The methods are those of `regex::Regex` (and `regex_lite::Regex`, used without the
//! `full-regex` feature) that Switchboard's code calls, so callers compile against either.

use regex_automata::meta;
use regex_automata::util::captures::Captures as Groups;
use regex_automata::util::syntax;

/// Memory a built-in pattern's full DFAs may take to build (a quarter each for the forward
/// DFA and its construction, half for the reverse); past it the pattern keeps the lazy DFA.
/// The largest that fits (textscan's care-matter cues) takes about 0.6 MB; two patterns with
/// long counted repetitions (`pii`'s street addresses and phone cues) would take 4–5 MB each,
/// in every snapshot that holds them, and stay lazy.
const DFA_SIZE_LIMIT: usize = 4 << 20;

/// A compiled pattern over `&str` haystacks.
#[derive(Clone, Debug)]
pub struct Regex(meta::Regex);

/// Where a pattern matched, with the text it matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match<'h> {
    haystack: &'h str,
    start: usize,
    end: usize,
}

impl<'h> Match<'h> {
    pub fn start(&self) -> usize {
        self.start
    }

    pub fn end(&self) -> usize {
        self.end
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn as_str(&self) -> &'h str {
        &self.haystack[self.start..self.end]
    }
}

/// The groups of one match; group 0 is the whole match.
pub struct Captures<'h> {
    haystack: &'h str,
    groups: Groups,
}

impl<'h> Captures<'h> {
    pub fn get(&self, group: usize) -> Option<Match<'h>> {
        self.groups.get_group(group).map(|span| Match {
            haystack: self.haystack,
            start: span.start,
            end: span.end,
        })
    }
}

impl Regex {
    /// `pattern` with the `regex` crate's defaults (Unicode on), for tenant input.
    pub fn new(pattern: &str) -> Result<Regex, Box<meta::BuildError>> {
        Self::build(pattern, true, false)
    }

    /// `unicode`: Unicode classes, `\b` and case folding (off: ASCII). `full_dfa`: search with
    /// a fully compiled DFA, for patterns built once.
    pub(crate) fn build(
        pattern: &str,
        unicode: bool,
        full_dfa: bool,
    ) -> Result<Regex, Box<meta::BuildError>> {
        let config = meta::Config::new()
            .dfa(full_dfa)
            .dfa_size_limit(Some(DFA_SIZE_LIMIT))
            // The default (30 NFA states) keeps full DFAs for tiny patterns only.
            .dfa_state_limit(None);
        meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().unicode(unicode))
            .build(pattern)
            .map(Regex)
            .map_err(Box::new)
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.0.is_match(haystack)
    }

    pub fn find<'h>(&self, haystack: &'h str) -> Option<Match<'h>> {
        self.0.find(haystack).map(|m| Match {
            haystack,
            start: m.start(),
            end: m.end(),
        })
    }

    pub fn find_iter<'r, 'h>(&'r self, haystack: &'h str) -> impl Iterator<Item = Match<'h>> + 'r
    where
        'h: 'r,
    {
        self.0.find_iter(haystack).map(move |m| Match {
            haystack,
            start: m.start(),
            end: m.end(),
        })
    }

    pub fn captures_iter<'r, 'h>(
        &'r self,
        haystack: &'h str,
    ) -> impl Iterator<Item = Captures<'h>> + 'r
    where
        'h: 'r,
    {
        self.0
            .captures_iter(haystack)
            .map(move |groups| Captures { haystack, groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes a fresh search cache grows by while finding every match in `text`: what a lazy DFA
    /// builds on the text it meets (and a fresh plugin instance would build again next call).
    fn cache_growth(re: &Regex, text: &str) -> usize {
        let mut cache = re.0.create_cache();
        let before = cache.memory_usage();
        let mut input = regex_automata::Input::new(text);
        while let Some(m) = re.0.search_with(&mut cache, &input) {
            input.set_start(m.end().max(m.start() + 1).min(text.len()));
            if m.end() == text.len() {
                break;
            }
        }
        cache.memory_usage() - before
    }

    const WORDS: &str = r"(?i)\b(?:stranded|stuck\s+(?:at|in|on)|locked\s+out|no\s+hotel|missed\s+(?:my|the)\s+connection)\b";
    const TEXT: &str = "Flight cancelled, I'm stranded at JFK and LOCKED OUT of the app, no hotel";

    #[test]
    fn built_in_patterns_search_without_building_states() {
        let full = crate::pattern(WORDS);
        let lazy = crate::try_pattern(WORDS).unwrap();
        assert_eq!(cache_growth(&full, TEXT), 0);
        assert!(cache_growth(&lazy, TEXT) > 0, "the lazy DFA builds states");
        let spans = |re: &Regex| re.find_iter(TEXT).map(|m| m.as_str()).collect::<Vec<_>>();
        assert_eq!(spans(&full), ["stranded", "LOCKED OUT", "no hotel"]);
        assert_eq!(spans(&full), spans(&lazy));
    }

    #[test]
    fn captures_name_their_groups_text() {
        let re = crate::pattern(r"order\s*#?(\d+)|ref\s+([A-Z]+)");
        let text = "order #48213, ref ABC";
        let got: Vec<_> = re
            .captures_iter(text)
            .map(|c| {
                (
                    c.get(0).unwrap().as_str(),
                    c.get(1).map(|m| m.as_str()),
                    c.get(2).map(|m| (m.start(), m.end())),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("order #48213", Some("48213"), None),
                ("ref ABC", None, Some((18, 21)))
            ]
        );
    }
}
