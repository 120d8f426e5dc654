//! Targets for the care layer's parsers: tenant configs, CEL policies and the reply guards.

use std::path::Path;

use switchboard_care::guards::{Guards, GuardsConfig};
use switchboard_care::policy::{ActionKind, Facts, OneOrMany, Policy, PolicyConfig, RuleConfig};
use switchboard_care::tenant::TenantFile;

use crate::Verdict;

/// A tenant config file, parsed and checked as `switchboard serve` and `run` load it.
pub fn tenant_config(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        return Verdict::Refused("not UTF-8".into());
    };
    match TenantFile::parse(text, Path::new("/fuzz/tenant.toml")) {
        Ok(file) => {
            // What the server derives from an accepted file must not fail either.
            let _ = file.server_privileges();
            let _ = file.care();
            Verdict::Accepted
        }
        Err(e) => Verdict::Refused(e.to_string()),
    }
}

/// Each line a rule's `when` (a CEL expression); a policy that compiles is then evaluated
/// against facts whose text is the input, so evaluation is fuzzed as well as compilation.
pub fn policy(data: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(data);
    let rules = text
        .lines()
        .enumerate()
        .map(|(i, when)| RuleConfig {
            name: format!("rule-{i}"),
            when: when.to_string(),
            then: OneOrMany::One(ActionKind::Monitor),
            why: None,
            team: None,
            to: None,
            incident: None,
        })
        .collect();
    let config = PolicyConfig {
        stop_at_first_match: data.first().is_some_and(|b| b & 1 == 0),
        rules,
        ..PolicyConfig::default()
    };
    match Policy::compile(&config) {
        Ok(policy) => {
            let mut facts = Facts {
                channel: "x".into(),
                public: true,
                origin: "mention".into(),
                text: text.clone().into_owned(),
                language: "en".into(),
                author_id: "1".into(),
                author_handle: "customer".into(),
                in_hours: true,
                weekday: 3,
                hour: 14,
                ..Facts::default()
            };
            facts.labels.insert("topic:refund".into(), 0.9);
            facts.labels.insert("sentiment:negative".into(), 0.4);
            let _ = policy.decide(&facts);
            Verdict::Accepted
        }
        Err(e) => Verdict::Refused(e.to_string()),
    }
}

/// A `[guards]` section (TOML, up to the first NUL; the defaults when it does not parse) and
/// a draft (the rest). Every finding's span must lie inside the draft on character boundaries:
/// the agent UI highlights the draft by it.
pub fn guards(data: &[u8]) -> Verdict {
    let (head, draft) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut config = std::str::from_utf8(head)
        .ok()
        .and_then(|t| toml::from_str::<GuardsConfig>(t).ok())
        .unwrap_or_default();
    // Article files are read from disk: a fuzzer naming /dev/zero would hang the run.
    config.help_articles.retain(|a| a.file.is_none());
    let guards = match Guards::new(config, Path::new("/nonexistent")) {
        Ok(g) => g,
        Err(e) => return Verdict::Refused(e),
    };
    let draft = String::from_utf8_lossy(draft);
    let measured = u32::try_from(draft.chars().count()).ok();
    for finding in guards.check(&draft, measured, 280) {
        if let Some((start, end)) = finding.span {
            assert!(
                draft.get(start..end).is_some(),
                "span {start}..{end} of {finding:?} is not a slice of the {}-byte draft",
                draft.len()
            );
        }
    }
    Verdict::Accepted
}
