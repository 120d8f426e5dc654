//! Write the seed corpus `fuzz/seeds/<target>/` from `../shared/data` and the repo's examples.
//!
//! `cargo run -p switchboard-fuzz-targets --bin make-seeds` (from anywhere in the repo). The
//! seeds are committed; rerun this when the shared data or the input format changes.

use std::path::{Path, PathBuf};

use switchboard_fuzz_targets::Request;
use switchboard_fuzz_targets::connectors::VERIFY_TOKEN;

/// Platform payloads larger than this are left out, to keep the committed corpus small.
const MAX_SEED_BYTES: u64 = 16 * 1024;

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = repo.join("../shared/data/fixtures");
    let out = repo.join("fuzz/seeds");
    let folders = [
        ("bluesky", "connector_bluesky"),
        ("meta_messenger", "connector_facebook"),
        ("instagram", "connector_instagram"),
        ("line", "connector_line"),
        ("mastodon", "connector_mastodon"),
        ("slack", "connector_slack"),
        ("telegram", "connector_telegram"),
        ("whatsapp", "connector_whatsapp"),
        ("twitter_x", "connector_x"),
        ("zendesk_intercom", "connector_generic_webhook"),
    ];
    for (folder, target) in folders {
        for file in files(&shared.join(folder))? {
            if std::fs::metadata(&file)?.len() > MAX_SEED_BYTES {
                continue;
            }
            let body = std::fs::read(&file)?;
            let name = file
                .strip_prefix(shared.join(folder))?
                .to_string_lossy()
                .replace('/', "__");
            write(
                &out,
                target,
                &name,
                &post(&format!("/hooks/fuzz/{folder}"), "application/json", body),
            )?;
        }
    }
    // The acme example's webhook deliveries: the generic webhook's own format.
    let acme = std::fs::read_to_string(repo.join("examples/acme/inbound.jsonl"))?;
    for (i, line) in acme.lines().take(12).enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let body = v["body"].as_str().unwrap_or_default().as_bytes().to_vec();
        let seed = post("/hooks/acme/webhook", "application/json", body);
        write(
            &out,
            "connector_generic_webhook",
            &format!("acme-{i}.json"),
            &seed,
        )?;
        write(&out, "ingress", &format!("acme-{i}.json"), &seed)?;
    }
    // The rest of the router: handshake, operations and API routes, with and without tokens.
    let routes = [
        (
            "GET",
            "/hooks/acme/webhook?hub.mode=subscribe&hub.verify_token=acme-demo-verify-token&hub.challenge=42",
            None,
        ),
        ("GET", "/healthz", None),
        ("GET", "/readyz", Some("fuzz-admin-token")),
        ("GET", "/metrics", Some("fuzz-admin-token")),
        ("GET", "/hooks/nobody/webhook", None),
        ("GET", "/admin/tenants", Some("fuzz-admin-token")),
        ("GET", "/api/tenants/acme/plugins", Some("not-a-token")),
    ];
    for (i, (method, path, token)) in routes.iter().enumerate() {
        let seed = Request {
            sign: false,
            method,
            path: path.to_string(),
            headers: token
                .map(|t| vec![("authorization".into(), format!("Bearer {t}"))])
                .unwrap_or_default(),
            body: vec![],
        }
        .encode();
        write(&out, "ingress", &format!("route-{i}"), &seed)?;
    }
    // Twilio's inbound SMS as documented (form-encoded; no recorded fixture in shared data).
    let sms = [
        "ToCountry=US&ToState=CA&SmsMessageSid=SM1&NumMedia=0&ToCity=&FromZip=&SmsSid=SM1&FromState=NY&SmsStatus=received&FromCity=&Body=My+order+never+arrived&FromCountry=US&To=%2B15005550006&ToZip=&NumSegments=1&MessageSid=SM1&AccountSid=AC1&From=%2B14155552671&ApiVersion=2010-04-01",
        "MessageSid=MM2&AccountSid=AC1&From=%2B447700900123&To=%2B15005550006&Body=photo+%F0%9F%93%A6&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fmedia%2FME1&MediaContentType0=image%2Fjpeg",
    ];
    for (i, body) in sms.iter().enumerate() {
        write(
            &out,
            "connector_twilio_sms",
            &format!("docs-{i}.form"),
            &post(
                "/hooks/acme/sms",
                "application/x-www-form-urlencoded",
                body.as_bytes().to_vec(),
            ),
        )?;
    }
    // E-mail: the connector's own sample messages (plugins/email/testdata, sources in its
    // README) as each provider posts them; the path names the provider the harness configures.
    let email_data = repo.join("plugins/email/testdata");
    write(
        &out,
        "connector_email",
        "postmark-docs-example.json",
        &post(
            "/hooks/fuzz/email/postmark",
            "application/json",
            std::fs::read(email_data.join("postmark/inbound-docs-example.json"))?,
        ),
    )?;
    for dir in ["rfc5322", "messages"] {
        for file in files(&email_data.join(dir))? {
            let eml = std::fs::read(&file)?;
            let stem = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let mut body = b"--sEeD\r\nContent-Disposition: form-data; name=\"dkim\"\r\n\r\n{@example.com : pass}\r\n--sEeD\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n".to_vec();
            body.extend_from_slice(&eml);
            body.extend_from_slice(b"\r\n--sEeD--\r\n");
            write(
                &out,
                "connector_email",
                &format!("sendgrid-{stem}.multipart"),
                &post(
                    "/hooks/fuzz/email/sendgrid",
                    "multipart/form-data; boundary=sEeD",
                    body,
                ),
            )?;
        }
    }
    write(
        &out,
        "connector_email",
        "sendgrid-charsets-captured.multipart",
        &post(
            "/hooks/fuzz/email/sendgrid",
            "multipart/form-data; boundary=xYzZY",
            std::fs::read(email_data.join("sendgrid/charsets-captured.multipart"))?,
        ),
    )?;
    let recorded: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
        &std::fs::read(email_data.join("mailgun/forward-fields.json"))?,
    )?;
    let form = recorded
        .iter()
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut f, (k, v)| {
                f.append_pair(k, v.as_str().unwrap_or(""));
                f
            },
        )
        .finish();
    write(
        &out,
        "connector_email",
        "mailgun-forward-recorded.form",
        &post(
            "/hooks/fuzz/email/mailgun",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
        ),
    )?;
    let mailgun = "recipient=care%40acme.example&sender=bob%40example.com&from=Bob+%3Cbob%40example.com%3E&subject=Re%3A+label&body-plain=It+does+not+print.%0D%0A%0D%0AOn+Tue%2C+Acme+wrote%3A%0D%0A%3E+label&Message-Id=%3Cm2%40example.com%3E&In-Reply-To=%3Cl1%40acme.example%3E&References=%3Ct9%40acme.example%3E+%3Cl1%40acme.example%3E&message-headers=%5B%5B%22Authentication-Results%22%2C%22mx.fuzz.example%3B+dkim%3Dpass+header.d%3Dexample.com%22%5D%5D";
    write(
        &out,
        "connector_email",
        "mailgun-route.form",
        &post(
            "/hooks/fuzz/email/mailgun",
            "application/x-www-form-urlencoded",
            mailgun.as_bytes().to_vec(),
        ),
    )?;
    // Verification handshakes (GET), answered only with the configured token.
    let meta_get = format!(
        "/hooks/fuzz/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    );
    for target in [
        "connector_facebook",
        "connector_instagram",
        "connector_whatsapp",
        "connector_generic_webhook",
    ] {
        write(&out, target, "handshake", &get(&meta_get))?;
    }
    write(
        &out,
        "connector_x",
        "crc",
        &get("/hooks/fuzz/x?crc_token=challenge-123&nonce=1"),
    )?;
    // Tenant configs: the acme example.
    let tenant = std::fs::read_to_string(repo.join("examples/acme/tenant.toml"))?;
    write(&out, "tenant_config", "acme.toml", tenant.as_bytes())?;
    // Policies: acme's rules, one expression per line, and the pieces of the CEL dialect.
    let whens: Vec<String> = tenant
        .lines()
        .filter_map(|l| l.trim().strip_prefix("when = "))
        .filter_map(|w| serde_json::from_str::<String>(w).ok())
        .collect();
    write(&out, "policy", "acme.cel", whens.join("\n").as_bytes())?;
    let extra = [
        "author.offences >= 2 && public",
        "!in_hours && text.contains('refund')",
        "size(labels) == 1 && weekday == 3 && hour < 18",
        "text.matches('(?i)crash|down') || 'spam' in labels",
        "language == 'en' && channel.startsWith('x') && !private && origin == 'mention'",
        "author.handle.endsWith('bot') || degraded.exists(d, d == 'keywords')",
    ];
    for (i, e) in extra.iter().enumerate() {
        write(&out, "policy", &format!("dialect-{i}.cel"), e.as_bytes())?;
    }
    // Guards: the acme [guards] section, then drafts that trip each guard.
    let table: toml::Table = toml::from_str(&tenant)?;
    let section = table
        .get("guards")
        .map(toml::to_string)
        .transpose()?
        .unwrap_or_default();
    let drafts = [
        "Sorry about that, Casey. Your parcel is on its way: https://help.acme.example/track ^Ana",
        "Please DM us your card number 4111 1111 1111 1111 and email me at casey@gmail.com ^Ana",
        "Please contact support. Have you tried turning it off and on again? ^Ana",
        "What a stupid question, you idiot. Buy our premium plan today with 20% off! ^Ana",
        "Ünïcödé 🧳 text with IBAN GB82 WEST 1234 5698 7654 32 and +44 7700 900123 ^Ana",
    ];
    for (i, d) in drafts.iter().enumerate() {
        let mut seed = section.as_bytes().to_vec();
        seed.push(0);
        seed.extend_from_slice(d.as_bytes());
        write(&out, "guards", &format!("draft-{i}"), &seed)?;
    }
    Ok(())
}

fn post(path: &str, content_type: &str, body: Vec<u8>) -> Vec<u8> {
    Request {
        sign: true,
        method: "POST",
        path: path.into(),
        headers: vec![("content-type".into(), content_type.into())],
        body,
    }
    .encode()
}

fn get(path: &str) -> Vec<u8> {
    Request {
        sign: false,
        method: "GET",
        path: path.into(),
        headers: vec![],
        body: vec![],
    }
    .encode()
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
