//! `switchboard serve`: the HTTP server platforms call and agents work in.
//!
//! - [`ingress`]: webhooks per tenant and connector, acknowledged after durable acceptance;
//! - [`workers`]: per-tenant processing, delivery and polling in the background;
//! - [`registry`]: live tenants and the plugin store, hot-swapped;
//! - [`api`]: the admin and agent API, with per-tenant tokens and roles;
//! - [`console`]: the agent console in the browser, at `/`, over the same API;
//! - operations: `/healthz`, `/readyz`, `/metrics` (Prometheus, [`ops`]), `/openapi.json`.
//!
//! The top library layer: it drives the care layer's engine from HTTP and background tasks. It
//! owns axum routes, workers, the registry, file watching and metrics ([`ops`]); care rules,
//! storage and plugin calls belong to the crates below, which know nothing of it.

pub mod api;
pub mod care_api;
pub mod console;
pub mod incidents_api;
pub mod ingress;
pub mod ops;
pub mod registry;
pub mod team_api;
pub mod watch;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;
use tokio::sync::watch as tokio_watch;

use registry::{DataDir, Registry};
use switchboard_care::worker::Engine;
use switchboard_runtime::Runtime;
use switchboard_store::Store;

/// How the server runs. Every field has a default that works on a fresh machine.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data folder: `tenants/`, `plugins/` and (unless `store_url` says otherwise) the
    /// database file.
    pub data_dir: PathBuf,
    /// Store URL; `None` means `<data_dir>/switchboard.db`.
    pub store_url: Option<String>,
    /// Extra tenant config files to serve besides `<data_dir>/tenants/*.toml`.
    pub tenant_files: Vec<PathBuf>,
    /// The URL platforms call, as configured on their side: connectors that sign the URL
    /// (Twilio) verify against it.
    pub public_url: String,
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
    /// Largest plugin upload accepted.
    pub max_plugin_bytes: usize,
    /// The operator token; `None` reads `<data_dir>/admin-token`, creating it on first start.
    pub admin_token: Option<String>,
    /// Watch the plugin and tenant folders and reload on change.
    pub watch: bool,
    /// How long a shutdown waits for in-flight work.
    pub drain: Duration,
    /// Longest a client may take to send a request's headers; also how long a kept-alive
    /// connection may sit idle before its next request. Slow or silent clients are closed so
    /// they cannot hold connections (and file descriptors) open.
    pub header_timeout: Duration,
    /// Longest a request body may stall between chunks before the request fails; a webhook
    /// body must also arrive whole within it.
    pub body_timeout: Duration,
    /// Webhooks of one tenant verified, decoded and stored at once. A flood aimed at one
    /// tenant waits for that tenant's slots (and is turned away with 429 past
    /// `ingress_wait`), so it cannot take the CPU and plugin instances other tenants need.
    pub tenant_ingress_concurrency: usize,
    /// How long a webhook waits for one of its tenant's slots before a 429.
    pub ingress_wait: Duration,
    /// Most connections served at once. Past it, new connections wait in the kernel's
    /// backlog (costing no file descriptor) until a slot frees, so the process keeps
    /// descriptors for its store, plugins and files under its open-file limit.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8640)),
            data_dir: PathBuf::from("switchboard-data"),
            store_url: None,
            tenant_files: Vec::new(),
            public_url: "http://127.0.0.1:8640".into(),
            max_body_bytes: 1 << 20,
            max_plugin_bytes: 64 << 20,
            admin_token: None,
            watch: true,
            drain: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            // Half the usual open-file limit of 1,024: headroom for the store and plugins.
            max_connections: 512,
            // A few per core keep the cores busy while a call waits on the store; more would
            // only queue inside the runtime with a deadline running.
            tenant_ingress_concurrency: 8,
            ingress_wait: Duration::from_secs(1),
        }
    }
}

/// How often a tenant's connector may log a refused webhook; the refusals in between are
/// counted in the line that follows and in the metrics.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub registry: Arc<Registry>,
    pub options: Arc<ServeOptions>,
    /// SHA-256 of the operator token.
    admin_token_hash: Arc<String>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    ready: Arc<AtomicBool>,
    /// Rate-limits the log lines strangers can cause (refused webhooks).
    log_limiter: Arc<ops::LogLimiter>,
    /// Each tenant's in-flight webhooks.
    ingress_slots: Arc<switchboard_runtime::TenantSlots>,
    /// Queue gauges reported so far: one that empties is set to 0, not left at its last value.
    queues_seen: Arc<std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>>>,
}

impl AppState {
    /// Serving and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// A JSON error body: `{"error": "..."}`.
pub fn error_response(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    /// The operator token (for tests and the start-up message).
    pub admin_token: String,
    shutdown: tokio_watch::Sender<bool>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Turned off on shutdown: long-lived responses (the console's event stream) end then.
    ready: Arc<AtomicBool>,
}

impl Server {
    /// Open the store, load the tenants, bind and start serving in the background.
    pub async fn start(rt: Runtime, options: ServeOptions) -> anyhow::Result<Server> {
        use anyhow::Context;
        let (state, admin_token) = prepare(rt, &options).await?;
        let (engine, registry) = (state.engine.clone(), state.registry.clone());
        let (shutdown, shutdown_rx) = tokio_watch::channel(false);
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("binding {}", options.listen))?;
        let addr = listener.local_addr()?;
        let watcher = if options.watch {
            Some(watch::watch(registry.clone(), shutdown_rx.clone())?)
        } else {
            None
        };
        let workers = tokio::spawn(workers::supervise(
            registry.clone(),
            engine,
            shutdown_rx.clone(),
        ));
        state.ready.store(true, Ordering::SeqCst);
        let stop = shutdown_rx.clone();
        let drain = options.drain;
        let limits = ConnectionLimits::of(&options);
        let handle = tokio::spawn(async move {
            serve(listener, app, limits, stop).await;
            // Requests are answered; now let the workers finish the message in hand.
            if tokio::time::timeout(drain, workers).await.is_err() {
                tracing::warn!(
                    ?drain,
                    "workers did not stop in time; unfinished messages resume on the next start"
                );
            }
            drop(watcher);
            anyhow::Ok(())
        });
        tracing::info!(%addr, "switchboard serving");
        Ok(Server {
            addr,
            admin_token,
            shutdown,
            handle,
            ready: state.ready.clone(),
        })
    }

    /// Stop taking requests, let in-flight requests and messages finish, and return.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        self.handle.await?
    }

    /// Serve until the process gets Ctrl-C or SIGTERM, then shut down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        ctrl_c.await?;
        tracing::info!("shutting down: finishing in-flight work");
        self.shutdown().await
    }
}

/// Open the store and load the tenants: the state every route serves from.
async fn prepare(rt: Runtime, options: &ServeOptions) -> anyhow::Result<(AppState, String)> {
    use anyhow::Context;
    let dirs = DataDir {
        root: options.data_dir.clone(),
    };
    dirs.create()
        .with_context(|| format!("creating the data folder {}", dirs.root.display()))?;
    let url = options
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dirs.root.join("switchboard.db").display()));
    let store = Store::open(&url).await.context("opening the store")?;
    let admin_token = match &options.admin_token {
        Some(t) => t.clone(),
        None => admin_token_file(&dirs.root.join("admin-token"))?,
    };
    let engine = Engine::new(rt.clone(), store.clone());
    let registry = Arc::new(Registry::new(
        rt,
        store,
        dirs.clone(),
        options.tenant_files.clone(),
    ));
    let errors = registry.reload_all().await;
    for (file, e) in &errors {
        tracing::error!(%file, error = %e, "tenant not loaded");
    }
    let state = AppState {
        engine,
        registry,
        options: Arc::new(options.clone()),
        admin_token_hash: Arc::new(switchboard_store::token_hash(&admin_token)),
        metrics: crate::ops::prometheus(),
        ready: Arc::new(AtomicBool::new(false)),
        log_limiter: Arc::new(ops::LogLimiter::new(REFUSAL_LOG_INTERVAL)),
        ingress_slots: Arc::new(switchboard_runtime::TenantSlots::new(
            options.tenant_ingress_concurrency,
        )),
        queues_seen: Arc::default(),
    };
    Ok((state, admin_token))
}

/// Every route of a server over `options`' store and tenants, with no listener, workers or
/// file watcher: the real request path, driven in memory (the fuzz target for ingress).
pub async fn in_memory(rt: Runtime, options: ServeOptions) -> anyhow::Result<Router> {
    let (state, _) = prepare(rt, &options).await?;
    state.ready.store(true, Ordering::SeqCst);
    Ok(router(state))
}

/// What a connection may cost the server: see the fields of [`ServeOptions`].
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
}

impl ConnectionLimits {
    fn of(options: &ServeOptions) -> Self {
        ConnectionLimits {
            header_timeout: options.header_timeout,
            body_timeout: options.body_timeout,
            max_connections: options.max_connections.max(1),
        }
    }
}

/// Serve HTTP/1 on `listener` until `stop` turns true (or its sender is gone), then let open
/// connections finish their requests. Unlike `axum::serve`, which has no timeouts, this closes
/// connections whose headers or idle gaps exceed the header timeout, fails stalled bodies,
/// and accepts no more than `max_connections` at once.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: tokio_watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Every connection task holds a receiver; the sender's `closed` says all have ended.
    let (open_tx, open_rx) = tokio_watch::channel(());
    loop {
        // At the cap, stop accepting: callers wait in the backlog, not in our descriptors.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopping(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a transient network error: wait rather than spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = stopping(&mut stop) => break,
        };
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service =
            hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
                let mut app = app.clone();
                let req = req.map(|b| {
                    axum::body::Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, b))
                });
                async move { tower_service::Service::call(&mut app, req).await }
            });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let _slot = permit;
            let _open = open;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                r = connection.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection closed");
                    }
                    return;
                }
                _ = stopping(&mut stop) => {}
            }
            // Shutting down: finish the request in hand, take no more on this connection.
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// Resolves when `stop` turns true or its sender is gone (the server was dropped).
async fn stopping(stop: &mut tokio_watch::Receiver<bool>) {
    // The borrowed value is dropped here: it must not live across the caller's awaits.
    let _ = stop.wait_for(|s| *s).await;
}

/// Read the operator token from `path`, creating a fresh one (readable only by this user) on
/// first start.
fn admin_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = switchboard_store::new_token();
    registry::write_atomically(path, token.as_bytes()).map_err(anyhow::Error::msg)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    eprintln!(
        "created the operator token in {} (use it as `Authorization: Bearer …`)",
        path.display()
    );
    Ok(token)
}

fn router(state: AppState) -> Router {
    // The webhook handler reads (and limits) its body itself, after the cheap checks.
    let hooks = Router::new().route("/hooks/{tenant}/{connector}", any(ingress::webhook));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(hooks)
        .merge(api::routes(&state))
        .merge(care_api::routes())
        .merge(team_api::routes())
        .merge(incidents_api::routes())
        .merge(console::routes())
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route".into()) })
        // Handlers log their own failures, rate-limited where strangers can cause them; the
        // trace layer's line per 5xx would be an unlimited copy, so it stays at debug.
        .layer(axum::middleware::from_fn(console::csrf))
        .layer(axum::middleware::from_fn(console::security_headers))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// Readiness. Anyone may ask, so anyone gets only whether the server is ready and counts;
/// which files failed and why (paths, tenant names) is for the operator token and the log.
async fn readyz(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let store = state.engine.store.ping().await;
    let errors = state.registry.errors();
    let tenants = state.registry.all().len();
    let ready = state.ready.load(Ordering::SeqCst) && store.is_ok();
    let body = if api::operator(&state, &headers).is_ok() {
        json!({
            "ready": ready,
            "store": store.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
            "tenants": tenants,
            "config_errors": errors,
        })
    } else {
        json!({
            "ready": ready,
            "store": if store.is_ok() { "ok" } else { "unavailable" },
            "tenants": tenants,
            "config_errors": errors.len(),
        })
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(e) = api::operator(&state, &headers) {
        return e.into_response();
    }
    // Queue depths are read at scrape time.
    if let Ok(depths) = state.engine.store.queue_depths().await {
        let mut seen = state.queues_seen.lock().unwrap_or_else(|p| p.into_inner());
        let now: std::collections::BTreeMap<_, _> = depths
            .into_iter()
            .map(|(t, q, s, n)| ((t, q, s), n))
            .collect();
        seen.extend(now.keys().cloned());
        for key in seen.iter() {
            let (tenant, queue, status) = key.clone();
            let n = now.get(key).copied().unwrap_or(0);
            metrics::gauge!("switchboard_queue_depth", "tenant" => tenant, "queue" => queue, "status" => status)
                .set(n as f64);
        }
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The API's OpenAPI description, kept beside the code and checked against the router by the
/// server tests.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}
