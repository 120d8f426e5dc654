//! `switchboard eval`: a classifier's quality and cost on a labelled CSV/TSV file, through the
//! real runtime (a fresh instance per message, as in production), alone or against another.
//!
//! The prediction for a row is the highest-scoring label of one family (`--family sentiment`
//! reads `sentiment:negative` as `negative`; a label named exactly like the family, such as
//! `spam`, reads as the family name); a row with no label of that family predicts
//! `--none-label`. Rows with an empty gold label are skipped. A plugin error on a row is
//! counted and reported, and the row is left out of the quality figures; it never stops the run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use switchboard_textmodel::slug;
use switchboard_textmodel::split::{Dedup, Part};

use crate::capabilities::config::PluginConfig;
use crate::contract::{CallContext, Label, Message, PluginKind};
use crate::runtime::{Plugin, Runtime, Scope};
use crate::tenant::{self, Tenant};

/// How to print the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
}

/// Arguments of `switchboard eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The classifier: a plugin name (e.g. sentiment-classifier), a path to a .wasm file, or
    /// with --tenant the name of one of the tenant's classifier instances.
    pub classifier: String,
    /// The labelled file: CSV, or TSV when it ends in .tsv or --delimiter says so.
    pub file: PathBuf,
    /// The column holding the text (a header name, or a 0-based index).
    #[arg(long, value_name = "COLUMN")]
    pub text_col: String,
    /// The column holding the gold label (a header name, or a 0-based index).
    #[arg(long, value_name = "COLUMN")]
    pub label_col: String,
    /// The label family whose top label is the prediction (`sentiment`, `topic`, `spam`).
    #[arg(long)]
    pub family: String,
    /// What a row with no label of the family predicts.
    #[arg(long, default_value = "none", value_name = "LABEL")]
    pub none_label: String,
    /// Compare gold and predicted labels as slugs: case, spaces, `_` and punctuation folded
    /// (`Late Flight`, `late_flight` and `late-flight` are equal).
    #[arg(long)]
    pub normalize: bool,
    /// Field delimiter (default: tab for .tsv, else comma).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// The file has no header row (columns are then 0-based indexes).
    #[arg(long)]
    pub no_header: bool,
    /// Only the rows held back from the built-in models' training (20 % of distinct texts,
    /// one row per distinct text): the split the plugins' build scripts exclude.
    #[arg(long)]
    pub holdout: bool,
    /// Stop after this many rows (after --holdout selection).
    #[arg(long)]
    pub limit: Option<usize>,
    /// A config value for the classifier, `key=value` (ignored for a tenant's instance).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Evaluate a tenant's configured classifier instances (config, limits) from this file.
    #[arg(long, value_name = "TENANT.toml")]
    pub tenant: Option<PathBuf>,
    /// A second classifier to run on the same rows and compare (the case for a swap).
    #[arg(long, value_name = "CLASSIFIER")]
    pub compare: Option<String>,
    /// A config value for the --compare classifier, `key=value`.
    #[arg(long = "compare-config", value_name = "KEY=VALUE")]
    pub compare_config: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: EvalFormat,
}

/// One label's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LabelScores {
    pub label: String,
    /// Rows with this gold label.
    pub support: usize,
    /// Rows predicted as this label.
    pub predicted: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// One classifier on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub classifier: String,
    pub plugin: String,
    pub version: String,
    /// Rows scored (plugin errors excluded).
    pub rows: usize,
    /// Rows whose call failed, and the first few errors.
    pub errors: usize,
    pub error_examples: Vec<String>,
    pub correct: usize,
    pub accuracy: f64,
    /// Mean F1 over every label that occurs as gold or prediction.
    pub macro_f1: f64,
    pub labels: Vec<LabelScores>,
    /// `confusion[gold][predicted]` counts, over `labels` order.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    pub messages_per_second: f64,
    pub mean_us_per_message: f64,
}

/// Two classifiers on the same rows.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: Report,
    pub b: Report,
    /// Per label: `b.f1 - a.f1`.
    pub f1_delta: Vec<F1Delta>,
    pub accuracy_delta: f64,
    pub macro_f1_delta: f64,
    /// Rows (scored by both) that only A, only B, both, or neither got right.
    pub only_a_correct: usize,
    pub only_b_correct: usize,
    pub both_correct: usize,
    pub neither_correct: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct F1Delta {
    pub label: String,
    pub a: f64,
    pub b: f64,
    pub delta: f64,
}

/// The file's rows that take part: `(text, gold label)`.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub rows: Vec<(String, String)>,
    /// Rows left out: empty gold label, missing column, unreadable record.
    pub skipped: usize,
}

fn column(spec: &str, headers: Option<&csv::StringRecord>) -> anyhow::Result<usize> {
    if let Some(h) = headers
        && let Some(i) = h.iter().position(|x| x == spec)
    {
        return Ok(i);
    }
    spec.parse::<usize>().map_err(|_| {
        anyhow::anyhow!(
            "no column `{spec}` (columns: {})",
            headers
                .map(|h| h.iter().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "none named: the file has no header".into())
        )
    })
}

/// Read the labelled rows of `args.file`.
pub fn read_rows(args: &EvalArgs) -> anyhow::Result<Rows> {
    let path = &args.file;
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = match args.delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => bail!("--delimiter `{c}` must be one ASCII character"),
        None if tsv => b'\t',
        None => b',',
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(!args.no_header)
        .flexible(true)
        // Tab-separated exports (the SMS collection) use quotes as plain characters.
        .quoting(delimiter != b'\t')
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = if args.no_header {
        None
    } else {
        Some(
            reader
                .headers()
                .with_context(|| format!("reading the header of {}", path.display()))?
                .clone(),
        )
    };
    let t = column(&args.text_col, headers.as_ref()).context("--text-col")?;
    let l = column(&args.label_col, headers.as_ref()).context("--label-col")?;
    let mut out = Rows::default();
    let mut dedup = Dedup::default();
    for record in reader.records() {
        let Ok(record) = record else {
            out.skipped += 1;
            continue;
        };
        let (Some(text), Some(label)) = (record.get(t), record.get(l)) else {
            out.skipped += 1;
            continue;
        };
        if label.trim().is_empty() {
            out.skipped += 1;
            continue;
        }
        if args.holdout && !(Part::HeldOut.contains(text) && dedup.first(text)) {
            continue;
        }
        out.rows
            .push((text.to_string(), normalise(label, args.normalize)));
        if args.limit.is_some_and(|n| out.rows.len() >= n) {
            break;
        }
    }
    Ok(out)
}

fn normalise(label: &str, slugged: bool) -> String {
    if slugged {
        slug(label)
    } else {
        label.trim().to_string()
    }
}

/// The prediction in `family` from a classifier's labels.
pub fn predicted(labels: &[Label], family: &str, none_label: &str, slugged: bool) -> String {
    let prefix = format!("{family}:");
    labels
        .iter()
        .filter_map(|l| {
            if l.name == family {
                Some((l.score, family))
            } else {
                l.name.strip_prefix(&prefix).map(|v| (l.score, v))
            }
        })
        .fold(None::<(f32, &str)>, |best, (s, v)| match best {
            Some((bs, _)) if bs >= s => best,
            _ => Some((s, v)),
        })
        .map(|(_, v)| normalise(v, slugged))
        .unwrap_or_else(|| normalise(none_label, slugged))
}

/// Per-row predictions (`None` for a failed call) and timing.
struct Run {
    predictions: Vec<Option<String>>,
    errors: Vec<String>,
    elapsed: Duration,
}

struct Classifier {
    name: String,
    plugin: Arc<Plugin>,
    scope: Arc<Scope>,
}

fn parse_config(pairs: &[String]) -> anyhow::Result<PluginConfig> {
    let mut config = PluginConfig::default();
    for kv in pairs {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("config `{kv}` is not `key=value`"))?;
        config.values.insert(k.trim().to_string(), v.to_string());
    }
    Ok(config)
}

async fn resolve(
    rt: &Runtime,
    tenant: Option<&Tenant>,
    spec: &str,
    config: &[String],
) -> anyhow::Result<Classifier> {
    if let Some(t) = tenant
        && let Some(i) = t
            .classifiers
            .iter()
            .chain(&t.shadow_classifiers)
            .find(|i| i.name == spec)
    {
        return Ok(Classifier {
            name: format!("{}/{}", t.name, i.name),
            plugin: i.plugin.clone(),
            scope: i.scope.clone(),
        });
    }
    let path = tenant::resolve_plugin(spec, Path::new("."), &[]).map_err(anyhow::Error::msg)?;
    let plugin = rt.load_file(&path).await?;
    if plugin.kind != PluginKind::Classifier {
        bail!(
            "{} is a {}, not a classifier",
            plugin.info.name,
            plugin.kind
        );
    }
    let scope = Arc::new(Scope {
        config: parse_config(config)?,
        ..Scope::bare("eval", &plugin.info.name, rt.default_limits())
    });
    Ok(Classifier {
        name: spec.to_string(),
        plugin,
        scope,
    })
}

async fn run_one(rt: &Runtime, c: &Classifier, rows: &[(String, String)], args: &EvalArgs) -> Run {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(rows.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} rows, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(c.name.clone());
    let context = CallContext {
        now: crate::runtime::now_ms(),
        length_rule: None,
        signature: None,
        time_zone: "UTC".into(),
    };
    let mut out = Run {
        predictions: Vec::with_capacity(rows.len()),
        errors: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for (i, (text, _)) in rows.iter().enumerate() {
        let mut message = Message::example(&c.scope.tenant, text);
        message.external_id = format!("row-{}", i + 1);
        let started = Instant::now();
        let result = rt.classify(&c.plugin, &c.scope, &message, &context).await;
        out.elapsed += started.elapsed();
        match result {
            Ok(labels) => out.predictions.push(Some(predicted(
                &labels,
                &args.family,
                &args.none_label,
                args.normalize,
            ))),
            Err(e) => {
                out.errors.push(format!("row {}: {e}", i + 1));
                out.predictions.push(None);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    out
}

/// The report for one classifier's predictions.
pub fn score(
    classifier: &str,
    plugin: &Plugin,
    gold: &[String],
    predictions: &[Option<String>],
    errors: &[String],
    elapsed: Duration,
) -> Report {
    let pairs: Vec<(&str, &str)> = gold
        .iter()
        .zip(predictions)
        .filter_map(|(g, p)| p.as_deref().map(|p| (g.as_str(), p)))
        .collect();
    let labels: BTreeSet<&str> = pairs.iter().flat_map(|(g, p)| [*g, *p]).collect();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = labels
        .iter()
        .map(|g| {
            (
                g.to_string(),
                labels.iter().map(|p| (p.to_string(), 0)).collect(),
            )
        })
        .collect();
    for (g, p) in &pairs {
        *confusion
            .get_mut(*g)
            .and_then(|r| r.get_mut(*p))
            .expect("every label has a cell") += 1;
    }
    let correct = pairs.iter().filter(|(g, p)| g == p).count();
    let per_label: Vec<LabelScores> = labels
        .iter()
        .map(|&l| {
            let tp = confusion[l][l];
            let support: usize = confusion[l].values().sum();
            let predicted: usize = confusion.values().map(|r| r[l]).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            LabelScores {
                label: l.to_string(),
                support,
                predicted,
                precision,
                recall,
                f1,
            }
        })
        .collect();
    let calls = predictions.len().max(1) as f64;
    Report {
        classifier: classifier.to_string(),
        plugin: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        rows: pairs.len(),
        errors: errors.len(),
        error_examples: errors.iter().take(5).cloned().collect(),
        correct,
        accuracy: ratio(correct, pairs.len()),
        macro_f1: if per_label.is_empty() {
            0.0
        } else {
            per_label.iter().map(|l| l.f1).sum::<f64>() / per_label.len() as f64
        },
        labels: per_label,
        confusion,
        messages_per_second: if elapsed.is_zero() {
            0.0
        } else {
            calls / elapsed.as_secs_f64()
        },
        mean_us_per_message: elapsed.as_secs_f64() * 1e6 / calls,
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Compare two reports made on the same rows.
pub fn compare(
    a: Report,
    b: Report,
    gold: &[String],
    pa: &[Option<String>],
    pb: &[Option<String>],
) -> Comparison {
    let (mut only_a, mut only_b, mut both, mut neither) = (0, 0, 0, 0);
    for ((g, x), y) in gold.iter().zip(pa).zip(pb) {
        let (Some(x), Some(y)) = (x, y) else { continue };
        match (x == g, y == g) {
            (true, true) => both += 1,
            (true, false) => only_a += 1,
            (false, true) => only_b += 1,
            (false, false) => neither += 1,
        }
    }
    let labels: BTreeSet<&str> = a
        .labels
        .iter()
        .chain(&b.labels)
        .map(|l| l.label.as_str())
        .collect();
    let f1 = |r: &Report, l: &str| r.labels.iter().find(|x| x.label == l).map_or(0.0, |x| x.f1);
    let f1_delta = labels
        .iter()
        .map(|&l| F1Delta {
            label: l.to_string(),
            a: f1(&a, l),
            b: f1(&b, l),
            delta: f1(&b, l) - f1(&a, l),
        })
        .collect();
    Comparison {
        accuracy_delta: b.accuracy - a.accuracy,
        macro_f1_delta: b.macro_f1 - a.macro_f1,
        a,
        b,
        f1_delta,
        only_a_correct: only_a,
        only_b_correct: only_b,
        both_correct: both,
        neither_correct: neither,
    }
}

/// `switchboard eval`: exit code 0, or 1 when some rows failed in a plugin.
pub async fn run(rt: &Runtime, args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let tenant = match &args.tenant {
        Some(p) => Some(Tenant::load(p, rt).await?),
        None => None,
    };
    let a = resolve(rt, tenant.as_ref(), &args.classifier, &args.config).await?;
    let b = match &args.compare {
        Some(spec) => Some(resolve(rt, tenant.as_ref(), spec, &args.compare_config).await?),
        None => None,
    };
    let rows = read_rows(args)?;
    if rows.rows.is_empty() {
        bail!(
            "{}: no labelled rows to evaluate ({} skipped)",
            args.file.display(),
            rows.skipped
        );
    }
    let gold: Vec<String> = rows.rows.iter().map(|(_, l)| l.clone()).collect();
    let run_a = run_one(rt, &a, &rows.rows, args).await;
    let report_a = score(
        &a.name,
        &a.plugin,
        &gold,
        &run_a.predictions,
        &run_a.errors,
        run_a.elapsed,
    );
    let mut failed = run_a.errors.len();
    let mut out = std::io::stdout().lock();
    match b {
        None => match args.format {
            EvalFormat::Json => {
                let mut v = serde_json::to_value(&report_a)?;
                v["skipped_rows"] = rows.skipped.into();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            EvalFormat::Table => {
                writeln!(
                    out,
                    "{} rows from {} ({} skipped)\n",
                    rows.rows.len(),
                    args.file.display(),
                    rows.skipped
                )?;
                write_report(&mut out, &report_a)?;
            }
        },
        Some(b) => {
            let run_b = run_one(rt, &b, &rows.rows, args).await;
            failed += run_b.errors.len();
            let report_b = score(
                &b.name,
                &b.plugin,
                &gold,
                &run_b.predictions,
                &run_b.errors,
                run_b.elapsed,
            );
            let cmp = compare(
                report_a,
                report_b,
                &gold,
                &run_a.predictions,
                &run_b.predictions,
            );
            match args.format {
                EvalFormat::Json => {
                    let mut v = serde_json::to_value(&cmp)?;
                    v["skipped_rows"] = rows.skipped.into();
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                }
                EvalFormat::Table => {
                    writeln!(
                        out,
                        "{} rows from {} ({} skipped)\n",
                        rows.rows.len(),
                        args.file.display(),
                        rows.skipped
                    )?;
                    write_comparison(&mut out, &cmp)?;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_report(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(out, "{} ({} {})", r.classifier, r.plugin, r.version)?;
    writeln!(
        out,
        "  rows {}   plugin errors {}   accuracy {:.4}   macro-F1 {:.4}",
        r.rows, r.errors, r.accuracy, r.macro_f1
    )?;
    writeln!(
        out,
        "  cost {:.0} msgs/s, {:.1} µs/message (fresh instance per message)",
        r.messages_per_second, r.mean_us_per_message
    )?;
    for e in &r.error_examples {
        writeln!(out, "  error: {e}")?;
    }
    let w = r
        .labels
        .iter()
        .map(|l| l.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "\n  {:w$}  {:>7}  {:>9}  {:>9}  {:>6}  {:>6}",
        "label", "support", "predicted", "precision", "recall", "f1"
    )?;
    for l in &r.labels {
        writeln!(
            out,
            "  {:w$}  {:>7}  {:>9}  {:>9.4}  {:>6.4}  {:>6.4}",
            l.label, l.support, l.predicted, l.precision, l.recall, l.f1
        )?;
    }
    writeln!(out, "\n  confusion (rows: gold, columns: predicted)")?;
    let cw = w.clamp(5, 12);
    write!(out, "  {:w$}", "")?;
    for l in &r.labels {
        write!(out, "  {:>cw$}", truncate(&l.label, cw))?;
    }
    writeln!(out)?;
    for (g, row) in &r.confusion {
        write!(out, "  {g:w$}")?;
        for n in row.values() {
            write!(out, "  {n:>cw$}")?;
        }
        writeln!(out)?;
    }
    writeln!(out)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn write_comparison(out: &mut impl Write, c: &Comparison) -> std::io::Result<()> {
    writeln!(out, "A: ")?;
    write_report(out, &c.a)?;
    writeln!(out, "B: ")?;
    write_report(out, &c.b)?;
    writeln!(
        out,
        "B - A: accuracy {:+.4}, macro-F1 {:+.4}",
        c.accuracy_delta, c.macro_f1_delta
    )?;
    let w = c
        .f1_delta
        .iter()
        .map(|l| l.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "  {:w$}  {:>6}  {:>6}  {:>7}",
        "label", "F1 A", "F1 B", "delta"
    )?;
    for d in &c.f1_delta {
        writeln!(
            out,
            "  {:w$}  {:>6.4}  {:>6.4}  {:>+7.4}",
            d.label, d.a, d.b, d.delta
        )?;
    }
    writeln!(
        out,
        "rows right only by A {}, only by B {}, by both {}, by neither {}",
        c.only_a_correct, c.only_b_correct, c.both_correct, c.neither_correct
    )
}
