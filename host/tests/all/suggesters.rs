//! Reply-suggesters through the real host: an LLM draft that deflects to a phone line is
//! blocked by the reply guards and never queued (against a loopback chat-completions mock), and
//! every suggester of the acme example drafts replies that pass the guards on the example's
//! traffic.

use std::sync::{Arc, Mutex};

use crate::common::*;
use switchboard::contract::{Event, Message, WebhookOutcome};
use switchboard::ingest;
use switchboard::pipeline;
use switchboard::store::Store;
use switchboard::tenant::Tenant;
use switchboard::worker::{Engine, Processed};

/// A chat-completions mock that answers every request with `reply` and counts requests.
async fn chat_mock(reply: Arc<Mutex<String>>, hits: Arc<Mutex<usize>>) -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let reply = reply.clone();
            let hits = hits.clone();
            async move {
                *hits.lock().unwrap() += 1;
                let content = reply.lock().unwrap().clone();
                axum::Json(serde_json::json!({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

const LLM_TENANT: &str = r#"
tenant = "skyways"
signature = "^Jo"

[egress]
allow = ["127.0.0.1"]
allow_private = true

[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "x"
max_length = 280
deliver_url = "http://127.0.0.1:9/unused"
[connectors.secrets]
signing-secret = { value = "s3cret" }

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"

[[suggesters]]
name = "llm"
plugin = "llm-suggester"
[suggesters.config]
endpoint = "ENDPOINT"
model = "care-model-1"
[suggesters.secrets]
api-key = { value = "sk-test" }

[policy]
auto_send = true

[[policy.rules]]
name = "care"
when = "true"
then = "respond"
"#;

async fn llm_setup(reply: &str) -> (tempfile::TempDir, Engine, Tenant, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0));
    let base = chat_mock(Arc::new(Mutex::new(reply.to_string())), hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.toml");
    std::fs::write(&path, LLM_TENANT.replace("ENDPOINT", &base)).unwrap();
    let rt = runtime();
    let tenant = Tenant::load(&path, &rt).await.unwrap();
    let store = Store::open_file(&dir.path().join("store.db"))
        .await
        .unwrap();
    (dir, Engine::new(rt, store), tenant, hits)
}

fn post(text: &str) -> Message {
    let mut m = Message::example("skyways", text);
    m.channel = "x".into();
    m.external_id = "tw-1".into();
    m.conversation_key = "tw-1".into();
    m
}

async fn run(engine: &Engine, tenant: &Tenant, m: Message) -> Box<pipeline::Triage> {
    let a = engine.store.accept("webhook", &m).await.unwrap();
    match engine.process(tenant, &a.message_id).await.unwrap() {
        Processed::Done(t) => t,
        other => panic!("not processed: {other:?}"),
    }
}

#[tokio::test]
async fn an_llm_draft_that_deflects_to_a_phone_line_is_blocked_and_never_queued() {
    let (_dir, engine, tenant, hits) = llm_setup(
        "Sorry about that, Casey! Please call us on 0800 123 4567 and our team will sort it.",
    )
    .await;
    let t = run(&engine, &tenant, post("my parcel never arrived")).await;
    assert_eq!(*hits.lock().unwrap(), 1, "the model was asked once");
    assert_eq!(t.drafts.len(), 1, "{:?}", t.drafts);
    let d = &t.drafts[0];
    assert_eq!(d.suggester, "llm");
    assert!(d.draft.text.ends_with("^Jo"), "signed: {}", d.draft.text);
    assert!(d.blocked, "{:?}", d.findings);
    let guards: Vec<&str> = d.findings.iter().map(|f| f.guard.as_str()).collect();
    assert!(guards.contains(&"deflection"), "{guards:?}");
    assert!(
        engine.store.outbox("skyways").await.unwrap().is_empty(),
        "a blocked draft is never queued, even with auto_send"
    );
}

#[tokio::test]
async fn an_llm_draft_that_passes_the_guards_is_queued() {
    let (_dir, engine, tenant, _) = llm_setup(
        "Sorry, Casey, that's on us. I'm checking with the courier now and will update you here today.",
    )
    .await;
    let t = run(&engine, &tenant, post("my parcel never arrived")).await;
    assert!(!t.drafts[0].blocked, "{:?}", t.drafts[0].findings);
    let outbox = engine.store.outbox("skyways").await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(
        outbox[0]
            .reply
            .text
            .starts_with("Sorry, Casey, that's on us.")
    );
}

/// Every message of the acme example through the acme tenant's classifiers, policy and every
/// suggester it configures: no draft is blocked by a guard, and each suggester drafts for at
/// least one message.
#[tokio::test]
async fn every_acme_suggester_drafts_replies_that_pass_the_guards() {
    let rt = runtime();
    let tenant = Tenant::load(&repo_root().join("examples/acme/tenant.toml"), &rt)
        .await
        .unwrap();
    let connector = tenant.connector(None).unwrap();
    let lines = std::fs::read_to_string(repo_root().join("examples/acme/inbound.jsonl")).unwrap();
    let mut drafted_by = std::collections::BTreeSet::new();
    let mut messages = 0;
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let captured = ingest::parse_line(line).unwrap();
        let c = &connector.instance;
        let outcome = rt
            .handle_webhook(
                &c.plugin,
                &c.scope,
                &connector.channel.channel,
                &captured.request,
            )
            .await
            .unwrap();
        let WebhookOutcome::Events(events) = outcome else {
            continue;
        };
        for event in events {
            let Event::Message(m) = event else { continue };
            messages += 1;
            let t = pipeline::triage(&rt, &tenant, connector, m, &Default::default()).await;
            assert!(t.errors.is_empty(), "{:?}", t.errors);
            for d in &t.drafts {
                drafted_by.insert(d.suggester.clone());
                assert!(
                    !d.blocked && d.fits,
                    "{}: draft by {} blocked: {:?}\n{}",
                    t.message.external_id,
                    d.suggester,
                    d.findings,
                    d.draft.text
                );
                assert!(
                    !d.draft.text.contains('{'),
                    "placeholder left: {}",
                    d.draft.text
                );
            }
        }
    }
    assert!(messages >= 9, "{messages}");
    let configured: std::collections::BTreeSet<String> =
        tenant.suggesters.iter().map(|s| s.name.clone()).collect();
    for s in &configured {
        assert!(
            drafted_by.contains(s),
            "suggester {s} drafted nothing: {drafted_by:?}"
        );
    }
}
