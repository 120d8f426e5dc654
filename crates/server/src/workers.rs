//! Background work per tenant: a processor (stored messages through the pipeline), a deliverer
//! (the outbox through the connector) and a poller per polled connector. A supervisor starts
//! them as tenants appear and they stop when the tenant goes, is disabled, or the server shuts
//! down — always between two messages, never in the middle of one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::registry::Registry;
use switchboard_care::worker::{Engine, Processed};
use switchboard_contract::{Event, PluginError};
use switchboard_runtime::CallFailure;

/// How often the server asks the store which tenants have work due, and wakes their workers.
/// Idle workers ask nothing themselves: ten thousand tenants polling every half second took
/// both cores of an idle server.
const DUE_CHECK_EVERY: Duration = Duration::from_millis(500);
/// How often a tenant's running response clocks are checked for warnings and breaches.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Longest an idle deliverer sleeps unwoken: a safety net should a due check fail.
const DELIVER_IDLE: Duration = Duration::from_secs(60);

/// Start and stop tenants' workers until `shutdown` turns true; then wait for them to finish
/// what they are doing.
pub async fn supervise(
    registry: Arc<Registry>,
    engine: Engine,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: HashMap<String, u64> = HashMap::new();
    let mut tasks = JoinSet::new();
    // Replies caught mid-send by a crash go back to the queue (same idempotency key): for every
    // tenant in one statement at start, not one write per tenant.
    let at_start = registry.all();
    let names: Vec<&str> = at_start.keys().map(String::as_str).collect();
    let at_start = match engine.store.requeue_interrupted_all(&names).await {
        Ok(_) => at_start.clone(),
        Err(e) => {
            tracing::error!(error = %e, "could not requeue interrupted replies");
            Default::default()
        }
    };
    let to_sweep = Arc::new(ToSweep::default());
    tasks.spawn(wake_tenants_with_due_work(
        registry.clone(),
        engine.clone(),
        to_sweep.clone(),
        shutdown.clone(),
    ));
    loop {
        for (name, live) in registry.all().iter() {
            // One set of workers per tenant; they read the live version for every message, so
            // a reload needs no restart. Pollers are keyed by generation (intervals may change).
            let started = running.get(name).copied();
            if started.is_none() {
                if !at_start.contains_key(name)
                    && let Err(e) = engine.store.requeue_interrupted(name).await
                {
                    tracing::error!(tenant = %name, error = %e, "could not requeue interrupted replies");
                }
                tasks.spawn(process_loop(
                    registry.clone(),
                    engine.clone(),
                    to_sweep.clone(),
                    name.clone(),
                    shutdown.clone(),
                ));
                tasks.spawn(deliver_loop(
                    registry.clone(),
                    engine.clone(),
                    name.clone(),
                    shutdown.clone(),
                ));
            }
            if started != Some(live.generation) {
                for c in &live.tenant.connectors {
                    if let Some(every) = c.instance.poll_every_s {
                        tasks.spawn(poll_loop(
                            registry.clone(),
                            engine.clone(),
                            name.clone(),
                            c.instance.name.clone(),
                            live.generation,
                            Duration::from_secs(every),
                            shutdown.clone(),
                        ));
                    }
                }
                running.insert(name.clone(), live.generation);
            }
        }
        tokio::select! {
            _ = registry.changed.notified() => {}
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Every `DUE_CHECK_EVERY`, wake the workers of the tenants with work due: messages accepted
/// (by any process sharing the store) or held and due for a retry, and replies due for
/// delivery. A wake-up that finds a worker busy is kept for it (`notify_one`).
async fn wake_tenants_with_due_work(
    registry: Arc<Registry>,
    engine: Engine,
    to_sweep: Arc<ToSweep>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next_sweep_check = Instant::now();
    loop {
        if Instant::now() >= next_sweep_check {
            next_sweep_check = Instant::now() + SWEEP_EVERY;
            let tenants = engine.store.tenants_to_sweep().await;
            if let Err(e) = &tenants {
                tracing::error!(error = %e, "cannot list tenants to sweep; sweeping every tenant");
            }
            to_sweep.tenants.store(tenants.ok().map(Arc::new));
        }
        match engine.store.tenants_with_due_work(engine.store.now()).await {
            Ok(due) => {
                for tenant in &due.messages {
                    registry.waker(tenant).notify_one();
                }
                for tenant in &due.replies {
                    registry.deliver_waker(tenant).notify_one();
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list tenants with due work"),
        }
        tokio::select! {
            _ = tokio::time::sleep(DUE_CHECK_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The tenants with running clocks or unsettled incident reports, as of the last check;
/// `None` (not known yet, or the check failed) sweeps every tenant.
#[derive(Default)]
struct ToSweep {
    tenants: arc_swap::ArcSwapOption<HashSet<String>>,
}

impl ToSweep {
    fn includes(&self, tenant: &str) -> bool {
        self.tenants
            .load()
            .as_ref()
            .is_none_or(|t| t.contains(tenant))
    }
}

enum Wake {
    Notified,
    TimedOut,
    Shutdown,
}

/// Wait for a wake-up, `dur`, or shutdown.
async fn wait(
    registry: &Registry,
    key: &str,
    dur: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Wake {
    let waker = registry.waker(key);
    tokio::select! {
        _ = waker.notified() => Wake::Notified,
        _ = tokio::time::sleep(dur) => Wake::TimedOut,
        _ = shutdown.changed() => Wake::Shutdown,
    }
}

async fn process_loop(
    registry: Arc<Registry>,
    engine: Engine,
    to_sweep: Arc<ToSweep>,
    tenant: String,
    mut shutdown: watch::Receiver<bool>,
) {
    // Sweeps of different tenants spread over the interval rather than all at once.
    let mut next_sweep = Instant::now() + SWEEP_EVERY.mul_f64(fastrand::f64());
    // Nothing is looked up at start: the due check wakes the tenants that have work.
    let mut busy = false;
    loop {
        let mut woken = busy;
        if !busy {
            let until_sweep = next_sweep.saturating_duration_since(Instant::now());
            match wait(&registry, &tenant, until_sweep, &mut shutdown).await {
                Wake::Shutdown => return,
                Wake::Notified => woken = true,
                Wake::TimedOut => {}
            }
        }
        if *shutdown.borrow() {
            return;
        }
        let Some(live) = registry.get(&tenant) else {
            return;
        };
        if live.disabled {
            busy = false;
            next_sweep = Instant::now() + SWEEP_EVERY;
            continue;
        }
        // Service-level warnings and breaches: minutes matter, not milliseconds. A tenant with
        // nothing running is not swept: a clock started since the last check waits one more
        // interval at most.
        if Instant::now() >= next_sweep && to_sweep.includes(&tenant) {
            match engine.sweep_service_levels(&live.tenant).await {
                Ok(r) if r.warned + r.internal_breaches + r.published_breaches > 0 => {
                    tracing::info!(%tenant, warned = r.warned, internal_breaches = r.internal_breaches, published_breaches = r.published_breaches, "service levels");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(%tenant, error = %e, "service-level sweep failed"),
            }
            // Incident reports a failed settle left behind (a plugin was down, the store busy)
            // would otherwise wait for the tenant's next message.
            if let Err(e) = engine.settle_incident_reports(&live.tenant).await {
                tracing::warn!(%tenant, error = %e, "incident reports left pending");
            }
        }
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        if !woken {
            // The sweep's timer: any due message would have come with a wake-up.
            continue;
        }
        let due = match engine
            .store
            .due_messages(&tenant, engine.store.now(), 64)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(%tenant, error = %e, "cannot list due messages");
                Vec::new()
            }
        };
        let mut queued = false;
        for id in &due {
            if *shutdown.borrow() {
                return;
            }
            // The tenant as it is now: a message started on a version finishes on it.
            let Some(live) = registry.get(&tenant) else {
                return;
            };
            // `process` opens its own span, a child of the trace the message was accepted in.
            match engine.process(&live.tenant, id).await {
                Ok(Processed::Done(t)) => {
                    crate::ops::processed(&tenant, "done");
                    queued |= !t.drafts.is_empty();
                }
                Ok(Processed::Held { status, .. }) => crate::ops::processed(&tenant, &status),
                Ok(Processed::AlreadyDone) => {}
                Ok(Processed::SurveyAnswer { .. }) => {
                    crate::ops::processed(&tenant, "survey-answer")
                }
                Err(e) => {
                    tracing::error!(%tenant, message = %id, error = %e, "processing failed; will retry");
                    crate::ops::processed(&tenant, "error");
                }
            }
        }
        if queued {
            registry.deliver_waker(&tenant).notify_one();
        }
        busy = !due.is_empty();
    }
}

async fn deliver_loop(
    registry: Arc<Registry>,
    engine: Engine,
    tenant: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let key = super::registry::deliver_key(&tenant);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(live) = registry.get(&tenant) else {
            return;
        };
        if !live.disabled {
            match engine.deliver_due(&live.tenant).await {
                Ok(r) => {
                    crate::ops::delivery(&tenant, "sent", r.sent);
                    crate::ops::delivery(&tenant, "retrying", r.retrying);
                    crate::ops::delivery(&tenant, "dead", r.dead);
                }
                Err(e) => tracing::error!(%tenant, error = %e, "delivery pass failed"),
            }
        }
        if let Wake::Shutdown = wait(&registry, &key, DELIVER_IDLE, &mut shutdown).await {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn poll_loop(
    registry: Arc<Registry>,
    engine: Engine,
    tenant: String,
    connector: String,
    generation: u64,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        let Some(live) = registry.get(&tenant) else {
            return;
        };
        // A reload starts a new poller; this one steps aside.
        if live.generation != generation {
            return;
        }
        let mut wait = every;
        if !live.disabled
            && let Some(c) = live
                .tenant
                .connectors
                .iter()
                .find(|c| c.instance.name == connector)
        {
            match poll_once(&engine, &tenant, c).await {
                Ok(accepted) => {
                    failures = 0;
                    if accepted > 0 {
                        registry.waker(&tenant).notify_one();
                    }
                }
                Err((message, retry_after)) => {
                    failures = failures.saturating_add(1);
                    // Exponential back-off with jitter, capped at 5 minutes; the platform's
                    // Retry-After wins when longer.
                    let backoff = every
                        .saturating_mul(1 << failures.min(8))
                        .min(Duration::from_secs(300));
                    let jitter = backoff.mul_f64(fastrand::f64() * 0.25);
                    wait = (backoff + jitter).max(retry_after.unwrap_or_default());
                    tracing::warn!(%tenant, %connector, failures, ?wait, error = %message, "poll failed; backing off");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One poll: fetch, accept every message, then move the cursor. A crash between the two
/// re-polls the same batch, which de-duplication absorbs.
async fn poll_once(
    engine: &Engine,
    tenant: &str,
    c: &switchboard_care::tenant::Connector,
) -> Result<usize, (String, Option<Duration>)> {
    let store = &engine.store;
    let name = &c.instance.name;
    let cursor = store
        .cursor(tenant, name)
        .await
        .map_err(|e| (e.to_string(), None))?;
    let batch = match engine
        .rt
        .poll(
            &c.instance.plugin,
            &c.instance.scope,
            &c.channel.channel,
            cursor.as_deref(),
        )
        .await
    {
        Ok(b) => b,
        Err(e) => {
            let retry = match &e.failure {
                CallFailure::Plugin {
                    error: PluginError::RateLimited(Some(s)),
                } => Some(Duration::from_secs(u64::from(*s))),
                _ => None,
            };
            let _ = store
                .record_poll(tenant, name, None, Some(&e.to_string()))
                .await;
            return Err((e.to_string(), retry));
        }
    };
    let mut accepted = 0;
    for event in &batch.events {
        if let Event::Message(m) = event {
            let a = engine
                .accept(name, m)
                .await
                .map_err(|e| (e.to_string(), None))?;
            crate::ops::accepted(tenant, name, a.duplicate);
            accepted += usize::from(!a.duplicate);
        }
    }
    store
        .record_poll(tenant, name, batch.next_cursor.as_deref(), None)
        .await
        .map_err(|e| (e.to_string(), None))?;
    Ok(accepted)
}
