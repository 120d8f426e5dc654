//! The ingress request path: the server's whole router (webhooks, API, operations routes)
//! over the acme example tenant and an in-memory store, driven without sockets.
//!
//! The server is built once per process; each input is one request. With the sign flag set,
//! the harness signs the body as acme's webhook connector expects, so accepted messages are
//! stored and deduplicated for real.

use std::sync::OnceLock;

use axum::body::Body;
use tower::ServiceExt;

use crate::{Request, Verdict};

/// The acme example, taking as many webhooks as the fuzzer sends.
const TENANT: &str = concat!(
    include_str!("../../../examples/acme/tenant.toml"),
    "\n[ingress]\nrequests_per_second = 4000000000\nburst = 4000000000\n"
);
/// acme's webhook connector's `signing-secret` in the example.
const ACME_SECRET: &str = "acme-demo-signing-secret";
/// The path where acme's webhook connector takes requests.
pub const ACME_HOOK: &str = "/hooks/acme/webhook";

struct Server {
    tokio: tokio::runtime::Runtime,
    router: axum::Router,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let data_dir =
            std::env::temp_dir().join(format!("switchboard-fuzz-ingress-{}", std::process::id()));
        let tenants = data_dir.join("tenants");
        std::fs::create_dir_all(&tenants).expect("creating the fuzz data folder");
        std::fs::write(tenants.join("acme.toml"), TENANT).expect("writing the tenant");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let runtime = switchboard_runtime::Runtime::new(switchboard_runtime::RuntimeOptions {
            // Compiled plugins are reused across fuzzing processes.
            cache_dir: Some(std::env::temp_dir().join("switchboard-fuzz-plugin-cache")),
            max_instances: 16,
            ..Default::default()
        })
        .expect("plugin runtime");
        let options = switchboard_server::ServeOptions {
            data_dir,
            store_url: Some("sqlite::memory:".into()),
            admin_token: Some("fuzz-admin-token".into()),
            watch: false,
            ..Default::default()
        };
        let router = tokio
            .block_on(switchboard_server::in_memory(runtime, options))
            .expect("the in-memory server starts");
        Server { tokio, router }
    })
}

/// Build the server (once per process).
pub fn warm_up() {
    server();
}

/// One request through the router. An unsigned POST to acme's webhook must not succeed.
pub fn ingress(data: &[u8]) -> Verdict {
    let mut input = Request::decode(data);
    if input.sign {
        let scheme = generic_webhook::settings::Config::from_lookup(|_| None)
            .signature_scheme()
            .expect("the default signature scheme is valid");
        let sig = scheme.sign(ACME_SECRET, &input.body);
        input.set_header(&scheme.header, sig);
    }
    let mut builder = axum::http::Request::builder()
        .method(input.method)
        .uri(&input.path);
    for (k, v) in &input.headers {
        builder = builder.header(k, v);
    }
    // A path or header the HTTP layer would refuse never reaches the router.
    let Ok(request) = builder.body(Body::from(input.body.clone())) else {
        return Verdict::Refused("not a valid HTTP request".into());
    };
    let server = server();
    let response = server
        .tokio
        .block_on(server.router.clone().oneshot(request))
        .expect("the router is infallible");
    let status = response.status();
    let hook = input.path.split('?').next() == Some(ACME_HOOK);
    if hook && !input.sign && input.method == "POST" {
        assert!(
            !status.is_success(),
            "an unsigned POST was accepted ({status}): {input:?}"
        );
    }
    match status.as_u16() {
        200..=299 => Verdict::Accepted,
        401 => Verdict::Unauthorized,
        s => Verdict::Refused(s.to_string()),
    }
}
