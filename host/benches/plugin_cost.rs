//! What a plugin costs, measured against baselines in the same run:
//!
//! - the keyword classifier's logic compiled natively vs the same logic as a component called
//!   through the host (fresh instance per call, as production does), and with one reused instance;
//! - instantiation alone;
//! - messages per second through connector + classifier + suggester (+ length check);
//! - the statistical and rule classifiers natively and as components (fresh and reused instance);
//! - every first-party classifier and suggester through the host (fresh instance per call, its
//!   config read through the host as in production): microseconds per message. The LLM
//!   suggester is measured against a loopback chat-completions mock that answers at once, so
//!   its figure is the plugin's own overhead (prompt, HTTP through `wasi:http`, parsing), not a
//!   model's latency.
//!
//! Run: `cargo bench -p switchboard --bench plugin_cost` (texts from
//! `../shared/data/datasets/airline_sentiment.train.csv`). Set `BENCH_MESSAGES` to change the
//! sample size (default 2000). `BENCH_ONLY=<plugin>` instead calls one classifier (fresh
//! instance per call) over the sample 20 times and prints only that, for `perf` to profile.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard::contract::{CallContext, Event, Message, WebhookOutcome};
use switchboard::ingest;
use switchboard::pipeline;
use switchboard::runtime::{Runtime, RuntimeOptions, Scope};
use switchboard::tenant::{Tenant, TenantFile};

const ROUNDS: usize = 5;

fn texts(n: usize) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/datasets/airline_sentiment.train.csv");
    let mut reader =
        csv::Reader::from_path(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
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

/// Median wall time of `ROUNDS` runs of `f`, divided by `per` items.
fn median_per_item(per: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let mut samples: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed() / per as u32
        })
        .collect();
    samples.sort();
    samples[ROUNDS / 2]
}

fn us(d: Duration) -> String {
    format!("{:>9.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let texts = texts(n);
    let n = texts.len();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = Runtime::new(RuntimeOptions::default()).unwrap();
    let plugin_dir = PathBuf::from(switchboard::tenant::BUILTIN_PLUGIN_DIR);
    let keyword = tokio
        .block_on(rt.load_file(&plugin_dir.join("keyword-classifier.wasm")))
        .unwrap();
    let scope = Arc::new(Scope::bare("bench", "keywords", rt.default_limits()));
    let ctx = CallContext {
        now: 0,
        length_rule: None,
        signature: None,
        time_zone: "UTC".into(),
    };
    let messages: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut m = Message::example("bench", t);
            m.external_id = format!("m{i}");
            m
        })
        .collect();

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let plugin = tokio
            .block_on(rt.load_file(&plugin_dir.join(format!("{only}.wasm"))))
            .unwrap_or_else(|e| panic!("{only}: {e}"));
        let scope = Arc::new(Scope::bare("bench", &only, rt.default_limits()));
        let fresh = median_per_item(n * 4, || {
            tokio.block_on(async {
                for _ in 0..4 {
                    for m in &messages {
                        rt.classify(&plugin, &scope, m, &ctx).await.unwrap();
                    }
                }
            })
        });
        println!("{only}: fresh instance {} per call", us(fresh));
        return;
    }

    println!(
        "Switchboard plugin cost — {n} tweets from airline_sentiment.train.csv, median of {ROUNDS} rounds\n"
    );

    let mut native_hits = 0;
    let native = median_per_item(n, || {
        for t in &texts {
            let rules = keyword_classifier::rules::default_rules();
            native_hits +=
                std::hint::black_box(keyword_classifier::rules::classify(&rules, t)).len();
        }
    });
    let fresh = median_per_item(n, || {
        tokio.block_on(async {
            for m in &messages {
                rt.classify(&keyword, &scope, m, &ctx).await.unwrap();
            }
        })
    });
    let reused = median_per_item(n, || {
        tokio
            .block_on(rt.classify_reusing_instance(&keyword, &scope, &messages, &ctx))
            .unwrap();
    });
    let instantiate = median_per_item(n, || {
        tokio.block_on(async {
            for _ in 0..n {
                rt.instantiate(&keyword, &scope).await.unwrap();
            }
        })
    });
    let ratio = |d: Duration| d.as_secs_f64() / native.as_secs_f64();
    println!(
        "keyword classifier, native Rust            {}  per message   1.0x",
        us(native)
    );
    println!(
        "keyword classifier, in host, fresh instance {}  per message  {:>5.1}x native",
        us(fresh),
        ratio(fresh)
    );
    println!(
        "keyword classifier, in host, reused instance{}  per message  {:>5.1}x native",
        us(reused),
        ratio(reused)
    );
    println!(
        "instantiation alone (pooling, InstancePre)  {}  per instance",
        us(instantiate)
    );
    println!(
        "fresh instance per call costs {:.1}x a reused one ({} more per message)\n",
        fresh.as_secs_f64() / reused.as_secs_f64(),
        us(fresh.saturating_sub(reused)).trim()
    );

    // The statistical classifiers: the same textmodel code natively, and as components.
    let spam_model = spam_classifier::model().unwrap();
    let sentiment_model = sentiment_classifier::model().unwrap();
    let intent_model = topic_classifier::model("intent").unwrap();
    let reason_model = topic_classifier::model("complaint-reason").unwrap();
    type Native<'a> = Box<dyn Fn(&str) -> usize + 'a>;
    // (shown name, plugin file, config, the same logic natively)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Native<'a>);
    let cases: Vec<Case> = vec![
        (
            "spam-classifier",
            "spam-classifier",
            vec![],
            Box::new(|t: &str| {
                spam_classifier::classify_text(&spam_model, t, 0.5)
                    .into_iter()
                    .count()
            }),
        ),
        (
            "sentiment-classifier",
            "sentiment-classifier",
            vec![],
            Box::new(|t: &str| {
                sentiment_classifier::classify_text(&sentiment_model, t, 0.0)
                    .into_iter()
                    .count()
            }),
        ),
        (
            "topic-classifier (complaint-reason)",
            "topic-classifier",
            vec![],
            Box::new(|t: &str| {
                topic_classifier::classify_text(reason_model.as_ref(), &[], t, 0.0).len()
            }),
        ),
        (
            "topic-classifier (intent)",
            "topic-classifier",
            vec![("model", "intent")],
            Box::new(|t: &str| {
                topic_classifier::classify_text(intent_model.as_ref(), &[], t, 0.0).len()
            }),
        ),
        // The rule plugins. Natively their patterns are built once per process (so this is
        // what a pre-initialised plugin can approach), and with the host's `regex` rather than
        // the plugins' `regex-lite` (cargo unifies textscan's `full-regex` feature here).
        (
            "abuse-classifier",
            "abuse-classifier",
            vec![],
            Box::new(|t: &str| abuse_classifier::classify(t, &Default::default()).len()),
        ),
        (
            "private-data-classifier",
            "private-data-classifier",
            vec![("allowed_contacts", "acme.example")],
            Box::new(|t: &str| {
                private_data_classifier::classify(t, &["acme.example".to_string()]).len()
            }),
        ),
        (
            "urgency-classifier",
            "urgency-classifier",
            vec![],
            Box::new(|t: &str| urgency_classifier::classify(t, &Default::default()).len()),
        ),
        (
            "brand-care-classifier",
            "brand-care-classifier",
            vec![],
            Box::new(|t: &str| brand_care_classifier::classify(t, &[]).len()),
        ),
        (
            "advocate-classifier",
            "advocate-classifier",
            vec![],
            Box::new(|t: &str| advocate_classifier::classify(t).len()),
        ),
    ];
    for (name, file, config, native_fn) in &cases {
        let plugin = tokio
            .block_on(rt.load_file(&plugin_dir.join(format!("{file}.wasm"))))
            .unwrap();
        let mut scope = Scope::bare("bench", file, rt.default_limits());
        for (k, v) in config {
            scope.config.values.insert(k.to_string(), v.to_string());
        }
        let scope = Arc::new(scope);
        let mut hits = 0;
        let native = median_per_item(n, || {
            for t in &texts {
                hits += std::hint::black_box(native_fn(t));
            }
        });
        let fresh = median_per_item(n, || {
            tokio.block_on(async {
                for m in &messages {
                    rt.classify(&plugin, &scope, m, &ctx).await.unwrap();
                }
            })
        });
        let reused = median_per_item(n, || {
            tokio
                .block_on(rt.classify_reusing_instance(&plugin, &scope, &messages, &ctx))
                .unwrap();
        });
        println!(
            "{name:<36} native {}   in host, fresh instance {} ({:.1}x)   reused instance {} ({:.1}x)",
            us(native),
            us(fresh),
            fresh.as_secs_f64() / native.as_secs_f64(),
            us(reused),
            reused.as_secs_f64() / native.as_secs_f64()
        );
        let _ = hits;
    }
    println!();

    println!("each plugin through the host, fresh instance per call ({n} tweets):");
    for line in tokio.block_on(per_plugin(&rt, &plugin_dir, &messages, &ctx)) {
        println!("{line}");
    }
    println!();

    match tokio.block_on(pipeline_bench(&rt, &texts)) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => println!("pipeline: skipped ({e})"),
    }
    let _ = native_hits;
}

/// (plugin, config) for every first-party classifier and suggester.
fn first_party(llm_base: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("keyword-classifier", vec![]),
        ("abuse-classifier", vec![]),
        ("private-data-classifier", vec![("allowed_contacts", r#"["acme.example"]"#.into())]),
        ("urgency-classifier", vec![]),
        ("language-classifier", vec![]),
        ("brand-care-classifier", vec![]),
        ("advocate-classifier", vec![]),
        ("canned-replies", vec![]),
        (
            "help-article-suggester",
            vec![(
                "articles",
                r#"[{"url": "https://help.example/bags", "title": "Lost bags", "topics": ["topic:luggage"], "keywords": ["bag", "luggage", "baggage"]}, {"url": "https://help.example/delays", "title": "Delays", "keywords": ["delayed", "delay", "late", "cancelled"]}]"#.into(),
            )],
        ),
        (
            "llm-suggester",
            vec![("endpoint", llm_base.to_string()), ("model", "bench".into())],
        ),
    ]
}

/// Median µs per message of each plugin over `messages`.
async fn per_plugin(
    rt: &Runtime,
    dir: &std::path::Path,
    messages: &[Message],
    ctx: &CallContext,
) -> Vec<String> {
    use switchboard::capabilities::config::{PluginConfig, Secret};
    use switchboard::capabilities::egress::EgressPolicy;
    use switchboard::contract::PluginKind;

    // A chat-completions mock that answers at once.
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "Sorry about that, we're on it and will update you here. ^Sam"}}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let ctx = CallContext {
        signature: Some("^Sam".into()),
        length_rule: Some(switchboard::contract::LengthRule {
            max: 280,
            unit: switchboard::contract::LengthUnit::Weighted,
            description: "X".into(),
        }),
        ..ctx.clone()
    };
    let labels = vec![
        switchboard::contract::Label {
            name: "topic:luggage".into(),
            score: 0.9,
            evidence: vec![],
        },
        switchboard::contract::Label {
            name: "sentiment:negative".into(),
            score: 0.8,
            evidence: vec![],
        },
    ];
    let mut lines = Vec::new();
    for (name, config) in first_party(&base) {
        let plugin = match rt.load_file(&dir.join(format!("{name}.wasm"))).await {
            Ok(p) => p,
            Err(e) => {
                lines.push(format!("  {name:<26} skipped ({e})"));
                continue;
            }
        };
        let mut scope = Scope::bare("bench", name, rt.default_limits());
        scope.config = PluginConfig {
            values: config
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            secrets: [("api-key".to_string(), Secret::new("bench-key"))].into(),
        };
        scope.egress = Arc::new(EgressPolicy {
            allow: vec!["127.0.0.1".into()],
            allow_private: true,
            ..Default::default()
        });
        let scope = Arc::new(scope);
        // The LLM suggester waits on a socket: fewer messages keep the run short.
        let sample = if name == "llm-suggester" {
            &messages[..messages.len().min(300)]
        } else {
            messages
        };
        let mut samples = Vec::new();
        let mut outputs = 0usize;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for m in sample {
                outputs += match plugin.kind {
                    PluginKind::Classifier => {
                        rt.classify(&plugin, &scope, m, &ctx).await.map(|l| l.len())
                    }
                    _ => rt
                        .suggest(&plugin, &scope, m, &labels, &ctx)
                        .await
                        .map(|d| d.len()),
                }
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            samples.push(t.elapsed() / sample.len() as u32);
        }
        samples.sort();
        let what = if plugin.kind == PluginKind::Classifier {
            "labels"
        } else {
            "drafts"
        };
        lines.push(format!(
            "  {name:<26} {}  per message  ({:.2} {what} per message)",
            us(samples[ROUNDS / 2]),
            outputs as f64 / (ROUNDS * sample.len()) as f64
        ));
    }
    lines
}

const SECRET: &str = "bench-signing-secret";

async fn pipeline_bench(rt: &Runtime, texts: &[String]) -> anyhow::Result<Vec<String>> {
    let config = format!(
        r#"
        tenant = "bench"
        signature = "^Sam"
        [[connectors]]
        name = "webhook"
        plugin = "generic-webhook"
        secrets = {{ signing-secret = {{ value = "{SECRET}" }} }}
        [[classifiers]]
        name = "keywords"
        plugin = "keyword-classifier"
        [[suggesters]]
        name = "canned"
        plugin = "canned-replies"
        "#
    );
    let path = PathBuf::from("bench.toml");
    let tenant = Arc::new(Tenant::from_file(TenantFile::parse(&config, &path)?, &path, rt).await?);
    let requests: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let body = serde_json::json!({"id": i, "author": {"id": format!("u{i}"), "handle": "@traveller", "name": "Sam Lee"}, "text": t}).to_string();
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            ingest::request("POST", "http://localhost/", vec![("x-signature-256".into(), sig)], body.into_bytes())
        })
        .collect();
    let requests = Arc::new(requests);

    let mut lines = vec!["pipeline: signed webhook → generic-webhook → keyword-classifier → canned-replies → measure".to_string()];
    for tasks in [1usize, 4, 16] {
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (rt, tenant, requests) = (rt.clone(), tenant.clone(), requests.clone());
            handles.push(tokio::spawn(async move {
                let mut done = 0usize;
                for req in requests.iter().skip(t).step_by(tasks) {
                    let c = &tenant.connectors[0];
                    let outcome = rt
                        .handle_webhook(
                            &c.instance.plugin,
                            &c.instance.scope,
                            &c.channel.channel,
                            req,
                        )
                        .await?;
                    if let WebhookOutcome::Events(events) = outcome {
                        for e in events {
                            if let Event::Message(m) = e {
                                let triage =
                                    pipeline::triage(&rt, &tenant, c, m, &Default::default()).await;
                                anyhow::ensure!(triage.errors.is_empty(), "{:?}", triage.errors);
                                done += 1;
                            }
                        }
                    }
                }
                anyhow::Ok(done)
            }));
        }
        let mut done = 0;
        for h in handles {
            done += h.await??;
        }
        let secs = start.elapsed().as_secs_f64();
        lines.push(format!(
            "  {tasks:>2} concurrent tasks: {:>7.0} messages/s ({done} messages in {secs:.2} s, 2 cores)",
            done as f64 / secs
        ));
    }
    Ok(lines)
}
