//! One target per connector: the request goes through the same `handle` function the plugin's
//! `handle-webhook` export calls (signature check, then parsing), natively.
//!
//! Every connector is configured with the secrets below. With the input's sign flag set, the
//! harness adds the signature the platform would send (replacing any the input carries), so
//! mutations of the body reach the parser; without it, the request must not be accepted.

use std::collections::HashMap;

use switchboard_sdk::{HttpRequest, PluginError, WebhookOutcome};

use crate::{Request, Verdict};

/// Where the platforms "call": connectors that sign the URL (Twilio) see this base.
pub const BASE_URL: &str = "https://sb.example";
/// The one secret every connector is configured with.
pub const SECRET: &str = "fuzz-secret";
/// The verify token of the handshake connectors (Meta, generic webhook).
pub const VERIFY_TOKEN: &str = "fuzz-verify-token";
/// The clock (Unix seconds) for connectors that check a timestamp (Slack, X).
pub const NOW: i64 = 1_700_000_000;

fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }
}

/// Decode, sign when asked (`sign` adds the platform's signature to the request), run, and
/// check that only signed POSTs get through when `signed_only`.
fn run(
    data: &[u8],
    signed_only: bool,
    sign: impl Fn(&mut Request),
    handle: impl Fn(&HttpRequest) -> Result<WebhookOutcome, PluginError>,
) -> Verdict {
    let mut input = Request::decode(data);
    if input.sign {
        sign(&mut input);
    }
    let request = HttpRequest {
        method: input.method.to_string(),
        url: format!("{BASE_URL}{}", input.path),
        headers: input.headers.clone(),
        body: input.body.clone(),
    };
    let result = handle(&request);
    if signed_only && !input.sign && input.method == "POST" {
        assert!(
            result.is_err(),
            "an unsigned POST was accepted: {result:?} for {input:?}"
        );
    }
    verdict(result)
}

fn verdict(result: Result<WebhookOutcome, PluginError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Accepted,
        Err(PluginError::Unauthorized(_)) => Verdict::Unauthorized,
        Err(e) => Verdict::Refused(format!("{e:?}")),
    }
}

/// Bluesky: relayed posts, signed `x-signature-256: sha256=<hex>` with the relay secret.
pub fn bluesky(data: &[u8]) -> Verdict {
    use bluesky_connector::{relay, settings};
    let config = settings::Config::from_lookup(lookup(&[("handle", "brand.bsky.social")]));
    let secrets = settings::Secrets::from_lookup(lookup(&[(settings::RELAY_SECRET, SECRET)]));
    run(
        data,
        true,
        |r| {
            let sig = relay::sign(SECRET, &r.body);
            r.set_header(relay::SIGNATURE_HEADER, sig)
        },
        |req| {
            bluesky_connector::handle(
                &config,
                &secrets,
                req,
                Some("did:plc:fuzzbrand".to_string()),
            )
        },
    )
}

fn meta_sign(r: &mut Request) {
    let sig = meta_graph::signature::sign(SECRET, &r.body);
    r.set_header(meta_graph::signature::HEADER, sig);
}

/// Facebook Page: Meta's `x-hub-signature-256`, and the verify-token handshake on GET.
pub fn facebook(data: &[u8]) -> Verdict {
    run(data, true, meta_sign, |req| {
        meta_graph::connector::handle(
            &facebook_connector::SPEC,
            req,
            Some(SECRET),
            Some(VERIFY_TOKEN),
        )
    })
}

/// Instagram: the shared Meta connector with Instagram's spec.
pub fn instagram(data: &[u8]) -> Verdict {
    run(data, true, meta_sign, |req| {
        meta_graph::connector::handle(
            &instagram_connector::SPEC,
            req,
            Some(SECRET),
            Some(VERIFY_TOKEN),
        )
    })
}

/// LINE: `x-line-signature`, base64 HMAC-SHA256 of the body.
pub fn line(data: &[u8]) -> Verdict {
    use line_connector::signature;
    run(
        data,
        true,
        |r| {
            let sig = signature::sign(SECRET, &r.body);
            r.set_header(signature::HEADER, sig)
        },
        |req| line_connector::handle(Some(SECRET), req),
    )
}

/// Mastodon: polled, so only captured statuses are decoded (no signature to check).
pub fn mastodon(data: &[u8]) -> Verdict {
    use mastodon_connector::settings::Config;
    let config = Config::from_lookup(lookup(&[
        ("instance", "https://mastodon.example"),
        ("account", "brand"),
        ("decode_captured", "true"),
    ]));
    run(
        data,
        false,
        |_| {},
        |req| mastodon_connector::handle(&config, req, &mut HashMap::<String, String>::new()),
    )
}

/// Slack: v0 signing over `v0:{timestamp}:{body}`, the timestamp within the skew window.
pub fn slack(data: &[u8]) -> Verdict {
    use slack_connector::{settings, signature};
    let config = settings::Config::from_lookup(lookup(&[]));
    let secrets = settings::Secrets::from_lookup(lookup(&[(settings::SIGNING_SECRET, SECRET)]));
    run(
        data,
        true,
        |r| {
            // The input's own timestamp is kept (the fuzzer explores stale and odd ones).
            let ts = r
                .header(signature::TIMESTAMP_HEADER)
                .map_or_else(|| NOW.to_string(), str::to_string);
            r.set_header(signature::TIMESTAMP_HEADER, ts.clone());
            let sig = signature::sign(SECRET, &ts, &r.body);
            r.set_header(signature::SIGNATURE_HEADER, sig);
        },
        |req| slack_connector::handle(&config, &secrets, req, NOW),
    )
}

/// Telegram: the secret token echoed in `x-telegram-bot-api-secret-token`.
pub fn telegram(data: &[u8]) -> Verdict {
    use telegram_connector::verify;
    let config = telegram_connector::Config::from_lookup(lookup(&[("bot_username", "fuzz_bot")]));
    run(
        data,
        true,
        |r| r.set_header(verify::HEADER, SECRET.to_string()),
        |req| telegram_connector::handle(&config, Some(SECRET), req),
    )
}

/// Twilio SMS: `x-twilio-signature`, HMAC-SHA1 over the URL and the sorted form parameters.
pub fn twilio_sms(data: &[u8]) -> Verdict {
    use twilio_sms_connector::{parse, signature};
    let config = twilio_sms_connector::Config::from_lookup(lookup(&[]));
    run(
        data,
        true,
        |r| {
            let url = format!("{BASE_URL}{}", r.path);
            let sig = signature::sign(SECRET, &url, &parse::form(&r.body));
            r.set_header(signature::HEADER, sig)
        },
        |req| twilio_sms_connector::handle(&config, Some(SECRET), req),
    )
}

/// WhatsApp Cloud API: Meta's signature and handshake, WhatsApp's own parser.
pub fn whatsapp(data: &[u8]) -> Verdict {
    use whatsapp_connector::settings::{APP_SECRET, Secrets, VERIFY_TOKEN as TOKEN_KEY};
    let secrets = Secrets::from_lookup(lookup(&[(APP_SECRET, SECRET), (TOKEN_KEY, VERIFY_TOKEN)]));
    run(data, true, meta_sign, |req| {
        whatsapp_connector::handle(&secrets, req)
    })
}

/// X: Account Activity webhooks (`x-twitter-webhooks-signature: sha256=<base64>`) and the CRC
/// challenge on GET.
pub fn x(data: &[u8]) -> Verdict {
    use x_connector::{settings::Config, signature};
    let config = Config::from_lookup(lookup(&[("user_id", "2244994945")]));
    run(
        data,
        true,
        |r| {
            let sig = signature::sign(SECRET, &r.body);
            r.set_header(signature::SIGNATURE_HEADER, sig)
        },
        |req| {
            x_connector::handle(
                &config,
                Some(SECRET),
                req,
                &mut HashMap::<String, String>::new(),
                NOW * 1000,
            )
        },
    )
}

/// The generic webhook with its default scheme (`x-signature-256: sha256=<hex>`).
pub fn generic_webhook(data: &[u8]) -> Verdict {
    use generic_webhook::settings::{Config, SIGNING_SECRET, Secrets, VERIFY_TOKEN as TOKEN_KEY};
    let config = Config::from_lookup(lookup(&[("channel", "webhook")]));
    let secrets = Secrets::from_lookup(lookup(&[
        (SIGNING_SECRET, SECRET),
        (TOKEN_KEY, VERIFY_TOKEN),
    ]));
    let scheme = config
        .signature_scheme()
        .expect("the default signature scheme is valid");
    run(
        data,
        true,
        |r| {
            let sig = scheme.sign(SECRET, &r.body);
            r.set_header(&scheme.header, sig)
        },
        |req| generic_webhook::handle(&config, &secrets, req),
    )
}

/// The e-mail provider a fuzz input is for: named in its path (`…/postmark`, `…/mailgun`,
/// `…/sendgrid`), Postmark otherwise.
fn email_provider(path: &str) -> &'static str {
    if path.contains("mailgun") {
        "mailgun"
    } else if path.contains("sendgrid") {
        "sendgrid"
    } else {
        "postmark"
    }
}

/// Mailgun signs `timestamp` + `token`, sent as form fields: signing puts the three fields
/// first in the body (the connector reads the first of each), in the body's own encoding.
fn mailgun_sign(r: &mut Request) {
    use email_connector::{auth, mime};
    let timestamp = NOW.to_string();
    let token = "fuzz-token";
    let signature = auth::mailgun_sign(SECRET, &timestamp, token);
    let fields = [
        ("timestamp", timestamp.as_str()),
        ("token", token),
        ("signature", signature.as_str()),
    ];
    let boundary = r
        .header("content-type")
        .filter(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
        .and_then(mime::boundary);
    let mut prefix = Vec::new();
    match boundary {
        Some(b) => {
            for (name, value) in fields {
                prefix.extend_from_slice(
                    format!(
                        "--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    )
                    .as_bytes(),
                );
            }
        }
        None => {
            for (name, value) in fields {
                prefix.extend_from_slice(format!("{name}={value}&").as_bytes());
            }
        }
    }
    prefix.extend_from_slice(&r.body);
    r.body = prefix;
}

/// E-mail: Postmark and SendGrid posts with Basic auth, Mailgun's signed forms; the provider
/// comes from the path.
pub fn email(data: &[u8]) -> Verdict {
    use base64::Engine as _;
    use email_connector::{
        Config, INBOUND_PASSWORD, INBOUND_USERNAME, Secrets, WEBHOOK_SIGNING_KEY,
    };
    let provider = email_provider(&Request::decode(data).path);
    let config = Config::from_lookup(lookup(&[
        ("provider", provider),
        ("trusted_authserv_ids", "mx.fuzz.example"),
    ]));
    let secrets = Secrets::from_lookup(lookup(&[
        (INBOUND_USERNAME, "fuzz"),
        (INBOUND_PASSWORD, SECRET),
        (WEBHOOK_SIGNING_KEY, SECRET),
    ]));
    run(
        data,
        true,
        |r| {
            if provider == "mailgun" {
                mailgun_sign(r);
            } else {
                let credentials = format!("fuzz:{SECRET}");
                r.set_header(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(credentials)
                    ),
                );
            }
        },
        |req| email_connector::handle(&config, &secrets, req, NOW * 1000),
    )
}
