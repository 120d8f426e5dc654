//! Strangers and hostile tenants against the real server: what they send must not grow the
//! server's memory, flood its log, learn its layout or tie up its connections.

use reqwest::StatusCode;

use super::{GLOBEX, OPERATOR, TestServer};

/// Metrics text as the operator scrapes it.
async fn scrape(s: &TestServer) -> String {
    s.http
        .get(s.url("/metrics"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_paths_of_strangers_do_not_become_metric_labels() {
    let s = TestServer::start(&[("globex", GLOBEX.into())]).await;
    // Unique per run: the metrics recorder is shared by every server in this process.
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    for i in 0..200 {
        // Unknown tenants, and unknown connectors of a known tenant.
        let (tenant, connector) = if i % 2 == 0 {
            (format!("stranger{run}t{i}"), format!("stranger{run}c{i}"))
        } else {
            ("globex".to_string(), format!("stranger{run}c{i}"))
        };
        let r = s
            .http
            .post(s.url(&format!("/hooks/{tenant}/{connector}")))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let text = scrape(&s).await;
    assert!(
        !text.contains(&format!("stranger{run}")),
        "a caller's path became a metric label"
    );
    let series = text
        .lines()
        .filter(|l| l.starts_with("switchboard_webhook_requests_total{"))
        .count();
    // Every server in this test binary shares the recorder: a few tenants and connectors of
    // the other tests, never one per request.
    assert!(series < 60, "{series} webhook series:\n{text}");
    assert!(
        text.contains(r#"switchboard_webhook_requests_total{tenant="unknown",connector="unknown",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"switchboard_webhook_requests_total{tenant="globex",connector="unknown",status="404"}"#),
        "{text}"
    );
}
