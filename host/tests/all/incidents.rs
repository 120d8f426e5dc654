//! Incidents through the real pipeline, real plugins and a real SQLite file, on a manual clock:
//! a burst of complaints about the same topic opens one incident with every affected
//! conversation, a public statement a supervisor must sign off and a reply per customer; the
//! same volume at the tenant's usual rate opens nothing; near-identical texts group without a
//! topic; a policy rule's `incident` action and the detector share one table; incidents are
//! opened, attached, merged and closed by hand; closing follows up once per customer through
//! the platform mock and stops their clocks; a crash between a message's commit and the
//! incident step loses nothing; two processes sharing a store count each other's reports; the
//! same bursts open the same incidents on PostgreSQL; and through the real server, agents and
//! supervisors work incidents while another tenant sees none of them. Complaint texts are real tweets from
//! `../shared/data/datasets/airline_sentiment.train.csv`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use switchboard::care::ReplyKind;
use switchboard::care::incidents::OpenRequest;
use switchboard::clock::Clock;
use switchboard::contract::Message;
use switchboard::store::{ActionError, IncidentRow, Store};
use switchboard::tenant::Tenant;
use switchboard::worker::{Engine, Processed};

const TENANT: &str = r#"
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
deliver_url = "DELIVER_URL"
[connectors.secrets]
signing-secret = { value = "s3cret" }

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:website" = ["website", "site"]
"topic:app" = ["app keeps crashing", "app crashed", "app crashes"]

[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"default" = "Hi {name}, sorry about this. We're on it and will update you here shortly. {signature}"

[service_levels]
counting = "around-the-clock"
first_response = { internal_min = 30, published_min = 60 }

[incidents]
window_min = 30
min_reports = 5
over_usual = 3.0
baseline_h = 3
statement_link = "https://social.skyways.example/@skyways"
reply = "Hi {name}, sorry: {title} is on us and we're fixing it. Updates: {statement_link} {signature}"
[incidents.titles]
"topic:website" = "the website outage"
"app-crash" = "the app crashing"

[[policy.rules]]
name = "app-outage"
when = "score('topic:app') >= 0.5"
then = ["incident", "route", "respond"]
incident = "app-crash"
team = "care"
why = "App crashes come in bursts."

[[policy.rules]]
name = "care"
when = "true"
then = ["route", "respond"]
team = "care"
"#;

/// Real complaints from the Virgin America website outages of February 2015.
const SITE_DOWN: &[&str] = &[
    "@VirginAmerica Why is the site down?",
    "@VirginAmerica is the website down?",
    "@VirginAmerica trying to book a flight &amp; your site is down",
    "@VirginAmerica Your website is down and I'm trying to check in!",
    "@VirginAmerica Site down? #help",
    "@VirginAmerica Hi, I'm trying to do check-in but the website is not working.",
    "@VirginAmerica Is there anything going on with the website?",
    "@VirginAmerica And now the flight Flight Booking Problems site is totally down.",
];

/// A real tweet from the Sabre outage of 22 February 2015, and how others posted the same.
const SABRE: &str = "@AmericanAir Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?";
const SABRE_COPIES: &[&str] = &[
    "@USAirways Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?",
    "@AmericanAir @USAirways Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?",
    "Sitting at the gate on flight 719 for an hour due to Sabre being down!! What backup plan is in place if Sabre cannot be fixed? @AmericanAir",
    "@AmericanAir sitting at the gate on Flight 1702 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed??",
    "RT @AmericanAir Sitting at the gate on Flight 719 for an hour due to Sabre being down. What backup plan is in place if Sabre cannot be fixed?",
];
/// The same outage in other words (also real): not near-identical.
const COMPUTERS: &str = "@USAirways @AmericanAir Sitting at the gate on Flight 719 for an hour due to computers being down. What backup plan is in place for this??";

fn airline_texts() -> Vec<String> {
    let mut rows =
        csv::Reader::from_path(shared_data().join("datasets/airline_sentiment.train.csv")).unwrap();
    rows.records().map(|r| r.unwrap()[10].to_string()).collect()
}

/// A real tweet by its opening words.
fn real(opening: &str, texts: &[String]) -> String {
    texts
        .iter()
        .find(|t| t.starts_with(opening))
        .unwrap_or_else(|| panic!("no airline tweet starts with {opening:?}"))
        .clone()
}

const T0: i64 = 1_792_576_800_000; // 2026-10-22T10:00:00Z
const MIN: i64 = 60_000;

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    engine: Engine,
    tenant: Tenant,
    clock: Clock,
    platform: Arc<Mutex<Platform>>,
}

async fn setup() -> Setup {
    setup_on(None).await
}

/// [`setup`] with the store at `url` (PostgreSQL) instead of an SQLite file.
async fn setup_on(url: Option<&str>) -> Setup {
    let platform = Arc::new(Mutex::new(Platform::default()));
    let deliver_url = crate::common::platform(platform.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.toml");
    std::fs::write(&path, TENANT.replace("DELIVER_URL", &deliver_url)).unwrap();
    let rt = runtime();
    let tenant = Tenant::load(&path, &rt).await.unwrap();
    let clock = Clock::manual(T0);
    let store = match url {
        Some(url) => Store::open(url).await,
        None => Store::open_file(&dir.path().join("store.db")).await,
    }
    .unwrap()
    .with_clock(clock.clone());
    Setup {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        engine: Engine::new(rt, store),
        tenant,
        clock,
        platform,
    }
}

/// A customer's post: one conversation and one author per `who`.
fn post(who: &str, id: &str, text: &str, at: i64) -> Message {
    let mut m = Message::example("skyways", text);
    m.channel = "x".into();
    m.external_id = id.into();
    m.conversation_key = format!("thread-{who}");
    m.author.id = format!("author-{who}");
    m.author.display_name = Some(format!("{} Reyes", who[..1].to_uppercase() + &who[1..]));
    m.author.handle = Some(format!("@{who}"));
    m.received_at = at;
    m
}

impl Setup {
    /// Accept and process a post at its own time; returns (message id, conversation id).
    async fn take(&self, m: Message) -> (String, String) {
        self.clock.set(m.received_at);
        let a = self.engine.store.accept("webhook", &m).await.unwrap();
        let p = self
            .engine
            .process(&self.tenant, &a.message_id)
            .await
            .unwrap();
        assert!(matches!(p, Processed::Done(_)), "{p:?}");
        (a.message_id, a.conversation_id)
    }

    async fn incidents(&self) -> Vec<IncidentRow> {
        self.engine
            .store
            .incidents("skyways", None, 100)
            .await
            .unwrap()
    }

    async fn view(&self, id: &str) -> Value {
        self.engine
            .incident_view("skyways", id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.engine.store.count(sql, "skyways").await.unwrap()
    }

    /// Drafts of `purpose` on a message.
    async fn drafts(&self, message_id: &str, purpose: &str) -> Vec<switchboard::store::DraftRow> {
        self.engine
            .store
            .drafts(message_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.purpose == purpose)
            .collect()
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        self.engine
            .store
            .audit_log("skyways", 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a["action"] == action)
            .collect()
    }
}

fn conversations_of(view: &Value) -> Vec<String> {
    let mut c: Vec<String> = view["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap().to_string())
        .collect();
    c.sort();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_opens_one_incident_with_a_statement_that_needs_sign_off_and_a_reply_per_customer()
{
    let s = setup().await;
    let texts = airline_texts();
    // Four customers in twenty minutes: below min_reports, nothing opens.
    let mut taken = Vec::new();
    let who = ["ana", "ben", "cai", "dee", "eve", "fay", "gus"];
    for (i, name) in who.iter().take(4).enumerate() {
        let text = real(SITE_DOWN[i], &texts);
        taken.push(
            s.take(post(
                name,
                &format!("t-{i}"),
                &text,
                T0 + i as i64 * 5 * MIN,
            ))
            .await,
        );
    }
    assert!(s.incidents().await.is_empty());
    // The fifth in the window is a burst: one incident, all five conversations attached.
    taken.push(
        s.take(post(
            "eve",
            "t-4",
            &real(SITE_DOWN[4], &texts),
            T0 + 20 * MIN,
        ))
        .await,
    );
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(
        (
            incident.group_key.as_str(),
            incident.title.as_str(),
            incident.status.as_str(),
            incident.opened_by.as_str()
        ),
        ("topic:website", "the website outage", "open", "detector")
    );
    assert_eq!(incident.evidence["reports"], 5);
    assert_eq!(incident.evidence["usual"], 0.0);
    let mut expected: Vec<String> = taken.iter().map(|t| t.1.clone()).collect();
    expected.sort();
    assert_eq!(conversations_of(&s.view(&incident.id).await), expected);

    // Later reports attach to the same incident: a sixth customer, and the first one again
    // (already attached: no second reply).
    taken.push(
        s.take(post(
            "fay",
            "t-5",
            &real(SITE_DOWN[5], &texts),
            T0 + 40 * MIN,
        ))
        .await,
    );
    s.take(post(
        "ana",
        "t-6",
        &real(SITE_DOWN[6], &texts),
        T0 + 41 * MIN,
    ))
    .await;
    assert_eq!(s.incidents().await.len(), 1, "one incident per group");
    let view = s.view(&incident.id).await;
    assert_eq!(view["conversations"].as_array().unwrap().len(), 6);
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM conversations WHERE tenant = $1 AND incident = 'topic:website'"
        )
        .await,
        6
    );

    // A reply per customer, addressed to them, pointing to the statement; none sent on its own.
    for (name, (message, _)) in who.iter().zip(&taken) {
        let replies = s.drafts(message, "incident-reply").await;
        assert_eq!(replies.len(), 1, "{name}");
        let r = &replies[0];
        assert_eq!(r.status, "proposed");
        let first = name[..1].to_uppercase() + &name[1..];
        assert!(r.text.starts_with(&format!("Hi {first},")), "{}", r.text);
        assert!(
            r.text.contains("the website outage")
                && r.text.contains("https://social.skyways.example/@skyways"),
            "{}",
            r.text
        );
        // Measured by the channel's rule and checked by the guards like any draft.
        assert_eq!(
            (r.length.is_some(), r.length_limit),
            (true, 280),
            "{}",
            r.text
        );
        assert!(r.findings.is_array());
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM drafts WHERE tenant = $1 AND purpose = 'incident-reply'")
            .await,
        6
    );

    // One statement, on the message that opened the incident, which an agent cannot send.
    let statement = &view["statement"];
    assert_eq!(statement["purpose"], "incident-statement");
    assert_eq!(statement["status"], "proposed");
    assert_eq!(statement["message_id"], taken[4].0.as_str());
    assert!(
        statement["text"]
            .as_str()
            .unwrap()
            .contains("the website outage")
    );
    let statement_id = statement["id"].as_str().unwrap();
    let refused = s
        .engine
        .send_draft(&s.tenant, statement_id, None, "agent:ana")
        .await;
    assert!(
        matches!(&refused, Err(ActionError::Conflict(m)) if m.contains("supervisor")),
        "{refused:?}"
    );
    assert!(s.engine.store.outbox("skyways").await.unwrap().is_empty());
    // Signed off, it goes out as a post of its own from the main account.
    s.engine
        .approve_draft(
            &s.tenant,
            statement_id,
            switchboard::store::Role::Supervisor,
            "supervisor:sam",
        )
        .await
        .unwrap();
    let (_, kind) = s
        .engine
        .send_draft(&s.tenant, statement_id, None, "agent:ana")
        .await
        .unwrap();
    assert_eq!(kind, ReplyKind::Statement);
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 1);
    let posted = s.platform.lock().unwrap().requests[0].1.clone();
    let posted: Value = serde_json::from_str(&posted).unwrap();
    assert_eq!(posted["in_reply_to"], Value::Null, "{posted}");
    assert!(
        posted["text"]
            .as_str()
            .unwrap()
            .contains("the website outage")
    );
    // The statement stops nobody's clock: all six customers are still waiting.
    assert_eq!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .len(),
        6
    );

    // Each step is in the audit log, by whom.
    let opened = s.audit("incident.opened").await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["actor"], "detector");
    assert_eq!(s.audit("incident.attached").await.len(), 6);
    assert_eq!(s.audit("incident.statement-drafted").await.len(), 1);
    // The period report counts it.
    let report = switchboard::care::report::build(&s.engine.store, "skyways", T0, T0 + 60 * MIN)
        .await
        .unwrap();
    assert_eq!(report.incidents, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_at_the_usual_rate_open_nothing_and_a_spike_well_above_it_does() {
    let s = setup().await;
    let texts = airline_texts();
    // Three hours of website complaints at the tenant's usual rate: four customers every
    // half hour, none of them a burst.
    let start = T0 - 180 * MIN;
    for k in 0..24 {
        let at = start + k * 15 * MIN / 2;
        s.take(post(
            &format!("usual{k}"),
            &format!("u-{k}"),
            &real(SITE_DOWN[k as usize % SITE_DOWN.len()], &texts),
            at,
        ))
        .await;
    }
    assert!(s.incidents().await.is_empty());
    // Five more in five minutes: enough for min_reports, but not three times the usual count.
    for k in 0..5 {
        s.take(post(
            &format!("now{k}"),
            &format!("n-{k}"),
            &real(SITE_DOWN[k as usize], &texts),
            T0 + (k + 1) * MIN,
        ))
        .await;
    }
    assert!(
        s.incidents().await.is_empty(),
        "the usual rate is not an incident"
    );
    // A spike well above the usual rate is.
    let mut opened_at = None;
    for k in 5..20 {
        s.take(post(
            &format!("now{k}"),
            &format!("n-{k}"),
            &real(SITE_DOWN[k as usize % SITE_DOWN.len()], &texts),
            T0 + (k + 1) * MIN,
        ))
        .await;
        if !s.incidents().await.is_empty() {
            opened_at = Some(k);
            break;
        }
    }
    assert!(opened_at.is_some(), "a spike opens an incident");
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].group_key, "topic:website");
    let e = &incidents[0].evidence;
    let (reports, usual) = (e["reports"].as_f64().unwrap(), e["usual"].as_f64().unwrap());
    assert!(usual > 3.0, "the usual count was measured: {e}");
    assert!(reports >= 3.0 * usual, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_identical_texts_without_a_topic_label_group_into_one_incident() {
    let s = setup().await;
    let texts = airline_texts();
    let original = real("@AmericanAir Sitting at the gate on Flight 719", &texts);
    assert_eq!(original, SABRE);
    let mut posts = vec![original];
    posts.extend(SABRE_COPIES.iter().map(|t| t.to_string()));
    let mut taken = Vec::new();
    for (i, text) in posts.iter().take(5).enumerate() {
        taken.push(
            s.take(post(
                &format!("pax{i}"),
                &format!("s-{i}"),
                text,
                T0 + i as i64 * 3 * MIN,
            ))
            .await,
        );
    }
    // No group label on any of them: the text alone grouped them.
    for (m, _) in &taken {
        let labels = s.engine.store.labels(m).await.unwrap();
        assert!(
            labels.iter().all(|l| !l.name.starts_with("topic:")),
            "{labels:?}"
        );
    }
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert!(incident.group_key.starts_with("text:"), "{incident:?}");
    assert_eq!(incident.sample.as_deref(), Some(posts[4].as_str()));
    assert_eq!(incident.conversations, 5);

    // A sixth copy attaches; the same outage in other words does not.
    let (_, copy) = s.take(post("pax5", "s-5", &posts[5], T0 + 20 * MIN)).await;
    let (_, other) = s.take(post("pax6", "s-6", COMPUTERS, T0 + 21 * MIN)).await;
    let view = s.view(&incident.id).await;
    let attached = conversations_of(&view);
    assert!(attached.contains(&copy));
    assert!(!attached.contains(&other));
    assert_eq!(s.incidents().await.len(), 1);
}

/// Two processes sharing one store (two servers, or the CLI beside a server) each keep the
/// texts they have seen in memory: the reports the other one settled still count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_identical_texts_settled_by_two_processes_group_into_one_incident() {
    let s = setup().await;
    let other = Engine::new(
        runtime(),
        Store::open_file(&s.dir.join("store.db"))
            .await
            .unwrap()
            .with_clock(s.clock.clone()),
    );
    let mut posts = vec![SABRE.to_string()];
    posts.extend(SABRE_COPIES.iter().map(|t| t.to_string()));
    for (i, text) in posts.iter().take(5).enumerate() {
        let m = post(
            &format!("pax{i}"),
            &format!("s-{i}"),
            text,
            T0 + i as i64 * 3 * MIN,
        );
        // Alternately: each engine settles reports the other has never seen.
        let engine = if i % 2 == 0 { &s.engine } else { &other };
        s.clock.set(m.received_at);
        let a = engine.store.accept("webhook", &m).await.unwrap();
        let p = engine.process(&s.tenant, &a.message_id).await.unwrap();
        assert!(matches!(p, Processed::Done(_)), "{p:?}");
    }
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(incidents[0].group_key.starts_with("text:"), "{incidents:?}");
    assert_eq!(incidents[0].conversations, 5);
}

/// The detector's counts are SQL of their own (customers in a window, reports among the
/// near-identical ones): the same bursts open the same incidents on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_by_topic_and_by_text_open_incidents_on_postgresql() {
    let pg = crate::postgres::Postgres::start();
    let s = setup_on(Some(&pg.url())).await;
    let texts = airline_texts();
    for (i, site) in SITE_DOWN.iter().take(5).enumerate() {
        let text = real(site, &texts);
        s.take(post(
            &format!("web{i}"),
            &format!("w-{i}"),
            &text,
            T0 + i as i64 * MIN,
        ))
        .await;
    }
    let mut posts = vec![SABRE.to_string()];
    posts.extend(SABRE_COPIES.iter().map(|t| t.to_string()));
    for (i, text) in posts.iter().take(5).enumerate() {
        let at = T0 + 60 * MIN + i as i64 * 3 * MIN;
        s.take(post(&format!("pax{i}"), &format!("s-{i}"), text, at))
            .await;
    }
    let mut incidents = s.incidents().await;
    incidents.sort_by(|a, b| a.group_key.cmp(&b.group_key));
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert!(incidents[0].group_key.starts_with("text:"), "{incidents:?}");
    assert_eq!(incidents[1].group_key, "topic:website");
    assert!(
        incidents.iter().all(|i| i.conversations == 5),
        "{incidents:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_incident_and_the_detectors_meet_in_one_table_and_merge() {
    let s = setup().await;
    let texts = airline_texts();
    // The rule names an incident: it opens at the first report, no burst needed.
    let crash = real("@USAirways did a pre schooler develop your app?", &texts);
    let (m1, c1) = s
        .take(post(
            "ana",
            "a-1",
            &format!("{crash} The app crashes at check-in."),
            T0,
        ))
        .await;
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1);
    let rule = incidents[0].clone();
    assert_eq!(
        (
            rule.group_key.as_str(),
            rule.title.as_str(),
            rule.opened_by.as_str()
        ),
        ("app-crash", "the app crashing", "policy:app-outage")
    );
    assert_eq!(s.drafts(&m1, "incident-statement").await.len(), 1);
    assert_eq!(s.drafts(&m1, "incident-reply").await.len(), 1);
    let (_, c2) = s
        .take(post(
            "ben",
            "a-2",
            "@SouthwestAir your app keeps crashing when I try to check in",
            T0 + MIN,
        ))
        .await;
    assert_eq!(s.incidents().await.len(), 1);
    assert_eq!(conversations_of(&s.view(&rule.id).await), {
        let mut v = vec![c1.clone(), c2.clone()];
        v.sort();
        v
    });
    let attached = s.audit("incident.attached").await;
    assert!(
        attached
            .iter()
            .all(|a| a["actor"] == "policy:app-outage" && a["subject"] == rule.id.as_str()),
        "{attached:?}"
    );
    // The conversation says which incident it is in, as before.
    let (info, _) = s
        .engine
        .store
        .conversation("skyways", &c2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info["incident"], "app-crash");

    // The detector opens its own incident for a website burst, in the same table.
    for (i, opening) in SITE_DOWN.iter().enumerate().take(5) {
        s.take(post(
            &format!("web{i}"),
            &format!("w-{i}"),
            &real(opening, &texts),
            T0 + (2 + i as i64) * MIN,
        ))
        .await;
    }
    let all = s.incidents().await;
    assert_eq!(all.len(), 2);
    let detected = all
        .iter()
        .find(|i| i.group_key == "topic:website")
        .unwrap()
        .clone();
    let detected_statement = detected.statement_draft_id.clone().unwrap();

    // A supervisor finds it is the same outage and merges it into the rule's incident.
    let moved = s
        .engine
        .merge_incidents(&s.tenant, &detected.id, &rule.id, "supervisor:sam")
        .await
        .unwrap();
    assert_eq!(moved, 5);
    let merged = s
        .engine
        .store
        .incident("skyways", &detected.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(merged.status, "merged");
    assert_eq!(merged.merged_into.as_deref(), Some(rule.id.as_str()));
    assert_eq!(merged.conversations, 0);
    let into = s.view(&rule.id).await;
    assert_eq!(into["conversations"].as_array().unwrap().len(), 7);
    // One statement per problem: the merged incident's is withdrawn.
    let withdrawn = s
        .engine
        .store
        .draft("skyways", &detected_statement)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(withdrawn.status, "rejected");
    let audit = s.audit("incident.merged").await;
    let subjects: Vec<&str> = audit
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&detected.id.as_str()) && subjects.contains(&rule.id.as_str()),
        "both incidents record the merge: {audit:?}"
    );
    // A later website report joins the incident its group was merged into.
    let (_, late) = s
        .take(post(
            "web9",
            "w-9",
            &real(SITE_DOWN[7], &texts),
            T0 + 30 * MIN,
        ))
        .await;
    assert!(conversations_of(&s.view(&rule.id).await).contains(&late));
    assert_eq!(s.incidents().await.len(), 2);
    // Merging a merged incident again, or into itself, is refused.
    assert!(matches!(
        s.engine
            .merge_incidents(&s.tenant, &detected.id, &rule.id, "supervisor:sam")
            .await,
        Err(ActionError::Conflict(_))
    ));
    assert!(matches!(
        s.engine
            .merge_incidents(&s.tenant, &rule.id, &rule.id, "supervisor:sam")
            .await,
        Err(ActionError::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_follows_up_once_per_customer_stops_their_clocks_and_cannot_happen_twice() {
    let s = setup().await;
    let texts = airline_texts();
    // Three customers with a problem no classifier knows: agents open the incident by hand.
    let lost = [
        "@united you have now lost my bag.",
        "@united 24 hrs since flight landed and ZERO info on my missing bag?",
        "@united 2nd flight in two weeks that you have lost my bag!",
    ];
    let mut conversations = Vec::new();
    for (i, opening) in lost.iter().enumerate() {
        let (_, c) = s
            .take(post(
                &format!("bag{i}"),
                &format!("b-{i}"),
                &real(opening, &texts),
                T0 + i as i64 * MIN,
            ))
            .await;
        conversations.push(c);
    }
    assert!(s.incidents().await.is_empty());
    let id = s
        .engine
        .open_incident(
            &s.tenant,
            &OpenRequest {
                title: "the baggage backlog".into(),
                group: Some("lost-bags".into()),
                conversations: vec![conversations[0].clone(), "thread-bag1".into()],
            },
            "supervisor:sam",
        )
        .await
        .unwrap();
    // The same group again is refused while it is open.
    let again = s
        .engine
        .open_incident(
            &s.tenant,
            &OpenRequest {
                title: "again".into(),
                group: Some("lost-bags".into()),
                conversations: vec![],
            },
            "supervisor:sam",
        )
        .await;
    assert!(matches!(again, Err(ActionError::Conflict(_))), "{again:?}");
    // An agent attaches the third conversation (and the first again: no change).
    let added = s
        .engine
        .attach_to_incident(
            &s.tenant,
            &id,
            &[conversations[2].clone(), conversations[0].clone()],
            "agent:ana",
        )
        .await
        .unwrap();
    assert_eq!(added, 1);
    let view = s.view(&id).await;
    assert_eq!(view["conversations"].as_array().unwrap().len(), 3);
    assert_eq!(view["incident"]["opened_by"], "supervisor:sam");
    assert_eq!(view["statement"]["status"], "proposed");
    // Every customer is waiting: three running clocks.
    assert_eq!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .len(),
        3
    );

    s.clock.set(T0 + 3 * 60 * MIN);
    let (queued, blocked) = s
        .engine
        .close_incident(&s.tenant, &id, "supervisor:sam")
        .await
        .unwrap();
    assert_eq!((queued, blocked), (3, 0));
    let second = s
        .engine
        .close_incident(&s.tenant, &id, "supervisor:sam")
        .await;
    assert!(
        matches!(&second, Err(ActionError::Conflict(m)) if m.contains("closed")),
        "{second:?}"
    );
    // A closed incident takes no more conversations.
    assert!(matches!(
        s.engine
            .attach_to_incident(&s.tenant, &id, &[conversations[0].clone()], "agent:ana")
            .await,
        Err(ActionError::Conflict(_))
    ));

    // A restart while the follow-ups are being sent: claimed, then the process dies.
    let claimed = s
        .engine
        .store
        .claim_due_replies("skyways", s.clock.now_ms(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|r| r.kind == ReplyKind::FollowUp));
    let store = Store::open_file(&s.dir.join("store.db"))
        .await
        .unwrap()
        .with_clock(s.clock.clone());
    let engine = Engine::new(s.engine.rt.clone(), store);
    engine.resume(&s.tenant).await.unwrap();
    assert_eq!(engine.deliver_due(&s.tenant).await.unwrap().sent, 3);
    assert_eq!(engine.deliver_due(&s.tenant).await.unwrap().sent, 0);

    // Exactly one follow-up per customer reached the platform, each in its own thread.
    let (posted, requests) = {
        let p = s.platform.lock().unwrap();
        (p.posted.len(), p.requests.clone())
    };
    assert_eq!(posted, 3);
    let mut threads = Vec::new();
    for (_, body) in &requests {
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .contains("the baggage backlog is fixed now"),
            "{v}"
        );
        threads.push(v["conversation"].as_str().unwrap().to_string());
    }
    threads.sort();
    threads.dedup();
    assert_eq!(threads, ["thread-bag0", "thread-bag1", "thread-bag2"]);
    let keys: Vec<String> = engine
        .store
        .outbox("skyways")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == ReplyKind::FollowUp)
        .map(|o| o.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter()
            .all(|k| k.ends_with(&format!("-incident-follow-up-{id}")))
    );

    // A follow-up tells the customer it is fixed: their clocks stopped.
    assert!(
        engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .is_empty()
    );
    for c in &conversations {
        let clocks = engine.service_levels(&s.tenant, Some(c)).await.unwrap();
        assert!(
            clocks.iter().all(|v| v.clock.stopped_at.is_some()),
            "{clocks:?}"
        );
    }
    let closed = s.audit("incident.closed").await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["actor"], "supervisor:sam");
    assert_eq!(closed[0]["detail"]["follow_ups"], 3);
    assert_eq!(s.audit("incident.follow-up-queued").await.len(), 3);
}

/// What `Engine::process` does up to its commit: the process "dies" before the incident step.
async fn commit_without_incident_step(engine: &Engine, tenant: &Tenant, m: &Message) {
    let a = engine.store.accept("webhook", m).await.unwrap();
    let stored = engine.store.message(&a.message_id).await.unwrap();
    let connector = tenant.connector(Some("webhook")).unwrap();
    let triage = switchboard::pipeline::triage(
        &engine.rt,
        tenant,
        connector,
        stored.message.clone(),
        &Default::default(),
    )
    .await;
    let outcome = switchboard::worker::outcome(tenant, &stored.id, &triage, &Default::default());
    assert!(engine.store.commit(&stored, &outcome).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_left_unsettled_by_a_crash_is_settled_on_restart() {
    let s = setup().await;
    let texts = airline_texts();
    for (i, opening) in SITE_DOWN.iter().enumerate().take(4) {
        s.take(post(
            &format!("c{i}"),
            &format!("c-{i}"),
            &real(opening, &texts),
            T0 + i as i64 * MIN,
        ))
        .await;
    }
    // The fifth report is committed, then the process dies before the incident step.
    let m = post("c4", "c-4", &real(SITE_DOWN[4], &texts), T0 + 5 * MIN);
    s.clock.set(m.received_at);
    commit_without_incident_step(&s.engine, &s.tenant, &m).await;
    assert!(s.incidents().await.is_empty());
    assert_eq!(
        s.count("SELECT COUNT(*) FROM incident_reports WHERE tenant = $1 AND settled_at IS NULL")
            .await,
        1
    );
    // On restart the pending report is settled: the burst is found.
    let store = Store::open_file(&s.dir.join("store.db"))
        .await
        .unwrap()
        .with_clock(s.clock.clone());
    let engine = Engine::new(s.engine.rt.clone(), store);
    engine.resume(&s.tenant).await.unwrap();
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].conversations, 5);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM incident_reports WHERE tenant = $1 AND settled_at IS NULL")
            .await,
        0
    );
}

/// What the server's lanes do with a backlog: two lanes commit messages out of their received
/// order (the fifth complaint before the fourth), and the tenant's reports are settled once the
/// batch is in, oldest first. Settled as each commit landed, the fifth would have counted four
/// customers (the fourth not in yet) and the fourth's window ends before the fifth: no
/// incident. A crash between the commits and the settle pass leaves the reports pending, and
/// a restart opens the same incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_out_of_order_is_settled_oldest_first_and_opens_the_incident() {
    let s = setup().await;
    let texts = airline_texts();
    let mut ids = Vec::new();
    for (i, opening) in SITE_DOWN[..5].iter().enumerate() {
        let m = post(
            &format!("c{i}"),
            &format!("c-{i}"),
            &real(opening, &texts),
            T0 + i as i64 * MIN,
        );
        s.clock.set(m.received_at);
        ids.push(
            s.engine
                .store
                .accept("webhook", &m)
                .await
                .unwrap()
                .message_id,
        );
    }
    const UNSETTLED: &str =
        "SELECT COUNT(*) FROM incident_reports WHERE tenant = $1 AND settled_at IS NULL";
    for i in [0, 1, 2, 4, 3] {
        let p = s
            .engine
            .process_unsettled(&s.tenant, &ids[i])
            .await
            .unwrap();
        assert!(matches!(p, Processed::Done(_)), "{p:?}");
    }
    assert_eq!(s.count(UNSETTLED).await, 5);
    assert!(s.incidents().await.is_empty());
    // The process dies before its settle pass: a new one settles on resume.
    let store = Store::open_file(&s.dir.join("store.db"))
        .await
        .unwrap()
        .with_clock(s.clock.clone());
    let restarted = Engine::new(s.engine.rt.clone(), store);
    restarted.resume(&s.tenant).await.unwrap();
    assert_eq!(s.count(UNSETTLED).await, 0);
    let incidents = s.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].group_key, "topic:website");
    assert_eq!(incidents[0].conversations, 5);
    // The running process's own pass finds nothing left and opens nothing twice.
    assert_eq!(
        s.engine.settle_incident_reports(&s.tenant).await.unwrap(),
        0
    );
    assert_eq!(s.incidents().await.len(), 1);
}

// ---- through the real server ------------------------------------------------------------

const OPERATOR: &str = "operator-incidents-token";

const GLOBEX: &str = r#"
tenant = "globex"

[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
[connectors.secrets]
signing-secret = { value = "globex-signing" }
"#;

struct Api {
    server: Option<switchboard::server::Server>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(tenants: &[(&str, String)]) -> Api {
        Api::start_in(tempfile::tempdir().unwrap(), tenants).await
    }

    /// Serve `dir/data`, which may already hold a store.
    async fn start_in(dir: tempfile::TempDir, tenants: &[(&str, String)]) -> Api {
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tenants")).unwrap();
        for (name, text) in tenants {
            std::fs::write(data.join("tenants").join(format!("{name}.toml")), text).unwrap();
        }
        let server = switchboard::server::Server::start(
            runtime(),
            switchboard::server::ServeOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: data,
                admin_token: Some(OPERATOR.into()),
                watch: false,
                drain: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        Api {
            base: format!("http://{}", server.addr),
            server: Some(server),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn token(&self, tenant: &str, role: &str) -> String {
        let (s, v) = self
            .post(
                &format!("/api/tenants/{tenant}/tokens"),
                OPERATOR,
                json!({ "role": role, "name": format!("{role}-{tenant}") }),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    async fn webhook(&self, tenant: &str, secret: &str, id: &str, author: &str, text: &str) {
        use hmac::Mac;
        let body = json!({ "id": id, "author": { "id": author, "name": format!("{author} Reyes") }, "text": text })
            .to_string();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let r = self
            .http
            .post(format!("{}/hooks/{tenant}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-signature-256", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }

    /// Poll `path` until `check` holds (the workers run in the background), up to 30 s.
    async fn until(
        &self,
        path: &str,
        token: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..300 {
            let (_, v) = self.get(path, token).await;
            if check(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_settles_reports_a_crash_left_pending_without_waiting_for_a_new_message() {
    let platform_state = Arc::new(Mutex::new(Platform::default()));
    let url = crate::common::platform(platform_state.clone()).await;
    let skyways = TENANT.replace("DELIVER_URL", &url);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let tenant_file = dir.path().join("skyways.toml");
    std::fs::write(&tenant_file, &skyways).unwrap();
    // Five complaints committed by an earlier process that died before each incident step.
    {
        let rt = runtime();
        let tenant = Tenant::load(&tenant_file, &rt).await.unwrap();
        let store = Store::open_file(&data.join("switchboard.db"))
            .await
            .unwrap();
        let engine = Engine::new(rt, store);
        let texts = airline_texts();
        let start = Clock::system().now_ms() - 10 * MIN;
        for (i, opening) in SITE_DOWN.iter().take(5).enumerate() {
            let m = post(
                &format!("c{i}"),
                &format!("c-{i}"),
                &real(opening, &texts),
                start + i as i64 * MIN,
            );
            commit_without_incident_step(&engine, &tenant, &m).await;
        }
        assert!(
            engine
                .store
                .incidents("skyways", None, 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // No message arrives after the start: the workers' periodic sweep settles them.
    let mut api = Api::start_in(dir, &[("skyways", skyways)]).await;
    let agent = api.token("skyways", "agent").await;
    let list = api
        .until(
            "/api/tenants/skyways/incidents",
            &agent,
            "the incident from reports left pending",
            |v| v["incidents"].as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    assert_eq!(list["incidents"][0]["group_key"], "topic:website");
    let id = list["incidents"][0]["id"].as_str().unwrap().to_string();
    api.until(
        &format!("/api/tenants/skyways/incidents/{id}"),
        &agent,
        "five conversations",
        |v| v["conversations"].as_array().is_some_and(|a| a.len() == 5),
    )
    .await;
    api.server.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_supervisors_work_incidents_through_the_api_and_another_tenant_sees_none() {
    use reqwest::StatusCode as S;
    let platform_state = Arc::new(Mutex::new(Platform::default()));
    let url = crate::common::platform(platform_state.clone()).await;
    let skyways = TENANT.replace("DELIVER_URL", &url);
    let mut api = Api::start(&[("skyways", skyways), ("globex", GLOBEX.into())]).await;
    let agent = api.token("skyways", "agent").await;
    let supervisor = api.token("skyways", "supervisor").await;
    let globex = api.token("globex", "admin").await;
    let texts = airline_texts();

    // Five customers report the website down: the detector opens an incident.
    for (i, opening) in SITE_DOWN.iter().take(5).enumerate() {
        api.webhook(
            "skyways",
            "s3cret",
            &format!("h-{i}"),
            &format!("cust{i}"),
            &real(opening, &texts),
        )
        .await;
    }
    let list = api
        .until(
            "/api/tenants/skyways/incidents",
            &agent,
            "the incident",
            |v| v["incidents"].as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    let detected = list["incidents"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["incidents"][0]["group_key"], "topic:website");
    let detail = api
        .until(
            &format!("/api/tenants/skyways/incidents/{detected}"),
            &agent,
            "five conversations",
            |v| v["conversations"].as_array().is_some_and(|a| a.len() == 5),
        )
        .await;
    assert_eq!(detail["statement"]["status"], "proposed");
    let statement = detail["statement"]["id"].as_str().unwrap().to_string();

    // Agents read and attach; opening, merging and closing need a supervisor.
    let (status, _) = api
        .post(
            "/api/tenants/skyways/incidents",
            &agent,
            json!({ "title": "x" }),
        )
        .await;
    assert_eq!(status, S::FORBIDDEN);
    api.webhook(
        "skyways",
        "s3cret",
        "h-9",
        "late",
        "@VirginAmerica my bag never showed up in Dallas",
    )
    .await;
    let inbox = api
        .until(
            "/api/tenants/skyways/inbox",
            &agent,
            "the late conversation",
            |v| {
                v["conversations"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c["conversation_key"] == "h-9"))
            },
        )
        .await;
    let late = inbox["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation_key"] == "h-9")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, manual) = api
        .post(
            "/api/tenants/skyways/incidents",
            &supervisor,
            json!({ "title": "booking errors", "group": "booking", "conversations": [] }),
        )
        .await;
    assert_eq!(status, S::CREATED, "{manual}");
    let manual = manual["incident"].as_str().unwrap().to_string();
    let (status, v) = api
        .post(
            &format!("/api/tenants/skyways/incidents/{manual}/attach"),
            &agent,
            json!({ "conversations": [late] }),
        )
        .await;
    assert_eq!((status, &v["attached"]), (S::OK, &json!(1)), "{v}");
    for (path, body) in [
        (
            format!("/api/tenants/skyways/incidents/{manual}/merge"),
            json!({ "into": detected }),
        ),
        (
            format!("/api/tenants/skyways/incidents/{detected}/close"),
            json!({}),
        ),
    ] {
        let (status, _) = api.post(&path, &agent, body).await;
        assert_eq!(status, S::FORBIDDEN, "{path}");
    }
    let (status, v) = api
        .post(
            &format!("/api/tenants/skyways/incidents/{manual}/merge"),
            &supervisor,
            json!({ "into": detected }),
        )
        .await;
    assert_eq!((status, &v["moved"]), (S::OK, &json!(1)), "{v}");

    // The statement: an agent cannot send it; a supervisor signs it off, then it goes.
    let (status, _) = api
        .post(
            &format!("/api/tenants/skyways/drafts/{statement}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, S::CONFLICT);
    let (status, _) = api
        .post(
            &format!("/api/tenants/skyways/drafts/{statement}/approve"),
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!(status, S::OK);
    let (status, v) = api
        .post(
            &format!("/api/tenants/skyways/drafts/{statement}/send"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &v["counts_as"]),
        (S::ACCEPTED, &json!("statement")),
        "{v}"
    );

    // Another tenant sees none of it: its own token on its own tenant does not find the id,
    // and on this tenant's routes it is refused.
    let (status, _) = api
        .get(
            &format!("/api/tenants/globex/incidents/{detected}"),
            &globex,
        )
        .await;
    assert_eq!(status, S::NOT_FOUND);
    let (status, v) = api.get("/api/tenants/globex/incidents", &globex).await;
    assert_eq!((status, &v["incidents"]), (S::OK, &json!([])));
    for (path, body) in [
        (
            format!("/api/tenants/globex/incidents/{detected}/close"),
            json!({}),
        ),
        (
            format!("/api/tenants/globex/incidents/{detected}/merge"),
            json!({ "into": manual }),
        ),
        (
            format!("/api/tenants/globex/incidents/{detected}/attach"),
            json!({ "conversations": [late] }),
        ),
    ] {
        let (status, _) = api.post(&path, &globex, body).await;
        assert_eq!(status, S::NOT_FOUND, "{path}");
    }
    let (status, _) = api
        .get(
            &format!("/api/tenants/skyways/incidents/{detected}"),
            &globex,
        )
        .await;
    assert_eq!(status, S::FORBIDDEN);

    // Closing follows up with all six customers through the platform; a second close is 409.
    let (status, v) = api
        .post(
            &format!("/api/tenants/skyways/incidents/{detected}/close"),
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!((status, &v["follow_ups"]), (S::OK, &json!(6)), "{v}");
    let (status, _) = api
        .post(
            &format!("/api/tenants/skyways/incidents/{detected}/close"),
            &supervisor,
            json!({}),
        )
        .await;
    assert_eq!(status, S::CONFLICT);
    for _ in 0..300 {
        if platform_state.lock().unwrap().posted.len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posted = platform_state.lock().unwrap().posted.len();
    assert_eq!(posted, 7, "the statement and six follow-ups");
    let (_, v) = api
        .get("/api/tenants/skyways/incidents?status=closed", &agent)
        .await;
    assert_eq!(v["incidents"].as_array().unwrap().len(), 1);
    api.server.take().unwrap().shutdown().await.unwrap();
}

// ---- the command line --------------------------------------------------------------------

fn cli(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--cache-dir")
        .arg(dir)
        .env("SWITCHBOARD_DB", dir.join("store.db"))
        .current_dir(repo_root())
        .output()
        .expect("run switchboard")
}

#[test]
fn the_cli_lists_shows_opens_merges_and_closes_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tenant = "examples/acme/tenant.toml";
    // The bundled example's `app-outage` rule names an incident: `run` opens it.
    let out = cli(&["run", tenant, "examples/acme/inbound.jsonl"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = |args: &[&str]| -> Value {
        let out = cli(
            &[&["incidents", tenant, "list", "--format", "json"], args].concat(),
            d,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = list(&[]);
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{v}");
    assert_eq!(incidents[0]["group_key"], "app-crash");
    assert_eq!(incidents[0]["opened_by"], "policy:app-outage");
    let rule = incidents[0]["id"].as_str().unwrap().to_string();

    let out = cli(&["incidents", tenant, "show", &rule], d);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("app-crash") && shown.contains("incident.opened"),
        "{shown}"
    );

    // Open one by hand on a conversation, merge it into the rule's, close that one.
    let out = cli(
        &[
            "incidents",
            tenant,
            "open",
            "--title",
            "checkout errors",
            "tw-1001",
            "--by",
            "sam",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manual = opened["incident"].as_str().unwrap();
    let out = cli(
        &["incidents", tenant, "merge", manual, &rule, "--by", "sam"],
        d,
    );
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["moved"], 1, "{merged}");
    assert_eq!(
        list(&["--status", "open"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = cli(&["incidents", tenant, "close", &rule, "--by", "sam"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(closed["status"], "closed");
    // Closing again is refused with a reason and exit code 1.
    let out = cli(&["incidents", tenant, "close", &rule, "--by", "sam"], d);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already closed"));
    assert_eq!(list(&["--status", "open"])["incidents"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_after_the_connector_was_removed_closes_without_a_follow_up_to_nowhere() {
    let s = setup().await;
    let texts = airline_texts();
    let (_, c) = s
        .take(post(
            "zed",
            "z-1",
            &real("@united you have now lost my bag.", &texts),
            T0,
        ))
        .await;
    let id = s
        .engine
        .open_incident(
            &s.tenant,
            &OpenRequest {
                title: "the baggage backlog".into(),
                group: None,
                conversations: vec![c],
            },
            "supervisor:sam",
        )
        .await
        .unwrap();
    // The tenant now runs its channel under another connector name.
    let path = s.dir.join("renamed.toml");
    std::fs::write(
        &path,
        TENANT
            .replace("DELIVER_URL", "http://127.0.0.1:9/none")
            .replace("name = \"webhook\"", "name = \"webhook-v2\""),
    )
    .unwrap();
    let renamed = Tenant::load(&path, &s.engine.rt).await.unwrap();
    let closed = tokio::time::timeout(
        Duration::from_secs(120),
        s.engine.close_incident(&renamed, &id, "supervisor:sam"),
    )
    .await
    .expect("closing finishes");
    assert_eq!(closed.unwrap(), (0, 0));
    assert_eq!(
        s.engine
            .store
            .incident("skyways", &id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "closed"
    );
    assert!(s.engine.store.outbox("skyways").await.unwrap().is_empty());
}
