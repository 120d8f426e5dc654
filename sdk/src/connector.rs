//! The connector side of the SDK: the [`ChannelAdapter`] trait and its export glue.

use crate::bindings::connector::exports::switchboard::plugin::{channel, channel_answers};
pub use channel::{
    Capability, ChannelInfo, DeliveryReceipt, Event, HttpRequest, HttpResponse, PollBatch,
    SkippedEvent, WebhookOutcome,
};
pub use channel_answers::AnsweredWebhook;

use crate::{Message, OutboundReply, PluginError};

/// A channel connector: one network's webhooks and API.
pub trait ChannelAdapter {
    fn info() -> crate::PluginInfo;
    fn channel() -> ChannelInfo;
    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError>;
    /// Networks that are pushed rather than pulled keep this default.
    fn poll(_cursor: Option<String>) -> Result<PollBatch, PluginError> {
        Err(PluginError::InvalidInput(
            "this connector does not poll".into(),
        ))
    }
    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError>;
    fn measure(text: String) -> u32;
    /// [`Self::handle_webhook`] with the answer the platform expects once the events are stored
    /// (Twilio's empty TwiML, Discord's deferred response). The default gives none, and the host
    /// answers `200` (or the tenant's `[connectors.ack]`).
    fn answer_webhook(
        request: HttpRequest,
    ) -> Result<(WebhookOutcome, Option<HttpResponse>), PluginError> {
        Self::handle_webhook(request).map(|outcome| (outcome, None))
    }
    /// Channel names besides [`Self::channel`]'s that messages may carry (a provider of several
    /// networks); the host replaces any undeclared one.
    fn extra_channels() -> Vec<String> {
        Vec::new()
    }
}

impl HttpRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HttpResponse {
    /// A response with a plain-text body.
    pub fn text(status: u16, body: &str) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
    /// A response with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }
}

impl Event {
    pub fn skipped(event_type: Option<&str>, reason: &str) -> Self {
        Event::Skipped(SkippedEvent {
            event_type: event_type.map(Into::into),
            reason: reason.into(),
        })
    }
}

impl From<Message> for Event {
    fn from(m: Message) -> Self {
        Event::Message(m)
    }
}

impl<T: ChannelAdapter> channel::Guest for T {
    fn about() -> crate::PluginInfo {
        T::info()
    }
    fn info() -> ChannelInfo {
        T::channel()
    }
    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        T::handle_webhook(request)
    }
    fn poll(cursor: Option<String>) -> Result<PollBatch, PluginError> {
        T::poll(cursor)
    }
    fn deliver(reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        T::deliver(reply)
    }
    fn measure(text: String) -> u32 {
        T::measure(text)
    }
}

impl<T: ChannelAdapter> channel_answers::Guest for T {
    fn handle_webhook(request: HttpRequest) -> Result<AnsweredWebhook, PluginError> {
        T::answer_webhook(request).map(|(outcome, acknowledgement)| AnsweredWebhook {
            outcome,
            acknowledgement,
        })
    }
    fn extra_channels() -> Vec<String> {
        T::extra_channels()
    }
}

/// Export a [`ChannelAdapter`] implementation as this component's connector.
/// `init = f` also exports `f` as its pre-initialisation (see the crate docs).
#[macro_export]
macro_rules! export_connector {
    ($t:ident, init = $init:path) => {
        $crate::export_connector!($t);
        $crate::export_init!($init);
    };
    ($t:ident) => {
        // Only a wasm build is a component; native builds (tests, clippy) skip the exports.
        #[cfg(target_arch = "wasm32")]
        mod __switchboard_connector_exports {
            use super::*;
            $crate::bindings::connector::__switchboard_export_connector_world!($t with_types_in $crate::bindings::connector);
        }
        // Native builds: keep the implementation "used" so lints stay meaningful.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = <$t as $crate::ChannelAdapter>::info;
            let _ = <$t as $crate::ChannelAdapter>::channel;
            let _ = <$t as $crate::ChannelAdapter>::handle_webhook;
            let _ = <$t as $crate::ChannelAdapter>::poll;
            let _ = <$t as $crate::ChannelAdapter>::deliver;
            let _ = <$t as $crate::ChannelAdapter>::measure;
            let _ = <$t as $crate::ChannelAdapter>::answer_webhook;
            let _ = <$t as $crate::ChannelAdapter>::extra_channels;
        };
    };
}
