//! A connector built against `switchboard:plugin@0.1.0` exactly as it was released (`wit/` here
//! is a frozen copy: never update it). Hosts of any later `0.1.x` must load and run it: that is
//! the contract's compatibility promise, and this fixture is its test.
//!
//! Its webhook turns the body's text into one message that claims the channel `whatsapp`,
//! which a 0.1.0 connector cannot declare, so the host must stamp its own channel over it.

wit_bindgen::generate!({ path: "wit", world: "switchboard:plugin/channel-adapter@0.1.0", generate_all });

use exports::switchboard::plugin::channel::{
    ChannelInfo, DeliveryReceipt, Event, Guest, HttpRequest, PollBatch, WebhookOutcome,
};
use switchboard::plugin::types::{
    Author, LengthRule, LengthUnit, Message, MessageAction, Origin, OutboundReply, PluginError,
    PluginInfo, Visibility,
};

// Exported only in the wasm build.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Old;

impl Guest for Old {
    fn about() -> PluginInfo {
        PluginInfo {
            name: "contract-0-1-0".into(),
            version: "0.1.0".into(),
            description: "A connector from the first release of the contract".into(),
            vendor: "switchboard tests".into(),
            egress: vec![],
            config_keys: vec![],
            secrets: vec![],
        }
    }

    fn info() -> ChannelInfo {
        ChannelInfo {
            channel: "old".into(),
            display_name: "Old".into(),
            length_rule: LengthRule {
                max: 100,
                unit: LengthUnit::Characters,
                description: "100 characters".into(),
            },
            capabilities: vec![],
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let text = String::from_utf8(request.body)
            .map_err(|_| PluginError::InvalidInput("body is not UTF-8".into()))?;
        Ok(WebhookOutcome::Events(vec![Event::Message(Message {
            tenant: String::new(),
            channel: "whatsapp".into(),
            external_id: format!("old-{}", text.len()),
            conversation_key: "c".into(),
            in_reply_to: None,
            author: Author {
                id: "u".into(),
                handle: None,
                display_name: None,
            },
            text,
            language: None,
            visibility: Visibility::Private,
            origin: Origin::DirectMessage,
            received_at: 0,
            attachments: vec![],
            action: MessageAction::Created,
            extra: vec![],
        })]))
    }

    fn poll(_cursor: Option<String>) -> Result<PollBatch, PluginError> {
        Err(PluginError::InvalidInput("no polling".into()))
    }

    fn deliver(_reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        Err(PluginError::Rejected("sends nothing".into()))
    }

    fn measure(text: String) -> u32 {
        u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
    }
}

#[cfg(target_arch = "wasm32")]
export!(Old);
