//! LLM suggester: one draft from an OpenAI-compatible chat-completions endpoint, written to the
//! tenant's care policy, and treated like any other draft (the host's reply guards check it;
//! nothing here trusts the model).
//!
//! # Config and secret
//!
//! - `endpoint` (required): the API's base URL (`https://api.openai.com`, a gateway, a local
//!   server); the plugin POSTs to `<endpoint>/v1/chat/completions` (or `<endpoint>/chat/completions`
//!   when it already ends in `/v1`). The plugin declares egress to any host (`*`): which host it
//!   may reach is the tenant's `[egress] allow` list.
//! - `model` (required), `max_tokens` (default 300), `temperature` (default 0.3),
//!   `timeout_ms` (default 8000).
//! - `brand`: the brand's name, for the prompt; `policy`: the tenant's own extra rules (a list
//!   of lines or one text), appended to the built-in ones.
//! - `skip_labels`: default `["spam", "troll", "abuse"]` — no call (and no cost) for these.
//! - secret `api-key`: sent as `Authorization: Bearer …`; never logged or put in an error.
//!
//! # The prompt
//!
//! The system prompt carries the care practice — short and human; own mistakes; answer here
//! (no phone numbers, e-mail addresses or other channels); no sales pitch; never invent facts
//! (order status, refunds, dates); do not guess at the customer's life or repeat their private
//! data; at most N units of the channel's length rule; end with the signature — then the
//! tenant's own rules and the labels the classifiers gave, as context.
//!
//! # The answer
//!
//! `choices[0].message.content`, with quotes, code fences, markdown emphasis, headings, list
//! bullets and a leading `Reply:` removed; the signature appended if missing; shortened to the
//! length rule at a word boundary, keeping the signature (and a closing link) whole.
//!
//! Errors: HTTP 429 → `rate-limited` (with `Retry-After`); 5xx, timeouts and connection
//! failures → `unavailable`; 401/403 → `not-configured` (the key was refused; the message never
//! contains it); other 4xx → `not-configured` naming `endpoint`/`model`; a body that is not the
//! expected JSON → `internal`.

pub mod prompt;
pub mod response;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::prelude::*;

pub use prompt::Settings;

/// Secret holding the API key.
pub const API_KEY: &str = "api-key";

/// The chat-completions URL for a base `endpoint`.
pub fn completions_url(endpoint: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    }
}

struct Llm;

impl ReplySuggester for Llm {
    fn info() -> PluginInfo {
        prompt::CONFIG_KEYS
            .iter()
            .fold(
                PluginInfo::new(
                    "llm-suggester",
                    env!("CARGO_PKG_VERSION"),
                    "Drafts from an OpenAI-compatible chat-completions endpoint with the tenant's care policy in the prompt",
                ),
                |info, key| info.config_key(key),
            )
            .secret(API_KEY)
            .egress("*")
    }

    fn suggest(
        message: Message,
        labels: Vec<Label>,
        context: CallContext,
    ) -> Result<Vec<Draft>, PluginError> {
        let settings = Settings::from_lookup(config::get)?;
        if settings.skips(&labels) {
            return Ok(vec![]);
        }
        let key = config::secret(API_KEY)
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                PluginError::NotConfigured(format!(
                    "secret `{API_KEY}` is not set for this plugin: the chat-completions API key"
                ))
            })?;
        let body = prompt::request_body(&settings, &message, &labels, &context);
        let mut request =
            Request::post_json(&completions_url(&settings.endpoint), &body).bearer(&key);
        request.timeout_ms = Some(settings.timeout_ms);
        let reply = http::send(&request)?;
        let content = response::content(reply.status, &reply.body, reply.retry_after_seconds())?;
        Ok(
            response::draft(&settings, &message, &labels, &context, &content)
                .into_iter()
                .collect(),
        )
    }
}

switchboard_sdk::export_suggester!(Llm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_from_the_base() {
        assert_eq!(
            completions_url("https://api.openai.com"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            completions_url("http://127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
    }
}
