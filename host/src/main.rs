//! `switchboard`: the command-line front of the plugin host.

mod output;

/// mimalloc gives freed memory back to the system within milliseconds; glibc's malloc kept a
/// burst of large webhook bodies (hundreds of MB) resident for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use switchboard::capabilities::config::{PluginConfig, Secret};
use switchboard::contract::WebhookOutcome;
use switchboard::ingest;
use switchboard::pipeline;
use switchboard::replay;
use switchboard::runtime::{Ceilings, Runtime, RuntimeOptions, Scope};
use switchboard::store::Store;
use switchboard::tenant::{self, Tenant};
use switchboard::worker::{Engine, IngestError, Intake, Processed};

/// Switchboard: a WebAssembly plugin host for social customer care.
///
/// Connectors turn a network's webhooks into normalised messages, classifiers label them,
/// reply-suggesters draft answers. Every plugin is a sandboxed WebAssembly component that runs
/// with one tenant's config, secrets and limits.
#[derive(Parser)]
#[command(name = "switchboard", version, about, long_about)]
struct Cli {
    /// Folder for compiled plugins (reused across runs). Default: $SWITCHBOARD_CACHE_DIR, else
    /// the user's cache folder (e.g. ~/.cache/switchboard).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins afresh and write no cache.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Log detail on stderr: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, global = true, default_value = "warn", value_name = "FILTER")]
    log: String,
    /// Plugin instances one tenant's calls may hold at once, of the 128 all tenants share; a
    /// tenant's further calls wait for its own, so a slow or busy tenant never takes the pool
    /// from the others.
    #[arg(long, global = true, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=128))]
    tenant_instances: u32,
    /// The longest plugin-call deadline (`timeout_ms`) a tenant config may ask for.
    #[arg(long, global = true, default_value_t = 60_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    max_plugin_timeout_ms: u64,
    /// The most plugin instances (connectors, classifiers, suggesters) one tenant config may list.
    #[arg(long, global = true, default_value_t = 64, value_name = "N")]
    max_plugins_per_tenant: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line (for programs).
    Json,
    /// A readable table (for people).
    Table,
}

/// Arguments of `switchboard connector`.
#[derive(clap::Args)]
struct ConnectorArgs {
    /// A plugin name (e.g. generic-webhook) or a path to a .wasm file.
    plugin: String,
    /// The request body, exactly as received.
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// A request header, `Name: value`; repeat for more.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    #[arg(long, default_value = "POST")]
    method: String,
    /// The URL the platform called (some signature schemes sign it).
    #[arg(long, default_value = "http://localhost/")]
    url: String,
    /// A config value for the connector, `key=value`; repeat for more.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A secret for the connector, `name=env:VAR`, `name=file:PATH` or `name=value`.
    #[arg(long = "secret", short = 's', value_name = "NAME=SOURCE")]
    secrets: Vec<String>,
    /// Take config and secrets from this connector instance of a tenant config instead.
    #[arg(long, value_name = "TENANT.toml", conflicts_with_all = ["config", "secrets"])]
    tenant: Option<PathBuf>,
}

/// Where the durable store is.
#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// The store: an SQLite file (created if missing), or a `sqlite://` / `postgres://` URL.
    /// Default: $SWITCHBOARD_DB, else switchboard.db in the current folder.
    #[arg(long, value_name = "FILE|URL")]
    db: Option<String>,
}

impl StoreArgs {
    fn url(&self) -> String {
        let spec = self
            .db
            .clone()
            .or_else(|| std::env::var("SWITCHBOARD_DB").ok())
            .unwrap_or_else(|| "switchboard.db".into());
        Self::url_of(&spec)
    }

    /// A file path or a URL, as a store URL.
    fn url_of(spec: &str) -> String {
        if spec.contains("://") || spec.starts_with("sqlite:") {
            spec.to_string()
        } else {
            format!("sqlite://{spec}")
        }
    }

    /// The CLI's commands are one sequential client (see [`switchboard_store::Clients::One`]).
    async fn open(&self) -> anyhow::Result<Store> {
        let url = self.url();
        Store::open_for(&url, switchboard_store::Clients::One)
            .await
            .with_context(|| format!("opening the store {}", redact_url(&url)))
    }
}

/// A store URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Take a file of captured webhook requests into a tenant's durable pipeline, and print for
    /// each message its labels, the care policy's decision (which rule fired and why) and its
    /// drafts with the reply guards' findings.
    ///
    /// Every message is stored before it is processed; a message already in the store (the
    /// same platform message delivered again) is reported as a duplicate and not processed
    /// again. Messages left unfinished by an earlier run (a crash) are finished first.
    /// Replies the policy queues are sent with --deliver.
    ///
    /// REQUESTS is JSONL: one object per line with `headers`, `body` (or `body_base64`) and
    /// optionally `connector`, `method` and `url`. A bad line is reported and the run goes on;
    /// the exit code is 1 if any line or plugin call failed, 0 otherwise.
    Run {
        /// The tenant's config file (TOML), e.g. examples/acme/tenant.toml.
        tenant: PathBuf,
        /// Captured requests (JSONL); `-` reads standard input.
        requests: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Send queued replies through the connectors after processing.
        #[arg(long)]
        deliver: bool,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Send a tenant's queued replies that are due, through its connectors (retries back off;
    /// permanent refusals are kept as dead letters with their reason).
    Deliver {
        tenant: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show how a candidate pipeline would treat traffic, against the current one: per message
    /// and in total, which labels, decisions and drafts change. Nothing is stored or sent.
    ///
    /// The candidate is another tenant config (--candidate), or the current one with some
    /// plugin instances swapped (--swap keywords=path/to/new.wasm), or both. The traffic is the
    /// tenant's stored messages (--db) or a file of captured requests (--requests).
    Replay {
        /// The current tenant config.
        tenant: PathBuf,
        /// A candidate tenant config (same tenant id).
        #[arg(long, value_name = "TENANT.toml")]
        candidate: Option<PathBuf>,
        /// Swap one plugin instance for another plugin or version: `INSTANCE=PLUGIN`.
        #[arg(long = "swap", value_name = "INSTANCE=PLUGIN")]
        swaps: Vec<String>,
        /// Replay captured requests (JSONL) instead of the stored messages.
        #[arg(long, value_name = "FILE")]
        requests: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        /// List only the messages where something changed.
        #[arg(long)]
        changed_only: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compare each shadow classifier with the live classifier it would replace, on the stored
    /// traffic: agreement, per-label confusion, and the decisions that would change.
    ShadowReport {
        tenant: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a stored conversation: its messages, labels, decisions with the rules that fired
    /// and why, drafts with guard findings, queued replies and the audit log.
    Conversation {
        /// The tenant id (a conversation of another tenant is never shown).
        tenant: String,
        /// The conversation's id, or its channel's conversation key.
        conversation: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show the tenant's running response clocks, most urgent first, after recording any
    /// warning or breach that is due (with the tenant's breach actions: priority, reassignment,
    /// a supervisor notified).
    Sla {
        tenant: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Mark a conversation resolved. With `[satisfaction]` in the tenant, the survey is queued
    /// in the same channel (privately if the conversation was private); --deliver sends what is
    /// due now.
    Resolve {
        tenant: PathBuf,
        /// The conversation's id, or its channel's conversation key.
        conversation: String,
        /// Who resolves it, for the audit log.
        #[arg(long, default_value = "cli")]
        by: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        deliver: bool,
    },
    /// The period report: volumes per channel, decisions, service levels met and breached,
    /// top topics and rising keywords, guard findings on sent replies, and satisfaction per
    /// agent, team and channel.
    Report {
        tenant: PathBuf,
        /// Start of the period: a date (YYYY-MM-DD, tenant time) or an RFC 3339 instant.
        /// Default: seven days before --until.
        #[arg(long)]
        since: Option<String>,
        /// End of the period (exclusive). Default: now.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Incidents: many customers reporting the same problem in a short window. List them, show
    /// one, open one by hand, attach conversations, merge one into another, or close one.
    ///
    /// The detector opens incidents by itself while messages are processed (`run`, `serve`)
    /// when the tenant has `[incidents]`: a burst of reports with the same group label (e.g.
    /// `topic:website`) or near-identical texts, well above the tenant's usual rate. A policy
    /// rule's `incident = "…"` action opens or joins the incident of that name. Each incident
    /// drafts one public statement (a supervisor signs it off) and a reply per customer;
    /// closing queues a follow-up to each of them.
    ///
    /// Examples:
    ///   switchboard incidents acme.toml list --status open
    ///   switchboard incidents acme.toml show 0190f3c2-…
    ///   switchboard incidents acme.toml open --title "the app crashing" --group topic:app tw-1004 tw-1009
    ///   switchboard incidents acme.toml attach 0190f3c2-… tw-1011
    ///   switchboard incidents acme.toml merge 0190f3c2-… 0190f3d8-…   (the first into the second)
    ///   switchboard incidents acme.toml close 0190f3c2-… --by sam --deliver
    #[command(verbatim_doc_comment)]
    Incidents {
        /// The tenant's config file (TOML).
        tenant: PathBuf,
        #[command(subcommand)]
        action: IncidentsAction,
    },
    /// Run one connector on one captured request and print the normalised events as JSON, or a
    /// clear refusal (bad signature, malformed body, unsupported event).
    ///
    /// Exit code 0 when the request was accepted (events or a handshake answer), 1 when the
    /// connector refused it, 2 on a usage or load error.
    Connector(ConnectorArgs),
    /// Run the server: webhooks for every tenant and connector, background processing,
    /// delivery and polling, hot plugin swaps, and the admin and agent API.
    ///
    /// Everything lives in the data folder (created if missing): `switchboard.db` (unless
    /// --db or $SWITCHBOARD_DB names another store), `tenants/*.toml`, `plugins/` (uploaded
    /// versions) and `admin-token` (the operator's API token, created on first start unless
    /// $SWITCHBOARD_ADMIN_TOKEN is set). Files changed in `tenants/` or `plugins/` are
    /// reloaded; a file that does not load leaves the old version serving.
    ///
    /// Agent console: `/`. Webhooks: `/hooks/{tenant}/{connector}`. API description:
    /// `/openapi.json`. Health: `/healthz`, `/readyz`; metrics (operator token): `/metrics`.
    /// Ctrl-C or SIGTERM stops taking requests and lets in-flight work finish.
    Serve {
        /// Tenant config files to serve besides those in `<data>/tenants/`.
        #[arg(long = "tenant", value_name = "TENANT.toml")]
        tenants: Vec<PathBuf>,
        /// The data folder.
        #[arg(long, default_value = "switchboard-data")]
        data: PathBuf,
        /// Store URL (`sqlite://path` or `postgres://…`); default `<data>/switchboard.db`.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8640")]
        listen: std::net::SocketAddr,
        /// The base URL platforms call (what connectors that sign URLs verify against);
        /// default `http://<listen>`.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Largest webhook body, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_body: usize,
        /// Most connections served at once; more wait until one closes. Keep it well under
        /// the open-file limit (`ulimit -n`).
        #[arg(long, default_value_t = 512)]
        max_connections: usize,
        /// Webhooks of one tenant verified and stored at once; more wait up to a second and
        /// are then answered 429 (Retry-After: 1), so a flood aimed at one tenant slows only
        /// that tenant.
        #[arg(long, default_value_t = 8, value_name = "N")]
        tenant_webhooks_in_flight: usize,
        /// Do not watch the tenant and plugin folders for changes.
        #[arg(long)]
        no_watch: bool,
        /// Export traces over OTLP/HTTP (protobuf) to this collector base URL, e.g.
        /// `http://localhost:4318` (spans go to `<URL>/v1/traces`): one trace per webhook, from
        /// ingress through every plugin call to delivery. Without it, the standard
        /// $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT turn export on;
        /// with none of them, nothing is exported. $OTEL_BSP_SCHEDULE_DELAY (ms, default 5000)
        /// sets how often spans are sent; $OTEL_SERVICE_NAME overrides `switchboard`;
        /// OTEL_SDK_DISABLED=true turns export off whatever else is set.
        #[arg(long, value_name = "URL")]
        otlp_endpoint: Option<String>,
    },
    /// Make a personal key for one person of a tenant: what they paste to sign in to the
    /// console, and their API token. It is printed once (only its hash is stored); revoke it
    /// from the console's Plugins page or `DELETE /api/tenants/{tenant}/tokens/{id}`. Works
    /// while the server runs, on the same data folder.
    Key {
        /// The tenant the person works for (its `tenant = …` name).
        tenant: String,
        /// Who the audit log and the sign-off rules will see (1-64 characters).
        #[arg(long)]
        name: String,
        /// agent, supervisor or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// The server's data folder.
        #[arg(long, default_value = "switchboard-data")]
        data: PathBuf,
        /// Store URL or file, when the server was started with --db (or $SWITCHBOARD_DB).
        #[arg(long, value_name = "URL")]
        db: Option<String>,
    },
    /// Measure a classifier on a labelled CSV/TSV file through the real runtime: accuracy,
    /// per-label precision/recall/F1, macro-F1, confusion matrix and cost per message; with
    /// --compare, against a second classifier on the same rows.
    Eval(switchboard::eval::EvalArgs),
    /// Inspect a plugin file: kind, contract version, declared capabilities, digest.
    Inspect {
        /// A plugin name or a path to a .wasm file.
        plugin: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// What `switchboard incidents` does.
#[derive(Subcommand)]
enum IncidentsAction {
    /// Incidents, newest first.
    List {
        /// Only `open`, `closed` or `merged` ones.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        opts: IncidentOpts,
    },
    /// One incident: why it opened, its conversations and their drafts, its statement draft and
    /// its audit trail.
    Show {
        /// The incident's id.
        id: String,
        #[command(flatten)]
        opts: IncidentOpts,
    },
    /// Open an incident by hand; each conversation gets a reply draft and the first carries
    /// the statement draft.
    Open {
        /// What customers are told it is ("the app crashing").
        #[arg(long)]
        title: String,
        /// The group later reports join by: a label (topic:app) or a rule's incident name.
        /// Default: this incident only.
        #[arg(long)]
        group: Option<String>,
        /// Conversation ids or channel keys to attach now.
        conversations: Vec<String>,
        #[command(flatten)]
        opts: IncidentOpts,
    },
    /// Attach conversations (ids or channel keys) to an open incident, each with a reply draft.
    Attach {
        /// The incident's id.
        id: String,
        /// Conversation ids or channel keys.
        #[arg(required = true)]
        conversations: Vec<String>,
        #[command(flatten)]
        opts: IncidentOpts,
    },
    /// Merge incident FROM into INTO: its conversations move, its unsent statement is withdrawn.
    Merge {
        /// The incident that goes (marked merged).
        from: String,
        /// The incident that takes its conversations over.
        into: String,
        #[command(flatten)]
        opts: IncidentOpts,
    },
    /// Close an incident: a follow-up to every affected customer is queued (--deliver sends
    /// what is due now). Closing twice is refused.
    Close {
        /// The incident's id.
        id: String,
        /// Send the follow-ups that are due now through the connectors.
        #[arg(long)]
        deliver: bool,
        #[command(flatten)]
        opts: IncidentOpts,
    },
}

/// What every `switchboard incidents` action takes.
#[derive(clap::Args)]
struct IncidentOpts {
    /// Who acts, for the audit log.
    #[arg(long, default_value = "cli")]
    by: String,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

impl IncidentsAction {
    fn opts(&self) -> &IncidentOpts {
        match self {
            IncidentsAction::List { opts, .. }
            | IncidentsAction::Show { opts, .. }
            | IncidentsAction::Open { opts, .. }
            | IncidentsAction::Attach { opts, .. }
            | IncidentsAction::Merge { opts, .. }
            | IncidentsAction::Close { opts, .. } => opts,
        }
    }
}

async fn incidents(
    rt: &Runtime,
    tenant: &Path,
    action: IncidentsAction,
) -> anyhow::Result<ExitCode> {
    use switchboard::store::ActionError;
    let tenant = Tenant::load(tenant, rt).await?;
    let opts = action.opts();
    let engine = Engine::new(rt.clone(), opts.store.open().await?);
    let (by, format) = (opts.by.clone(), opts.format);
    let done = match &action {
        IncidentsAction::List { status, .. } => {
            if let Some(st) = status.as_deref()
                && !["open", "closed", "merged"].contains(&st)
            {
                bail!("--status `{st}`: use open, closed or merged");
            }
            let list = engine
                .store
                .incidents(&tenant.name, status.as_deref(), 1000)
                .await?;
            match format {
                Format::Json => println!("{}", serde_json::json!({ "incidents": list })),
                Format::Table => print!(
                    "{}",
                    switchboard::care::incidents::render_list(&list, &tenant.time_zone)
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentsAction::Show { id, .. } => {
            let Some(view) = engine.incident_view(&tenant.name, id).await? else {
                eprintln!("error: tenant `{}` has no incident `{id}`", tenant.name);
                return Ok(ExitCode::from(1));
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&view)?),
                Format::Table => print!(
                    "{}",
                    switchboard::care::incidents::render_view(&view, &tenant.time_zone)
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentsAction::Open {
            title,
            group,
            conversations,
            ..
        } => {
            let request = switchboard::care::incidents::OpenRequest {
                title: title.clone(),
                group: group.clone(),
                conversations: conversations.clone(),
            };
            engine
                .open_incident(&tenant, &request, &by)
                .await
                .map(|id| serde_json::json!({ "incident": id, "status": "open" }))
        }
        IncidentsAction::Attach {
            id, conversations, ..
        } => engine
            .attach_to_incident(&tenant, id, conversations, &by)
            .await
            .map(|n| serde_json::json!({ "incident": id, "attached": n })),
        IncidentsAction::Merge { from, into, .. } => engine
            .merge_incidents(&tenant, from, into, &by)
            .await
            .map(|n| serde_json::json!({ "incident": from, "status": "merged", "merged_into": into, "moved": n })),
        IncidentsAction::Close { id, .. } => engine
            .close_incident(&tenant, id, &by)
            .await
            .map(|(n, blocked)| serde_json::json!({ "incident": id, "status": "closed", "follow_ups": n, "blocked": blocked })),
    };
    match done {
        Ok(v) => println!("{v}"),
        Err(ActionError::NotFound) => {
            eprintln!(
                "error: tenant `{}` has no such incident or conversation",
                tenant.name
            );
            return Ok(ExitCode::from(1));
        }
        Err(ActionError::Conflict(m) | ActionError::Invalid(m) | ActionError::Forbidden(m)) => {
            eprintln!("error: {m}");
            return Ok(ExitCode::from(1));
        }
        Err(ActionError::Store(e)) => return Err(e.into()),
    }
    if let IncidentsAction::Close { deliver: true, .. } = action {
        let report = engine.deliver_due(&tenant).await?;
        eprintln!(
            "delivery: {} sent, {} retrying, {} dead",
            report.sent, report.retrying, report.dead
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cache_dir(cli: &Cli) -> Option<PathBuf> {
    if cli.no_cache {
        return None;
    }
    cli.cache_dir
        .clone()
        .or_else(|| std::env::var_os("SWITCHBOARD_CACHE_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("switchboard"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("switchboard"))
        })
}

fn main() -> ExitCode {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Traces only for the server, and only when an endpoint is configured.
    let (otel, traces) = match &cli.command {
        Command::Serve { otlp_endpoint, .. }
            if switchboard::traces::configured(otlp_endpoint.as_deref()) =>
        {
            match switchboard::traces::start(otlp_endpoint.as_deref(), runtime.handle().clone()) {
                Ok((layer, traces)) => (Some(layer), Some(traces)),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => (None, None),
    };
    // The log filter is the log's own: `--log warn` must not hide spans from the exporter.
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The filter's most verbose level, also on the closure filter: without a hint there, the
    // combined filter has none, `log`'s global maximum stays at TRACE, and every `log::trace!`
    // in the plugin compiler (Cranelift) went through the tracing bridge to be dropped there
    // (half the CPU of compiling the example's plugins).
    let most_verbose = filter
        .max_level_hint()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    tracing_subscriber::registry()
        .with(otel)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    filter.and(
                        tracing_subscriber::filter::filter_fn(switchboard::traces::log_filter)
                            .with_max_level_hint(most_verbose),
                    ),
                ),
        )
        .init();
    let result = runtime.block_on(dispatch(cli));
    if let Some(t) = traces {
        t.shutdown();
    }
    match result {
        Ok(code) => code,
        // A closed pipe (`switchboard run … | head`) is the reader's choice, not a failure.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: cache_dir(&cli),
        tenant_share: cli.tenant_instances,
        ceilings: Ceilings {
            timeout_ms: cli.max_plugin_timeout_ms,
            plugin_instances: cli.max_plugins_per_tenant,
            ..Ceilings::default()
        },
        ..Default::default()
    })?;
    match cli.command {
        Command::Run {
            tenant,
            requests,
            store,
            deliver,
            format,
        } => {
            // On a worker thread rather than the main one: the tasks the run wakes (the store's
            // group committer) then start on the same thread instead of waking another.
            tokio::spawn(async move { run(&rt, &tenant, &requests, &store, deliver, format).await })
                .await?
        }
        Command::Deliver { tenant, store } => {
            let tenant = Tenant::load(&tenant, &rt).await?;
            let engine = Engine::new(rt.clone(), store.open().await?);
            engine.store.requeue_interrupted(&tenant.name).await?;
            let report = engine.deliver_due(&tenant).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.dead > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Replay {
            tenant,
            candidate,
            swaps,
            requests,
            store,
            changed_only,
            format,
        } => {
            replay(
                &rt,
                &tenant,
                candidate.as_deref(),
                &swaps,
                requests.as_deref(),
                &store,
                changed_only,
                format,
            )
            .await
        }
        Command::ShadowReport {
            tenant,
            store,
            format,
        } => {
            let tenant = Tenant::load(&tenant, &rt).await?;
            if tenant
                .shadow_classifiers
                .iter()
                .all(|s| s.replaces.is_none())
            {
                bail!(
                    "tenant `{}` has no shadow classifier with `replaces = \"<live classifier>\"`",
                    tenant.name
                );
            }
            let store = store.open().await?;
            let report = replay::shadow_report(&store, &tenant).await?;
            let mut out = std::io::stdout().lock();
            output::write_shadow_report(&mut out, format, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Conversation {
            tenant,
            conversation,
            store,
            format,
        } => {
            let store = store.open().await?;
            let Some(view) = output::conversation_view(&store, &tenant, &conversation).await?
            else {
                eprintln!("error: tenant `{tenant}` has no conversation `{conversation}`");
                return Ok(ExitCode::from(1));
            };
            let mut out = std::io::stdout().lock();
            output::write_conversation(&mut out, format, &view)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sla {
            tenant,
            store,
            format,
        } => {
            let tenant = Tenant::load(&tenant, &rt).await?;
            let engine = Engine::new(rt.clone(), store.open().await?);
            let swept = engine.sweep_service_levels(&tenant).await?;
            let clocks = engine.service_levels(&tenant, None).await?;
            let mut out = std::io::stdout().lock();
            output::write_clocks(&mut out, format, &swept, &clocks, &tenant.time_zone)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Resolve {
            tenant,
            conversation,
            by,
            store,
            deliver,
        } => {
            let tenant = Tenant::load(&tenant, &rt).await?;
            let engine = Engine::new(rt.clone(), store.open().await?);
            match engine.resolve(&tenant, &conversation, &by).await {
                Ok((id, survey)) => {
                    println!(
                        "{}",
                        serde_json::json!({ "conversation": id, "state": "resolved", "survey": survey })
                    );
                }
                Err(switchboard::store::ActionError::NotFound) => {
                    eprintln!(
                        "error: tenant `{}` has no conversation `{conversation}`",
                        tenant.name
                    );
                    return Ok(ExitCode::from(1));
                }
                Err(
                    switchboard::store::ActionError::Conflict(m)
                    | switchboard::store::ActionError::Invalid(m)
                    | switchboard::store::ActionError::Forbidden(m),
                ) => {
                    eprintln!("error: {m}");
                    return Ok(ExitCode::from(1));
                }
                Err(switchboard::store::ActionError::Store(e)) => return Err(e.into()),
            }
            if deliver {
                let report = engine.deliver_due(&tenant).await?;
                eprintln!(
                    "delivery: {} sent, {} retrying, {} dead",
                    report.sent, report.retrying, report.dead
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            tenant,
            since,
            until,
            store,
            format,
        } => {
            let tenant = Tenant::load(&tenant, &rt).await?;
            let store = store.open().await?;
            let until = match until {
                Some(t) => parse_moment(&t, &tenant.time_zone)?,
                None => store.now(),
            };
            let since = match since {
                Some(t) => parse_moment(&t, &tenant.time_zone)?,
                None => until - 7 * 24 * 3_600_000,
            };
            if since >= until {
                bail!("--since must be before --until");
            }
            let report =
                switchboard::care::report::build(&store, &tenant.name, since, until).await?;
            let mut out = std::io::stdout().lock();
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
                Format::Table => write!(
                    out,
                    "{}",
                    switchboard::care::report::render(&report, &tenant.time_zone)
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Incidents { tenant, action } => incidents(&rt, &tenant, action).await,
        Command::Connector(args) => connector(&rt, args).await,
        Command::Inspect { plugin, format } => inspect(&rt, &plugin, format).await,
        Command::Key {
            tenant,
            name,
            role,
            data,
            db,
        } => {
            let Some(role) = switchboard::store::Role::parse(&role) else {
                bail!("--role must be agent, supervisor or admin, not `{role}`");
            };
            if name.trim().is_empty() || name.len() > 64 {
                bail!("--name must be 1-64 characters");
            }
            // The same store `serve` uses: --db, else $SWITCHBOARD_DB, else the data folder's.
            let url = match db.or_else(|| std::env::var("SWITCHBOARD_DB").ok()) {
                Some(db) => StoreArgs::url_of(&db),
                None => {
                    let file = data.join("switchboard.db");
                    if !file.exists() {
                        bail!(
                            "no store at {}: start `switchboard serve --data {}` once first, or \
                             name the store with --db",
                            file.display(),
                            data.display()
                        );
                    }
                    format!("sqlite://{}", file.display())
                }
            };
            let store = Store::open(&url).await.context("opening the store")?;
            let (id, key) = store.create_token(&tenant, role, &name).await?;
            eprintln!(
                "key {id} for {}:{name} of tenant `{tenant}` (shown once; sign in at the console with it):",
                role.as_str()
            );
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            tenants,
            data,
            db,
            listen,
            public_url,
            max_body,
            max_connections,
            tenant_webhooks_in_flight,
            no_watch,
            otlp_endpoint: _,
        } => {
            let options = switchboard::server::ServeOptions {
                listen,
                store_url: db
                    .or_else(|| std::env::var("SWITCHBOARD_DB").ok())
                    .map(|d| StoreArgs::url_of(&d)),
                data_dir: data,
                tenant_files: tenants,
                public_url: public_url.unwrap_or_else(|| format!("http://{listen}")),
                max_body_bytes: max_body,
                max_connections,
                tenant_ingress_concurrency: tenant_webhooks_in_flight,
                admin_token: std::env::var("SWITCHBOARD_ADMIN_TOKEN").ok(),
                watch: !no_watch,
                ..Default::default()
            };
            let server = switchboard::server::Server::start(rt, options).await?;
            eprintln!(
                "switchboard serving on http://{} (webhooks at /hooks/TENANT/CONNECTOR, API description at /openapi.json)",
                server.addr
            );
            eprintln!(
                "agent console: http://{}/ (sign in with a personal key; README, \"Console\")",
                server.addr
            );
            server.run_until_signal().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => switchboard::eval::run(&rt, &args).await,
    }
}

/// A date (`2026-10-27`, midnight in `time_zone`) or an RFC 3339 instant, as epoch ms.
fn parse_moment(text: &str, time_zone: &str) -> anyhow::Result<i64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let date: jiff::civil::Date = text.parse().with_context(|| {
        format!("`{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant")
    })?;
    Ok(date
        .in_tz(time_zone)
        .with_context(|| format!("`{text}` in {time_zone}"))?
        .timestamp()
        .as_millisecond())
}

fn open_requests(requests: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if requests == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(requests)
            .with_context(|| format!("cannot open {}", requests.display()))?;
        Box::new(std::io::BufReader::new(f))
    })
}

async fn run(
    rt: &Runtime,
    tenant_path: &Path,
    requests: &Path,
    store: &StoreArgs,
    deliver: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let tenant = Tenant::load(tenant_path, rt).await?;
    let engine = Engine::new(rt.clone(), store.open().await?);
    let reader = open_requests(requests)?;
    let progress = std::io::stderr().is_terminal();
    // Not `stdout().lock()`: the run is a spawned task (see `dispatch`), and a lock cannot move
    // between threads.
    let mut out = std::io::stdout();
    let mut summary = output::Summary::default();

    // Finish what an earlier run left (a crash between accepting and committing).
    for (id, processed) in engine.resume(&tenant).await? {
        let record = Record::from_processed(id, processed);
        summary.resumed += 1;
        summary.count(&record);
        output::write_record(&mut out, format, 0, &record)?;
    }

    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line =
            line.with_context(|| format!("reading {} line {line_no}", requests.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let records = process_line(&engine, &tenant, &line).await?;
        for record in records {
            summary.count(&record);
            output::write_record(&mut out, format, line_no, &record)?;
        }
        if progress && summary.lines % 50 == 0 {
            eprint!("\r{} requests processed", summary.lines);
        }
    }
    if progress && summary.lines >= 50 {
        eprintln!();
    }
    if deliver {
        summary.delivery = Some(engine.deliver_due(&tenant).await?);
    }
    summary.store = engine.store.status_counts(&tenant.name).await?;
    summary.outbox = engine.store.outbox(&tenant.name).await?.into_iter().fold(
        std::collections::BTreeMap::new(),
        |mut m, r| {
            *m.entry(r.status).or_insert(0) += 1;
            m
        },
    );
    output::write_summary(&mut out, format, &summary)?;
    out.flush()?;
    Ok(if summary.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What one request line produced.
pub enum Record {
    /// A new message, processed (status `done`), or held by a fail-closed stage (`held`,
    /// `failed`).
    Processed {
        message_id: String,
        status: String,
        triage: Box<pipeline::Triage>,
    },
    /// Stored before: not processed again.
    Duplicate {
        message_id: String,
    },
    /// The customer's answer to a satisfaction survey (1-5), recorded instead of triaged.
    SurveyAnswer {
        message_id: String,
        score: u8,
    },
    Skipped {
        event_type: Option<String>,
        reason: String,
    },
    Challenge {
        status: u16,
    },
    LineError(String),
}

impl Record {
    fn from_processed(message_id: String, p: Processed) -> Record {
        match p {
            Processed::Done(triage) => Record::Processed {
                message_id,
                status: "done".into(),
                triage,
            },
            Processed::Held { triage, status } => Record::Processed {
                message_id,
                status,
                triage,
            },
            Processed::AlreadyDone => Record::Duplicate { message_id },
            Processed::SurveyAnswer { score } => Record::SurveyAnswer { message_id, score },
        }
    }
}

/// Take one captured request in. Store failures end the run (the store is the point);
/// anything about the request itself is a record.
async fn process_line(engine: &Engine, tenant: &Tenant, line: &str) -> anyhow::Result<Vec<Record>> {
    let captured = match ingest::parse_line(line) {
        Ok(c) => c,
        Err(e) => return Ok(vec![Record::LineError(e)]),
    };
    let connector = match tenant.connector(captured.connector.as_deref()) {
        Ok(c) => c,
        Err(e) => return Ok(vec![Record::LineError(e)]),
    };
    let (answered, intakes) = match engine.ingest(connector, &captured.request).await {
        Ok(r) => r,
        Err(IngestError::Refused(e)) => return Ok(vec![Record::LineError(e.to_string())]),
        Err(IngestError::Store(e)) => return Err(e.into()),
    };
    if let WebhookOutcome::Challenge(r) = answered.outcome {
        return Ok(vec![Record::Challenge { status: r.status }]);
    }
    let mut records = Vec::new();
    for intake in intakes {
        records.push(match intake {
            Intake::Accepted(a) if a.duplicate => Record::Duplicate {
                message_id: a.message_id,
            },
            Intake::Accepted(a) => {
                let p = engine.process(tenant, &a.message_id).await?;
                Record::from_processed(a.message_id, p)
            }
            Intake::Skipped { event_type, reason } => Record::Skipped { event_type, reason },
        });
    }
    Ok(records)
}

#[allow(clippy::too_many_arguments)]
async fn replay(
    rt: &Runtime,
    tenant_path: &Path,
    candidate: Option<&Path>,
    swaps: &[String],
    requests: Option<&Path>,
    store: &StoreArgs,
    changed_only: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    if candidate.is_none() && swaps.is_empty() {
        bail!("give a candidate: --candidate TENANT.toml and/or --swap INSTANCE=PLUGIN");
    }
    let swaps: Vec<(String, String)> = swaps
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .with_context(|| format!("--swap `{s}` is not INSTANCE=PLUGIN"))
        })
        .collect::<anyhow::Result<_>>()?;
    let current = Tenant::load(tenant_path, rt).await?;
    let candidate = Tenant::load_swapped(candidate.unwrap_or(tenant_path), rt, &swaps).await?;
    if current.name != candidate.name {
        bail!(
            "the candidate is tenant `{}`, not `{}`",
            candidate.name,
            current.name
        );
    }
    let (report, refused) = match requests {
        Some(path) => {
            let mut captured = Vec::new();
            let mut refused = Vec::new();
            for (i, line) in open_requests(path)?.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match ingest::parse_line(&line) {
                    Ok(c) => captured.push(c),
                    Err(e) => refused.push(format!("line {}: {e}", i + 1)),
                }
            }
            let (report, more) = replay::replay_requests(rt, &current, &candidate, &captured).await;
            refused.extend(more);
            (report, refused)
        }
        None => {
            let store = store.open().await?;
            (
                replay::replay_stored(rt, &store, &current, &candidate, None).await?,
                vec![],
            )
        }
    };
    let mut out = std::io::stdout().lock();
    output::write_replay(&mut out, format, &report, &refused, changed_only)?;
    Ok(ExitCode::SUCCESS)
}

async fn connector(rt: &Runtime, args: ConnectorArgs) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(&args.body)
        .with_context(|| format!("cannot read body {}", args.body.display()))?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("header `{h}` is not `Name: value`"))?;
        headers.push((k.to_string(), v.to_string()));
    }
    let request = ingest::request(&args.method, &args.url, headers, body);

    let (plugin, scope, channel) = if let Some(tenant_path) = &args.tenant {
        let tenant = Tenant::load(tenant_path, rt).await?;
        let wanted = args.plugin.as_str();
        let found = tenant
            .connectors
            .iter()
            .find(|c| c.instance.name == wanted || c.instance.plugin.info.name == wanted)
            .with_context(|| {
                format!("tenant `{}` has no connector named `{wanted}`", tenant.name)
            })?;
        (
            found.instance.plugin.clone(),
            found.instance.scope.clone(),
            found.channel.channel.clone(),
        )
    } else {
        let path = tenant::resolve_plugin(&args.plugin, Path::new("."), &[])
            .map_err(anyhow::Error::msg)?;
        let plugin = rt.load_file(&path).await?;
        let mut config = PluginConfig::default();
        for kv in &args.config {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("config `{kv}` is not `key=value`"))?;
            config.values.insert(k.trim().to_string(), v.to_string());
        }
        for kv in &args.secrets {
            let (k, source) = kv.split_once('=').with_context(|| {
                format!(
                    "secret `{k}` is not `name=source`",
                    k = kv.split('=').next().unwrap_or("")
                )
            })?;
            let value = if let Some(var) = source.strip_prefix("env:") {
                std::env::var(var).with_context(|| {
                    format!("secret `{k}`: environment variable `{var}` is not set")
                })?
            } else if let Some(file) = source.strip_prefix("file:") {
                std::fs::read_to_string(file)
                    .with_context(|| format!("secret `{k}`: cannot read {file}"))?
                    .trim()
                    .to_string()
            } else {
                source.to_string()
            };
            config
                .secrets
                .insert(k.trim().to_string(), Secret::new(value));
        }
        let scope = Arc::new(Scope {
            config,
            ..Scope::bare("cli", "connector", rt.default_limits())
        });
        if plugin.kind != switchboard::contract::PluginKind::Connector {
            bail!("{} is a {}, not a connector", plugin.info.name, plugin.kind);
        }
        let channel = rt.channel_info(&plugin, &scope).await?.channel;
        (plugin, scope, channel)
    };

    let result = rt.handle_webhook(&plugin, &scope, &channel, &request).await;
    let mut out = std::io::stdout().lock();
    let code = match result {
        Ok(outcome) => {
            serde_json::to_writer_pretty(&mut out, &output::outcome_json(&outcome))?;
            ExitCode::SUCCESS
        }
        Err(e) => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "outcome": "refused", "error": e }),
            )?;
            eprintln!("refused: {e}");
            ExitCode::from(1)
        }
    };
    writeln!(out)?;
    Ok(code)
}

async fn inspect(rt: &Runtime, spec: &str, format: Format) -> anyhow::Result<ExitCode> {
    let path = tenant::resolve_plugin(spec, Path::new("."), &[]).map_err(anyhow::Error::msg)?;
    let plugin = rt.load_file(&path).await?;
    let channel = if plugin.kind == switchboard::contract::PluginKind::Connector {
        let scope = Arc::new(Scope::bare("inspect", "inspect", rt.default_limits()));
        rt.channel_info(&plugin, &scope).await.ok()
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    output::write_inspection(&mut out, format, &path, &plugin, channel.as_ref())?;
    Ok(ExitCode::SUCCESS)
}
