//! Conveniences on the contract's types.

use crate::{Draft, Evidence, Label, PluginInfo, Span, Visibility};

impl Label {
    /// A label with a score clamped to [0, 1] and no evidence yet.
    pub fn new(name: &str, score: f32) -> Self {
        Label {
            name: name.into(),
            score: if score.is_nan() {
                0.0
            } else {
                score.clamp(0.0, 1.0)
            },
            evidence: Vec::new(),
        }
    }
    /// Add a reason that does not point at the text.
    pub fn because(mut self, note: &str) -> Self {
        self.evidence.push(Evidence {
            note: note.into(),
            span: None,
        });
        self
    }
    /// Add a reason that points at bytes `start..end` of the text.
    pub fn at(mut self, note: &str, start: usize, end: usize) -> Self {
        self.evidence.push(Evidence {
            note: note.into(),
            span: Some(Span {
                start: start as u32,
                end: end as u32,
            }),
        });
        self
    }
}

impl Draft {
    /// A public draft.
    pub fn public(text: impl Into<String>, confidence: f32, rationale: &str) -> Self {
        Draft {
            text: text.into(),
            visibility: Visibility::Public,
            confidence: confidence.clamp(0.0, 1.0),
            rationale: rationale.into(),
        }
    }
}

impl PluginInfo {
    /// A plugin description with no egress, config or secrets; `vendor` defaults to `switchboard`.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            vendor: "switchboard".into(),
            egress: Vec::new(),
            config_keys: Vec::new(),
            secrets: Vec::new(),
        }
    }
    pub fn vendor(mut self, vendor: &str) -> Self {
        self.vendor = vendor.into();
        self
    }
    /// Declare a host the plugin needs to call (`api.example.com`, `*.example.com`). The tenant
    /// must also allow it.
    pub fn egress(mut self, host: &str) -> Self {
        self.egress.push(host.into());
        self
    }
    pub fn config_key(mut self, key: &str) -> Self {
        self.config_keys.push(key.into());
        self
    }
    pub fn secret(mut self, name: &str) -> Self {
        self.secrets.push(name.into());
        self
    }
}
