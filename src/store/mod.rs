//! The store: one redb file, one writer thread with group commit, and read snapshots.
//!
//! Writes are closures sent to the writer thread. It takes every write queued at that moment
//! (up to `MAX_BATCH`), runs them in one transaction, commits once with
//! `Durability::Immediate` (one fsync for the batch), and only then answers each caller. So an
//! acknowledged write is durable, and a caller never sees a result that a crash could undo.
//!
//! Each write op checks everything it can refuse *before* it changes anything, so a refused op
//! leaves the shared transaction untouched and the other ops in the batch still commit. A
//! storage failure aborts the whole batch and every caller in it gets an error.
//!
//! The ops of a batch share a `write::Batch`: the transaction and the events logged in it.
//! After the commit the writer publishes those events on the commit feed, before it answers
//! any caller; if the batch aborts, they are dropped with it.
//!
//! The database is opened in redb's `MultiWriter` mode so that the admin CLI (`parley user`,
//! `backup`, `export`) can open the same file while the server runs.
//!
//! Must not: decide who may do what (that is `chat`), or know about HTTP or sockets.

mod backup;
mod error;
mod read;
pub mod records;
pub mod tables;
mod write;

pub use backup::backup_to;
pub use error::StoreError;
pub use read::Snapshot;
pub use write::{Admission, AppendOutcome, Batch, Committed, NewMessage};

use redb::{Builder, ConcurrencyMode, Database, Durability, ReadableDatabase};

use crate::metrics::{BATCH_SIZE_BOUNDS, Counter, Histogram, SECONDS_BOUNDS};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The on-disk format version this binary writes. A file with a higher version is refused.
/// See docs/STORAGE.md for what changed in each version.
pub const SCHEMA_VERSION: u64 = 1;

/// Most writes committed in one transaction. Bounds the latency a write can add to the others.
const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before callers wait for room in the queue.
const QUEUE_DEPTH: usize = 8192;

/// Called after the batch commits (or fails) to answer the caller.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs one write inside the batch; says whether it hit a storage failure.
type Job = Box<dyn FnOnce(&mut Batch<'_>) -> (Reply, bool) + Send>;

enum WriterMsg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// A cheap, clonable handle on the open store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    /// Feeds the single writer thread; closed by `close`.
    writer: mpsc::Sender<WriterMsg>,
    /// Joined on close so the last commit is done before the process exits.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<StoreStats>,
}

/// What the writer has done, for `/metrics`.
#[derive(Debug)]
pub struct StoreStats {
    pub commits: Counter,
    pub failed_batches: Counter,
    pub messages_persisted: Counter,
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
}

impl Default for StoreStats {
    fn default() -> Self {
        StoreStats {
            commits: Counter::default(),
            failed_batches: Counter::default(),
            messages_persisted: Counter::default(),
            batch_size: Histogram::new(BATCH_SIZE_BOUNDS),
            commit_seconds: Histogram::new(SECONDS_BOUNDS),
        }
    }
}

/// Receives every committed batch's events, in commit order (the realtime hub listens here).
pub type CommitFeed = mpsc::Receiver<Vec<Committed>>;

/// Committed batches waiting for the listener before the writer waits for it.
const FEED_DEPTH: usize = 1024;

impl Store {
    /// Opens (or creates) the database file, checks its schema version and starts the writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::open_inner(path, None)?.0)
    }

    /// Like `open`, and also returns the feed of committed events, in commit order. Nothing
    /// is published until a batch's transaction has committed.
    pub fn open_with_feed(path: &Path) -> Result<(Store, CommitFeed), StoreError> {
        let (store, feed) = Store::open_inner(path, Some(FEED_DEPTH))?;
        Ok((store, feed.ok_or(StoreError::Closed)?))
    }

    fn open_inner(
        path: &Path,
        feed_depth: Option<usize>,
    ) -> Result<(Store, Option<CommitFeed>), StoreError> {
        let db = Builder::new()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen
                | redb::DatabaseError::LockProtocolMismatch => {
                    StoreError::Locked(format!("{}: {e}", path.display()))
                }
                other => StoreError::from(other),
            })?;
        prepare_schema(&db, path)?;
        let db = Arc::new(db);
        let (writer, jobs) = mpsc::channel(QUEUE_DEPTH);
        let (feed_tx, feed_rx) = match feed_depth {
            Some(depth) => {
                let (tx, rx) = mpsc::channel(depth);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let thread_db = Arc::clone(&db);
        let stats = Arc::new(StoreStats::default());
        let thread_stats = Arc::clone(&stats);
        let writer_thread = std::thread::Builder::new()
            .name("parley-store-writer".into())
            .spawn(move || writer_loop(&thread_db, jobs, feed_tx.as_ref(), &thread_stats))?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                writer,
                writer_thread: Mutex::new(Some(writer_thread)),
                stats,
            }),
        };
        Ok((store, feed_rx))
    }

    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// A consistent read-only view of the store as of now.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::new(self.inner.db.begin_read()?))
    }

    /// Runs `op` in the next group-commit batch and returns its result once the batch is
    /// durable. `op` must not change anything before it is sure it will succeed.
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |batch| {
            let logged_before = batch.events_logged();
            let result = op(batch);
            let failed = matches!(&result, Err(e) if e.is_storage_failure());
            if result.is_err() && !failed {
                check_refusal_logged_nothing(batch, logged_before);
            }
            let reply: Reply = Box::new(move |commit| {
                let _ = answer.send(commit.and(result));
            });
            (reply, failed)
        });
        self.inner
            .writer
            .send(WriterMsg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        // A dropped answer means the batch never ran (the writer could not begin a
        // transaction and logged why).
        answered.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Finishes queued writes, stops the writer thread and waits for it. Later writes get
    /// `StoreError::Closed`. The file is released when the last handle is dropped.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.writer.send(WriterMsg::Close(done)).await.is_ok() {
            let _ = finished.await;
        }
        let thread = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn prepare_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
    use redb::ReadableTable;
    let txn = db.begin_write()?;
    let found = {
        let meta = txn.open_table(tables::META)?;
        meta.get(tables::META_SCHEMA_VERSION)?.map(|v| v.value())
    };
    match found {
        Some(found) if found > SCHEMA_VERSION => {
            // Never rewrite a newer file: abort so not even the table creation lands.
            txn.abort()?;
            return Err(StoreError::SchemaTooNew {
                path: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Some(_) => {
            // Version 1 is the first; future migrations from older versions go here, inside
            // this same transaction.
        }
        None => {
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(tables::META_SCHEMA_VERSION, SCHEMA_VERSION)?;
        }
    }
    tables::create_all(&txn)?;
    txn.commit()?;
    Ok(())
}

type FeedSender = mpsc::Sender<Vec<Committed>>;

fn writer_loop(
    db: &Database,
    mut inbox: mpsc::Receiver<WriterMsg>,
    feed: Option<&FeedSender>,
    stats: &StoreStats,
) {
    let mut close_ack = None;
    while close_ack.is_none() {
        let Some(first) = inbox.blocking_recv() else {
            break;
        };
        let mut jobs = Vec::new();
        match first {
            WriterMsg::Job(job) => jobs.push(job),
            WriterMsg::Close(ack) => close_ack = Some(ack),
        }
        while jobs.len() < MAX_BATCH && close_ack.is_none() {
            match inbox.try_recv() {
                Ok(WriterMsg::Job(job)) => jobs.push(job),
                Ok(WriterMsg::Close(ack)) => close_ack = Some(ack),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            commit_batch(db, jobs, feed, stats);
        }
    }
    if let Some(ack) = close_ack {
        let _ = ack.send(());
    }
}

/// A refused op must have logged no event (nor written anything): it shares the transaction
/// with ops that commit. Ops guarantee this by checking before they write; this catches an op
/// that does not. The events are not taken back: whatever such an op wrote commits with the
/// batch, and the feed must keep telling the same story as the durable log.
fn check_refusal_logged_nothing(batch: &Batch<'_>, logged_before: usize) {
    let logged = batch.events_logged() - logged_before;
    if logged > 0 {
        tracing::error!(
            logged,
            "a refused write logged events: it wrote before checking"
        );
        debug_assert_eq!(logged, 0, "a refused write logged events");
    }
}

fn commit_batch(db: &Database, jobs: Vec<Job>, feed: Option<&FeedSender>, stats: &StoreStats) {
    let size = jobs.len();
    let started = std::time::Instant::now();
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            fail_all(jobs, &StoreError::from(e));
            return;
        }
    };
    if let Err(e) = txn.set_durability(Durability::Immediate) {
        fail_all(jobs, &StoreError::from(e));
        return;
    }
    let mut replies = Vec::with_capacity(size);
    let mut storage_failed = false;
    let mut batch = Batch::new(&txn);
    for job in jobs {
        let (reply, failed) = job(&mut batch);
        storage_failed |= failed;
        replies.push(reply);
    }
    // Taken before the transaction ends (the batch borrows it); published only if it commits.
    let events = batch.into_events();
    let outcome = if storage_failed {
        let _ = txn.abort();
        Err(StoreError::BatchAborted)
    } else {
        txn.commit().map_err(StoreError::from)
    };
    if outcome.is_ok() {
        stats.commits.add(1);
        stats.batch_size.observe(size as f64);
        stats
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        let persisted = events
            .iter()
            .filter(|c| c.event.kind == records::EventKind::MessageNew)
            .count();
        stats.messages_persisted.add(persisted as u64);
    } else {
        stats.failed_batches.add(1);
    }
    if outcome.is_ok()
        && !events.is_empty()
        && let Some(feed) = feed
    {
        // Blocks the writer if the listener is far behind: better than unbounded memory.
        // Published before callers are answered, so an acknowledged send is already queued
        // for fanout.
        if feed.blocking_send(events).is_err() {
            tracing::debug!("commit feed listener is gone");
        }
    }
    if let Err(e) = &outcome {
        tracing::error!(error = %e, batch = size, "write batch did not commit");
    } else {
        tracing::trace!(
            batch = size,
            elapsed_us = started.elapsed().as_micros() as u64,
            "committed"
        );
    }
    for reply in replies {
        reply(outcome.clone());
    }
}

/// Drops jobs that never ran: each caller sees its answer channel close and gets
/// `StoreError::Unavailable`; the cause goes to the log once.
fn fail_all(jobs: Vec<Job>, err: &StoreError) {
    tracing::error!(error = %err, batch = jobs.len(), "write batch could not start");
    drop(jobs);
}

#[cfg(test)]
mod tests;
