//! Drain rate for one customer's new messages when that customer already has a long history:
//! reading the author's history must not cost more the more they wrote before.
//!
//! Run: `cargo bench -p switchboard --bench author_history` (add `--profile dev` to reuse a debug
//! build). The history is seeded straight through the store (accepted and committed, every
//! fifth message ignored, every third praised), then `BENCH_MESSAGES` new messages (default
//! 200) from the same customer are accepted and drained through the pipeline, once with no
//! history and once with `BENCH_HISTORY` earlier messages (default 10,000). In-memory store, so
//! the figure is the pipeline's cost and not the disk's.

use std::sync::Arc;
use std::time::Instant;

use switchboard::contract::Message;
use switchboard::runtime::{Runtime, RuntimeOptions};
use switchboard::store::{LabelRow, Outcome, Store};
use switchboard::tenant::{Tenant, TenantFile};
use switchboard::worker::{Engine, Processed};

const TENANT: &str = r#"
tenant = "bench"
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "x"
max_length = 280
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:bags" = ["bag", "luggage"]
"advocate" = ["thank", "great", "love"]
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[policy]
auto_send = false
[[policy.rules]]
name = "bags"
when = "score('topic:bags') >= 0.5"
then = ["route", "respond"]
team = "baggage"
"#;

fn message(i: usize) -> Message {
    let mut m = Message::example("bench", "my bag is late again, thank you for nothing");
    m.channel = "x".into();
    m.external_id = format!("m-{i}");
    m.conversation_key = format!("c-{}", i / 10);
    m.author.id = "loyal-customer".into();
    m
}

async fn seed(store: &Store, n: usize) {
    for i in 0..n {
        let a = store.accept("webhook", &message(i)).await.expect("accept");
        let stored = store.message(&a.message_id).await.expect("load");
        let mut outcome = Outcome {
            actions: if i % 5 == 0 {
                serde_json::json!(["ignore"])
            } else {
                serde_json::json!(["respond"])
            },
            fired: serde_json::json!([]),
            ..Default::default()
        };
        if i % 3 == 0 {
            outcome.labels.push(LabelRow {
                role: "live".into(),
                classifier: "keywords".into(),
                plugin: String::new(),
                name: "advocate".into(),
                score: 0.9,
                evidence: serde_json::json!([]),
            });
        }
        assert!(store.commit(&stored, &outcome).await.expect("commit"));
    }
}

async fn drain(engine: &Engine, tenant: &Arc<Tenant>, history: usize, n: usize) -> f64 {
    seed(&engine.store, history).await;
    let mut ids = Vec::with_capacity(n);
    for i in history..history + n {
        ids.push(
            engine
                .store
                .accept("webhook", &message(i))
                .await
                .expect("accept")
                .message_id,
        );
    }
    let started = Instant::now();
    for id in &ids {
        match engine.process(tenant, id).await.expect("process") {
            Processed::Done(t) => assert!(t.errors.is_empty(), "{:?}", t.errors),
            other => panic!("{other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    println!("{history:>6} earlier messages: drained {n} in {secs:>6.2} s = {rate:>7.1} msg/s");
    rate
}

fn main() -> anyhow::Result<()> {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (n, history) = (env("BENCH_MESSAGES", 200), env("BENCH_HISTORY", 10_000));
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let runtime = Runtime::new(RuntimeOptions::default())?;
        let path = std::path::Path::new("bench-tenant.toml");
        let tenant =
            Arc::new(Tenant::from_file(TenantFile::parse(TENANT, path)?, path, &runtime).await?);
        println!("author history: one customer, {n} new messages drained one by one");
        // Compile and instantiate the plugins first, so that neither run pays for it.
        drain(
            &Engine::new(runtime.clone(), Store::in_memory().await?),
            &tenant,
            0,
            20,
        )
        .await;
        let fresh = drain(
            &Engine::new(runtime.clone(), Store::in_memory().await?),
            &tenant,
            0,
            n,
        )
        .await;
        let long = drain(
            &Engine::new(runtime.clone(), Store::in_memory().await?),
            &tenant,
            history,
            n,
        )
        .await;
        println!("with history / without: {:.2}×", long / fresh);
        anyhow::Ok(())
    })
}
