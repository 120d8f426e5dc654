//! The bodies of Switchboard's fuzz targets, in an ordinary library so that two things run the
//! same code: cargo-fuzz (`fuzz/`, libFuzzer) explores inputs, and `cargo test` on
//! stable replays every seed and every saved crash (`fuzz/seeds/`, `fuzz/regressions/`).
//!
//! Each target takes raw bytes and must not panic. Connector targets also check one property
//! that matters more than not crashing: a POST the harness did not sign is never accepted.
//!
//! # Request input format
//!
//! Connector and ingress targets read a request from the fuzzer's bytes ([`Request::decode`]):
//!
//! - byte 0: flags; bit 0 = sign the request with the connector's configured secret (so the
//!   fuzzer reaches the parser, not just the signature check), bits 1–2 = method (POST, GET,
//!   PUT, DELETE);
//! - up to the first NUL byte: the path and query on the first line, then `name: value`
//!   header lines;
//! - after the NUL: the body, as is.

pub mod care;
pub mod connectors;
pub mod ingress;

/// One HTTP request decoded from fuzzer bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Whether the harness signs the request with the secret it configured.
    pub sign: bool,
    pub method: &'static str,
    /// Path and query, starting with `/` (one is added when missing).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const METHODS: [&str; 4] = ["POST", "GET", "PUT", "DELETE"];

impl Request {
    /// Decode the format described in the crate docs. Every byte string is some request.
    pub fn decode(data: &[u8]) -> Request {
        let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
        let (head, body) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n');
        let first = lines.next().unwrap_or("").trim_end_matches('\r');
        let path = if first.starts_with('/') {
            first.to_string()
        } else {
            format!("/{first}")
        };
        let headers = lines
            .filter_map(|l| {
                let (k, v) = l.trim_end_matches('\r').split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        Request {
            sign: flags & 1 == 1,
            method: METHODS[usize::from((flags >> 1) & 3)],
            path,
            headers,
            body: body.to_vec(),
        }
    }

    /// The bytes that [`decode`](Self::decode) turns back into this request (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let method = METHODS.iter().position(|m| *m == self.method).unwrap_or(0) as u8;
        let mut out = vec![u8::from(self.sign) | (method << 1)];
        out.extend_from_slice(self.path.as_bytes());
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("\n{k}: {v}").as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&self.body);
        out
    }

    /// Replace every header called `name` (any case) with one `name: value`.
    pub fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value));
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a target run amounted to, for the replay tests (libFuzzer only needs "no panic").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The input was accepted (events, a challenge answer, a compiled policy, …).
    Accepted,
    /// Refused because the request's signature or token did not verify.
    Unauthorized,
    /// Refused for any other reason (bad input, not configured, invalid config, …).
    Refused(String),
}

/// A fuzz target: bytes in, a verdict out; a panic is a finding.
pub type Target = fn(&[u8]) -> Verdict;

/// Every target, by the name its `fuzz/fuzz_targets/<name>.rs`, seeds and regressions use.
pub const TARGETS: &[(&str, Target)] = &[
    ("connector_bluesky", connectors::bluesky),
    ("connector_facebook", connectors::facebook),
    ("connector_instagram", connectors::instagram),
    ("connector_line", connectors::line),
    ("connector_mastodon", connectors::mastodon),
    ("connector_slack", connectors::slack),
    ("connector_telegram", connectors::telegram),
    ("connector_twilio_sms", connectors::twilio_sms),
    ("connector_whatsapp", connectors::whatsapp),
    ("connector_x", connectors::x),
    ("connector_generic_webhook", connectors::generic_webhook),
    ("connector_email", connectors::email),
    ("tenant_config", care::tenant_config),
    ("policy", care::policy),
    ("guards", care::guards),
    ("ingress", ingress::ingress),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The last panic's message and location, for [`fuzz`] to print when one escapes a target.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Set up a fuzzing process for the target called `name` (each binary's libFuzzer `init`).
///
/// libfuzzer-sys installs a panic hook that aborts on every panic, even one the product catches
/// on purpose (the policy compiler turns the CEL parser's panics into load errors). This hook
/// only remembers the message; [`fuzz`] aborts on the panics that escape the target.
pub fn fuzzing_init(name: &str) {
    std::panic::set_hook(Box::new(|info| {
        let mut last = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(info.to_string());
    }));
    warm_up(name);
}

/// Run a target under libFuzzer: a panic that escapes it is printed and aborts the process,
/// which libFuzzer reports as a crash and saves the input of.
pub fn fuzz(name: &str, data: &[u8]) {
    if std::panic::catch_unwind(|| run(name, data)).is_err() {
        let last = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
        eprintln!("{name}: {}", last.as_deref().unwrap_or("panicked"));
        std::process::abort();
    }
}

/// Do a target's one-off set-up now (the ingress server loads and compiles its plugins), so
/// that it does not count against the first input's time limit.
pub fn warm_up(name: &str) {
    if name == "ingress" {
        ingress::warm_up();
    }
}

/// Run the target called `name` on `data` (what each `fuzz/fuzz_targets/<name>.rs` does).
///
/// # Panics
/// When there is no such target, or the target finds a bug.
pub fn run(name: &str, data: &[u8]) -> Verdict {
    let target = target(name).unwrap_or_else(|| panic!("no fuzz target `{name}`"));
    target(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_survive_a_round_trip() {
        let r = Request {
            sign: true,
            method: "GET",
            path: "/hooks/acme/webhook?hub.mode=subscribe".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"a\":\n1}\0tail".to_vec(),
        };
        assert_eq!(Request::decode(&r.encode()), r);
    }

    #[test]
    fn any_bytes_decode() {
        let r = Request::decode(b"");
        assert_eq!((r.sign, r.method, r.path.as_str()), (false, "POST", "/"));
        let r = Request::decode(b"\x07x\nbad header\nA: b\0");
        assert_eq!((r.sign, r.method, r.path.as_str()), (true, "DELETE", "/x"));
        assert_eq!(r.headers, vec![("a".to_string(), "b".to_string())]);
        assert!(r.body.is_empty());
    }
}
