//! The `switchboard` binary as a user runs it: the README's main command on the bundled
//! example, bad input lines, the single-request connector command, and inspect.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use serde_json::Value;

fn switchboard(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        // Each test's store lives in its own temporary folder, not in the repository.
        .env("SWITCHBOARD_DB", cache.join("store.db"))
        .current_dir(repo_root())
        .output()
        .expect("run switchboard")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn readme_main_command_triages_the_bundled_example() {
    let cache = tempfile::tempdir().unwrap();
    let out = switchboard(
        &[
            "run",
            "examples/acme/tenant.toml",
            "examples/acme/inbound.jsonl",
        ],
        cache.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = json_lines(&out);
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r["message"]["external_id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    let label_names = |r: &Value| {
        r["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let late = by_id("tw-1001");
    assert_eq!(late["message"]["tenant"], "acme");
    assert!(label_names(late).contains(&"topic:delivery".to_string()));
    let first = &late["drafts"][0];
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi Casey, sorry order 48213 is late"),
        "{first}"
    );
    assert!(first["text"].as_str().unwrap().ends_with("^Ana"));
    assert_eq!(
        (first["limit"].as_u64(), first["fits"].as_bool()),
        (Some(280), Some(true))
    );

    let spam = by_id("tw-1002");
    assert_eq!(label_names(spam), vec!["spam", "language:en"]);
    assert_eq!(
        spam["drafts"].as_array().unwrap().len(),
        0,
        "spam gets no reply"
    );

    let dm = by_id("dm-2001");
    // The WIT's names for enum cases, not Rust's.
    assert_eq!(dm["message"]["visibility"], "private");
    assert_eq!(dm["message"]["origin"], "direct-message");

    // The care policy's decisions, each with the rule that fired.
    let decided = |id: &str| {
        let d = &by_id(id)["decision"];
        (
            d["actions"][0]["action"].as_str().unwrap().to_string(),
            d["fired"][0]["rule"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(decided("tw-1002"), ("ignore".into(), "spam".into()));
    assert_eq!(decided("tw-1008"), ("monitor".into(), "troll".into()));
    assert_eq!(
        decided("tw-1007"),
        ("take-private".into(), "card-in-public".into())
    );
    assert_eq!(decided("tw-1004"), ("incident".into(), "app-outage".into()));
    assert_eq!(decided("tw-1001"), ("route".into(), "care".into()));
    // The customer gave the order id: the reply uses it instead of asking for it, and the
    // help article for late orders is linked, not pasted.
    assert!(
        late["drafts"].as_array().unwrap().iter().all(|d| !d["text"]
            .as_str()
            .unwrap()
            .contains("DM us your order number")),
        "{late}"
    );
    assert!(late["drafts"].as_array().unwrap().iter().any(|d| {
        d["suggester"] == "articles"
            && d["text"]
                .as_str()
                .unwrap()
                .contains("https://help.acme.example/where-is-my-order")
    }));
    // Saturday evening, after closing: the away reply says when the team is back, and goes
    // out on its own (the only reply queued without an agent: auto_send is off).
    let away = &by_id("tw-1009")["drafts"][0];
    assert_eq!(away["purpose"], "away", "{away}");
    assert!(
        away["text"]
            .as_str()
            .unwrap()
            .contains("back Monday 08:00 (Europe/London)"),
        "{away}"
    );
    assert_eq!(
        records.last().unwrap()["outbox"],
        serde_json::json!({ "pending": 1 })
    );
    let troll = by_id("tw-1008");
    assert!(label_names(troll).contains(&"troll".to_string()));
    assert!(label_names(by_id("tw-1007")).contains(&"private:card-number".to_string()));
    // Taking private: a public invitation, and the answer itself in private.
    let card = by_id("tw-1007");
    assert_eq!(card["drafts"][0]["purpose"], "private-invitation");
    assert_eq!(card["drafts"][1]["visibility"], "private");

    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    // Ten messages (an edit is its own event); the redelivered first post is a duplicate.
    assert_eq!(kinds.iter().filter(|k| **k == "message").count(), 10);
    assert_eq!(kinds.iter().filter(|k| **k == "duplicate").count(), 1);
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "skipped" && r["event_type"] == "like")
    );
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "challenge" && r["status"] == 200)
    );
    let summary = records.last().unwrap();
    assert_eq!(
        (summary["kind"].as_str(), summary["failed_lines"].as_u64()),
        (Some("summary"), Some(0))
    );

    let fresh = cache.path().join("fresh.db");
    let table = switchboard(
        &[
            "run",
            "examples/acme/tenant.toml",
            "examples/acme/inbound.jsonl",
            "--format",
            "table",
            "--db",
            fresh.to_str().unwrap(),
        ],
        cache.path(),
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("label    spam")
            && text.contains("decide   ignore  — rule `spam`: Spam gets no reply.")
            && text.contains("10 new messages (0 held), 1 duplicates"),
        "{text}"
    );

    // Run again on the same store: everything is a duplicate; nothing is processed twice.
    let again = switchboard(
        &[
            "run",
            "examples/acme/tenant.toml",
            "examples/acme/inbound.jsonl",
            "--db",
            fresh.to_str().unwrap(),
        ],
        cache.path(),
    );
    let records = json_lines(&again);
    let summary = records.last().unwrap();
    assert_eq!(summary["messages"], 0);
    assert_eq!(summary["duplicates"], 11);
    assert_eq!(summary["store"]["done"], 10);

    // The stored conversation, with the rule that fired and why.
    let conv = switchboard(
        &[
            "conversation",
            "acme",
            "tw-1007",
            "--db",
            fresh.to_str().unwrap(),
        ],
        cache.path(),
    );
    let text = String::from_utf8_lossy(&conv.stdout);
    assert!(conv.status.success(), "{text}");
    assert!(
        text.contains("state private")
            && text.contains("rule `card-in-public`")
            && text.contains("close the loop publicly"),
        "{text}"
    );
    let other = switchboard(
        &[
            "conversation",
            "globex",
            "tw-1007",
            "--db",
            fresh.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(
        other.status.code(),
        Some(1),
        "another tenant's conversation is not shown"
    );
}

#[test]
fn service_levels_resolution_and_the_report_from_the_command_line() {
    let cache = tempfile::tempdir().unwrap();
    let db = cache.path().join("care.db");
    let db = db.to_str().unwrap();
    let run = switchboard(
        &[
            "run",
            "examples/acme/tenant.toml",
            "examples/acme/inbound.jsonl",
            "--db",
            db,
        ],
        cache.path(),
    );
    assert!(run.status.success());

    // The example's messages are long past their targets: the sweep records each breach once.
    let sla = switchboard(
        &[
            "sla",
            "examples/acme/tenant.toml",
            "--db",
            db,
            "--format",
            "json",
        ],
        cache.path(),
    );
    assert!(
        sla.status.success(),
        "{}",
        String::from_utf8_lossy(&sla.stderr)
    );
    let v = &json_lines(&sla)[0];
    let clocks = v["clocks"].as_array().unwrap();
    // One clock per conversation the policy answers: none for the spam or the troll, and an
    // edit or a second message in a waiting conversation starts none.
    assert_eq!(clocks.len(), 6, "{v}");
    assert!(clocks.iter().all(|c| c["state"] == "breached"), "{v}");
    assert_eq!(v["swept"]["published_breaches"], 6);
    let again = switchboard(
        &[
            "sla",
            "examples/acme/tenant.toml",
            "--db",
            db,
            "--format",
            "json",
        ],
        cache.path(),
    );
    assert_eq!(
        json_lines(&again)[0]["swept"]["published_breaches"],
        0,
        "once"
    );
    // Saturday's message waits for Monday's opening: due 20 business minutes after 08:00.
    let saturday = clocks
        .iter()
        .find(|c| c["started_at"] == 1_795_290_000_000_i64)
        .expect("the Saturday clock");
    assert_eq!(saturday["internal_due_at"], 1_795_422_000_000_i64);

    // Resolve: a survey is queued; a second resolve and an unknown conversation are errors.
    let ok = switchboard(
        &[
            "resolve",
            "examples/acme/tenant.toml",
            "tw-1009",
            "--db",
            db,
        ],
        cache.path(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(json_lines(&ok)[0]["survey"].is_string());
    for conversation in ["tw-1009", "no-such-thread"] {
        let refused = switchboard(
            &[
                "resolve",
                "examples/acme/tenant.toml",
                conversation,
                "--db",
                db,
            ],
            cache.path(),
        );
        assert_eq!(refused.status.code(), Some(1), "{conversation}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("error:"));
    }

    let report = switchboard(
        &[
            "report",
            "examples/acme/tenant.toml",
            "--db",
            db,
            "--since",
            "2026-11-16",
        ],
        cache.path(),
    );
    // Until now: the survey asked today is in the period.
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(
        text.contains("Volume (customer messages)") && text.contains("webhook"),
        "{text}"
    );
    assert!(text.contains("topic:delivery"), "{text}");
    assert!(
        text.contains("Satisfaction: 0 answered of 1 surveys"),
        "{text}"
    );
    let bad = switchboard(
        &[
            "report",
            "examples/acme/tenant.toml",
            "--db",
            db,
            "--since",
            "yesterday",
        ],
        cache.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a date"));
}

#[test]
fn bad_lines_are_reported_one_by_one_and_the_run_goes_on() {
    let cache = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo_root().join("examples/acme/inbound.jsonl")).unwrap();
    let first_good = good.lines().next().unwrap();
    let tampered = first_good.replacen("never arrived", "arrived fine", 1);
    let wrong_connector =
        first_good.replacen("\"connector\": \"webhook\"", "\"connector\": \"fax\"", 1);
    let input = [
        first_good,
        "{this is not json",
        &tampered,
        &wrong_connector,
        "",
        first_good,
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, input).unwrap();

    let out = switchboard(
        &["run", "examples/acme/tenant.toml", path.to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "any failed line makes the exit code 1"
    );
    let records = json_lines(&out);
    let errors: Vec<(u64, String)> = records
        .iter()
        .filter(|r| r["kind"] == "error")
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, 2);
    assert!(
        errors[0].1.starts_with("not a captured request"),
        "{}",
        errors[0].1
    );
    assert_eq!(errors[1].0, 3);
    assert!(
        errors[1].1.contains("unauthorized") && errors[1].1.contains("tenant `acme`"),
        "{}",
        errors[1].1
    );
    assert!(
        !errors[1].1.contains("acme-demo-signing-secret"),
        "secrets never appear in errors"
    );
    assert_eq!(errors[2].0, 4);
    assert!(
        errors[2].1.contains("no connector `fax`"),
        "{}",
        errors[2].1
    );
    let messages: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "message")
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    let duplicates: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "duplicate")
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (messages, duplicates),
        (vec![1], vec![6]),
        "good lines before and after the bad ones are taken (the second as a duplicate)"
    );
}

#[test]
fn connector_command_normalises_one_captured_request_or_refuses_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"id": 9, "author": {"id": "u-1", "handle": "@kim"}, "text": "Where is my parcel?"}"#,
    )
    .unwrap();
    let sig = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&std::fs::read(&body).unwrap());
        format!(
            "X-Signature-256: sha256={}",
            hex::encode(mac.finalize().into_bytes())
        )
    };
    let body_arg = body.to_str().unwrap();
    let ok = switchboard(
        &[
            "connector",
            "generic-webhook",
            "--body",
            body_arg,
            "-H",
            &sig,
            "-s",
            "signing-secret=s3cret",
        ],
        cache.path(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["outcome"], "events");
    let m = &json["events"][0]["message"];
    assert_eq!(
        (m["external_id"].as_str(), m["text"].as_str()),
        (Some("9"), Some("Where is my parcel?"))
    );
    assert_eq!(m["author"]["handle"], "@kim");

    let refused = switchboard(
        &[
            "connector",
            "generic-webhook",
            "--body",
            body_arg,
            "-H",
            "X-Signature-256: sha256=00",
            "-s",
            "signing-secret=s3cret",
        ],
        cache.path(),
    );
    assert_eq!(refused.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(json["outcome"], "refused");
    assert_eq!(json["error"]["stage"], "webhook");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unauthorized"));

    // The same request through the tenant's own connector config.
    let tenant_sig = {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"acme-demo-signing-secret").unwrap();
        mac.update(&std::fs::read(&body).unwrap());
        format!(
            "x-signature-256: sha256={}",
            hex::encode(mac.finalize().into_bytes())
        )
    };
    let via_tenant = switchboard(
        &[
            "connector",
            "webhook",
            "--tenant",
            "examples/acme/tenant.toml",
            "--body",
            body_arg,
            "-H",
            &tenant_sig,
        ],
        cache.path(),
    );
    assert!(
        via_tenant.status.success(),
        "{}",
        String::from_utf8_lossy(&via_tenant.stderr)
    );

    let missing = switchboard(
        &["connector", "no-such-plugin", "--body", body_arg],
        cache.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no plugin named `no-such-plugin`"));
}

#[test]
fn inspect_reports_kind_contract_capabilities_and_digest() {
    let cache = tempfile::tempdir().unwrap();
    let out = switchboard(
        &["inspect", "generic-webhook", "--format", "json"],
        cache.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "connector");
    assert_eq!(
        json["world"],
        "switchboard:plugin/answering-channel-adapter@0.1.2"
    );
    assert_eq!(json["egress"], serde_json::json!(["*"]));
    assert!(
        json["secrets"]
            .as_array()
            .unwrap()
            .contains(&Value::from("signing-secret"))
    );
    let bytes = std::fs::read(plugin_path("generic-webhook")).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(json["digest"], format!("sha256:{digest}"));
    assert_eq!(json["channel"]["length_rule"]["max"], 1000);
}

/// `switchboard key`: a personal key for the console, stored hashed and tied to its person.
#[tokio::test]
async fn key_makes_a_personal_key_for_one_person_of_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["--cache-dir", dir.path().join("cache").to_str().unwrap()])
            .arg("key")
            .args(args)
            .arg("--data")
            .arg(&data)
            .env_remove("SWITCHBOARD_DB")
            .output()
            .unwrap()
    };
    // No store yet: a clear error, not a new empty database.
    let out = run(&["acme", "--name", "ana"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("switchboard serve"));
    assert!(!data.join("switchboard.db").exists());

    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("switchboard.db").display());
    let store = switchboard::store::Store::open(&url).await.unwrap();
    let out = run(&["acme", "--name", "sam", "--role", "supervisor"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let owner = store
        .token_owner(&key)
        .await
        .unwrap()
        .expect("the key works");
    assert_eq!(
        (
            owner.tenant.as_str(),
            owner.role.as_str(),
            owner.name.as_str()
        ),
        ("acme", "supervisor", "sam")
    );

    let out = run(&["acme", "--name", "x", "--role", "boss"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent, supervisor or admin"));
    let out = run(&["acme", "--name", " "]);
    assert!(!out.status.success());
}

/// The README's `serve` command: the real binary starts with nothing but a data folder and a
/// tenant file, takes a signed webhook, and on SIGTERM finishes its work and exits 0.
#[cfg(unix)]
#[tokio::test]
async fn serve_starts_takes_a_webhook_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tenant = repo_root().join("examples/acme/tenant.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--cache-dir", dir.path().join("cache").to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--tenant"])
        .arg(&tenant)
        .arg("--data")
        .arg(&data)
        .env_remove("SWITCHBOARD_ADMIN_TOKEN")
        .env_remove("SWITCHBOARD_DB")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no start-up line; stderr so far: {seen:?}"));
        if let Some(rest) = line.strip_prefix("switchboard serving on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    assert!(
        seen.iter()
            .any(|l| l.contains("created the operator token")),
        "{seen:?}"
    );
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(token.starts_with("sbt_"));

    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The first captured request of the example, as its platform would send it.
    let first = std::fs::read_to_string(repo_root().join("examples/acme/inbound.jsonl")).unwrap();
    let captured: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let mut req = http.post(format!("http://{addr}/hooks/acme/webhook"));
    for (k, v) in captured["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let r = req
        .body(captured["body"].as_str().unwrap().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["accepted"], 1);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let store = switchboard::store::Store::open_file(&data.join("switchboard.db"))
        .await
        .unwrap();
    assert_eq!(
        store
            .count("SELECT COUNT(*) FROM messages WHERE tenant = $1", "acme")
            .await
            .unwrap(),
        1
    );
}
