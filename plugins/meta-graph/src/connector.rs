//! The whole connector for a Messenger Platform network (Facebook Page, Instagram), written once.
//!
//! Facebook and Instagram differ only in names, the webhook `object`, their `changes[]` fields,
//! their length rules and where a public reply goes; a connector crate describes those in a
//! [`Network`] and exports [`Connector<N>`], which does the rest: the handshake, the signature,
//! the entry walk, routing and sending replies, and remembering delivered replies.

use std::marker::PhantomData;

use serde_json::Value;
use switchboard_sdk::prelude::*;

use crate::graph::{self, Graph, Recipient, node_id};
use crate::messaging::{self, Account};
use crate::webhook::{Body, id};
use crate::{secret, setting};

/// How a reply's length is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values.
    Characters,
    /// UTF-8 bytes.
    Bytes,
}

/// One route's length limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u32,
    pub unit: Unit,
    /// What the limit belongs to, for the refusal: `a Messenger message`.
    pub what: &'static str,
}

impl Limit {
    /// At most `max` Unicode scalar values.
    pub const fn characters(max: u32, what: &'static str) -> Limit {
        Limit {
            max,
            unit: Unit::Characters,
            what,
        }
    }

    /// At most `max` UTF-8 bytes.
    pub const fn bytes(max: u32, what: &'static str) -> Limit {
        Limit {
            max,
            unit: Unit::Bytes,
            what,
        }
    }

    /// `invalid-input` when `text` is longer than the limit.
    pub fn check(&self, text: &str) -> Result<(), PluginError> {
        let (length, unit) = match self.unit {
            Unit::Characters => (crate::char_count(text), "characters"),
            Unit::Bytes => (crate::utf8_bytes(text), "UTF-8 bytes"),
        };
        if length > self.max {
            return Err(PluginError::InvalidInput(format!(
                "the reply is {length} {unit}; {} allows {}",
                self.what, self.max
            )));
        }
        Ok(())
    }

    /// The length of `text` in this limit's unit.
    pub fn measure(&self, text: &str) -> u32 {
        match self.unit {
            Unit::Characters => crate::char_count(text),
            Unit::Bytes => crate::utf8_bytes(text),
        }
    }
}

/// A kind of public message (the `kind` extra an inbound message carries) that can be answered
/// in public under it, or in private through the Send API.
#[derive(Debug, Clone, Copy)]
pub struct Answerable {
    /// `comment`, `post`.
    pub kind: &'static str,
    /// The extra key holding the id to answer under: `comment-id`, `post-id`.
    pub id_key: &'static str,
    /// How a private reply addresses it.
    pub private: fn(String) -> Recipient,
}

/// What one Messenger Platform network is.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Plugin name, also the channel name stamped on messages: `facebook`.
    pub name: &'static str,
    /// The connector crate's version.
    pub version: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub egress: &'static [&'static str],
    /// The webhook `object` this network subscribes to: `page`, `instagram`.
    pub object: &'static str,
    /// Who refuses another object: `the Facebook Page connector`.
    pub connector: &'static str,
    /// The `extra` key naming the receiving account: `page-id`.
    pub account_key: &'static str,
    /// The entry `id`'s meaning, for a skip: `page`, `Instagram account`.
    pub account_noun: &'static str,
    /// What a standby event takes away: `Messenger thread`.
    pub thread_noun: &'static str,
    /// Config key of the sending account (default `me`): `page_id`.
    pub account_config: &'static str,
    /// Secret holding the token replies are sent with, and what it is.
    pub token_secret: &'static str,
    pub token_purpose: &'static str,
    /// Private (Send API) and public reply limits; `measure` applies the private one, the
    /// stricter, since it cannot tell which kind of reply a text is for.
    pub private_limit: Limit,
    pub public_limit: Limit,
    pub length_description: &'static str,
    /// Public messages that can be answered, and the Graph edge a public reply is posted to.
    pub answerable: &'static [Answerable],
    pub reply_edge: &'static str,
    /// Refusal for a public reply to a direct message.
    pub private_only: &'static str,
    /// With no `kind`, a public reply goes under this extra id, else only under `in-reply-to`.
    pub fallback_id_key: Option<&'static str>,
    /// Turns one `changes[]` item into an event: (change, account id, entry `time`).
    pub change_event: fn(&Value, &str, Option<&Value>) -> Event,
}

/// A network, as a type, so that [`Connector<N>`] can be exported as a component.
pub trait Network {
    const SPEC: Spec;
}

/// Config keys every Messenger Platform connector reads, then its account key.
pub fn config_keys(spec: &Spec) -> [&'static str; 3] {
    ["api_base", "graph_version", spec.account_config]
}

/// Secrets every Messenger Platform connector reads, then its token.
pub fn secrets(spec: &Spec) -> [&'static str; 3] {
    [crate::APP_SECRET, crate::VERIFY_TOKEN, spec.token_secret]
}

/// The plugin's identity.
pub fn plugin_info(spec: &Spec) -> PluginInfo {
    let info = PluginInfo::new(spec.name, spec.version, spec.description);
    let info = spec.egress.iter().fold(info, |i, h| i.egress(h));
    let info = config_keys(spec).iter().fold(info, |i, k| i.config_key(k));
    secrets(spec).iter().fold(info, |i, s| i.secret(s))
}

/// The channel's self-description.
pub fn channel_info(spec: &Spec) -> ChannelInfo {
    ChannelInfo {
        channel: spec.name.into(),
        display_name: spec.display_name.into(),
        length_rule: LengthRule {
            max: spec.private_limit.max,
            unit: match spec.private_limit.unit {
                Unit::Characters => LengthUnit::Characters,
                Unit::Bytes => LengthUnit::Bytes,
            },
            description: spec.length_description.into(),
        },
        capabilities: vec![
            Capability::PublicReplies,
            Capability::PrivateMessages,
            Capability::Threading,
            Capability::Webhooks,
            Capability::Edits,
            Capability::Deletions,
        ],
    }
}

/// Verify and decode one request given the tenant's secrets.
pub fn handle(
    spec: &Spec,
    request: &HttpRequest,
    app_secret: Option<&str>,
    verify_token: Option<&str>,
) -> Result<WebhookOutcome, PluginError> {
    match crate::read_request(request, app_secret, verify_token)? {
        crate::Inbound::Answer(outcome) => Ok(outcome),
        crate::Inbound::Body(body) => events(spec, body).map(WebhookOutcome::Events),
    }
}

/// Turn a verified, classified body into events: every entry's `messaging[]`, `standby[]` and
/// `changes[]`, in order.
pub fn events(spec: &Spec, body: Body) -> Result<Vec<Event>, PluginError> {
    let (object, entries) = match body {
        Body::NotADelivery(reason) => return Ok(vec![Event::skipped(None, &reason)]),
        Body::Delivery { object, entries } => (object, entries),
    };
    if object != spec.object {
        return Ok(vec![Event::skipped(
            Some(&object),
            &format!(
                "webhook object `{object}` is not handled by {} (it expects `{}`)",
                spec.connector, spec.object
            ),
        )]);
    }
    let account = Account {
        channel: spec.name,
        account_key: spec.account_key,
    };
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(account_id) = id(entry.get("id")) else {
            out.push(Event::skipped(
                None,
                &format!("entry at index {index} has no {} `id`", spec.account_noun),
            ));
            continue;
        };
        let time = entry.get("time");
        for event in list(entry, "messaging") {
            out.push(messaging::normalise(event, account, &account_id, time));
        }
        for _ in list(entry, "standby") {
            out.push(Event::skipped(
                Some("standby"),
                &format!(
                    "standby channel: another app owns this {} (handover protocol), so this \
                     connector must not answer it",
                    spec.thread_noun
                ),
            ));
        }
        for change in list(entry, "changes") {
            out.push((spec.change_event)(change, &account_id, time));
        }
    }
    crate::webhook::check_count(&out)?;
    Ok(out)
}

fn list<'a>(entry: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    entry
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The non-empty value of `key` in a reply's `extra` (what the answered message carried).
pub fn extra<'a>(reply: &'a OutboundReply, key: &str) -> Option<&'a str> {
    reply
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Send API message to a page- or Instagram-scoped user id, or a private reply to a
    /// comment or post.
    Message(Recipient),
    /// Public reply under this comment or post.
    Public(String),
}

/// Decide the route from the answered message's `kind` extra and the reply's visibility.
/// Without a known kind, a private reply goes to the recipient's id and a public one under
/// the network's fallback id or `in-reply-to`.
pub fn route(spec: &Spec, reply: &OutboundReply) -> Result<Route, PluginError> {
    let kind = extra(reply, "kind").unwrap_or("");
    let private = reply.visibility == Visibility::Private;
    let under = |key: &str, noun: &str| -> Result<String, PluginError> {
        let id = extra(reply, key)
            .or(reply.in_reply_to.as_deref())
            .ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "the reply has neither extra `{key}` nor `in-reply-to`: no {noun} to answer"
                ))
            })?;
        Ok(node_id(key, id)?.to_string())
    };
    if let Some(a) = spec.answerable.iter().find(|a| a.kind == kind) {
        let target = under(a.id_key, a.kind)?;
        return Ok(if private {
            Route::Message((a.private)(target))
        } else {
            Route::Public(target)
        });
    }
    match (kind, private) {
        ("message", false) => Err(PluginError::InvalidInput(spec.private_only.into())),
        (_, true) => Ok(Route::Message(Recipient::Id(
            node_id("recipient id", &reply.recipient.id)?.to_string(),
        ))),
        (_, false) => match spec.fallback_id_key {
            Some(key) => Ok(Route::Public(under(key, "comment")?)),
            None => {
                let id = reply.in_reply_to.as_deref().ok_or_else(|| {
                    PluginError::InvalidInput(
                        "a public reply needs the comment or post it answers (`in-reply-to`)"
                            .into(),
                    )
                })?;
                Ok(Route::Public(node_id("in-reply-to", id)?.to_string()))
            }
        },
    }
}

/// Build the request for `reply` sent as `account`; an empty text or one over the route's
/// limit is `invalid-input` (Graph would refuse it).
pub fn build(
    spec: &Spec,
    graph: &Graph,
    account: &str,
    token: &str,
    reply: &OutboundReply,
) -> Result<http::Request, PluginError> {
    let route = route(spec, reply)?;
    if reply.text.trim().is_empty() {
        return Err(PluginError::InvalidInput("the reply text is empty".into()));
    }
    Ok(match route {
        Route::Message(recipient) => {
            spec.private_limit.check(&reply.text)?;
            graph::send_message_request(graph, account, token, &recipient, &reply.text)
        }
        Route::Public(object) => {
            spec.public_limit.check(&reply.text)?;
            graph::comment_request(graph, &object, spec.reply_edge, token, &reply.text)
        }
    })
}

/// Send one reply through the host; a retried idempotency key returns the first receipt.
pub fn deliver(spec: &Spec, reply: &OutboundReply) -> Result<DeliveryReceipt, PluginError> {
    let graph = Graph::from_lookup(setting)?;
    let account = setting(spec.account_config).unwrap_or_else(|| "me".into());
    let account = node_id(&format!("config `{}`", spec.account_config), &account)?.to_string();
    let token = secret(spec.token_secret).ok_or_else(|| {
        PluginError::NotConfigured(format!(
            "secret `{}` is not set for this plugin: it is {}",
            spec.token_secret, spec.token_purpose
        ))
    })?;
    let request = build(spec, &graph, &account, &token, reply)?;
    let key = format!("delivered:{}", reply.idempotency_key);
    if let Some(id) = kv::get_string(&key).filter(|id| !id.is_empty()) {
        return Ok(DeliveryReceipt {
            external_id: id,
            url: None,
        });
    }
    let receipt = graph::receipt(&http::send(&request)?)?;
    // Best effort: a failed write only loses the duplicate protection for this key.
    let _ = kv::set(&key, receipt.external_id.as_bytes());
    Ok(receipt)
}

/// The connector for network `N`; a connector crate exports it with
/// `switchboard_sdk::export_connector!`.
pub struct Connector<N>(PhantomData<N>);

impl<N: Network> ChannelAdapter for Connector<N> {
    fn info() -> PluginInfo {
        plugin_info(&N::SPEC)
    }

    fn channel() -> ChannelInfo {
        channel_info(&N::SPEC)
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        handle(
            &N::SPEC,
            &request,
            secret(crate::APP_SECRET).as_deref(),
            secret(crate::VERIFY_TOKEN).as_deref(),
        )
    }

    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        deliver(&N::SPEC, &reply)
    }

    fn measure(text: String) -> u32 {
        N::SPEC.private_limit.measure(&text)
    }
}

/// Declare a network type `$network` described by `$spec` and export [`Connector`] over it as
/// this component's connector, named `$connector`.
#[macro_export]
macro_rules! export_network {
    ($connector:ident, $network:ident, $spec:expr) => {
        /// The network, as a type.
        pub struct $network;

        impl $crate::connector::Network for $network {
            const SPEC: $crate::connector::Spec = $spec;
        }

        /// The connector.
        pub type $connector = $crate::connector::Connector<$network>;

        $crate::switchboard_sdk::export_connector!($connector);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{RECIPIENT, TEXT, build, header, json_body, only_skip, reply};
    use serde_json::json;

    fn no_changes(_: &Value, _: &str, _: Option<&Value>) -> Event {
        Event::skipped(Some("change"), "test network")
    }

    const TEST: Spec = Spec {
        name: "testnet",
        version: "0.0.1",
        display_name: "Test",
        description: "a test network",
        egress: &["graph.facebook.com"],
        object: "page",
        connector: "the test connector",
        account_key: "page-id",
        account_noun: "test account",
        thread_noun: "test thread",
        account_config: "page_id",
        token_secret: "page-access-token",
        token_purpose: "the test token",
        private_limit: Limit::bytes(40, "a test message"),
        public_limit: Limit::characters(40, "a test comment"),
        length_description: "40 bytes",
        answerable: &[Answerable {
            kind: "comment",
            id_key: "comment-id",
            private: Recipient::CommentId,
        }],
        reply_edge: "comments",
        private_only: "test messages are private",
        fallback_id_key: None,
        change_event: no_changes,
    };

    #[test]
    fn a_private_reply_is_a_send_api_message_with_the_token_as_bearer() {
        let r = build(&TEST, "me", "TOK", &reply(Visibility::Private, None, &[])).unwrap();
        assert_eq!(r.url, "https://graph.facebook.com/v21.0/me/messages");
        assert_eq!(header(&r, "authorization"), Some("Bearer TOK"));
        assert!(!r.url.contains("TOK"));
        assert_eq!(
            json_body(&r),
            json!({"recipient": {"id": RECIPIENT}, "messaging_type": "RESPONSE", "message": {"text": TEXT}})
        );
        let public = reply(Visibility::Public, None, &[("kind", "message")]);
        assert!(matches!(
            build(&TEST, "me", "TOK", &public),
            Err(PluginError::InvalidInput(m)) if m == "test messages are private"
        ));
    }

    #[test]
    fn limits_count_in_their_unit_and_name_what_they_limit() {
        let mut dm = reply(Visibility::Private, None, &[]);
        dm.text = "é".repeat(20);
        assert!(build(&TEST, "me", "T", &dm).is_ok());
        dm.text.push('!');
        assert!(matches!(
            build(&TEST, "me", "T", &dm),
            Err(PluginError::InvalidInput(m)) if m == "the reply is 41 UTF-8 bytes; a test message allows 40"
        ));
        let mut comment = reply(Visibility::Public, Some("1_2"), &[("kind", "comment")]);
        comment.text = "é".repeat(40);
        assert!(build(&TEST, "me", "T", &comment).is_ok());
        comment.text.push('é');
        assert!(matches!(
            build(&TEST, "me", "T", &comment),
            Err(PluginError::InvalidInput(m)) if m == "the reply is 41 characters; a test comment allows 40"
        ));
        assert_eq!(TEST.private_limit.measure("héllo"), 6);
        assert_eq!(TEST.public_limit.measure("héllo"), 5);
    }

    #[test]
    fn entries_are_walked_in_order_and_other_objects_skipped() {
        let run = |body: Value| events(&TEST, crate::webhook::envelope(&body).unwrap()).unwrap();
        let (t, r) = only_skip(&run(json!({"object": "instagram", "entry": []})));
        assert_eq!(t.as_deref(), Some("instagram"));
        assert_eq!(
            r,
            "webhook object `instagram` is not handled by the test connector (it expects `page`)"
        );
        let (_, r) = only_skip(&run(json!({"object": "page", "entry": [{"time": 1}]})));
        assert_eq!(r, "entry at index 0 has no test account `id`");
        let events = run(json!({"object": "page", "entry": [{"id": "1",
            "messaging": [{"sender": {"id": "7"}, "timestamp": 1, "message": {"mid": "m1", "text": "a"}}],
            "standby": [{}],
            "changes": [{"field": "x"}]}]}));
        assert!(
            matches!(&events[0], Event::Message(m) if m.channel == "testnet" && m.conversation_key == "1:7")
        );
        assert!(
            matches!(&events[1], Event::Skipped(s) if s.reason.contains("owns this test thread"))
        );
        assert!(matches!(&events[2], Event::Skipped(s) if s.reason == "test network"));
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn identity_comes_from_the_spec() {
        let p = plugin_info(&TEST);
        assert_eq!(p.config_keys.join(" "), "api_base graph_version page_id");
        assert_eq!(
            p.secrets.join(" "),
            "app-secret verify-token page-access-token"
        );
        let c = channel_info(&TEST);
        assert_eq!(
            (c.length_rule.max, c.length_rule.unit),
            (40, LengthUnit::Bytes)
        );
        assert_eq!(<Connector<Test> as ChannelAdapter>::measure("日".into()), 3);
    }

    struct Test;

    impl Network for Test {
        const SPEC: Spec = TEST;
    }
}
