//! A connector that sleeps `delay-ms` (default 1,000) before answering a webhook with no
//! events. It keeps a tenant's webhooks in flight for as long as a test needs, so the host's
//! per-tenant ingress limits can be seen working without racing the clock.

use std::time::Duration;

use switchboard_sdk::prelude::*;

struct Slow;

impl ChannelAdapter for Slow {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "slow-connector",
            "0.1.0",
            "Answers every webhook after a delay",
        )
        .config_key("delay-ms")
    }

    fn channel() -> ChannelInfo {
        ChannelInfo {
            channel: "slow".into(),
            display_name: "Slow".into(),
            length_rule: LengthRule {
                max: 1000,
                unit: LengthUnit::Characters,
                description: "1000 characters".into(),
            },
            capabilities: vec![Capability::Webhooks],
        }
    }

    fn handle_webhook(_request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let ms = config::get("delay-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        std::thread::sleep(Duration::from_millis(ms));
        Ok(WebhookOutcome::Events(Vec::new()))
    }

    fn deliver(_reply: OutboundReply) -> Result<DeliveryReceipt, PluginError> {
        Err(PluginError::InvalidInput(
            "this connector sends nothing".into(),
        ))
    }

    fn measure(text: String) -> u32 {
        u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
    }
}

switchboard_sdk::export_connector!(Slow);
