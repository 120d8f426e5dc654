//! Messages per second through the durable pipeline — accept (stored before acknowledgement) →
//! classifiers → care policy → suggesters → reply guards → outbox commit — with the store on an
//! SQLite file (WAL, full sync: every acceptance and every outcome is on disk before the next
//! step), against the same pipeline with the store in memory, and the durable pipeline with the
//! care workflow on (service-level clocks, round-robin routing, advocates, incident detection
//! over every answered message), in one run.
//!
//! Run: `cargo bench -p switchboard --bench durable_pipeline`. Texts are real tweets from
//! `../shared/data/datasets/airline_sentiment.train.csv`; `BENCH_MESSAGES` sets how many
//! (default 1000), `BENCH_TASKS` how many concurrent workers (default 4). As a server's lanes
//! do, workers process messages without settling their incident reports and settle them every
//! [`SETTLE_EVERY`] messages (a server's batch of 64 over four workers); `BENCH_SETTLE=each`
//! settles after every message (`Engine::process`) instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use switchboard::contract::Message;
use switchboard::runtime::{Runtime, RuntimeOptions};
use switchboard::store::Store;
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
"topic:late" = ["late", "delayed", "delay"]
"topic:bags" = ["bag", "luggage"]
"advocate" = ["thank", "great", "love"]
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config]
skip_labels = ["spam"]
[policy]
auto_send = true
[[policy.rules]]
name = "spam"
when = "score('spam') >= 0.5"
then = "ignore"
[[policy.rules]]
name = "bags"
when = "score('topic:bags') >= 0.5"
then = ["route", "respond"]
team = "baggage"
[[policy.rules]]
name = "praise"
when = "score('advocate') >= 0.5 && public"
then = ["route", "respond"]
team = "brand"
"#;

/// The care workflow on top of [`TENANT`]: what each message then also costs.
const CARE: &str = r#"
[service_levels]
counting = "around-the-clock"
first_response = { internal_min = 30, published_min = 60 }
next_response = { internal_min = 30, published_min = 60 }

[[agents]]
name = "ana"
teams = ["baggage", "brand"]
capacity = 50

[[agents]]
name = "raj"
teams = ["baggage"]
skills = ["topic:bags"]
capacity = 50

[incidents]
window_min = 30
min_reports = 5
statement_link = "https://social.bench.example/@bench"
"#;

fn texts(n: usize) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/datasets/airline_sentiment.train.csv");
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "text")
        .expect("text column");
    reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r[column].to_string())
        .take(n)
        .collect()
}

/// How many messages a worker processes between two settle passes.
const SETTLE_EVERY: usize = 16;

async fn run(
    label: &str,
    rt: &Runtime,
    tenant: &Arc<Tenant>,
    store: Store,
    texts: &[String],
    tasks: usize,
    run_id: &str,
) -> f64 {
    let engine = Engine::new(rt.clone(), store);
    // `BENCH_SETTLE=each`: every message through `process`, its report settled (and marked, a
    // commit of its own) right after its commit.
    let settle_each = std::env::var("BENCH_SETTLE").is_ok_and(|v| v == "each");
    let started = Instant::now();
    let chunks: Vec<Vec<(usize, String)>> = (0..tasks)
        .map(|t| {
            texts
                .iter()
                .enumerate()
                .filter(|(i, _)| i % tasks == t)
                .map(|(i, s)| (i, s.clone()))
                .collect()
        })
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (engine, tenant, run_id) = (engine.clone(), tenant.clone(), run_id.to_string());
            tokio::spawn(async move {
                let count = chunk.len();
                for (n, (i, text)) in chunk.into_iter().enumerate() {
                    let mut m = Message::example("bench", &text);
                    m.channel = "x".into();
                    m.external_id = format!("{run_id}-{i}");
                    m.conversation_key = m.external_id.clone();
                    m.author.id = format!("u-{}", i % 97);
                    let a = engine.store.accept("webhook", &m).await.expect("accept");
                    let processed = if settle_each {
                        engine.process(&tenant, &a.message_id).await
                    } else {
                        engine.process_unsettled(&tenant, &a.message_id).await
                    };
                    match processed.expect("process") {
                        Processed::Done(t) => assert!(t.errors.is_empty(), "{:?}", t.errors),
                        other => panic!("{other:?}"),
                    }
                    if !settle_each && ((n + 1) % SETTLE_EVERY == 0 || n + 1 == count) {
                        engine
                            .settle_incident_reports(&tenant)
                            .await
                            .expect("settle");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = texts.len() as f64 / secs;
    let queued = engine
        .store
        .count("SELECT COUNT(*) FROM outbox WHERE tenant = $1", "bench")
        .await
        .unwrap();
    println!(
        "{label:<34} {:>6} msgs in {secs:>6.2} s = {rate:>7.0} msg/s  ({queued} replies queued)",
        texts.len()
    );
    rate
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tasks: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let texts = texts(n);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let runtime = Runtime::new(RuntimeOptions::default())?;
        let path = std::path::Path::new("bench-tenant.toml");
        let file = TenantFile::parse(TENANT, path)?;
        let tenant = Arc::new(Tenant::from_file(file, path, &runtime).await?);
        let care_file = TenantFile::parse(&format!("{TENANT}{CARE}"), path)?;
        let care_tenant = Arc::new(Tenant::from_file(care_file, path, &runtime).await?);
        let dir = tempfile::tempdir()?;
        println!(
            "durable pipeline: {} real tweets, {tasks} concurrent workers, one tenant",
            texts.len()
        );
        // Warm the compile cache and the pooling allocator on a few messages first.
        run(
            "warm-up (memory)",
            &runtime,
            &tenant,
            Store::in_memory().await?,
            &texts[..50.min(texts.len())],
            1,
            "w",
        )
        .await;
        let memory = run(
            "store in memory (sqlite :memory:)",
            &runtime,
            &tenant,
            Store::in_memory().await?,
            &texts,
            tasks,
            "m",
        )
        .await;
        let file = run(
            "store on disk (sqlite file, WAL)",
            &runtime,
            &tenant,
            Store::open_file(&dir.path().join("bench.db")).await?,
            &texts,
            tasks,
            "f",
        )
        .await;
        let care = run(
            "on disk, care workflow on",
            &runtime,
            &care_tenant,
            Store::open_file(&dir.path().join("care.db")).await?,
            &texts,
            tasks,
            "c",
        )
        .await;
        println!(
            "care workflow on / off (both on disk): {:.2}× (the care steps cost {:.0}% of throughput)",
            care / file,
            (1.0 - care / file) * 100.0
        );
        println!(
            "durable / in-memory throughput: {:.2}× (durability costs {:.0}% of throughput)",
            file / memory,
            (1.0 - file / memory) * 100.0
        );
        anyhow::Ok(())
    })
}
