//! Background work per tenant: a processor (stored messages through the pipeline), a deliverer
//! (the outbox through the connector) and a poller per polled connector. A supervisor starts
//! them as tenants appear and they stop when the tenant goes, is disabled, or the server shuts
//! down — always between two messages, never in the middle of one. A processor works on a few
//! messages at once, in lanes that keep each conversation's and customer's messages in order.

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
            .due_messages_with_keys(&tenant, engine.store.now(), 64)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(%tenant, error = %e, "cannot list due messages");
                Vec::new()
            }
        };
        busy = !due.is_empty();
        let mut lanes = lanes(due, PROCESS_LANES).into_iter();
        // One lane runs here; the others, if any, on tasks of their own (both cores).
        let here = lanes.next().unwrap_or_default();
        let mut others = JoinSet::new();
        for lane in lanes {
            others.spawn(process_lane(
                registry.clone(),
                engine.clone(),
                tenant.clone(),
                lane,
                shutdown.clone(),
            ));
        }
        let mut stop = false;
        match process_lane(
            registry.clone(),
            engine.clone(),
            tenant.clone(),
            here,
            shutdown.clone(),
        )
        .await
        {
            LaneEnd::Done => {}
            LaneEnd::Stop => stop = true,
        }
        while let Some(end) = others.join_next().await {
            match end {
                Ok(LaneEnd::Done) => {}
                Ok(LaneEnd::Stop) => stop = true,
                Err(e) => tracing::error!(%tenant, error = %e, "a processing lane failed"),
            }
        }
        if stop {
            // The batch's reports stay pending for the sweep, or the next process's.
            return;
        }
        // The batch's incident reports, oldest first now that every lane's commits are in: the
        // lanes committed them out of order (see `Engine::process_unsettled`).
        if busy && let Err(e) = engine.settle_incident_reports(&live.tenant).await {
            tracing::warn!(%tenant, error = %e, "incident reports left pending");
        }
    }
}

/// How many of a tenant's due messages are processed at once: one per core of the machine it
/// was measured on. While one waits for its commit the other computes. Four lanes were slower
/// end to end, and held SQLite's write lock so often that the deliverer and webhook
/// acceptance waited in its busy handler (`bench/run wrk`, and the crash test's deliveries).
const PROCESS_LANES: usize = 2;

/// How a lane ended.
enum LaneEnd {
    /// Every message was taken through.
    Done,
    /// Shutdown, or the tenant is gone: the processor stops.
    Stop,
}

/// Split `due` (in acceptance order) into at most `n` lanes that can be processed at the same
/// time: the messages of one conversation, and of one customer, share a lane and keep their
/// order, because each is processed against the state the earlier ones left (the
/// conversation's clocks and assignment, the customer's history).
fn lanes(due: Vec<switchboard_store::DueMessage>, n: usize) -> Vec<Vec<String>> {
    // Groups of messages linked by a conversation or a customer, in order of their first
    // message; `group_of` maps a key to its group (merged groups point to the survivor).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<(bool, &str), usize> = HashMap::new();
    let mut alias: Vec<usize> = Vec::new();
    let resolve = |alias: &Vec<usize>, mut g: usize| {
        while alias[g] != g {
            g = alias[g];
        }
        g
    };
    for (i, m) in due.iter().enumerate() {
        let keys = [
            (true, m.conversation_id.as_str()),
            (false, m.customer_id.as_str()),
        ];
        let found: Vec<usize> = keys
            .iter()
            .filter_map(|k| group_of.get(k).map(|g| resolve(&alias, *g)))
            .collect();
        let g = match found.as_slice() {
            [] => {
                groups.push(Vec::new());
                alias.push(groups.len() - 1);
                groups.len() - 1
            }
            [a] => *a,
            [a, b] if a == b => *a,
            [a, b] => {
                let (keep, gone) = ((*a).min(*b), (*a).max(*b));
                let moved = std::mem::take(&mut groups[gone]);
                groups[keep].extend(moved);
                groups[keep].sort_unstable();
                alias[gone] = keep;
                keep
            }
            _ => unreachable!("two keys per message"),
        };
        groups[g].push(i);
        for k in keys {
            group_of.insert(k, g);
        }
    }
    // Each group to the lane with the fewest messages so far.
    let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); n.max(1)];
    for group in groups.into_iter().filter(|g| !g.is_empty()) {
        let lane = lanes
            .iter_mut()
            .min_by_key(|l| l.len())
            .expect("at least one lane");
        lane.extend(group);
    }
    lanes
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|mut l| {
            l.sort_unstable();
            l.into_iter().map(|i| due[i].id.clone()).collect()
        })
        .collect()
}

/// Take one lane's messages through the pipeline, in order.
async fn process_lane(
    registry: Arc<Registry>,
    engine: Engine,
    tenant: String,
    lane: Vec<String>,
    shutdown: watch::Receiver<bool>,
) -> LaneEnd {
    for id in &lane {
        if *shutdown.borrow() {
            return LaneEnd::Stop;
        }
        // The tenant as it is now: a message started on a version finishes on it.
        let Some(live) = registry.get(&tenant) else {
            return LaneEnd::Stop;
        };
        // `process_unsettled` opens its own span, a child of the trace the message was accepted
        // in. Its incident report is settled with the batch's, when every lane is done.
        match engine.process_unsettled(&live.tenant, id).await {
            Ok(Processed::Done(t)) => {
                crate::ops::processed(&tenant, "done");
                // Its replies go out now, not when the lane's batch ends: in a backlog of
                // 64 messages the first reply would otherwise wait for all of them. A
                // deliverer busy sending keeps the wake-up for its next pass.
                if !t.drafts.is_empty() {
                    registry.deliver_waker(&tenant).notify_one();
                }
            }
            Ok(Processed::Held { status, .. }) => crate::ops::processed(&tenant, &status),
            Ok(Processed::AlreadyDone) => {}
            Ok(Processed::SurveyAnswer { .. }) => crate::ops::processed(&tenant, "survey-answer"),
            Err(e) => {
                tracing::error!(%tenant, message = %id, error = %e, "processing failed; will retry");
                crate::ops::processed(&tenant, "error");
            }
        }
    }
    LaneEnd::Done
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

#[cfg(test)]
mod tests {
    use super::lanes;
    use switchboard_store::DueMessage;

    fn due(list: &[(&str, &str, &str)]) -> Vec<DueMessage> {
        list.iter()
            .map(|(id, conversation, customer)| DueMessage {
                id: id.to_string(),
                conversation_id: conversation.to_string(),
                customer_id: customer.to_string(),
            })
            .collect()
    }

    /// The lane holding each message, and every lane in acceptance order.
    fn placed(lanes: &[Vec<String>]) -> std::collections::HashMap<String, usize> {
        let mut at = std::collections::HashMap::new();
        for (n, lane) in lanes.iter().enumerate() {
            let mut sorted = lane.clone();
            sorted.sort();
            assert_eq!(&sorted, lane, "a lane keeps acceptance order: {lanes:?}");
            for id in lane {
                at.insert(id.clone(), n);
            }
        }
        at
    }

    #[test]
    fn a_conversations_and_a_customers_messages_share_a_lane_in_order() {
        // m1..m8 in acceptance order. c1 is a public thread two customers write in; u3 also
        // writes in c3, which links c3 to c1 through u3 only after m6.
        let lanes = lanes(
            due(&[
                ("m1", "c1", "u1"),
                ("m2", "c2", "u2"),
                ("m3", "c1", "u3"),
                ("m4", "c4", "u4"),
                ("m5", "c5", "u5"),
                ("m6", "c3", "u6"),
                ("m7", "c3", "u3"),
                ("m8", "c2", "u2"),
            ]),
            4,
        );
        let at = placed(&lanes);
        assert_eq!(at.len(), 8, "every message once: {lanes:?}");
        assert_eq!(at["m1"], at["m3"], "one conversation: {lanes:?}");
        assert_eq!(at["m3"], at["m7"], "one customer: {lanes:?}");
        assert_eq!(at["m6"], at["m7"], "one conversation: {lanes:?}");
        assert_eq!(at["m2"], at["m8"], "{lanes:?}");
        assert_eq!(lanes.len(), 4, "independent work spreads: {lanes:?}");
        assert_ne!(at["m1"], at["m2"], "{lanes:?}");
    }

    #[test]
    fn nothing_due_is_no_lane_and_one_lane_takes_everything_in_order() {
        assert!(lanes(Vec::new(), 4).is_empty());
        let all = due(&[("m1", "c1", "u1"), ("m2", "c2", "u2"), ("m3", "c3", "u3")]);
        assert_eq!(
            lanes(all, 1),
            vec![vec!["m1".to_string(), "m2".into(), "m3".into()]]
        );
    }
}
