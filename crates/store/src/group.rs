//! Group commit for acceptances: messages that arrive while a transaction is being made durable
//! wait, then share the next one, so one fsync (or one PostgreSQL commit) covers a whole burst
//! instead of each message paying its own.
//!
//! No timer and no background task: the first caller that finds nobody committing spawns a
//! committer for the burst; it takes everything queued (up to [`MAX_BATCH`] messages), writes each
//! message under its own savepoint (one bad message never fails its neighbours, and PostgreSQL's
//! aborted-transaction rule cannot spread), commits, answers every caller, and goes again until
//! the queue is empty (a group of one message needs no savepoint: its transaction plays that
//! part). A quiet store therefore commits each message at once, and a busy one
//! waits at most for the commit already in flight. A caller hears `Ok` only after the commit
//! that holds its message returned, which is what lets a webhook be answered 200.
//!
//! The committer is spawned, not run inside a caller, so a caller that goes away (a client
//! hung up) cannot cancel a transaction that others wait on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::tx::Tx;
use switchboard_contract::Message;
use tokio::sync::oneshot;

use crate::{Accepted, Outcome, Store, StoreError, StoredMessage};

/// The most messages one transaction takes; the rest wait for the next one. Bounds how long the
/// write lock is held and how much one failed commit sends back to be retried.
pub(crate) const MAX_BATCH: usize = 512;

/// One message to accept.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub connector: String,
    pub message: Message,
    /// W3C `traceparent` of the span that accepted it (see [`Store::accept_traced`]).
    pub traceparent: Option<String>,
}

/// One caller's writes: a webhook request's messages, answered together, or one processed
/// message's outcome.
enum Job {
    Accept {
        items: Vec<Acceptance>,
        reply: oneshot::Sender<Vec<Result<Accepted, StoreError>>>,
    },
    Outcome {
        stored: Box<StoredMessage>,
        outcome: Box<Outcome>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

impl Job {
    fn messages(&self) -> usize {
        match self {
            Job::Accept { items, .. } => items.len(),
            Job::Outcome { .. } => 1,
        }
    }
}

/// What a job's writes came to, before the commit decides whether they stand.
enum Written {
    Accept(Vec<Result<Accepted, StoreError>>),
    Outcome(Result<bool, StoreError>),
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    committing: bool,
}

/// The queue of acceptances waiting for a transaction, shared by every clone of a [`Store`].
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    /// Transactions committed so far, for the ratio messages per commit.
    commits: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl Store {
    /// How many group commits (acceptances and outcomes) this store has made (every clone counts).
    pub fn group_commits(&self) -> u64 {
        self.group.commits.load(Ordering::Relaxed)
    }

    /// Acceptances queued behind the commit in flight.
    #[cfg(test)]
    pub(crate) fn queued_acceptances(&self) -> usize {
        let q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.jobs.iter().map(Job::messages).sum()
    }

    #[cfg(test)]
    pub(crate) fn committing(&self) -> bool {
        let q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.committing
    }

    /// Store every message before any is acknowledged, in the next group commit (see the module
    /// doc). One result per message, in order; a duplicate is reported as in [`Store::accept`].
    pub async fn accept_all(
        &self,
        items: Vec<Acceptance>,
    ) -> Result<Vec<Result<Accepted, StoreError>>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job::Accept { items, reply });
        answer.await.map_err(|_| stopped())
    }

    /// Write what processing decided for `stored` ([`Store::commit`]) in the next group commit.
    pub(crate) async fn commit_in_group(
        &self,
        stored: &StoredMessage,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job::Outcome {
            stored: Box::new(stored.clone()),
            outcome: Box::new(outcome.clone()),
            reply,
        });
        answer.await.map_err(|_| stopped())?
    }

    fn enqueue(&self, job: Job) {
        let start = {
            let mut q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.jobs.push_back(job);
            !std::mem::replace(&mut q.committing, true)
        };
        if start {
            let store = self.clone();
            tokio::spawn(async move { store.commit_queued().await });
        }
    }

    /// The committer: batches until the queue is empty. Never returns with jobs queued and
    /// `committing` set, even if it panics (the guard below hands the queue back).
    async fn commit_queued(&self) {
        struct Release<'a>(&'a GroupCommit);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                // A normal return has already released the queue, under its lock; by now a new
                // caller may have queued a job and started the next committer, which this must
                // not disturb.
                if !std::thread::panicking() {
                    return;
                }
                let mut q = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.committing = false;
                // The jobs left are answered with an error (their senders drop) instead of
                // waiting for ever; nothing of them was acknowledged.
                q.jobs.clear();
            }
        }
        let _release = Release(&self.group);
        loop {
            let batch = {
                let mut q = self.group.queue.lock().unwrap_or_else(|e| e.into_inner());
                let mut batch = Vec::new();
                let mut messages = 0;
                while let Some(job) = q.jobs.front() {
                    if messages > 0 && messages + job.messages() > MAX_BATCH {
                        break;
                    }
                    messages += job.messages();
                    batch.extend(q.jobs.pop_front());
                }
                if batch.is_empty() {
                    q.committing = false;
                    return;
                }
                batch
            };
            let results = self.commit_batch(&batch).await;
            for (job, written) in batch.into_iter().zip(results) {
                // A caller that went away still had its writes committed: a platform retries
                // and finds its messages as duplicates; an outcome is found done.
                match (job, written) {
                    (Job::Accept { reply, .. }, Written::Accept(r)) => {
                        let _ = reply.send(r);
                    }
                    (Job::Outcome { reply, .. }, Written::Outcome(r)) => {
                        let _ = reply.send(r);
                    }
                    // Never built: results are made in the jobs' own order and kind.
                    _ => {}
                }
            }
        }
    }

    /// One transaction for the batch; per message a savepoint. Every result is an error when the
    /// commit itself fails, since then nothing was stored.
    async fn commit_batch(&self, batch: &[Job]) -> Vec<Written> {
        let total: usize = batch.iter().map(Job::messages).sum();
        if total == 1 {
            return vec![self.commit_alone(&batch[0]).await];
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut tx = match self.begin("beginning a group commit").await {
            Ok(tx) => tx,
            Err(e) => return fail_all(batch, &e),
        };
        let mut written = 0;
        for job in batch {
            match job {
                Job::Accept { items, .. } => {
                    let mut answers = Vec::with_capacity(items.len());
                    for item in items {
                        answers.push(self.accept_under_savepoint(&mut tx, item).await);
                        written += 1;
                        if self
                            .abort_in_batch
                            .is_some_and(|n| written == n && total > n)
                        {
                            // The crash test's kill point: part of a group written, nothing
                            // committed.
                            eprintln!("store: aborting after {written} of {total} writes (test)");
                            std::process::abort();
                        }
                    }
                    results.push(Written::Accept(answers));
                }
                Job::Outcome {
                    stored, outcome, ..
                } => {
                    results.push(Written::Outcome(
                        self.outcome_under_savepoint(&mut tx, stored, outcome).await,
                    ));
                    written += 1;
                }
            }
        }
        match tx.commit("committing a group of writes").await {
            Ok(()) => {
                self.group.commits.fetch_add(1, Ordering::Relaxed);
                results
            }
            Err(e) => fail_all(batch, &e),
        }
    }

    /// A group of one message (a quiet store, `switchboard run`): the transaction itself plays
    /// the savepoint's part, so a failure or a message already done rolls back the lot. Two
    /// round trips fewer than a savepoint inside it.
    async fn commit_alone(&self, job: &Job) -> Written {
        match job {
            Job::Accept { items, .. } => {
                let mut attempt = 0;
                let answer = loop {
                    let result = async {
                        let mut tx = self.begin("beginning a group commit").await?;
                        match self.accept_in(&mut tx, &items[0]).await {
                            Ok(accepted) => {
                                tx.commit("committing a group of writes").await?;
                                Ok(accepted)
                            }
                            Err(e) => {
                                tx.rollback("rolling back a group of writes").await?;
                                Err(e)
                            }
                        }
                    }
                    .await;
                    match result {
                        Err(e) if raced(&e) && attempt == 0 => attempt += 1,
                        other => break other,
                    }
                };
                if answer.is_ok() {
                    self.group.commits.fetch_add(1, Ordering::Relaxed);
                }
                Written::Accept(vec![answer])
            }
            Job::Outcome {
                stored, outcome, ..
            } => Written::Outcome(
                async {
                    let mut tx = self.begin("beginning a group commit").await?;
                    match self.commit_in(&mut tx, stored, outcome).await {
                        Ok(true) => {
                            tx.commit("committing a group of writes").await?;
                            self.group.commits.fetch_add(1, Ordering::Relaxed);
                            Ok(true)
                        }
                        other => {
                            tx.rollback("rolling back a group of writes").await?;
                            other
                        }
                    }
                }
                .await,
            ),
        }
    }

    async fn outcome_under_savepoint(
        &self,
        tx: &mut Tx<'static>,
        stored: &StoredMessage,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let mut savepoint = tx.savepoint().await?;
        match self.commit_in(&mut savepoint, stored, outcome).await {
            Ok(true) => {
                savepoint.commit("releasing a savepoint").await?;
                Ok(true)
            }
            other => {
                savepoint.rollback("rolling back a savepoint").await?;
                other
            }
        }
    }

    async fn accept_under_savepoint(
        &self,
        tx: &mut Tx<'static>,
        item: &Acceptance,
    ) -> Result<Accepted, StoreError> {
        let mut attempt = 0;
        loop {
            let mut savepoint = tx.savepoint().await?;
            // The deferred writes run inside the savepoint, so their failure (a unique
            // violation below) rolls back this message only.
            let written = match self.accept_in(&mut savepoint, item).await {
                Ok(accepted) => savepoint.flush().await.map(|()| accepted),
                Err(e) => Err(e),
            };
            match written {
                Ok(accepted) => {
                    savepoint.commit("releasing a savepoint").await?;
                    return Ok(accepted);
                }
                Err(e) => {
                    savepoint.rollback("rolling back a savepoint").await?;
                    if !raced(&e) || attempt > 0 {
                        return Err(e);
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// The same message accepted at once by another process (PostgreSQL, two nodes): the second
/// attempt finds the winner's row.
fn raced(e: &StoreError) -> bool {
    matches!(e,
        StoreError::Sql { source: sqlx::Error::Database(d), .. }
        | StoreError::Sent { source: sqlx::Error::Database(d), .. } if d.is_unique_violation())
}

fn fail_all(batch: &[Job], e: &StoreError) -> Vec<Written> {
    let failed = || StoreError::Data(e.to_string().trim_start_matches("store: ").to_string());
    batch
        .iter()
        .map(|job| match job {
            Job::Accept { items, .. } => {
                Written::Accept(items.iter().map(|_| Err(failed())).collect())
            }
            Job::Outcome { .. } => Written::Outcome(Err(failed())),
        })
        .collect()
}

fn stopped() -> StoreError {
    StoreError::Data("the group commit holding this write stopped before answering".into())
}

/// Shared between clones of a store.
pub(crate) type Shared = Arc<GroupCommit>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::message;

    /// Messages that arrive while a commit waits on the write lock all go into the next one,
    /// each answered with its own ids; the same message twice in one group is stored once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acceptances_that_arrive_during_a_commit_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_file(&dir.path().join("s.db")).await.unwrap();
        // Someone else holds SQLite's write lock, so the first commit waits.
        let mut blocker = store.pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let first = tokio::spawn({
            let store = store.clone();
            async move { store.accept("w", &message("t", "x", "first", "m0")).await }
        });
        // The first is in the committer's hands (waiting for the lock) before the others come.
        while !(store.committing() && store.queued_acceptances() == 0) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let mut waiting = Vec::new();
        for i in 1..=40 {
            let store = store.clone();
            // m7 twice: the second finds the first in the same transaction.
            let id = if i == 40 { 7 } else { i };
            waiting.push(tokio::spawn(async move {
                store
                    .accept(
                        "w",
                        &message("t", "x", &format!("a{id}"), &format!("m{id}")),
                    )
                    .await
            }));
        }
        while store.queued_acceptances() < 40 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        sqlx::query("ROLLBACK")
            .execute(&mut *blocker)
            .await
            .unwrap();
        drop(blocker);
        assert!(!first.await.unwrap().unwrap().duplicate);
        let mut results = Vec::new();
        for w in waiting {
            results.push(w.await.unwrap().unwrap());
        }
        assert_eq!(
            store.group_commits(),
            2,
            "one for the first, one for the other 40"
        );
        assert_eq!(results.iter().filter(|a| a.duplicate).count(), 1);
        assert_eq!(results[6].message_id, results[39].message_id);
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, 40);
    }
}
