//! The tenant's configuration and secrets, read once per call by the trait impl and validated
//! here without touching the host.

use switchboard_sdk::PluginError;

use crate::signature::{Encoding, SignatureScheme};

/// Channel name used when `channel` is not configured.
pub const DEFAULT_CHANNEL: &str = "webhook";
/// Signature header used when `signature_header` is not configured.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-signature-256";
/// Signature prefix used when `signature_prefix` is not configured.
pub const DEFAULT_SIGNATURE_PREFIX: &str = "sha256=";
/// Length limit used when `max_length` is not configured (or not a positive integer).
pub const DEFAULT_MAX_LENGTH: u32 = 1000;

/// Every config key the plugin reads.
pub const CONFIG_KEYS: [&str; 6] = [
    "channel",
    "signature_header",
    "signature_prefix",
    "signature_encoding",
    "max_length",
    "deliver_url",
];
/// The secret holding the HMAC key for inbound and outbound signatures.
pub const SIGNING_SECRET: &str = "signing-secret";
/// The secret a `GET` handshake must present as `verify_token`.
pub const VERIFY_TOKEN: &str = "verify-token";

/// The raw config values, as the host returned them.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub channel: Option<String>,
    pub signature_header: Option<String>,
    pub signature_prefix: Option<String>,
    pub signature_encoding: Option<String>,
    pub max_length: Option<String>,
    pub deliver_url: Option<String>,
}

/// The secrets the plugin reads.
#[derive(Clone, Default)]
pub struct Secrets {
    pub signing_secret: Option<String>,
    pub verify_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret values, not even in debug output.
        f.debug_struct("Secrets")
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<set>"),
            )
            .field("verify_token", &self.verify_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A config value as text: a JSON string is unquoted, anything else is taken verbatim.
fn text(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => s,
        _ => raw.to_string(),
    }
}

/// A config value as trimmed text, `None` when absent or blank.
fn trimmed(raw: Option<&String>) -> Option<String> {
    raw.map(|r| text(r).trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Config {
    /// Read every key through `get` (the trait impl passes `config::get`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Config {
            channel: get("channel"),
            signature_header: get("signature_header"),
            signature_prefix: get("signature_prefix"),
            signature_encoding: get("signature_encoding"),
            max_length: get("max_length"),
            deliver_url: get("deliver_url"),
        }
    }

    /// The channel name stamped on messages: `channel` (lowercased), or `webhook` when it is
    /// unset. The host requires lowercase kebab-case of at most 128 bytes.
    pub fn checked_channel_name(&self) -> Result<String, PluginError> {
        let Some(name) = trimmed(self.channel.as_ref()) else {
            return Ok(DEFAULT_CHANNEL.to_string());
        };
        let name = name.to_ascii_lowercase();
        let valid = name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(PluginError::NotConfigured(format!(
                "config `channel` must be lowercase kebab-case (a-z, 0-9, `-`, at most 128 \
                 bytes), got `{name}`"
            )));
        }
        Ok(name)
    }

    /// The channel name for `info`, which cannot report errors: an invalid `channel` falls
    /// back to `webhook` (and `handle-webhook` reports it as not configured).
    pub fn channel_name(&self) -> String {
        self.checked_channel_name()
            .unwrap_or_else(|_| DEFAULT_CHANNEL.to_string())
    }

    /// The length limit: `max_length` if it is a positive integer, else 1000. (`info` and
    /// `measure` cannot report errors, so a malformed value falls back to the default.)
    pub fn max_length(&self) -> u32 {
        trimmed(self.max_length.as_ref())
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_LENGTH)
    }

    /// The signature scheme used for both inbound verification and outbound signing.
    pub fn signature_scheme(&self) -> Result<SignatureScheme, PluginError> {
        let header = match self.signature_header.as_ref() {
            None => DEFAULT_SIGNATURE_HEADER.to_string(),
            Some(raw) => {
                let h = text(raw).trim().to_ascii_lowercase();
                if h.is_empty() || !h.bytes().all(is_header_char) {
                    return Err(PluginError::NotConfigured(format!(
                        "config `signature_header` must be an HTTP header name, got `{h}`"
                    )));
                }
                h
            }
        };
        // The prefix is not trimmed and may be empty (e.g. a bare base64 signature).
        let prefix = self
            .signature_prefix
            .as_ref()
            .map(|raw| text(raw))
            .unwrap_or_else(|| DEFAULT_SIGNATURE_PREFIX.to_string());
        let encoding = match trimmed(self.signature_encoding.as_ref()) {
            None => Encoding::Hex,
            Some(e) => match e.to_ascii_lowercase().as_str() {
                "hex" => Encoding::Hex,
                "base64" => Encoding::Base64,
                _ => {
                    return Err(PluginError::NotConfigured(format!(
                        "config `signature_encoding` must be `hex` or `base64`, got `{e}`"
                    )));
                }
            },
        };
        Ok(SignatureScheme {
            header,
            prefix,
            encoding,
        })
    }

    /// The URL replies are POSTed to.
    pub fn deliver_url(&self) -> Result<String, PluginError> {
        let url = trimmed(self.deliver_url.as_ref()).ok_or_else(|| {
            PluginError::NotConfigured(
                "config `deliver_url` is not set: it is the URL replies are POSTed to".into(),
            )
        })?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PluginError::NotConfigured(format!(
                "config `deliver_url` must be an http:// or https:// URL, got `{url}`"
            )));
        }
        Ok(url)
    }
}

/// A character allowed in an HTTP header name (RFC 9110 `tchar`).
fn is_header_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Secrets {
    /// Read both secrets through `get` (the trait impl passes `config::secret`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        Secrets {
            signing_secret: get(SIGNING_SECRET),
            verify_token: get(VERIFY_TOKEN),
        }
    }

    /// The HMAC key; an empty secret counts as not set.
    pub fn signing_secret(&self) -> Result<&str, PluginError> {
        self.signing_secret.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            PluginError::NotConfigured(format!(
                "secret `{SIGNING_SECRET}` is not set for this plugin: it is the HMAC-SHA256 key \
                 that signs webhook bodies and replies"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_apply_when_nothing_is_configured() {
        let c = config(&[]);
        assert_eq!(c.channel_name(), "webhook");
        assert_eq!(c.max_length(), 1000);
        let s = c.signature_scheme().unwrap();
        assert_eq!(s.header, "x-signature-256");
        assert_eq!(s.prefix, "sha256=");
        assert_eq!(s.encoding, Encoding::Hex);
        assert!(
            matches!(c.deliver_url(), Err(PluginError::NotConfigured(m)) if m.contains("deliver_url"))
        );
    }

    #[test]
    fn configured_values_are_used_and_json_strings_unquoted() {
        let c = config(&[
            ("channel", "\"acme-forms\""),
            ("max_length", "280"),
            ("signature_header", "X-Line-Signature"),
            ("signature_prefix", ""),
            ("signature_encoding", "Base64"),
            ("deliver_url", " https://example.com/hook "),
        ]);
        assert_eq!(c.channel_name(), "acme-forms");
        assert_eq!(c.max_length(), 280);
        let s = c.signature_scheme().unwrap();
        assert_eq!(s.header, "x-line-signature");
        assert_eq!(s.prefix, "");
        assert_eq!(s.encoding, Encoding::Base64);
        assert_eq!(c.deliver_url().unwrap(), "https://example.com/hook");
    }

    #[test]
    fn malformed_values_are_reported_or_defaulted() {
        let c = config(&[
            ("max_length", "lots"),
            ("signature_encoding", "base32"),
            ("deliver_url", "ftp://example.com"),
        ]);
        assert_eq!(c.max_length(), 1000);
        assert!(
            matches!(c.signature_scheme(), Err(PluginError::NotConfigured(m)) if m.contains("base32"))
        );
        assert!(
            matches!(c.deliver_url(), Err(PluginError::NotConfigured(m)) if m.contains("ftp://"))
        );
        let bad_header = config(&[("signature_header", "x sig")]);
        assert!(matches!(
            bad_header.signature_scheme(),
            Err(PluginError::NotConfigured(_))
        ));
        assert_eq!(config(&[("max_length", "0")]).max_length(), 1000);
        let bad_channel = config(&[("channel", "My Forms")]);
        assert_eq!(bad_channel.channel_name(), "webhook");
        assert!(
            matches!(bad_channel.checked_channel_name(), Err(PluginError::NotConfigured(m)) if m.contains("`my forms`"))
        );
        assert_eq!(
            config(&[("channel", "Acme-2")])
                .checked_channel_name()
                .unwrap(),
            "acme-2"
        );
    }

    #[test]
    fn empty_signing_secret_counts_as_missing_and_debug_hides_secrets() {
        let s = Secrets {
            signing_secret: Some(String::new()),
            verify_token: Some("tok3n".into()),
        };
        assert!(
            matches!(s.signing_secret(), Err(PluginError::NotConfigured(m)) if m.contains("`signing-secret` is not set"))
        );
        let debug = format!("{s:?}");
        assert!(!debug.contains("tok3n"));
        assert!(debug.contains("<set>"));
    }
}
