//! The durable pipeline on a real SQLite file with real plugins: care policy actions on real
//! texts from `../shared/data/datasets`, duplicates, fail-open and fail-closed stages, the
//! outbox against a loopback platform mock, tenant independence, replay and shadow reports.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::*;
use switchboard::contract::{Message, Visibility};
use switchboard::ingest;
use switchboard::policy::Action;
use switchboard::replay;
use switchboard::store::Store;
use switchboard::tenant::{Tenant, TenantFile};
use switchboard::worker::{Engine, Intake, Processed};

/// A real text from the airline tweets, found by its opening words.
fn airline(opening: &str) -> String {
    let path = shared_data().join("datasets/airline_sentiment.train.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "text").unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[col].to_string())
        .find(|t| t.starts_with(opening))
        .unwrap_or_else(|| panic!("no airline tweet starts with {opening:?}"))
}

/// A real spam SMS, found by its opening words.
fn sms_spam(opening: &str) -> String {
    let text = std::fs::read_to_string(shared_data().join("datasets/sms_spam.train.tsv")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("spam\t"))
        .find(|t| t.starts_with(opening))
        .unwrap_or_else(|| panic!("no spam SMS starts with {opening:?}"))
        .to_string()
}

const CARE_TENANT: &str = r#"
tenant = "skyways"
time_zone = "America/Chicago"
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
deliver_url = "DELIVER_URL"
[connectors.secrets]
signing-secret = { value = "s3cret" }

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:refund" = ["refund"]
"topic:payment" = ["credit card", "charged"]
"topic:website" = ["website is down", "website down"]
"topic:luggage" = ["lost my bag", "lost my luggage"]
"advocate" = ["wonderful", "great service"]

[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"default" = "Hi {name}, sorry about this. We're on it and will update you here shortly. {signature}"

[policy]
AUTO_SEND

[[policy.rules]]
name = "spam"
when = "score('spam') >= 0.5"
then = "ignore"
why = "Spam gets no reply."

[[policy.rules]]
name = "repeat-abuse"
when = "score('profanity') >= 0.5 && size(labels) == 1 && author.offences >= 2"
then = "block"
why = "Third abusive post with nothing to answer."

[[policy.rules]]
name = "abuse"
when = "score('profanity') >= 0.5 && size(labels) == 1"
then = "monitor"
why = "Don't feed the trolls."

[[policy.rules]]
name = "refund"
when = "score('topic:refund') >= 0.5"
then = ["escalate", "route", "respond"]
team = "billing"
why = "Refund disputes get a supervisor."

[[policy.rules]]
name = "payment-details"
when = "score('topic:payment') >= 0.5 && public"
then = "take-private"
why = "Card matters continue in private."

[[policy.rules]]
name = "outage"
when = "score('topic:website') >= 0.5"
then = ["incident", "route", "respond"]
incident = "website-down"
team = "care"

[[policy.rules]]
name = "advocate"
when = "score('advocate') >= 0.5"
then = ["route", "respond"]
team = "brand"
"#;

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    tenant: Tenant,
    config_path: PathBuf,
}

async fn setup_with(toml: &str, deliver_url: &str, auto_send: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let text = toml
        .replace("DELIVER_URL", deliver_url)
        .replace(
            "HOSTILE_PLUGIN",
            &fixture_path("hostile-plugin").display().to_string(),
        )
        .replace("AUTO_SEND", if auto_send { "auto_send = true" } else { "" });
    let config_path = dir.path().join("tenant.toml");
    std::fs::write(&config_path, &text).unwrap();
    let rt = runtime();
    let tenant = Tenant::load(&config_path, &rt).await.unwrap();
    let store = Store::open_file(&dir.path().join("store.db"))
        .await
        .unwrap();
    Setup {
        engine: Engine::new(rt, store),
        tenant,
        config_path,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(CARE_TENANT, "http://127.0.0.1:9/unused", false).await
}

fn post(author: &str, id: &str, text: &str) -> Message {
    let mut m = Message::example("skyways", text);
    m.channel = "x".into();
    m.external_id = id.into();
    m.conversation_key = id.into();
    m.author.id = author.into();
    m.author.handle = Some(format!("@{author}"));
    m.author.display_name = None;
    m
}

/// Accept and process one message; returns the triage.
async fn take(s: &Setup, m: Message) -> Box<switchboard::pipeline::Triage> {
    let a = s.engine.store.accept("webhook", &m).await.unwrap();
    assert!(!a.duplicate);
    match s.engine.process(&s.tenant, &a.message_id).await.unwrap() {
        Processed::Done(t) => t,
        other => panic!("not processed: {other:?}"),
    }
}

#[tokio::test]
async fn policy_covers_every_action_on_real_texts() {
    let s = setup().await;

    let spam = take(
        &s,
        post(
            "u-spam",
            "1",
            &sms_spam("WINNER!! As a valued network customer"),
        ),
    )
    .await;
    assert_eq!(spam.decision.actions, vec![Action::Ignore]);
    assert_eq!(spam.decision.fired[0].rule, "spam");
    assert!(spam.drafts.is_empty(), "no drafts for spam");

    // The same author's abuse: watched twice, blocked the third time (author history).
    let abuse = [
        airline("@VirginAmerica Why is it taking 12 years to fly home to Dallas?"),
        airline("@united I'm aware of the flight details, thanks. Three hours Late Flight"),
        airline("@VirginAmerica congrats, you just got all my business from EWR"),
    ];
    let first = take(&s, post("u-troll", "2", &abuse[0])).await;
    assert_eq!(first.decision.actions, vec![Action::Monitor]);
    assert!(first.drafts.is_empty());
    let second = take(&s, post("u-troll", "3", &abuse[1])).await;
    assert_eq!(second.decision.actions, vec![Action::Monitor]);
    let third = take(&s, post("u-troll", "4", &abuse[2])).await;
    assert_eq!(third.decision.actions, vec![Action::Block]);
    assert_eq!(third.decision.fired[0].read["author"]["offences"], 2);
    let blocked = s
        .engine
        .store
        .count(
            "SELECT COUNT(*) FROM customers WHERE tenant = $1 AND blocked_at IS NOT NULL",
            "skyways",
        )
        .await
        .unwrap();
    assert_eq!(blocked, 1);

    let refund = take(
        &s,
        post(
            "u-refund",
            "5",
            &airline("@VirginAmerica You guys charged me $100 to reschedule"),
        ),
    )
    .await;
    assert_eq!(
        refund.decision.actions,
        vec![
            Action::Escalate {
                to: "supervisor".into()
            },
            Action::Route {
                team: "billing".into()
            },
            Action::Respond
        ]
    );
    assert_eq!(refund.drafts.len(), 1);
    assert_eq!(
        refund.decision.fired[0].why.as_deref(),
        Some("Refund disputes get a supervisor.")
    );

    let card = take(
        &s,
        post(
            "u-card",
            "6",
            &airline("@united My credit card was charged on the transaction"),
        ),
    )
    .await;
    assert_eq!(card.decision.actions, vec![Action::TakePrivate]);
    // A public invitation to move to a private message, and the suggester's draft made private.
    assert_eq!(card.drafts.len(), 2, "{:?}", card.drafts);
    assert_eq!(card.drafts[0].draft.visibility, Visibility::Public);
    assert!(card.drafts[0].draft.text.contains("private message"));
    assert!(card.drafts[0].draft.text.ends_with("^Jo"));
    assert_eq!(card.drafts[1].draft.visibility, Visibility::Private);

    let outage = take(
        &s,
        post(
            "u-web",
            "7",
            &airline("@VirginAmerica Your website is down and I'm trying to check in!"),
        ),
    )
    .await;
    assert_eq!(
        outage.decision.actions,
        vec![
            Action::Incident {
                incident: "website-down".into()
            },
            Action::Route {
                team: "care".into()
            },
            Action::Respond
        ]
    );

    let praise = take(
        &s,
        post(
            "u-fan",
            "8",
            &airline("@united  Thank you for a wonderful global first class flight"),
        ),
    )
    .await;
    assert_eq!(
        praise.decision.actions,
        vec![
            Action::Route {
                team: "brand".into()
            },
            Action::Respond
        ]
    );

    // No rule matches a lost bag: the policy default (respond) applies, and says so.
    let bag = take(
        &s,
        post(
            "u-bag",
            "9",
            &airline("@VirginAmerica everything was fine until you lost my bag"),
        ),
    )
    .await;
    assert!(bag.decision.by_default);
    assert_eq!(bag.decision.actions, vec![Action::Respond]);
    assert_eq!(bag.drafts.len(), 1);
    assert!(!bag.drafts[0].blocked, "{:?}", bag.drafts[0].findings);

    // What the store recorded: conversation state, team, incident, escalation, audit.
    let (conv, _) = s
        .engine
        .store
        .conversation("skyways", "7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv["incident"], "website-down");
    assert_eq!(conv["team"], "care");
    let (conv, _) = s
        .engine
        .store
        .conversation("skyways", "6")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv["state"], "private");
    assert!(
        conv["close_publicly"]
            .as_str()
            .unwrap()
            .contains("close the loop")
    );
    let (conv, msgs) = s
        .engine
        .store
        .conversation("skyways", "5")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv["escalated"], true);
    let audit = s.engine.store.audit_of(&msgs[0].id).await.unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "message.accepted",
            "decision.made",
            "conversation.escalated",
            "conversation.routed"
        ]
    );
    assert_eq!(audit[1]["actor"], "policy:refund");
    // Another tenant sees none of it.
    assert!(
        s.engine
            .store
            .conversation("other", "5")
            .await
            .unwrap()
            .is_none()
    );
}

fn signed_request(body: &str) -> switchboard::contract::HttpRequest {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body.as_bytes());
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    ingest::request(
        "POST",
        "https://hooks.example/skyways",
        vec![("x-signature-256".into(), sig)],
        body.as_bytes().to_vec(),
    )
}

#[tokio::test]
async fn the_same_platform_message_delivered_twice_is_stored_once() {
    let s = setup().await;
    let connector = s.tenant.connector(None).unwrap();
    let body = r#"{"id":"tw-77","author":{"id":"u-1","handle":"@ann"},"text":"where is my refund?","created_at":"2026-11-20T09:12:00Z"}"#;
    let (_, first) = s
        .engine
        .ingest(connector, &signed_request(body))
        .await
        .unwrap();
    let (_, again) = s
        .engine
        .ingest(connector, &signed_request(body))
        .await
        .unwrap();
    let (Intake::Accepted(a), Intake::Accepted(b)) = (&first[0], &again[0]) else {
        panic!("{first:?} {again:?}");
    };
    assert!(!a.duplicate);
    assert!(b.duplicate);
    assert_eq!(a.message_id, b.message_id);
    // A batch carrying the same event twice, and a concurrent redelivery, still store one.
    let batch = format!("[{body},{body}]");
    let (batch_request, single) = (signed_request(&batch), signed_request(body));
    let (r1, r2) = tokio::join!(
        s.engine.ingest(connector, &batch_request),
        s.engine.ingest(connector, &single),
    );
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    let stored = s
        .engine
        .store
        .count("SELECT COUNT(*) FROM messages WHERE tenant = $1", "skyways")
        .await
        .unwrap();
    assert_eq!(stored, 1);
    // A badly signed request stores nothing.
    let mut bad = signed_request(r#"{"id":"tw-78","author":{"id":"u-1"},"text":"x"}"#);
    bad.body.push(b' ');
    assert!(s.engine.ingest(connector, &bad).await.is_err());
    assert_eq!(
        s.engine
            .store
            .count("SELECT COUNT(*) FROM messages WHERE tenant = $1", "skyways")
            .await
            .unwrap(),
        1
    );
}

/// Issue 14, finding 8: the sender chooses a message's `language`; a 200-character tag once
/// became a 209-byte label name, the language classifier's whole output was refused, and with
/// fail-closed the message failed. It is clipped at the edge and the message goes through.
#[tokio::test]
async fn an_oversized_language_tag_from_the_sender_does_not_fail_the_message() {
    let toml = CARE_TENANT.replace(
        "[[suggesters]]",
        "[[classifiers]]\nname = \"language\"\nplugin = \"language-classifier\"\non_failure = \"closed\"\n\n[[suggesters]]",
    );
    let s = setup_with(&toml, "http://127.0.0.1:9/unused", false).await;
    let connector = s.tenant.connector(None).unwrap();
    let tag = format!("en-{}", "x".repeat(197));
    assert_eq!(tag.len(), 200);
    let body = serde_json::json!({
        "id": "tw-lang",
        "author": { "id": "u-1", "handle": "@ann" },
        "text": "my order never arrived and nobody answers my messages",
        "language": tag,
    })
    .to_string();
    let (_, intakes) = s
        .engine
        .ingest(connector, &signed_request(&body))
        .await
        .unwrap();
    let [Intake::Accepted(a)] = &intakes[..] else {
        panic!("{intakes:?}");
    };
    let triage = match s.engine.process(&s.tenant, &a.message_id).await.unwrap() {
        Processed::Done(t) => t,
        other => panic!("not processed: {other:?}"),
    };
    assert!(triage.errors.is_empty(), "{:?}", triage.errors);
    assert!(
        triage
            .labels
            .iter()
            .any(|l| l.classifier == "language" && l.label.name.starts_with("language:en")),
        "{:?}",
        triage.labels
    );
    for l in &triage.labels {
        assert!(l.label.name.len() <= 128, "{}", l.label.name);
    }
    assert_eq!(
        s.engine.store.message(&a.message_id).await.unwrap().status,
        "done"
    );
}

const HOSTILE_TENANT: &str = r#"
tenant = "fragile"
[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "x"
max_length = 280
[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[[classifiers]]
name = "flaky"
plugin = "HOSTILE_PLUGIN"
on_failure = "FAILURE"
limits = { timeout_ms = 200 }
[classifiers.config]
mode = "MODE"
[[suggesters]]
name = "canned"
plugin = "canned-replies"
[stages]
max_attempts = 2
retry_after_ms = 1
"#;

#[tokio::test]
async fn fail_open_skips_the_plugin_and_marks_the_message() {
    let toml = HOSTILE_TENANT
        .replace("FAILURE", "open")
        .replace("MODE", "trap")
        .replace("tenant = \"fragile\"", "tenant = \"skyways\"");
    let s = setup_with(&toml, "", false).await;
    let t = take(&s, post("u-1", "1", "my refund never came")).await;
    assert_eq!(t.degraded, vec!["flaky".to_string()]);
    assert_eq!(t.errors.len(), 1);
    assert!(t.held.is_none());
    assert_eq!(t.decision.actions, vec![Action::Respond]);
    let degraded = s
        .engine
        .store
        .count(
            "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done' AND degraded = '[\"flaky\"]'",
            "skyways",
        )
        .await
        .unwrap();
    assert_eq!(degraded, 1);
}

#[tokio::test]
async fn fail_closed_holds_the_message_retries_and_then_gives_up_visibly() {
    let toml = HOSTILE_TENANT
        .replace("FAILURE", "closed")
        .replace("MODE", "loop")
        .replace("tenant = \"fragile\"", "tenant = \"skyways\"");
    let s = setup_with(&toml, "", false).await;
    let a = s
        .engine
        .store
        .accept("webhook", &post("u-1", "1", "hello"))
        .await
        .unwrap();
    let Processed::Held { triage, status } =
        s.engine.process(&s.tenant, &a.message_id).await.unwrap()
    else {
        panic!("not held");
    };
    assert_eq!(status, "held");
    assert!(
        triage.held.as_deref().unwrap().contains("flaky"),
        "{:?}",
        triage.held
    );
    assert!(
        triage.held.as_deref().unwrap().contains("deadline"),
        "{:?}",
        triage.held
    );
    // Nothing was decided or drafted for a held message.
    assert!(
        s.engine
            .store
            .decision(&a.message_id)
            .await
            .unwrap()
            .is_none()
    );
    // The retry is due after the (1 ms) back-off; resume takes it, fails again, gives up.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let resumed = s.engine.resume(&s.tenant).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert!(matches!(&resumed[0].1, Processed::Held { status, .. } if status == "failed"));
    let stored = s.engine.store.message(&a.message_id).await.unwrap();
    assert_eq!(stored.status, "failed");
    assert_eq!(stored.attempts, 2);
    // A failed message is not picked up again.
    assert!(s.engine.resume(&s.tenant).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_does_not_delay_another() {
    let slow_toml = HOSTILE_TENANT
        .replace("FAILURE", "open")
        .replace("MODE", "loop")
        .replace("timeout_ms = 200", "timeout_ms = 3000");
    let slow = setup_with(&slow_toml, "", false).await;
    let fast = setup().await;
    // Both tenants share one runtime, as in the server.
    let fast_engine = Engine::new(slow.engine.rt.clone(), fast.engine.store.clone());
    let fast_tenant = Tenant::load(&fast.config_path, &slow.engine.rt)
        .await
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut slow_msg = post("u-1", "1", "hello");
    slow_msg.tenant = "fragile".into();
    let a = slow
        .engine
        .store
        .accept("webhook", &slow_msg)
        .await
        .unwrap();
    let slow_task = {
        let (engine, tenant, order) = (slow.engine.clone(), slow.tenant.clone(), order.clone());
        tokio::spawn(async move {
            engine.process(&tenant, &a.message_id).await.unwrap();
            order.lock().unwrap().push("fragile");
        })
    };
    let fast_task = {
        let (engine, tenant, order) = (fast_engine, fast_tenant, order.clone());
        tokio::spawn(async move {
            for i in 0..5 {
                let m = post("u-2", &format!("f{i}"), "my bag is lost");
                let a = engine.store.accept("webhook", &m).await.unwrap();
                engine.process(&tenant, &a.message_id).await.unwrap();
            }
            order.lock().unwrap().push("skyways");
        })
    };
    fast_task.await.unwrap();
    slow_task.await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec!["skyways", "fragile"]);
}

#[tokio::test]
async fn auto_send_queues_the_best_safe_draft_and_delivery_retries_then_sends_once() {
    let state = Arc::new(Mutex::new(Platform {
        rate_limited: 1,
        ..Default::default()
    }));
    let url = platform(state.clone()).await;
    let s = setup_with(CARE_TENANT, &url, true).await;
    let bag = take(
        &s,
        post(
            "u-bag",
            "1",
            &airline("@VirginAmerica everything was fine until you lost my bag"),
        ),
    )
    .await;
    assert_eq!(bag.drafts.len(), 1);
    // Escalated drafts wait for a supervisor even with auto-send on.
    take(
        &s,
        post(
            "u-refund",
            "2",
            &airline("@VirginAmerica You guys charged me $100 to reschedule"),
        ),
    )
    .await;
    let outbox = s.engine.store.outbox("skyways").await.unwrap();
    assert_eq!(
        outbox.len(),
        1,
        "only the unescalated message's reply is queued"
    );
    let key = outbox[0].idempotency_key.clone();
    assert_eq!(outbox[0].reply.in_reply_to.as_deref(), Some("1"));

    // First pass: the platform rate-limits; the reply stays pending with its key.
    let r = s.engine.deliver_due(&s.tenant).await.unwrap();
    assert_eq!((r.sent, r.retrying, r.dead), (0, 1, 0));
    // The back-off is 1 s (the tenant default) plus up to 20% jitter: nothing is due yet, then
    // it is.
    let r = s.engine.deliver_due(&s.tenant).await.unwrap();
    assert_eq!((r.sent, r.retrying), (0, 0));
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = s.engine.deliver_due(&s.tenant).await.unwrap();
    assert_eq!((r.sent, r.retrying, r.dead), (1, 0, 0));
    {
        let p = state.lock().unwrap();
        assert_eq!(p.requests.len(), 2);
        assert!(
            p.requests.iter().all(|(k, _)| k == &key),
            "same key on the retry"
        );
        assert_eq!(p.posted.len(), 1);
    }
    let outbox = s.engine.store.outbox("skyways").await.unwrap();
    assert_eq!(outbox[0].status, "sent");
    assert_eq!(outbox[0].attempts, 2);
    // Nothing more to send.
    let r = s.engine.deliver_due(&s.tenant).await.unwrap();
    assert_eq!(r.sent + r.retrying + r.dead, 0);
}

#[tokio::test]
async fn a_permanent_refusal_is_dead_lettered_with_its_reason() {
    let state = Arc::new(Mutex::new(Platform::default()));
    let url = platform(state.clone()).await;
    let toml = CARE_TENANT.replace(
        "We're on it and will update you here shortly.",
        "REJECT me.",
    );
    let s = setup_with(&toml, &url, true).await;
    take(&s, post("u-bag", "1", "lost my bag")).await;
    let r = s.engine.deliver_due(&s.tenant).await.unwrap();
    assert_eq!(r.dead, 1);
    let outbox = s.engine.store.outbox("skyways").await.unwrap();
    assert_eq!(outbox[0].status, "dead");
    assert!(
        outbox[0].last_error.as_deref().unwrap().contains("403"),
        "{:?}",
        outbox[0].last_error
    );
}

#[tokio::test]
async fn a_draft_blocked_by_a_guard_is_never_queued() {
    let toml = CARE_TENANT.replace(
        "We're on it and will update you here shortly.",
        "Please call us on 1-800-555-0199 about it.",
    );
    let s = setup_with(&toml, "http://127.0.0.1:9/", true).await;
    let t = take(&s, post("u-bag", "1", "lost my bag")).await;
    assert!(t.drafts[0].blocked);
    assert!(t.drafts[0].findings.iter().any(|f| f.guard == "deflection"));
    assert!(s.engine.store.outbox("skyways").await.unwrap().is_empty());
    let drafts = s
        .engine
        .store
        .drafts(&s.engine.store.done_messages("skyways").await.unwrap()[0])
        .await
        .unwrap();
    assert_eq!(drafts[0].status, "blocked");
}

/// A refund, a card charge, a lost bag and a website outage: real tweets, ids 1 to 4.
fn four_complaints() -> Vec<(&'static str, String)> {
    vec![
        (
            "1",
            airline("@VirginAmerica You guys charged me $100 to reschedule"),
        ),
        (
            "2",
            airline("@united My credit card was charged on the transaction"),
        ),
        (
            "3",
            airline("@VirginAmerica everything was fine until you lost my bag"),
        ),
        (
            "4",
            airline("@VirginAmerica Your website is down and I'm trying to check in!"),
        ),
    ]
}

#[tokio::test]
async fn replay_of_a_changed_classifier_shows_the_exact_decisions_that_change() {
    let s = setup().await;
    let texts = four_complaints();
    for (id, text) in &texts {
        take(&s, post(&format!("u-{id}"), id, text)).await;
    }
    // The candidate: the same tenant whose keyword classifier no longer knows "charged".
    let candidate_path = s.config_path.with_file_name("candidate.toml");
    let candidate_text = std::fs::read_to_string(&s.config_path)
        .unwrap()
        .replace("[\"credit card\", \"charged\"]", "[\"credit card\"]");
    std::fs::write(&candidate_path, candidate_text).unwrap();
    let candidate = Tenant::load(&candidate_path, &s.engine.rt).await.unwrap();
    let report = replay::replay_stored(&s.engine.rt, &s.engine.store, &s.tenant, &candidate, None)
        .await
        .unwrap();
    assert_eq!(report.messages, 4);
    // Message 1 loses its payment label but its refund rule still fires first: labels change,
    // the decision does not. Message 2 still has "credit card": unchanged. 3 and 4 unchanged.
    let changed: Vec<(&str, bool, bool)> = report
        .diffs
        .iter()
        .map(|d| (d.external_id.as_str(), d.labels_changed, d.decision_changed))
        .collect();
    assert_eq!(
        changed,
        vec![
            ("1", true, false),
            ("2", false, false),
            ("3", false, false),
            ("4", false, false)
        ]
    );
    assert_eq!(report.decisions_changed, 0);

    // A second candidate drops "refund": message 1 goes from escalation to taking private.
    let candidate_text = std::fs::read_to_string(&s.config_path).unwrap().replace(
        "\"topic:refund\" = [\"refund\"]",
        "\"topic:refund\" = [\"money back\"]",
    );
    std::fs::write(&candidate_path, candidate_text).unwrap();
    let candidate = Tenant::load(&candidate_path, &s.engine.rt).await.unwrap();
    let report = replay::replay_stored(&s.engine.rt, &s.engine.store, &s.tenant, &candidate, None)
        .await
        .unwrap();
    assert_eq!(report.decisions_changed, 1);
    let d = report.diffs.iter().find(|d| d.decision_changed).unwrap();
    assert_eq!(d.external_id, "1");
    assert_eq!(
        d.current.decision,
        "escalate(supervisor)+route(billing)+respond"
    );
    assert_eq!(d.candidate.decision, "take-private");
    assert_eq!(d.current.rules, vec!["refund"]);
    assert_eq!(d.candidate.rules, vec!["payment-details"]);
    assert_eq!(
        report.decision_changes.keys().collect::<Vec<_>>(),
        vec!["escalate(supervisor)+route(billing)+respond → take-private"]
    );
}

#[tokio::test]
async fn shadow_classifier_is_recorded_not_acted_on_and_reported() {
    let toml = format!(
        "{CARE_TENANT}\n[[shadow_classifiers]]\nname = \"keywords-v2\"\nplugin = \"keyword-classifier\"\nreplaces = \"keywords\"\n[shadow_classifiers.config.labels]\n\"topic:refund\" = [\"refund\", \"money back\"]\n\"topic:payment\" = [\"credit card\"]\n"
    );
    let s = setup_with(&toml, "", false).await;
    let texts = four_complaints();
    for (id, text) in &texts {
        let t = take(&s, post(&format!("u-{id}"), id, text)).await;
        assert_eq!(t.shadows_run, vec!["keywords-v2".to_string()]);
        // Only the live classifier's labels act.
        assert!(t.labels.iter().all(|l| l.classifier == "keywords"));
    }
    let report = replay::shadow_report(&s.engine.store, &s.tenant)
        .await
        .unwrap();
    assert_eq!(report.len(), 1);
    let r = &report[0];
    assert_eq!(
        (r.shadow.as_str(), r.live.as_str()),
        ("keywords-v2", "keywords")
    );
    assert_eq!(r.messages, 4);
    // 1: live {refund, payment}, shadow {refund}; 2: live {payment}, shadow {payment};
    // 3: live {luggage}, shadow {}; 4: live {website}, shadow {}.
    assert_eq!(r.agreeing, 1);
    assert_eq!(r.confusion["topic:refund"], [1, 0, 0]);
    assert_eq!(r.confusion["topic:payment"], [1, 1, 0]);
    assert_eq!(r.confusion["topic:luggage"], [0, 1, 0]);
    assert_eq!(r.confusion["topic:website"], [0, 1, 0]);
    // With the shadow's labels, 1 is still a refund and 3 still the default; 4 loses its
    // outage rule.
    assert_eq!(r.decisions_changed, 1);
    assert_eq!(
        r.decision_changes.keys().collect::<Vec<_>>(),
        vec!["incident(website-down)+route(care)+respond → respond"]
    );
}

#[test]
fn policy_config_errors_name_the_file_and_rule() {
    let bad = CARE_TENANT
        .replace("AUTO_SEND", "")
        .replace("score('spam') >= 0.5", "score('spam') >=");
    let err = TenantFile::parse(&bad, Path::new("skyways.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("skyways.toml: policy rule `spam`: cannot parse"),
        "{err}"
    );
    let bad = CARE_TENANT.replace("AUTO_SEND", "")
        + "\n[[shadow_classifiers]]\nname = \"s\"\nplugin = \"keyword-classifier\"\nreplaces = \"nope\"\n";
    let err = TenantFile::parse(&bad, Path::new("t.toml")).unwrap_err();
    assert!(
        err.to_string().contains("names no live classifier"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_share_one_store_file_without_lock_errors() {
    let s = Arc::new(setup().await);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..6 {
                    let m = post(&format!("u-{}", i % 3), &format!("w{w}-{i}"), "lost my bag");
                    let a = s.engine.store.accept("webhook", &m).await?;
                    s.engine.process(&s.tenant, &a.message_id).await?;
                }
                Ok::<_, switchboard::store::StoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("no store error under concurrency");
    }
    let done = s
        .engine
        .store
        .count(
            "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND status = 'done'",
            "skyways",
        )
        .await
        .unwrap();
    assert_eq!(done, 48);
}

#[tokio::test]
async fn a_tenant_config_may_not_ask_past_the_operators_ceilings() {
    let dir = tempfile::tempdir().unwrap();
    let rt = switchboard::runtime::Runtime::new(switchboard::runtime::RuntimeOptions {
        ceilings: switchboard::runtime::Ceilings {
            plugin_instances: 2,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let load = |toml: String| {
        let path = dir.path().join("tenant.toml");
        std::fs::write(&path, toml).unwrap();
        let rt = rt.clone();
        async move { Tenant::load(&path, &rt).await.map(|_| ()) }
    };
    let classifier = |name: &str| {
        format!("[[classifiers]]\nname = \"{name}\"\nplugin = \"keyword-classifier\"\n")
    };
    // Within the ceilings: loads.
    load(format!("tenant = \"acme\"\n{}", classifier("a")))
        .await
        .unwrap();
    // A deadline longer than the operator allows (the default ceiling is a minute).
    let err = load(format!(
        "tenant = \"acme\"\n[limits]\ntimeout_ms = 600000\n{}",
        classifier("a")
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("timeout_ms 600000") && err.contains("ceiling"),
        "{err}"
    );
    // More plugin instances than the operator allows.
    let err = load(format!(
        "tenant = \"acme\"\n{}{}{}",
        classifier("a"),
        classifier("b"),
        classifier("c")
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("3 plugin instances") && err.contains("at most 2"),
        "{err}"
    );
}
