//! The plugin contract (`wit/`) as the host sees it: generated types, the supported version,
//! and how a component's exports are matched to a plugin kind.
//!
//! The lowest layer: every other crate speaks these types. It knows nothing of how plugins run,
//! where messages are stored or what a tenant is.

use std::fmt;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "switchboard:plugin/host-view@0.1.2",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
});

pub use exports::switchboard::plugin::channel::{
    Capability, ChannelInfo, DeliveryReceipt, Event, HttpRequest, HttpResponse, PollBatch,
    SkippedEvent, WebhookOutcome,
};
pub use exports::switchboard::plugin::channel_answers::AnsweredWebhook;
pub use switchboard::plugin::types::{
    Attachment, AttachmentKind, Author, CallContext, Draft, Evidence, Label, LengthRule,
    LengthUnit, Message, MessageAction, Origin, OutboundReply, PluginError, PluginInfo, Span,
    Visibility,
};

impl Message {
    /// A public message from `@casey` ("Casey Jones") with `text`: the fixture for plugin tests,
    /// examples and benchmarks.
    pub fn example(tenant: &str, text: &str) -> Message {
        Message {
            tenant: tenant.into(),
            channel: "webhook".into(),
            external_id: "m-1".into(),
            conversation_key: "c-1".into(),
            in_reply_to: None,
            author: Author {
                id: "u-1".into(),
                handle: Some("@casey".into()),
                display_name: Some("Casey Jones".into()),
            },
            text: text.into(),
            language: None,
            visibility: Visibility::Public,
            origin: Origin::Mention,
            received_at: 1_700_000_000_000,
            attachments: vec![],
            action: MessageAction::Created,
            extra: vec![],
        }
    }
}

/// A contract value as JSON with the WIT's names for enum cases (`public`, `characters`,
/// `direct-message`, `public-replies`) rather than Rust's (`Public`, `DirectMessage`): what a
/// plugin author reads in `wit/` is what the CLI and the API show. Field names stay as they are
/// (snake_case), which the API has always used. The derived `Serialize` keeps Rust's names,
/// because stored messages are read back with it.
pub fn wit_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    kebab_enum_cases(&mut v);
    v
}

/// The fields whose values are WIT enum cases, in the contract's records.
const ENUM_FIELDS: [&str; 5] = ["visibility", "origin", "action", "kind", "unit"];

fn kebab_enum_cases(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(s) if ENUM_FIELDS.contains(&key.as_str()) => *s = kebab(s),
                    Value::Array(items) if key == "capabilities" => {
                        for item in items {
                            if let Value::String(s) = item {
                                *s = kebab(s);
                            }
                        }
                    }
                    _ => kebab_enum_cases(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(kebab_enum_cases),
        _ => {}
    }
}

/// `DirectMessage` → `direct-message`; already kebab-case names are unchanged.
fn kebab(case: &str) -> String {
    let mut out = String::with_capacity(case.len() + 4);
    for (i, c) in case.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The longest language tag kept: the buffer RFC 5646 (4.4.1) asks implementations to allow.
pub const MAX_LANGUAGE_TAG: usize = 35;

/// A sender-given language tag fit for the host and its plugins: the longest prefix of `raw`
/// made of BCP 47-shaped subtags (a primary of 2–8 letters, then 1–8 letters or digits each,
/// `-` or `_` between) within [`MAX_LANGUAGE_TAG`] bytes; `None` if not even the primary is.
/// The platform or the customer chooses this field, and plugins put it into label names, so an
/// oversized or malformed one is clipped here, at the edge, rather than failing the message.
pub fn language_tag(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let mut end = 0;
    for (i, sub) in raw.split(['-', '_']).enumerate() {
        let (well_formed, next) = if i == 0 {
            (
                (2..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphabetic()),
                sub.len(),
            )
        } else {
            (
                (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric()),
                end + 1 + sub.len(),
            )
        };
        if !well_formed || next > MAX_LANGUAGE_TAG {
            break;
        }
        end = next;
    }
    (end > 0).then(|| raw[..end].to_string())
}

/// The WIT package every plugin must target.
pub const PACKAGE: &str = "switchboard:plugin";
/// The contract version this host implements. Plugins built against any `0.1.x` load; what
/// 0.1.1 added (`channel-answers`) is used when a connector exports it, and what 0.1.2 added
/// (`preinit`) when any plugin does.
pub const VERSION: &str = "0.1.2";

/// The interface a connector exports, since 0.1.1, to answer platforms itself.
pub const CHANNEL_ANSWERS: &str = "channel-answers";

/// The interface any plugin exports, since 0.1.2, to have its state built once at load.
pub const PREINIT: &str = "preinit";
/// Its one function.
pub const PREINIT_FUNCTION: &str = "init";

/// The exact export name of `interface` among a component's exports, if it exports a version
/// of it this host can run.
pub fn find_interface<'a>(
    export_names: impl IntoIterator<Item = &'a str>,
    interface: &str,
) -> Option<&'a str> {
    export_names.into_iter().find(|name| {
        ExportName::parse(name).is_some_and(|p| {
            p.package == PACKAGE
                && p.interface == interface
                && p.version.is_some_and(version_compatible)
        })
    })
}

/// The three kinds of plugin, one per world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Connector,
    Classifier,
    Suggester,
}

impl PluginKind {
    /// The exported interface that identifies the kind.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Connector => "channel",
            PluginKind::Classifier => "classify",
            PluginKind::Suggester => "suggest",
        }
    }
    /// The WIT world a plugin of this kind targets.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Connector => "channel-adapter",
            PluginKind::Classifier => "classifier",
            PluginKind::Suggester => "reply-suggester",
        }
    }
    fn from_interface(name: &str) -> Option<Self> {
        [
            PluginKind::Connector,
            PluginKind::Classifier,
            PluginKind::Suggester,
        ]
        .into_iter()
        .find(|k| k.interface() == name)
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Connector => "connector",
            PluginKind::Classifier => "classifier",
            PluginKind::Suggester => "reply-suggester",
        })
    }
}

/// A parsed export name such as `switchboard:plugin/classify@0.1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportName<'a> {
    pub package: &'a str,
    pub interface: &'a str,
    pub version: Option<&'a str>,
}

impl<'a> ExportName<'a> {
    pub fn parse(name: &'a str) -> Option<Self> {
        let (package, rest) = name.split_once('/')?;
        let (interface, version) = match rest.split_once('@') {
            Some((i, v)) => (i, Some(v)),
            None => (rest, None),
        };
        Some(ExportName {
            package,
            interface,
            version,
        })
    }
}

/// `0.x.y` is compatible with `0.x.z`; `a.b.c` with `a.d.e` for `a >= 1` (semver).
pub fn version_compatible(found: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(found), parse(VERSION)) {
        (Some((0, fmin)), Some((0, hmin))) => fmin == hmin,
        (Some((fmaj, _)), Some((hmaj, _))) => fmaj == hmaj && fmaj > 0,
        _ => false,
    }
}

/// The outcome of matching a component's export names against the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindMatch {
    /// A supported kind, with the exact export name to look up.
    Supported {
        kind: PluginKind,
        export: String,
        version: String,
    },
    /// A Switchboard world, but of a contract version this host cannot run.
    Incompatible { export: String, version: String },
    /// Nothing Switchboard exports.
    Unknown,
}

/// Decide what kind of plugin a component is from its top-level export names.
pub fn match_kind<'a>(export_names: impl IntoIterator<Item = &'a str>) -> KindMatch {
    let mut incompatible = None;
    for name in export_names {
        let Some(parsed) = ExportName::parse(name) else {
            continue;
        };
        if parsed.package != PACKAGE {
            continue;
        }
        let Some(kind) = PluginKind::from_interface(parsed.interface) else {
            continue;
        };
        let version = parsed.version.unwrap_or("unversioned").to_string();
        if version_compatible(&version) {
            return KindMatch::Supported {
                kind,
                export: name.to_string(),
                version,
            };
        }
        incompatible.get_or_insert(KindMatch::Incompatible {
            export: name.to_string(),
            version,
        });
    }
    incompatible.unwrap_or(KindMatch::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_clipped_to_well_formed_subtags() {
        assert_eq!(language_tag(" en-GB ").as_deref(), Some("en-GB"));
        assert_eq!(language_tag("pt_BR").as_deref(), Some("pt_BR"));
        assert_eq!(language_tag("zh-Hant-TW").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(language_tag(&"x".repeat(200)), None);
        let long = format!("en-{}", "abcdefgh-".repeat(20));
        let clipped = language_tag(&long).unwrap();
        assert!(clipped.len() <= MAX_LANGUAGE_TAG && long.starts_with(&clipped));
        assert_eq!(language_tag("en-<script>").as_deref(), Some("en"));
        assert_eq!(language_tag("é-fr"), None);
        assert_eq!(language_tag(""), None);
    }

    #[test]
    fn json_shows_the_wits_names_for_enum_cases() {
        let mut m = Message::example("t", "hi");
        m.origin = Origin::DirectMessage;
        m.attachments.push(Attachment {
            kind: AttachmentKind::Sticker,
            url: None,
            mime_type: None,
            description: None,
        });
        let v = wit_json(&m);
        assert_eq!(v["visibility"], "public");
        assert_eq!(v["origin"], "direct-message");
        assert_eq!(v["action"], "created");
        assert_eq!(v["attachments"][0]["kind"], "sticker");
        // Data is left alone.
        assert_eq!(v["text"], "hi");
        assert_eq!(v["author"]["handle"], "@casey");
        let info = ChannelInfo {
            channel: "x".into(),
            display_name: "X".into(),
            length_rule: LengthRule {
                max: 280,
                unit: LengthUnit::Weighted,
                description: String::new(),
            },
            capabilities: vec![Capability::PublicReplies, Capability::Webhooks],
        };
        let v = wit_json(&info);
        assert_eq!(v["length_rule"]["unit"], "weighted");
        assert_eq!(
            v["capabilities"],
            serde_json::json!(["public-replies", "webhooks"])
        );
    }

    #[test]
    fn optional_interfaces_are_found_by_compatible_version() {
        let names = [
            "switchboard:plugin/channel@0.1.1",
            "switchboard:plugin/channel-answers@0.1.1",
        ];
        assert_eq!(
            find_interface(names, CHANNEL_ANSWERS),
            Some("switchboard:plugin/channel-answers@0.1.1")
        );
        assert_eq!(
            find_interface(["switchboard:plugin/channel@0.1.0"], CHANNEL_ANSWERS),
            None
        );
        assert_eq!(
            find_interface(
                ["switchboard:plugin/channel-answers@0.2.0"],
                CHANNEL_ANSWERS
            ),
            None
        );
        assert_eq!(
            find_interface(["other:plugin/channel-answers@0.1.1"], CHANNEL_ANSWERS),
            None
        );
    }

    #[test]
    fn preinit_is_found_beside_any_kind() {
        let names = [
            "switchboard:plugin/classify@0.1.2",
            "switchboard:plugin/preinit@0.1.2",
        ];
        assert_eq!(
            find_interface(names, PREINIT),
            Some("switchboard:plugin/preinit@0.1.2")
        );
        assert_eq!(
            find_interface(["switchboard:plugin/classify@0.1.1"], PREINIT),
            None
        );
        assert_eq!(
            find_interface(["switchboard:plugin/preinit@0.2.0"], PREINIT),
            None
        );
    }

    #[test]
    fn minor_versions_of_zero_major_are_incompatible() {
        assert!(version_compatible("0.1.0"));
        assert!(version_compatible("0.1.7"));
        assert!(!version_compatible("0.2.0"));
        assert!(!version_compatible("1.0.0"));
        assert!(!version_compatible("garbage"));
    }

    #[test]
    fn kind_is_found_among_other_exports() {
        let m = match_kind(["wasi:cli/run@0.2.0", "switchboard:plugin/classify@0.1.3"]);
        assert_eq!(
            m,
            KindMatch::Supported {
                kind: PluginKind::Classifier,
                export: "switchboard:plugin/classify@0.1.3".into(),
                version: "0.1.3".into()
            }
        );
        assert!(matches!(
            match_kind(["switchboard:plugin/suggest@0.2.0"]),
            KindMatch::Incompatible { .. }
        ));
        assert_eq!(
            match_kind(["wasi:http/incoming-handler@0.2.0"]),
            KindMatch::Unknown
        );
    }
}
