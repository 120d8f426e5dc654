//! Traces, end to end: the real `switchboard serve` exports to an OTLP/HTTP receiver on
//! loopback that decodes the protobuf a collector would get. One signed webhook of the acme
//! example must come out as one trace from ingress through the queue, every plugin call and the
//! delivery; and a collector that is down must not hold up a single message.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message as _;
use serde_json::Value;

use crate::common::{Platform, platform, repo_root};

/// One exported span, flattened: ids in hex, attributes as text.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attrs: BTreeMap<String, String>,
    service: String,
}

impl Span {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map_or("", String::as_str)
    }
}

/// A collector's OTLP/HTTP traces endpoint: `POST /v1/traces`, protobuf in, protobuf out.
async fn receiver(spans: Arc<Mutex<Vec<Span>>>) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = spans.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body.as_ref())
                    .expect("the exporter sends OTLP protobuf");
                let mut out = spans.lock().unwrap();
                for rs in request.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                        .unwrap_or_default();
                    for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                        out.push(Span {
                            name: s.name,
                            trace: hex::encode(s.trace_id),
                            id: hex::encode(s.span_id),
                            parent: hex::encode(s.parent_span_id),
                            attrs: s
                                .attributes
                                .into_iter()
                                .map(|kv| {
                                    (
                                        kv.key,
                                        text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                                    )
                                })
                                .collect(),
                            service: service.clone(),
                        });
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn text(v: Option<&Any>) -> String {
    match v {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// The acme example's connector and secret (so its captured, signed requests verify), with a
/// classifier and a suggester, sending on its own to the platform mock.
fn write_tenant(dir: &Path, deliver_url: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("acme.toml");
    std::fs::write(
        &path,
        format!(
            r#"
tenant = "acme"
signature = "^Ana"
[egress]
allow = ["127.0.0.1"]
allow_private = true
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
max_length = 280
deliver_url = "{deliver_url}"
[connectors.secrets]
signing-secret = {{ value = "acme-demo-signing-secret" }}
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:delivery" = ["never arrived", "where is my order"]
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"default" = "Hi {{name}}, sorry about this. We're on it. {{signature}}"
[policy]
auto_send = true
{extra}
"#
        ),
    )
    .unwrap();
    path
}

/// `switchboard serve` on a free port with `args` and `env`; returns the child and its address.
fn serve(dir: &Path, tenant: &Path, args: &[&str], env: &[(&str, &str)]) -> (Served, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["--cache-dir", dir.join("cache").to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--tenant"])
        .arg(tenant)
        .arg("--data")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("SWITCHBOARD_DB")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let child = Served(Some(child));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no start-up line; stderr so far: {seen:?}"));
        if let Some(rest) = line.strip_prefix("switchboard serving on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    (child, addr)
}

/// Post the acme example's first captured request as its platform signed it; returns its
/// external id.
async fn post_example(addr: &str) -> String {
    let first = std::fs::read_to_string(repo_root().join("examples/acme/inbound.jsonl")).unwrap();
    let captured: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let body = captured["body"].as_str().unwrap().to_string();
    let mut req = reqwest::Client::new().post(format!("http://{addr}/hooks/acme/webhook"));
    for (k, v) in captured["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let r = req.body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["accepted"], 1, "{ack}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// Poll `check` every 50 ms until it is true or `secs` have passed.
async fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running server; killed if the test fails before [`stop`].
struct Served(Option<Child>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SIGTERM, then a graceful exit within 30 s (a server stuck on its exporter fails here).
fn stop(mut served: Served) {
    let mut child = served.0.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_is_one_trace_from_ingress_through_the_queue_to_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let collector = receiver(spans.clone()).await;
    let state = Arc::new(Mutex::new(Platform::default()));
    let deliver_url = platform(state.clone()).await;
    let tenant = write_tenant(dir.path(), &deliver_url, "");
    let (child, addr) = serve(
        dir.path(),
        &tenant,
        &["--otlp-endpoint", &collector],
        // Export promptly: the test waits on spans, not on a fixed sleep.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let external_id = post_example(&addr).await;

    until(60, "the reply delivered", || {
        !state.lock().unwrap().posted.is_empty()
    })
    .await;
    // The delivery's spans end after the platform answered; wait for them to be exported.
    until(30, "the delivery's spans exported", || {
        let s = spans.lock().unwrap();
        s.iter()
            .any(|s| s.name == "deliver" && s.attr("outcome") == "sent")
            && s.iter()
                .any(|s| s.name == "plugin_call" && s.attr("stage") == "deliver")
    })
    .await;
    stop(child);
    let spans = spans.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();

    // The message's own spans, found by what they say, not by trace id.
    let accept = spans
        .iter()
        .find(|s| s.name == "accept" && s.attr("external_id") == external_id)
        .unwrap_or_else(|| panic!("no accept span for {external_id}: {names:?}"));
    let message = accept.attr("message").to_string();
    assert!(
        !message.is_empty(),
        "the accept span names the stored message"
    );
    assert_eq!(accept.attr("tenant"), "acme");
    assert_eq!(accept.attr("connector"), "webhook");
    let process = spans
        .iter()
        .find(|s| s.name == "process" && s.attr("message") == message)
        .unwrap_or_else(|| panic!("no process span: {names:?}"));
    assert_eq!(process.attr("outcome"), "done");
    let deliver = spans
        .iter()
        .find(|s| s.name == "deliver" && s.attr("message") == message)
        .unwrap_or_else(|| panic!("no deliver span: {names:?}"));
    assert_eq!(deliver.attr("outcome"), "sent");

    // One trace: everything in it hangs off the one ingress span, across the queue.
    let trace = &accept.trace;
    let by_id: BTreeMap<&str, &Span> = spans
        .iter()
        .filter(|s| &s.trace == trace)
        .map(|s| (s.id.as_str(), s))
        .collect();
    let root = |s: &Span| -> Vec<String> {
        let mut chain = vec![s.name.clone()];
        let mut at = s;
        while !at.parent.is_empty() {
            at = by_id.get(at.parent.as_str()).unwrap_or_else(|| {
                panic!(
                    "{} has a parent outside its exported trace: {chain:?}",
                    s.name
                )
            });
            chain.push(at.name.clone());
        }
        chain
    };
    assert_eq!(root(accept), ["accept", "ingress"]);
    assert_eq!(
        root(process),
        ["process", "accept", "ingress"],
        "processing continues the trace after the queue"
    );
    assert_eq!(
        root(deliver),
        ["deliver", "accept", "ingress"],
        "delivery continues the trace after the queue"
    );
    let ingress = by_id[accept.parent.as_str()];
    assert_eq!(ingress.attr("tenant"), "acme");
    assert_eq!(ingress.attr("connector"), "webhook");
    assert_eq!(ingress.attr("http.response.status_code"), "200");
    assert!(ingress.parent.is_empty(), "the webhook starts the trace");
    assert_eq!(ingress.service, "switchboard");

    // Every plugin call of the message: in the trace, under its stage's span, fully labelled.
    let calls: Vec<&Span> = by_id
        .values()
        .copied()
        .filter(|s| s.name == "plugin_call")
        .collect();
    let stages: BTreeSet<&str> = calls.iter().map(|c| c.attr("stage")).collect();
    for stage in ["webhook", "classify", "suggest", "deliver"] {
        assert!(
            stages.contains(stage),
            "no {stage} call in the trace: {stages:?}"
        );
    }
    for c in &calls {
        assert_eq!(c.attr("tenant"), "acme", "{c:?}");
        assert_eq!(c.attr("outcome"), "ok", "{c:?}");
        assert!(
            !c.attr("plugin").is_empty() && !c.attr("version").is_empty(),
            "{c:?}"
        );
        assert!(c.attr("duration_ms").parse::<f64>().is_ok(), "{c:?}");
        let stage_span = match c.attr("stage") {
            "webhook" => "ingress",
            "deliver" => "deliver",
            _ => "process",
        };
        assert!(
            root(c)[1..].iter().any(|n| n == stage_span),
            "{:?} {c:?}",
            root(c)
        );
    }
    let classify = calls
        .iter()
        .find(|c| c.attr("stage") == "classify")
        .unwrap();
    assert_eq!(classify.attr("plugin"), "keyword-classifier");
    let deliver_call = calls.iter().find(|c| c.attr("stage") == "deliver").unwrap();
    assert_eq!(deliver_call.attr("plugin"), "generic-webhook");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_up_no_message() {
    let dir = tempfile::tempdir().unwrap();
    // Takes connections and never answers: each export hangs until its 120 s timeout.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector = format!("http://{}", blackhole.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = blackhole.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let state = Arc::new(Mutex::new(Platform::default()));
    let deliver_url = platform(state.clone()).await;
    let tenant = write_tenant(dir.path(), &deliver_url, "");
    let (child, addr) = serve(
        dir.path(),
        &tenant,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "120000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
        ],
    );
    let started = Instant::now();
    post_example(&addr).await;
    until(60, "the reply delivered", || {
        !state.lock().unwrap().posted.is_empty()
    })
    .await;
    // An export in the message's path would have waited out the 120 s timeout at least once
    // (the bound leaves room for a loaded machine).
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "a hung collector slowed the message: {took:?}"
    );
    // Shutdown gives the last export a bounded wait, not the exporter's whole timeout.
    let stopping = Instant::now();
    stop(child);
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "shutdown waited on the collector: {took:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_after_a_restart_joins_its_webhooks_trace() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let collector = receiver(spans.clone()).await;
    // The platform refuses every send until the first server is gone.
    let state = Arc::new(Mutex::new(Platform {
        failing: usize::MAX,
        ..Platform::default()
    }));
    let deliver_url = platform(state.clone()).await;
    let tenant = write_tenant(
        dir.path(),
        &deliver_url,
        "[stages]\nretry_after_ms = 200\nmax_attempts = 50",
    );
    let args = ["--otlp-endpoint", collector.as_str()];
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let (first, addr) = serve(dir.path(), &tenant, &args, &env);
    let external_id = post_example(&addr).await;
    until(60, "a first, refused delivery", || {
        !state.lock().unwrap().requests.is_empty()
    })
    .await;
    stop(first);
    state.lock().unwrap().failing = 0;

    let (second, _) = serve(dir.path(), &tenant, &args, &env);
    until(60, "the reply delivered by the second server", || {
        !state.lock().unwrap().posted.is_empty()
    })
    .await;
    until(30, "the delivery's span exported", || {
        let s = spans.lock().unwrap();
        s.iter()
            .any(|s| s.name == "deliver" && s.attr("outcome") == "sent")
    })
    .await;
    stop(second);
    let spans = spans.lock().unwrap().clone();
    let accept = spans
        .iter()
        .find(|s| s.name == "accept" && s.attr("external_id") == external_id)
        .expect("the first server exported the accept span");
    let sent = spans
        .iter()
        .find(|s| s.name == "deliver" && s.attr("outcome") == "sent")
        .unwrap();
    assert_eq!(sent.attr("message"), accept.attr("message"));
    assert_eq!(sent.trace, accept.trace, "the restart broke the trace");
    assert_eq!(
        sent.parent, accept.id,
        "delivery continues from the stored context"
    );
    assert!(
        spans.iter().any(|s| s.name == "deliver"
            && s.attr("outcome") == "retrying"
            && s.trace == accept.trace),
        "the refused attempt is in the same trace"
    );
}
