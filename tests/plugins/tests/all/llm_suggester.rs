//! The LLM suggester as a built component in the real runtime, against a loopback HTTP mock of
//! the chat-completions API (a real server on 127.0.0.1): the request it sends (model,
//! messages, the care policy in the system prompt, the bearer key), the draft it makes of the
//! answer, and how each failure of the API is typed.

use serde_json::json;
use switchboard_testkit::switchboard::contract::{
    Label, LengthRule, LengthUnit, PluginError, Visibility,
};
use switchboard_testkit::{Harness, PlatformMock, Reply, message, plugin_error};

plugin_under_test!("llm-suggester", "llm-suggester");

/// The chat-completions API on loopback: what it received, and what it answers next.
struct Mock(PlatformMock);

impl Mock {
    async fn start() -> Mock {
        Mock(PlatformMock::start().await)
    }
    fn answer(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        let reply = headers
            .iter()
            .fold(Reply::status(status), |r, (k, v)| r.header(k, v))
            .header("content-type", "application/json")
            .body(body);
        self.0.route("POST", "/v1/chat/completions", reply);
    }
    fn content(&self, text: &str) {
        self.answer(
            200,
            &[],
            &json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "care-model-1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
            })
            .to_string(),
        );
    }
}

async fn plugin(base: &str) -> Harness {
    this_plugin!()
        .await
        .unwrap()
        .config("endpoint", base)
        .config("model", "care-model-1")
        .config("brand", "Acme")
        .config("policy", r#"["Never mention competitors."]"#)
        .secret("api-key", "sk-test-123")
        .signature("^Ana")
        .length_rule(LengthRule {
            max: 280,
            unit: LengthUnit::Weighted,
            description: "X: 280 weighted".into(),
        })
        .allow_egress("127.0.0.1")
        .allow_private_addresses()
}

fn label(name: &str, score: f32) -> Label {
    Label {
        name: name.into(),
        score,
        evidence: vec![],
    }
}

#[tokio::test]
async fn sends_the_policy_and_makes_a_signed_fitted_draft() {
    let mock = Mock::start().await;
    let base = mock.0.url().to_string();
    let plugin = plugin(&base).await;
    mock.content("\"**Sorry**, Casey, that's on us. I'm checking your order now and will reply here within the hour.\"");
    let drafts = plugin
        .suggest(
            &message("my order #48213 never arrived"),
            &[
                label("topic:delivery", 0.84),
                label("sentiment:negative", 0.9),
            ],
        )
        .await
        .unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        drafts[0].text,
        "Sorry, Casey, that's on us. I'm checking your order now and will reply here within the hour. ^Ana"
    );
    assert_eq!(drafts[0].visibility, Visibility::Public);
    assert!(drafts[0].rationale.contains("care-model-1"));

    let requests = mock.0.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json();
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-test-123")
    );
    assert_eq!(body["model"], "care-model-1");
    assert_eq!(body["max_tokens"], 300);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1]["role"], "user");
    let system = messages[0]["content"].as_str().unwrap();
    for rule in [
        "customer care team of Acme",
        "Be short and human",
        "own it",
        "Never send the customer to a phone number",
        "No sales pitch",
        "Never invent facts",
        "at most 280 weighted characters",
        "End the reply with the signature: ^Ana",
        "Never mention competitors.",
        "sentiment:negative (0.90), topic:delivery (0.84)",
    ] {
        assert!(
            system.contains(rule),
            "system prompt lacks {rule:?}:\n{system}"
        );
    }
    let user = messages[1]["content"].as_str().unwrap();
    assert!(
        user.starts_with("Casey wrote on ") && user.ends_with("my order #48213 never arrived"),
        "{user}"
    );
}

#[tokio::test]
async fn a_long_answer_is_shortened_keeping_the_signature() {
    let mock = Mock::start().await;
    let base = mock.0.url().to_string();
    let plugin = plugin(&base).await.length_rule(LengthRule {
        max: 80,
        unit: LengthUnit::Characters,
        description: "80".into(),
    });
    mock.content("Sorry about the wait, Casey. We got this wrong. I've asked the warehouse what happened and I'll come back to you here today with a real answer.");
    let d = &plugin.suggest(&message("where is it"), &[]).await.unwrap()[0];
    assert!(d.text.chars().count() <= 80, "{}", d.text);
    assert!(d.text.ends_with(" ^Ana"), "{}", d.text);
    assert!(d.rationale.contains("shortened"), "{}", d.rationale);
}

#[tokio::test]
async fn api_failures_are_typed_and_never_leak_the_key() {
    let mock = Mock::start().await;
    let base = mock.0.url().to_string();
    let plugin = plugin(&base).await;
    let m = message("hello?");

    mock.answer(
        429,
        &[("retry-after", "17")],
        r#"{"error":{"message":"slow down"}}"#,
    );
    let e = plugin.suggest(&m, &[]).await.unwrap_err();
    assert_eq!(plugin_error(&e), &PluginError::RateLimited(Some(17)));

    mock.answer(503, &[], r#"{"error":"overloaded"}"#);
    let e = plugin.suggest(&m, &[]).await.unwrap_err();
    assert!(
        matches!(plugin_error(&e), PluginError::Unavailable(_)),
        "{e}"
    );

    mock.answer(
        401,
        &[],
        r#"{"error":{"message":"Incorrect API key provided: sk-test-123"}}"#,
    );
    let e = plugin.suggest(&m, &[]).await.unwrap_err();
    match plugin_error(&e) {
        PluginError::NotConfigured(msg) => assert!(msg.contains("api-key"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("sk-test-123"), "{e}");

    mock.content("");
    mock.answer(200, &[], "{\"choices\": [{\"message\": {}}]}");
    let e = plugin.suggest(&m, &[]).await.unwrap_err();
    assert!(matches!(plugin_error(&e), PluginError::Internal(_)), "{e}");
    mock.answer(200, &[], "not json");
    let e = plugin.suggest(&m, &[]).await.unwrap_err();
    assert!(matches!(plugin_error(&e), PluginError::Internal(_)), "{e}");

    // Nothing listening: unavailable, not a trap.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = this_plugin!()
        .await
        .unwrap()
        .config("endpoint", &format!("http://{closed}"))
        .config("model", "m")
        .secret("api-key", "k")
        .allow_egress("127.0.0.1")
        .allow_private_addresses();
    let e = down.suggest(&m, &[]).await.unwrap_err();
    assert!(
        matches!(plugin_error(&e), PluginError::Unavailable(_)),
        "{e}"
    );

    // Spam and trolls cost nothing: no request at all.
    let before = mock.0.count();
    assert!(
        plugin
            .suggest(&m, &[label("troll", 0.9)])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(mock.0.count(), before);

    // No key: not configured.
    let keyless = this_plugin!()
        .await
        .unwrap()
        .config("endpoint", &base)
        .config("model", "m")
        .allow_egress("127.0.0.1")
        .allow_private_addresses();
    let e = keyless.suggest(&m, &[]).await.unwrap_err();
    assert!(matches!(plugin_error(&e), PluginError::NotConfigured(s) if s.contains("api-key")));
    let fenced = this_plugin!()
        .await
        .unwrap()
        .config("endpoint", &base)
        .config("model", "m")
        .secret("api-key", "k");
    // The host refuses the request itself and reports it as a refused egress.
    let e = fenced.suggest(&m, &[]).await.unwrap_err();
    assert!(e.to_string().contains("egress denied"), "{e}");
}
