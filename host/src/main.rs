//! `switchboard`: the command-line front of the plugin host.

mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use switchboard::capabilities::config::{PluginConfig, Secret};
use switchboard::contract::{Event, WebhookOutcome};
use switchboard::ingest;
use switchboard::pipeline;
use switchboard::runtime::{Runtime, RuntimeOptions, Scope};
use switchboard::tenant::{self, Tenant};

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

#[derive(Subcommand)]
enum Command {
    /// Run a tenant's pipeline over a file of captured webhook requests and print each
    /// message's labels and drafts.
    ///
    /// REQUESTS is JSONL: one object per line with `headers`, `body` (or `body_base64`) and
    /// optionally `connector`, `method` and `url`. A bad line is reported and the run goes on;
    /// the exit code is 1 if any line or plugin call failed, 0 otherwise.
    Run {
        /// The tenant's config file (TOML), e.g. examples/acme/tenant.toml.
        tenant: PathBuf,
        /// Captured requests (JSONL); `-` reads standard input.
        requests: PathBuf,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Run one connector on one captured request and print the normalised events as JSON, or a
    /// clear refusal (bad signature, malformed body, unsupported event).
    ///
    /// Exit code 0 when the request was accepted (events or a handshake answer), 1 when the
    /// connector refused it, 2 on a usage or load error.
    Connector(ConnectorArgs),
    /// Inspect a plugin file: kind, contract version, declared capabilities, digest.
    Inspect {
        /// A plugin name or a path to a .wasm file.
        plugin: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
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
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
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
        ..Default::default()
    })?;
    match cli.command {
        Command::Run {
            tenant,
            requests,
            format,
        } => run(&rt, &tenant, &requests, format).await,
        Command::Connector(args) => connector(&rt, args).await,
        Command::Inspect { plugin, format } => inspect(&rt, &plugin, format).await,
    }
}

async fn run(
    rt: &Runtime,
    tenant_path: &Path,
    requests: &Path,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let tenant = Tenant::load(tenant_path, rt).await?;
    let reader: Box<dyn BufRead> = if requests == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(requests)
            .with_context(|| format!("cannot open {}", requests.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let progress = std::io::stderr().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut summary = output::Summary::default();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line =
            line.with_context(|| format!("reading {} line {line_no}", requests.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let records = process_line(rt, &tenant, &line).await;
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
    Triage(Box<pipeline::Triage>),
    Skipped {
        event_type: Option<String>,
        reason: String,
    },
    Challenge {
        status: u16,
    },
    LineError(String),
}

async fn process_line(rt: &Runtime, tenant: &Tenant, line: &str) -> Vec<Record> {
    let captured = match ingest::parse_line(line) {
        Ok(c) => c,
        Err(e) => return vec![Record::LineError(e)],
    };
    let connector = match tenant.connector(captured.connector.as_deref()) {
        Ok(c) => c,
        Err(e) => return vec![Record::LineError(e)],
    };
    let c = &connector.instance;
    match rt
        .handle_webhook(
            &c.plugin,
            &c.scope,
            &connector.channel.channel,
            &captured.request,
        )
        .await
    {
        Err(e) => vec![Record::LineError(e.to_string())],
        Ok(WebhookOutcome::Challenge(r)) => vec![Record::Challenge { status: r.status }],
        Ok(WebhookOutcome::Events(events)) => {
            let mut records = Vec::new();
            for event in events {
                records.push(match event {
                    Event::Message(m) => {
                        Record::Triage(Box::new(pipeline::triage(rt, tenant, connector, m).await))
                    }
                    Event::Skipped(s) => Record::Skipped {
                        event_type: s.event_type,
                        reason: s.reason,
                    },
                });
            }
            records
        }
    }
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
