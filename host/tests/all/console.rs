//! The agent console in a real browser (issue 15): headless Chromium from Debian driven over
//! WebDriver (`chromedriver`, started here on a free loopback port), against the real server
//! on loopback serving the bundled acme example, its real plugins, and a platform mock.
//!
//! chromedriver must be installed (`apt-get install chromium chromium-driver`; `.ci/run` does
//! it): without it these tests fail, they are never skipped. Each test saves screenshots of the
//! pages it visits under `target/console-screenshots/` for a reviewer to look at.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hmac::Mac;
use serde_json::{Value, json};
use switchboard::server::{ServeOptions, Server};

use crate::common::{Platform, platform, repo_root, runtime};

const OPERATOR: &str = "console-test-operator";
const SIGNING: &str = "acme-demo-signing-secret";

/// One browser at a time: the tests share two cores with everything else, and Chromium is the
/// heaviest thing they start.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bundled example, delivering to the platform mock on loopback. Its out-of-hours reply is
/// left out: whether it fires depends on the day the test runs, and the tests count replies.
fn acme_example(deliver_url: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("examples/acme/tenant.toml")).unwrap();
    let replaced = text
        .replace(
            "deliver_url = \"https://api.acme-care.example/messages\"",
            &format!("deliver_url = \"{deliver_url}\""),
        )
        .replace(
            "allow = [\"api.acme-care.example\"]",
            "allow = [\"127.0.0.1\"]\nallow_private = true",
        )
        .replace("[away]\nself_service = \"https://help.acme.example\"\n", "");
    assert!(
        replaced.contains(deliver_url) && !replaced.contains("[away]"),
        "the example's tenant file changed shape; update the console tests"
    );
    replaced
}

/// Another tenant, for isolation.
const GLOBEX: &str = r#"
tenant = "globex"

[[connectors]]
name = "webhook"
plugin = "generic-webhook"
[connectors.config]
channel = "webhook"
[connectors.secrets]
signing-secret = { value = "globex-signing" }

[[classifiers]]
name = "keywords"
plugin = "keyword-classifier"
[classifiers.config.labels]
"topic:refund" = ["refund"]
"#;

struct Env {
    server: Option<Server>,
    base: String,
    http: reqwest::Client,
    platform: Arc<Mutex<Platform>>,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        Self::start_with("").await
    }

    /// The example with `extra` appended to its tenant file.
    async fn start_with(extra: &str) -> Env {
        let state = Arc::new(Mutex::new(Platform::default()));
        let deliver = platform(state.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tenants")).unwrap();
        std::fs::write(
            data.join("tenants/acme.toml"),
            acme_example(&deliver) + extra,
        )
        .unwrap();
        std::fs::write(data.join("tenants/globex.toml"), GLOBEX).unwrap();
        let server = Server::start(
            runtime(),
            ServeOptions {
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
        let env = Env {
            base: format!("http://{}", server.addr),
            server: Some(server),
            http: reqwest::Client::new(),
            platform: state,
            _dir: dir,
        };
        let ready: Value = env.get("/readyz").await;
        assert_eq!(
            ready["config_errors"],
            json!({}),
            "tenant configs must load"
        );
        env
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A personal key for someone of `tenant`, made by the operator through the API.
    async fn key(&self, tenant: &str, role: &str, name: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/tenants/{tenant}/tokens", self.base))
            .bearer_auth(OPERATOR)
            .json(&json!({ "role": role, "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A customer post through the tenant's signed webhook, received now; waits until the
    /// pipeline has decided on it and returns the conversation's id.
    async fn post(
        &self,
        tenant: &str,
        secret: &str,
        id: &str,
        author: (&str, &str),
        text: &str,
    ) -> String {
        let body = json!({
            "id": id,
            "author": { "id": format!("u-{id}"), "handle": author.0, "name": author.1 },
            "text": text,
        })
        .to_string();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let r = self
            .http
            .post(format!("{}/hooks/{tenant}/webhook", self.base))
            .header("content-type", "application/json")
            .header(
                "x-signature-256",
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "webhook refused: {}", r.status());
        for _ in 0..600 {
            let v = self
                .get(&format!("/api/tenants/{tenant}/conversations/{id}"))
                .await;
            if v["messages"][0]["decision"].is_object() {
                return v["conversation"]["id"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("message {id} was never processed");
    }

    async fn stop(mut self) {
        self.server.take().unwrap().shutdown().await.unwrap();
    }
}

/// chromedriver and its Chromium, killed when dropped (also when a test fails before closing
/// the session). chromedriver runs in a process group of its own, which its Chromium processes
/// join: killing the group leaves no browser behind (killing chromedriver alone orphans them).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on `PATH` (Debian puts it in /usr/bin).
fn chromedriver() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is missing: the console's browser tests need headless Chromium; \
                 install it with `apt-get install chromium chromium-driver` (.ci/run does)"
            )
        })
}

async fn browser() -> (Driver, Client) {
    let chromedriver = chromedriver();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { child, port };
    let mut caps = serde_json::Map::new();
    let mut options = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--disable-dev-shm-usage"],
    });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), options);
    let url = format!("http://127.0.0.1:{}", driver.port);
    let mut last = None;
    // chromedriver takes a moment to listen.
    for _ in 0..300 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The element `css` names, once the page shows it; on a timeout, a screenshot of the page
/// as it was (`failed-wait.png`) and the page's text in the panic.
async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            screenshot(c, "failed-wait").await;
            let text = match c.find(Locator::Css("body")).await {
                Ok(b) => b.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("waiting for `{css}`: {e}\npage text:\n{text}")
        }
    }
}

async fn sign_in(c: &Client, base: &str, key: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    let input = wait_for(c, "#key").await;
    input.send_keys(key).await.unwrap();
    c.find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#who").await;
    wait_for(c, "header#top:not([hidden])").await;
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#key").await;
}

async fn text_of(c: &Client, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

/// Replace a textarea's text as a person would: select all, type.
async fn type_into(el: &fantoccini::elements::Element, text: &str) {
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

const CARD_POST: &str =
    "@AcmeCare you charged my card 4111 1111 1111 1111 twice for one order, sort it out";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_the_card_number_conversation_past_a_blocking_guard() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let conversation = env
        .post(
            "acme",
            SIGNING,
            "tw-7001",
            ("@sam_p", "Sam Patel"),
            CARD_POST,
        )
        .await;
    let ana = env.key("acme", "agent", "ana").await;
    let (_driver, c) = browser().await;

    sign_in(&c, &env.base, &ana).await;
    // The inbox lists it with its service-level clock running.
    let row = format!("tr[data-conversation=\"{conversation}\"]");
    wait_for(&c, &row).await;
    let clock = wait_for(&c, &format!("{row} .clock")).await;
    assert_eq!(
        clock.attr("data-state").await.unwrap().as_deref(),
        Some("running"),
        "a fresh message's clock runs"
    );
    assert!(text_of(&c, &row).await.contains("private:card-number"));
    screenshot(&c, "inbox").await;

    // The conversation: the take-private decision, the rule and why, the evidence highlighted.
    c.find(Locator::Css(&format!("{row} a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let decision = text_of(&c, ".decision").await;
    assert!(decision.contains("take-private"), "{decision}");
    assert!(decision.contains("card-in-public"), "{decision}");
    assert!(
        decision.contains("A card number in a public post"),
        "the rule's why is shown: {decision}"
    );
    let marks = c.find_all(Locator::Css(".msg .text mark")).await.unwrap();
    let mut highlighted = Vec::new();
    for m in marks {
        highlighted.push(m.text().await.unwrap());
    }
    assert!(
        highlighted.iter().any(|t| t == "4111 1111 1111 1111"),
        "the card number is highlighted as evidence: {highlighted:?}"
    );
    screenshot(&c, "conversation").await;

    // Edit the public invitation: a guard blocks a text with a private e-mail address.
    let draft = wait_for(&c, ".draft[data-status=proposed]").await;
    let draft_id = draft.attr("data-draft").await.unwrap().unwrap();
    let box_css = format!(".draft[data-draft=\"{draft_id}\"]");
    let area = wait_for(&c, &format!("{box_css} textarea")).await;
    type_into(
        &area,
        "Sorry, Sam. Write to refunds.desk@gmail.com with your card details. ^Ana",
    )
    .await;
    wait_for(&c, &format!("{box_css}[data-checked=blocked]")).await;
    let send = c
        .find(Locator::Css(&format!("{box_css} button.send")))
        .await
        .unwrap();
    assert!(
        send.attr("disabled").await.unwrap().is_some(),
        "a blocked draft cannot be sent"
    );
    let finding = text_of(&c, &format!("{box_css} .findings li.block")).await;
    assert!(finding.contains("Blocks sending"), "{finding}");
    assert!(
        text_of(&c, &format!("{box_css} mark.finding"))
            .await
            .contains("gmail.com"),
        "the finding is shown on its span"
    );
    screenshot(&c, "draft-blocked").await;

    let good = "Sorry about this, Sam. Please send us a private message and we'll sort the double charge there. ^Ana";
    type_into(&area, good).await;
    wait_for(&c, &format!("{box_css}[data-checked=passes]")).await;
    c.find(Locator::Css(&format!("{box_css} button.save")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#banner.ok").await;
    let send = wait_for(&c, &format!("{box_css} button.send:not([disabled])")).await;
    send.click().await.unwrap();
    wait_for(
        &c,
        &format!("{box_css}[data-status=queued], {box_css}[data-status=sent]"),
    )
    .await;

    // The platform receives exactly one reply: the agent's text.
    for _ in 0..600 {
        if !env.platform.lock().unwrap().posted.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posted = env.platform.lock().unwrap().posted.clone();
    assert_eq!(posted.len(), 1, "exactly one reply: {posted:?}");
    let requests = env.platform.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].1.contains("sort the double charge"),
        "{requests:?}"
    );

    c.close().await.unwrap();
    env.stop().await;
}

const REFUND_POST: &str =
    "@AcmeCare you charged me twice and I want a refund. Worst service, not good enough.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_signs_off_a_draft_its_author_cannot() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let conversation = env
        .post("acme", SIGNING, "tw-7101", ("@pat", "Pat Lee"), REFUND_POST)
        .await;
    let v = env
        .get(&format!("/api/tenants/acme/conversations/{conversation}"))
        .await;
    assert_eq!(v["conversation"]["escalated"], json!(true), "{v}");
    let sam = env.key("acme", "supervisor", "sam").await;
    let lee = env.key("acme", "supervisor", "lee").await;
    let (_driver, c) = browser().await;

    // Sam rewrites the draft, which makes it Sam's text: Sam cannot approve it.
    sign_in(&c, &env.base, &sam).await;
    c.goto(&format!("{}/#/c/{conversation}", env.base))
        .await
        .unwrap();
    let draft = wait_for(&c, ".draft[data-status=proposed]").await;
    let draft_id = draft.attr("data-draft").await.unwrap().unwrap();
    let box_css = format!(".draft[data-draft=\"{draft_id}\"]");
    let area = wait_for(&c, &format!("{box_css} textarea")).await;
    type_into(
        &area,
        "Hi Pat, sorry: a double charge is our mistake and we are refunding it today. ^Ana",
    )
    .await;
    wait_for(&c, &format!("{box_css}[data-checked=passes]")).await;
    c.find(Locator::Css(&format!("{box_css} button.save")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#banner.ok").await;
    wait_for(&c, &format!("{box_css} button.approve"))
        .await
        .click()
        .await
        .unwrap();
    let refusal = text_of(&c, "#banner:not(.ok)").await;
    assert!(refusal.contains("other than its author"), "{refusal}");
    screenshot(&c, "signoff-own-draft-refused").await;
    let status = |v: &Value| {
        v["messages"][0]["drafts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == json!(draft_id))
            .unwrap()["status"]
            .clone()
    };
    let v = env
        .get(&format!("/api/tenants/acme/conversations/{conversation}"))
        .await;
    assert_eq!(status(&v), json!("proposed"));
    sign_out(&c).await;

    // Lee finds it in the sign-off queue and approves it.
    sign_in(&c, &env.base, &lee).await;
    c.goto(&format!("{}/#/signoff", env.base)).await.unwrap();
    let card = format!("[data-signoff=\"{draft_id}\"]");
    wait_for(&c, &card).await;
    screenshot(&c, "signoff").await;
    c.find(Locator::Css(&format!("{card} button.approve")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let ok = text_of(&c, "#banner.ok").await;
    assert!(ok.contains("Approved"), "{ok}");
    let v = env
        .get(&format!("/api/tenants/acme/conversations/{conversation}"))
        .await;
    assert_eq!(status(&v), json!("approved"), "{v}");

    c.close().await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_appears_in_the_open_inbox_without_a_reload() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let ana = env.key("acme", "agent", "ana").await;
    let (_driver, c) = browser().await;
    sign_in(&c, &env.base, &ana).await;
    wait_for(&c, "#view p.empty").await;
    // A mark on this page: a reload would lose it.
    c.execute("window.stillTheSamePage = true;", vec![])
        .await
        .unwrap();

    let conversation = env
        .post(
            "acme",
            SIGNING,
            "tw-7201",
            ("@jo", "Jo Marsh"),
            "@AcmeCare where is my order? Tracking hasn't moved in a week",
        )
        .await;
    wait_for(&c, &format!("tr[data-conversation=\"{conversation}\"]")).await;
    let same = c
        .execute("return window.stillTheSamePage === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the inbox updated without a reload");
    screenshot(&c, "inbox-live").await;

    c.close().await.unwrap();
    env.stop().await;
}

const XSS_POST: &str = "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script> see javascript:document.title='pwned' my parcel never arrived";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_renders_as_text_and_another_tenant_sees_nothing() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let conversation = env
        .post(
            "acme",
            SIGNING,
            "tw-7301",
            ("@x", "<b onmouseover=alert(1)>Mallory</b>"),
            XSS_POST,
        )
        .await;
    let ana = env.key("acme", "agent", "ana").await;
    let bob = env.key("globex", "agent", "bob").await;
    let (_driver, c) = browser().await;

    sign_in(&c, &env.base, &ana).await;
    c.goto(&format!("{}/#/c/{conversation}", env.base))
        .await
        .unwrap();
    let shown = text_of(&c, ".msg .text").await;
    assert!(
        shown.contains("<img src=x onerror="),
        "shown as text: {shown}"
    );
    assert!(shown.contains("<script>"), "{shown}");
    assert!(
        text_of(&c, ".msg .meta")
            .await
            .contains("<b onmouseover=alert(1)>Mallory</b>")
    );
    let found = c
        .execute(
            "return { imgs: document.querySelectorAll('#view img, #view script, #view b').length, \
                      js: [...document.querySelectorAll('a')].filter(a => a.href.startsWith('javascript:')).length, \
                      title: document.title };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!({ "imgs": 0, "js": 0, "title": "Switchboard console" }),
        "nothing in the post became markup or ran"
    );
    screenshot(&c, "hostile-text").await;

    // A state change without the CSRF token is refused, even with the session cookie.
    let refused = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(`/api/tenants/acme/conversations/${arguments[0]}/assign`, { method: 'POST', \
               headers: { 'content-type': 'application/json' }, body: '{\"agent\":\"ana\"}' }) \
             .then(r => done(r.status));",
            vec![json!(conversation)],
        )
        .await
        .unwrap();
    assert_eq!(refused, json!(403), "no CSRF token, no change");
    sign_out(&c).await;

    // An agent of globex cannot open it by URL, nor through the API with their session.
    sign_in(&c, &env.base, &bob).await;
    c.goto(&format!("{}/#/c/{conversation}", env.base))
        .await
        .unwrap();
    wait_for(&c, "#not-found").await;
    let page = text_of(&c, "body").await;
    assert!(!page.contains("parcel never arrived"), "{page}");
    assert!(!page.contains("Mallory"), "{page}");
    let status = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(`/api/tenants/acme/conversations/${arguments[0]}`).then(r => done(r.status));",
            vec![json!(conversation)],
        )
        .await
        .unwrap();
    assert_eq!(
        status,
        json!(403),
        "another tenant's conversation is refused"
    );
    screenshot(&c, "other-tenant").await;

    c.close().await.unwrap();
    env.stop().await;
}

/// Sign-in, the cookie's attributes, CSRF, sign-out and revocation, over plain HTTP: what the
/// browser relies on without seeing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_strict_cookies_that_need_csrf_and_end() {
    let env = Env::start().await;
    let key = env.key("acme", "agent", "ana").await;
    let url = |p: &str| format!("{}{p}", env.base);
    let http = reqwest::Client::new();

    // The page carries the strict policy.
    let page = http.get(url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // A wrong key, a form post and another origin do not sign in.
    let r = http
        .post(url("/console/session"))
        .json(&json!({ "key": "sbt_wrong" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .post(url("/console/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = http
        .post(url("/console/session"))
        .header("origin", "https://evil.example")
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);

    let r = http
        .post(url("/console/session"))
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=36000"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains(&key), "the key is not the cookie");
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["tenant"].as_str(), me["name"].as_str()),
        (Some("acme"), Some("ana"))
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = me["csrf"].as_str().unwrap().to_string();
    // Reached by a public name (behind a TLS proxy), the cookie is `Secure`.
    let proxied = http
        .post(url("/console/session"))
        .header("host", "care.example")
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    let public = proxied.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(public.contains("; Secure"), "{public}");

    // The cookie reads; a change needs the CSRF token too.
    let r = http
        .get(url("/api/tenants/acme/inbox"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = http
        .get(url("/api/tenants/globex/inbox"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::FORBIDDEN,
        "the session is acme's only"
    );
    let conversation = env
        .post(
            "acme",
            SIGNING,
            "tw-7401",
            ("@kim", "Kim"),
            "@AcmeCare where is my order?",
        )
        .await;
    let assign = |csrf: Option<String>| {
        let mut req = http
            .post(url(&format!(
                "/api/tenants/acme/conversations/{conversation}/assign"
            )))
            .header("cookie", &cookie)
            .json(&json!({ "agent": "ana" }));
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    assert_eq!(
        assign(None).await.unwrap().status(),
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(
        assign(Some("0".repeat(64))).await.unwrap().status(),
        reqwest::StatusCode::FORBIDDEN
    );
    let r = assign(Some(csrf.clone())).await.unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "{}",
        r.text().await.unwrap()
    );
    let audit = env.get("/api/tenants/acme/audit").await;
    assert!(
        audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["actor"] == json!("agent:ana")),
        "the console's changes are the person's: {audit}"
    );

    // Signing out ends the session: the old cookie reads nothing.
    let r = http
        .post(url("/console/session/end"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = http
        .get(url("/api/tenants/acme/inbox"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);

    // Revoking the key ends the sessions opened with it.
    let r = http
        .post(url("/console/session"))
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let tokens = env.get("/api/tenants/acme/tokens").await;
    let id = tokens["tokens"][0]["id"].as_str().unwrap();
    let r = env
        .http
        .delete(url(&format!("/api/tenants/acme/tokens/{id}")))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    let r = http
        .get(url("/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);

    env.stop().await;
}

/// Every main page renders for an admin without an error, at desktop and phone widths; the
/// screenshots are for the reviewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_for_an_admin_at_desktop_and_phone_width() {
    let _one = BROWSER_LOCK.lock().await;
    // A candidate keyword classifier in shadow, for the Plugins page's shadow report.
    let env = Env::start_with(
        "\n[[shadow_classifiers]]\nname = \"keywords-v2\"\nplugin = \"keyword-classifier\"\n\
         replaces = \"keywords\"\n[shadow_classifiers.config.labels]\n\"topic:app\" = [\"app\"]\n",
    )
    .await;
    env.post(
        "acme",
        SIGNING,
        "tw-7501",
        ("@omar", "Omar Said"),
        "@AcmeCare the app crashed at checkout and lost my basket",
    )
    .await;
    env.post("acme", SIGNING, "tw-7502", ("@pat", "Pat Lee"), REFUND_POST)
        .await;
    let incidents = env.get("/api/tenants/acme/incidents").await;
    let incident = incidents["incidents"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ada = env.key("acme", "admin", "ada").await;
    let (_driver, c) = browser().await;
    sign_in(&c, &env.base, &ada).await;
    for (page, ready) in [
        ("inbox", "table.inbox"),
        ("signoff", "[data-signoff]"),
        ("incidents", "[data-incident]"),
        (&format!("incidents/{incident}") as &str, "svg.chart rect"),
        ("reports", "svg.chart rect"),
        ("plugins", "[data-shadow=\"keywords-v2\"] table"),
        ("audit", "td code"),
    ] {
        c.goto(&format!("{}/#/{page}", env.base)).await.unwrap();
        wait_for(&c, ready).await;
        let banner = c.find(Locator::Css("#banner")).await.unwrap();
        assert!(
            banner.attr("hidden").await.unwrap().is_some(),
            "{page}: {}",
            banner.text().await.unwrap()
        );
        screenshot(&c, &format!("page-{}", page.replace('/', "-"))).await;
    }
    // A swap is replayed on recent traffic before anyone promotes it; replaying the version
    // already running changes nothing.
    c.goto(&format!("{}/#/plugins", env.base)).await.unwrap();
    wait_for(&c, "tr[data-instance=\"keywords\"] button.replay-swap")
        .await
        .click()
        .await
        .unwrap();
    let report = text_of(&c, "#replay-report").await;
    assert!(
        report.contains("recent message(s) replayed") && report.contains("Nothing would change"),
        "{report}"
    );
    screenshot(&c, "plugins-replay").await;
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/#/inbox", env.base)).await.unwrap();
    wait_for(&c, "table.inbox").await;
    screenshot(&c, "phone-inbox").await;

    c.close().await.unwrap();
    env.stop().await;
}

/// Escalate and take private from the conversation page: the changes the policy can make, made
/// by a person, audited under their name; an escalated draft then needs sign-off to go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_escalates_and_takes_a_conversation_private() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let conversation = env
        .post(
            "acme",
            SIGNING,
            "tw-7601",
            ("@noor", "Noor Ali"),
            "@AcmeCare where is my order? Tracking says delivered but nothing here",
        )
        .await;
    let ana = env.key("acme", "agent", "ana").await;
    let (_driver, c) = browser().await;
    sign_in(&c, &env.base, &ana).await;
    c.goto(&format!("{}/#/c/{conversation}", env.base))
        .await
        .unwrap();
    wait_for(&c, "#escalate-reason")
        .await
        .send_keys("customer says the parcel was stolen from the doorstep")
        .await
        .unwrap();
    wait_for(&c, "#escalate").await.click().await.unwrap();
    wait_for(&c, "#banner.ok").await;
    wait_for(&c, "#escalate[disabled]").await;
    wait_for(&c, "#take-private").await.click().await.unwrap();
    wait_for(&c, "#take-private[disabled]").await;
    assert_eq!(text_of(&c, "#conv-state").await, "private");
    screenshot(&c, "escalated-private").await;

    let v = env
        .get(&format!("/api/tenants/acme/conversations/{conversation}"))
        .await;
    assert_eq!(v["conversation"]["escalated"], json!(true), "{v}");
    assert_eq!(v["conversation"]["state"], json!("private"), "{v}");
    let audit = env.get("/api/tenants/acme/audit").await;
    let by_ana: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"] == json!("agent:ana"))
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        by_ana.contains(&"conversation.escalated")
            && by_ana.contains(&"conversation.taken-private"),
        "{by_ana:?}"
    );
    // The escalated conversation's draft cannot be sent before a supervisor signs it off.
    let draft = wait_for(&c, ".draft[data-status=proposed]").await;
    let draft_id = draft.attr("data-draft").await.unwrap().unwrap();
    wait_for(
        &c,
        &format!(".draft[data-draft=\"{draft_id}\"] button.send:not([disabled])"),
    )
    .await
    .click()
    .await
    .unwrap();
    let refusal = text_of(&c, "#banner:not(.ok)").await;
    assert!(refusal.contains("needs sign-off (supervisor)"), "{refusal}");
    assert!(env.platform.lock().unwrap().requests.is_empty());

    c.close().await.unwrap();
    env.stop().await;
}

/// A customer who wrote before in another conversation: their earlier messages are shown inline
/// above the current ones, each linked to its conversation, once an agent has judged the two
/// identities one person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_earlier_conversations_are_shown_inline() {
    let _one = BROWSER_LOCK.lock().await;
    let env = Env::start().await;
    let first = env
        .post(
            "acme",
            SIGNING,
            "tw-7801",
            ("@lee_park", "Lee Park"),
            "@AcmeCare my parcel 4471 is two weeks late",
        )
        .await;
    let second = env
        .post(
            "acme",
            SIGNING,
            "tw-7802",
            ("@leepark_home", "Lee Park"),
            "@AcmeCare any news on my parcel?",
        )
        .await;
    let customer_of = |v: &Value| {
        v["conversation"]["customer_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (
        customer_of(
            &env.get(&format!("/api/tenants/acme/conversations/{first}"))
                .await,
        ),
        customer_of(
            &env.get(&format!("/api/tenants/acme/conversations/{second}"))
                .await,
        ),
    );
    assert_ne!(
        a, b,
        "two identities are two customers until someone says otherwise"
    );

    let ana = env.key("acme", "agent", "ana").await;
    let (_driver, c) = browser().await;
    sign_in(&c, &env.base, &ana).await;
    c.goto(&format!("{}/#/c/{second}", env.base)).await.unwrap();
    wait_for(&c, "#actions").await;
    // Not yet linked: no history.
    assert!(c.find(Locator::Css("#history")).await.is_err());

    let r = env
        .http
        .post(format!("{}/api/tenants/acme/customers/{a}/merge", env.base))
        .bearer_auth(OPERATOR)
        .json(&json!({ "into": b }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    c.refresh().await.unwrap();
    let history = text_of(&c, "#history").await;
    assert!(
        history.contains("my parcel 4471 is two weeks late"),
        "{history}"
    );
    assert!(!history.contains("any news on my parcel"), "{history}");
    wait_for(&c, &format!("#history a[href=\"#/c/{first}\"]")).await;
    screenshot(&c, "customer-history").await;
    env.stop().await;
}
