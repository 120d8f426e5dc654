//! The care workflow through the real pipeline, real plugins and a real SQLite file, on a
//! manual clock: service levels counted in business hours across a holiday and the end of
//! summer time, warnings and breaches with their actions, acknowledgements that do not stop the
//! clock, the out-of-hours reply (once per conversation), resolution with a satisfaction
//! survey answered in the forms customers use, and the period report. Replies go out through
//! the generic connector to a platform mock on loopback.

use std::sync::{Arc, Mutex};

use crate::common::*;
use switchboard::care::ReplyKind;
use switchboard::clock::Clock;
use switchboard::contract::{Message, Visibility};
use switchboard::store::{ActionError, Store};
use switchboard::tenant::Tenant;
use switchboard::worker::{Engine, Processed};

const TENANT: &str = r#"
tenant = "harbour"
time_zone = "Europe/London"
signature = "^Mo"

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
"topic:delivery" = ["parcel", "delivery"]

[[suggesters]]
name = "canned"
plugin = "canned-replies"
[suggesters.config.templates]
"topic:refund" = "Hi {name}, we have refunded the double charge today; it shows in 3-5 days. {signature}"
"default" = "Hi {name}, sorry about this. We're looking into it and will update you here. {signature}"

[hours]
mon = "08:00-20:00"
tue = "08:00-20:00"
wed = "08:00-20:00"
thu = "08:00-20:00"
fri = "08:00-20:00"
holidays = ["2026-10-26"]

[service_levels]
counting = "business-hours"
warn_before_min = 10
first_response = { internal_min = 30, published_min = 60 }
next_response = { internal_min = 15, published_min = 30 }

[away]
self_service = "https://help.harbour.example"

[satisfaction]
delay_min = 5
answer_within_h = 48

[[policy.rules]]
name = "care"
when = "true"
then = ["route", "respond"]
team = "care"
why = "Every message here is a care question."
"#;

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

const MIN: i64 = 60_000;

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    tenant: Tenant,
    clock: Clock,
    platform: Arc<Mutex<Platform>>,
}

async fn setup(start: &str) -> Setup {
    let platform = Arc::new(Mutex::new(Platform::default()));
    let url = crate::common::platform(platform.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.toml");
    std::fs::write(&path, TENANT.replace("DELIVER_URL", &url)).unwrap();
    let rt = runtime();
    let tenant = Tenant::load(&path, &rt).await.unwrap();
    let clock = Clock::manual(ms(start));
    let store = Store::open_file(&dir.path().join("store.db"))
        .await
        .unwrap()
        .with_clock(clock.clone());
    Setup {
        engine: Engine::new(rt, store),
        tenant,
        clock,
        platform,
        _dir: dir,
    }
}

fn msg(id: &str, conversation: &str, text: &str, at: &str) -> Message {
    let mut m = Message::example("harbour", text);
    m.channel = "x".into();
    m.external_id = id.into();
    m.conversation_key = conversation.into();
    m.author.id = format!("author-of-{conversation}");
    m.author.display_name = Some("Robin Ash".into());
    m.received_at = ms(at);
    m
}

impl Setup {
    /// Accept and process a message at the clock's current time.
    async fn take(&self, m: Message) -> (String, String, Processed) {
        let a = self.engine.store.accept("webhook", &m).await.unwrap();
        let p = self
            .engine
            .process(&self.tenant, &a.message_id)
            .await
            .unwrap();
        (a.message_id, a.conversation_id, p)
    }

    async fn at(&self, rfc3339: &str) -> switchboard::care::SweepReport {
        self.clock.set(ms(rfc3339));
        self.engine
            .sweep_service_levels(&self.tenant)
            .await
            .unwrap()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.engine.store.count(sql, "harbour").await.unwrap()
    }

    /// The draft ids of a message, best first, with their purpose and text.
    async fn drafts(&self, message_id: &str) -> Vec<(String, String, String)> {
        let mut d = self.engine.store.drafts(message_id).await.unwrap();
        d.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        d.into_iter().map(|d| (d.id, d.purpose, d.text)).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_breaching_at_once_is_recorded_in_full_and_once() {
    // 150 conversations waiting since Tuesday morning: one sweep at noon finds every clock past
    // both targets. Their events are written a chunk per transaction; each must be recorded
    // exactly once, with its actions, across the chunks.
    let s = setup("2026-10-27T08:00:00Z").await;
    let n = 150;
    for i in 0..n {
        s.take(msg(
            &format!("b-{i}"),
            &format!("backlog-{i}"),
            "my parcel has not arrived",
            "2026-10-27T08:00:00Z",
        ))
        .await;
    }
    let r = s.at("2026-10-27T12:00:00Z").await;
    assert_eq!(
        (
            r.running,
            r.warned,
            r.internal_breaches,
            r.published_breaches
        ),
        (n, n, n, n)
    );
    for sql in [
        "SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'sla.warning'",
        "SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'sla.internal-breach'",
        "SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'sla.breach'",
    ] {
        assert_eq!(s.count(sql).await, n as i64, "{sql}");
    }
    // Both breaches raised every conversation's priority.
    let inbox = s.engine.store.inbox("harbour", None, 500).await.unwrap();
    assert_eq!(inbox.len(), n);
    assert!(inbox.iter().all(|c| c.priority == 2), "{inbox:?}");
    // Nothing is recorded twice.
    let again = s.at("2026-10-27T12:05:00Z").await;
    assert_eq!(
        (
            again.warned,
            again.internal_breaches,
            again.published_breaches
        ),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_runs_in_business_hours_warns_breaches_and_stops_only_on_a_real_response() {
    // Friday 23 October 2026, 19:55 in London (BST). The message came at 19:50: ten minutes
    // before closing. Saturday and Sunday are closed, summer time ends on Sunday, and Monday
    // 26 October is a holiday, so the 30-minute internal target falls due on Tuesday at 08:20
    // GMT and the 60-minute published one at 08:50.
    let s = setup("2026-10-23T18:55:00Z").await;
    let (m1, conv, p) = s
        .take(msg(
            "x-1",
            "thread-1",
            "my parcel has not arrived",
            "2026-10-23T18:50:00Z",
        ))
        .await;
    assert!(matches!(p, Processed::Done(_)));
    let views = s.engine.service_levels(&s.tenant, None).await.unwrap();
    assert_eq!(views.len(), 1);
    let c = &views[0].clock;
    assert_eq!(
        (c.kind.as_str(), c.started_at),
        ("first", ms("2026-10-23T18:50:00Z"))
    );
    assert_eq!(c.internal_due_at, Some(ms("2026-10-27T08:20:00Z")));
    assert_eq!(c.published_due_at, Some(ms("2026-10-27T08:50:00Z")));
    assert_eq!(views[0].state, "running");
    // In hours: no away reply.
    assert!(s.drafts(&m1).await.iter().all(|d| d.1 != "away"));
    s.engine
        .store
        .assign("harbour", &conv, Some("ana"), "supervisor:lee")
        .await
        .unwrap();

    // The holiday passes without a sound; ten minutes before the internal target, a warning.
    assert_eq!(s.at("2026-10-26T12:00:00Z").await.warned, 0);
    assert_eq!(s.at("2026-10-27T08:09:59Z").await.warned, 0);
    let r = s.at("2026-10-27T08:10:00Z").await;
    assert_eq!((r.running, r.warned, r.internal_breaches), (1, 1, 0));
    assert_eq!(s.at("2026-10-27T08:15:00Z").await.warned, 0, "warned once");
    assert_eq!(
        s.engine.service_levels(&s.tenant, None).await.unwrap()[0].state,
        "warning"
    );

    // Internal breach: priority up and a supervisor told; the agent keeps it.
    let r = s.at("2026-10-27T08:20:00Z").await;
    assert_eq!(r.internal_breaches, 1);
    let inbox = s.engine.store.inbox("harbour", None, 10).await.unwrap();
    assert_eq!(
        (inbox[0].priority, inbox[0].assignee.as_deref()),
        (1, Some("ana"))
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'supervisor.notified'")
            .await,
        1
    );
    // Published breach: priority up again and back to the team's queue.
    let r = s.at("2026-10-27T08:50:00Z").await;
    assert_eq!((r.published_breaches, r.internal_breaches), (1, 0));
    let inbox = s.engine.store.inbox("harbour", None, 10).await.unwrap();
    assert_eq!((inbox[0].priority, inbox[0].assignee.as_deref()), (2, None));
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM audit WHERE tenant = $1 AND action = 'conversation.reassigned'"
        )
        .await,
        1
    );
    assert_eq!(
        s.engine.service_levels(&s.tenant, None).await.unwrap()[0].state,
        "breached"
    );

    // "We're looking into it" goes out: an acknowledgement, and the clock keeps running.
    s.clock.set(ms("2026-10-27T08:55:00Z"));
    let ack = s.drafts(&m1).await;
    assert!(ack[0].2.contains("looking into it"), "{ack:?}");
    let (_, kind) = s
        .engine
        .send_draft(&s.tenant, &ack[0].0, None, "agent:ana")
        .await
        .unwrap();
    assert_eq!(kind, ReplyKind::Acknowledgement);
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 1);
    assert_eq!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .len(),
        1
    );

    // The customer writes again; the oldest waiting message keeps the clock.
    s.clock.set(ms("2026-10-27T08:58:00Z"));
    let (m2, _, _) = s
        .take(msg(
            "x-2",
            "thread-1",
            "I was charged twice, I want a refund",
            "2026-10-27T08:57:00Z",
        ))
        .await;
    assert_eq!(
        s.count("SELECT COUNT(*) FROM response_clocks WHERE tenant = $1")
            .await,
        1
    );
    // The refund answer is a response: it stops the clock, late.
    s.clock.set(ms("2026-10-27T09:00:00Z"));
    let answer = s.drafts(&m2).await;
    assert!(answer[0].2.contains("refunded"), "{answer:?}");
    let (_, kind) = s
        .engine
        .send_draft(&s.tenant, &answer[0].0, None, "agent:ana")
        .await
        .unwrap();
    assert_eq!(kind, ReplyKind::Response);
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 1);
    assert!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .is_empty()
    );
    let all = s
        .engine
        .service_levels(&s.tenant, Some(&conv))
        .await
        .unwrap();
    assert_eq!(all[0].state, "missed");
    assert_eq!(all[0].clock.stopped_at, Some(ms("2026-10-27T09:00:00Z")));
    assert_eq!(s.platform.lock().unwrap().posted.len(), 2);

    // The next message starts a `next` clock on the next-response targets (15/30 min).
    s.clock.set(ms("2026-10-27T09:31:00Z"));
    s.take(msg(
        "x-3",
        "thread-1",
        "thanks, and the parcel?",
        "2026-10-27T09:30:00Z",
    ))
    .await;
    let views = s.engine.service_levels(&s.tenant, None).await.unwrap();
    assert_eq!(views[0].clock.kind, "next");
    assert_eq!(
        views[0].clock.internal_due_at,
        Some(ms("2026-10-27T09:45:00Z"))
    );
    assert_eq!(
        views[0].clock.published_due_at,
        Some(ms("2026-10-27T10:00:00Z"))
    );
    // An agent can say an acknowledgement-looking text is the answer.
    let d = s.drafts(&views[0].clock.message_id).await;
    let (_, kind) = s
        .engine
        .send_draft(&s.tenant, &d[0].0, Some(ReplyKind::Response), "agent:ana")
        .await
        .unwrap();
    assert_eq!(kind, ReplyKind::Response);
    s.clock.set(ms("2026-10-27T09:40:00Z"));
    s.engine.deliver_due(&s.tenant).await.unwrap();
    let all = s
        .engine
        .service_levels(&s.tenant, Some(&conv))
        .await
        .unwrap();
    let next = all.iter().find(|v| v.clock.kind == "next").unwrap();
    assert_eq!(next.state, "met");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_hours_the_customer_is_told_once_when_help_comes_and_the_clock_waits_for_opening() {
    // Saturday 24 October 2026, 11:00 BST. Monday is a holiday: the team is back on Tuesday.
    let s = setup("2026-10-24T10:01:00Z").await;
    let (m1, _, _) = s
        .take(msg(
            "x-10",
            "thread-10",
            "where is my parcel",
            "2026-10-24T10:00:00Z",
        ))
        .await;
    let drafts = s.drafts(&m1).await;
    let away: Vec<_> = drafts.iter().filter(|d| d.1 == "away").collect();
    assert_eq!(away.len(), 1, "{drafts:?}");
    assert!(
        away[0].2.contains("Tuesday 08:00 (Europe/London)"),
        "{}",
        away[0].2
    );
    assert!(away[0].2.contains("https://help.harbour.example"));
    assert!(away[0].2.contains("Robin") && away[0].2.ends_with("^Mo"));
    // Queued on its own, without an agent (auto_send is off for everything else).
    let outbox = s.engine.store.outbox("harbour").await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].kind, ReplyKind::Away);
    // Counting starts when the team is back: Tuesday 08:00 GMT + 30 minutes.
    let c = &s.engine.service_levels(&s.tenant, None).await.unwrap()[0].clock;
    assert_eq!(c.internal_due_at, Some(ms("2026-10-27T08:30:00Z")));

    // A second message in the same conversation over the weekend: no second away reply.
    s.clock.set(ms("2026-10-25T09:00:00Z"));
    let (m2, _, _) = s
        .take(msg("x-11", "thread-10", "hello??", "2026-10-25T09:00:00Z"))
        .await;
    assert!(s.drafts(&m2).await.iter().all(|d| d.1 != "away"));
    assert_eq!(s.engine.store.outbox("harbour").await.unwrap().len(), 1);
    // Another customer gets their own.
    let (m3, _, _) = s
        .take(msg(
            "x-12",
            "thread-12",
            "my delivery is late",
            "2026-10-25T09:00:00Z",
        ))
        .await;
    assert_eq!(
        s.drafts(&m3).await.iter().filter(|d| d.1 == "away").count(),
        1
    );

    // Sending the away replies does not stop anyone's clock.
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 2);
    assert_eq!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.platform.lock().unwrap().posted.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_conversation_gets_a_survey_in_its_channel_and_the_answer_is_recorded() {
    let s = setup("2026-10-27T10:00:00Z").await;
    // A private conversation (a DM): the survey must go privately too.
    let mut dm = msg(
        "dm-1",
        "dm-thread",
        "I need a refund for order 99812",
        "2026-10-27T09:59:00Z",
    );
    dm.visibility = Visibility::Private;
    let (m1, conv, _) = s.take(dm).await;
    s.engine
        .store
        .assign("harbour", &conv, Some("ana"), "supervisor:lee")
        .await
        .unwrap();
    let d = s.drafts(&m1).await;
    s.engine
        .send_draft(&s.tenant, &d[0].0, None, "agent:ana")
        .await
        .unwrap();
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 1);

    let (id, survey) = s
        .engine
        .resolve(&s.tenant, "dm-thread", "agent:ana")
        .await
        .unwrap();
    assert_eq!(id, conv);
    assert!(survey.is_some());
    assert!(matches!(
        s.engine.resolve(&s.tenant, &conv, "agent:ana").await,
        Err(ActionError::Conflict(_))
    ));
    // Not before the configured delay (5 minutes), then once, privately.
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 0);
    s.clock.advance(5 * MIN);
    assert_eq!(s.engine.deliver_due(&s.tenant).await.unwrap().sent, 1);
    let outbox = s.engine.store.outbox("harbour").await.unwrap();
    let survey_reply = outbox.iter().find(|o| o.kind == ReplyKind::Survey).unwrap();
    assert_eq!(survey_reply.status, "sent");
    assert_eq!(survey_reply.reply.visibility, Visibility::Private);
    assert!(survey_reply.reply.text.contains("1 (poor) to 5 (great)"));

    // "4/5 thanks" is an answer: recorded, not triaged, no clock, no drafts.
    s.clock.advance(MIN);
    let (answer, _, p) = s
        .take(msg(
            "dm-2",
            "dm-thread",
            "4/5 thanks",
            "2026-10-27T10:06:00Z",
        ))
        .await;
    assert!(matches!(p, Processed::SurveyAnswer { score: 4 }), "{p:?}");
    assert!(s.drafts(&answer).await.is_empty());
    assert!(
        s.engine
            .service_levels(&s.tenant, None)
            .await
            .unwrap()
            .is_empty()
    );
    let (info, _) = s
        .engine
        .store
        .conversation("harbour", &conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info["state"], "resolved");
    // A second answer is an ordinary message: it reopens the conversation.
    let (_, _, p) = s
        .take(msg(
            "dm-3",
            "dm-thread",
            "actually the refund never came, where is it?",
            "2026-10-27T10:07:00Z",
        ))
        .await;
    assert!(matches!(p, Processed::Done(_)));
    let (info, _) = s
        .engine
        .store
        .conversation("harbour", &conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info["state"], "open");

    // A public conversation, answered with an emoji; and one whose reply is not an answer.
    for (thread, reply, expect) in [
        ("pub-1", "👍🏽", Some(4)),
        ("pub-2", "my parcel is still not here, what now", None),
    ] {
        let (_, c, _) = s
            .take(msg(
                &format!("{thread}-a"),
                thread,
                "where is my parcel",
                "2026-10-27T10:08:00Z",
            ))
            .await;
        s.engine
            .store
            .assign("harbour", &c, Some("ben"), "supervisor:lee")
            .await
            .unwrap();
        s.engine.resolve(&s.tenant, &c, "agent:ben").await.unwrap();
        s.clock.advance(6 * MIN);
        s.engine.deliver_due(&s.tenant).await.unwrap();
        let (_, _, p) = s
            .take(msg(
                &format!("{thread}-b"),
                thread,
                reply,
                "2026-10-27T10:20:00Z",
            ))
            .await;
        match expect {
            Some(score) => assert!(
                matches!(p, Processed::SurveyAnswer { score: s } if s == score),
                "{p:?}"
            ),
            None => assert!(matches!(p, Processed::Done(_)), "{p:?}"),
        }
    }
    let public = s
        .engine
        .store
        .outbox("harbour")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == ReplyKind::Survey && o.reply.visibility == Visibility::Public)
        .count();
    assert_eq!(public, 2);

    // Reported per agent, team and channel.
    let r =
        switchboard::care::report::build(&s.engine.store, "harbour", 0, ms("2026-10-28T00:00:00Z"))
            .await
            .unwrap();
    assert_eq!((r.satisfaction.surveys, r.satisfaction.answered), (3, 2));
    assert_eq!(r.satisfaction.average, Some(4.0));
    assert_eq!(r.satisfaction.by_agent["ana"].answers, 1);
    assert_eq!(r.satisfaction.by_agent["ben"].answers, 1);
    assert_eq!(r.satisfaction.by_team["care"].answers, 2);
    assert_eq!(r.satisfaction.by_channel["x"].average, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_period_report_counts_volumes_targets_topics_rising_words_and_replies() {
    let s = setup("2026-10-26T12:00:00Z").await;
    // The period is Tuesday 27th, 00:00 to 12:00; the 12 hours before it had one delivery
    // complaint.
    s.take(msg(
        "r-0",
        "r-0",
        "parcel late again",
        "2026-10-26T20:00:00Z",
    ))
    .await;
    // In the period: four messages, three about a refund, one answered in
    // time, one late, two still waiting at the end of the period.
    let week = ms("2026-10-27T00:00:00Z");
    let mut ids = vec![];
    for (i, (text, at)) in [
        ("refund please, charged twice", "2026-10-27T09:00:00Z"),
        ("where is my refund", "2026-10-27T09:05:00Z"),
        (
            "refund still missing after checkout error",
            "2026-10-27T09:10:00Z",
        ),
        ("my parcel is lost", "2026-10-27T09:15:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        s.clock.set(ms(at));
        let (m, _, _) = s
            .take(msg(
                &format!("r-{}", i + 1),
                &format!("r-{}", i + 1),
                text,
                at,
            ))
            .await;
        ids.push(m);
    }
    // Answer the first within 10 minutes, the second after 50 (internal 30 missed, published
    // 60 met).
    for (m, at) in [
        (&ids[0], "2026-10-27T09:10:00Z"),
        (&ids[1], "2026-10-27T09:55:00Z"),
    ] {
        s.clock.set(ms(at));
        let d = s.drafts(m).await;
        s.engine
            .send_draft(&s.tenant, &d[0].0, None, "agent:ana")
            .await
            .unwrap();
        s.engine.deliver_due(&s.tenant).await.unwrap();
    }
    let until = ms("2026-10-27T12:00:00Z");
    let r = switchboard::care::report::build(&s.engine.store, "harbour", week, until)
        .await
        .unwrap();
    assert_eq!(r.volumes["x"], 4);
    assert_eq!(r.decisions["respond"], 4);
    let sl = &r.service_levels;
    assert_eq!((sl.clocks, sl.answered), (4, 2));
    // Waiting since 09:10 and 09:15 with 30/60-minute targets: both breached by noon.
    assert_eq!((sl.met_internal, sl.internal_breaches), (1, 3));
    assert_eq!(
        (sl.met_published, sl.published_breaches, sl.pending),
        (2, 2, 0)
    );
    assert_eq!(sl.share_met_published, Some(0.5));
    assert_eq!(sl.median_response_min, Some(30.0));
    assert_eq!(r.top_topics[0], ("topic:refund".to_string(), 3));
    assert_eq!(r.top_topics[1], ("topic:delivery".to_string(), 1));
    // "refund" is new (3 against 0); "parcel" is not rising (1 against 1).
    assert_eq!(r.rising_keywords[0].word, "refund");
    assert_eq!(
        (r.rising_keywords[0].count, r.rising_keywords[0].previous),
        (3, 0)
    );
    assert!(r.rising_keywords.iter().all(|k| k.word != "parcel"));
    // The two answers, and the away reply to the message of Monday evening (a holiday), which
    // went out with the first delivery of the period.
    assert_eq!(r.replies.sent, 3);
    assert_eq!(r.replies.by_kind["response"], 2);
    assert_eq!(r.replies.by_kind["away"], 1);
    assert_eq!(r.replies.with_findings, 0);
    let table = switchboard::care::report::render(&r, "Europe/London");
    assert!(table.contains("topic:refund"), "{table}");
    assert!(table.contains("50 %"), "{table}");
}
