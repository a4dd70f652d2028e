//! Group commit on SQLite's one writer connection. With `synchronous=FULL` each COMMIT waits for
//! an fsync, and one fsync per transaction was the ceiling on writes per second. Here logical
//! transactions share a physical one: the first begins it, each later one is a savepoint in it.
//! A logical commit (releasing its savepoint) waits; the physical COMMIT (one fsync) is issued
//! when no other transaction is queued for the connection (or the batch is large or old), and
//! wakes every logical commit it carries with its result. Alone, a transaction costs what it did
//! before: BEGIN IMMEDIATE … COMMIT. A logical commit is acknowledged only
//! after its physical COMMIT succeeded, so durability is unchanged; a failed COMMIT fails every
//! logical commit of its batch (none of them was acknowledged).
//!
//! Logical transactions still run one at a time on the connection, so each keeps its atomicity
//! and sees the ones before it. One dropped without commit (an error, a cancelled request) leaves
//! its work behind; whoever takes the connection next rolls it back before anything else.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, oneshot};

use super::map_err;
use crate::StoreError;

/// A physical transaction commits once it carries this many logical commits…
const MAX_BATCH: usize = 256;
/// …or has been open this long, even while more transactions are queued.
const MAX_AGE: Duration = Duration::from_millis(20);
/// How long a transaction waits for the connection (as the pool it replaces did).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(super) struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    state: Arc<Mutex<State>>,
    /// Transactions waiting for the connection; while there are any, commits wait for them.
    queued: AtomicUsize,
    /// Wakes the committer: a physical transaction may be left open with nobody coming.
    idle: Arc<Notify>,
    /// Physical COMMITs that succeeded.
    commits: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The committer sees the writer gone and stops.
        self.idle.notify_one();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// The first in its physical transaction: the whole transaction is its own.
    Whole,
    /// Savepoint `lt`, after others' released work.
    Savepoint,
}

#[derive(Default)]
struct State {
    /// Taken from the pool at first use (migrations run on the pool before).
    conn: Option<PoolConnection<Sqlite>>,
    /// When the shared physical transaction began, while one is open.
    open: Option<Instant>,
    /// The uncommitted work of the logical transaction holding the connection, or of one that
    /// went away without committing (to be rolled back).
    pending: Option<Pending>,
    /// Logical commits released into the open physical transaction, waiting for its COMMIT.
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

impl Writer {
    /// The writer over `pool` (of one connection), with its committer task.
    pub(super) fn new(pool: SqlitePool) -> Self {
        let inner = Arc::new(Inner {
            pool,
            state: Arc::default(),
            queued: AtomicUsize::new(0),
            idle: Arc::default(),
            commits: AtomicU64::new(0),
        });
        tokio::spawn(committer(Arc::downgrade(&inner), inner.idle.clone()));
        Self { inner }
    }

    /// Begin a logical transaction: the connection is this caller's until it commits or drops.
    pub(super) async fn begin(&self) -> Result<Logical, StoreError> {
        let mut held = self.lock(true).await?;
        let (sql, pending) = match held.state.open {
            None => ("BEGIN IMMEDIATE", Pending::Whole),
            Some(_) => ("SAVEPOINT lt", Pending::Savepoint),
        };
        if let Err(e) = held.run(sql).await {
            held.abort(&e).await;
            return Err(e);
        }
        held.state.open.get_or_insert_with(Instant::now);
        held.state.pending = Some(pending);
        Ok(Logical { held: Some(held) })
    }

    /// The connection, with anything a dropped transaction left behind rolled back.
    async fn lock(&self, count: bool) -> Result<Held, StoreError> {
        let queued = count.then(|| Queued::new(&self.inner));
        let state = self.inner.state.clone().lock_owned();
        let state = match count {
            true => tokio::time::timeout(LOCK_TIMEOUT, state)
                .await
                .map_err(|_| StoreError::Unavailable("the database pool timed out".into()))?,
            false => state.await,
        };
        if let Some(mut q) = queued {
            q.acquired = true;
        }
        let mut held = Held {
            state,
            inner: self.inner.clone(),
        };
        if held.state.conn.is_none() {
            held.state.conn = Some(self.inner.pool.acquire().await.map_err(map_err)?);
        }
        match held.state.pending.take() {
            None => {}
            Some(Pending::Whole) => {
                let e = StoreError::Database("rolled back".into());
                held.abort(&e).await;
            }
            Some(Pending::Savepoint) => {
                if let Err(e) = held.run("ROLLBACK TO lt; RELEASE lt").await {
                    held.abort(&e).await;
                }
            }
        }
        Ok(held)
    }
}

/// Counts a caller waiting for the connection; one that gives up wakes the committer, since a
/// commit may have left its batch open for it.
struct Queued<'a> {
    inner: &'a Inner,
    acquired: bool,
}

impl<'a> Queued<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.queued.fetch_add(1, Ordering::SeqCst);
        Self {
            inner,
            acquired: false,
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.inner.queued.fetch_sub(1, Ordering::SeqCst);
        if !self.acquired {
            self.inner.idle.notify_one();
        }
    }
}

/// The connection, held.
struct Held {
    state: OwnedMutexGuard<State>,
    inner: Arc<Inner>,
}

impl Held {
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.state
            .conn
            .as_deref_mut()
            .ok_or_else(|| StoreError::Unavailable("the SQLite writer has no connection".into()))
    }

    async fn run(&mut self, sql: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(sql)
            .execute(self.conn()?)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    /// The physical transaction is broken: roll it back and fail every commit it carried.
    async fn abort(&mut self, e: &StoreError) {
        // Also when none was known to be open: a failed BEGIN may have left one behind.
        self.state.open = None;
        let _ = self.run("ROLLBACK").await;
        self.state.pending = None;
        for w in self.state.waiters.drain(..) {
            let _ = w.send(Err(e.clone()));
        }
    }

    /// Commit the physical transaction (roll it back if it carries no commit) and wake its
    /// logical commits.
    async fn finish(&mut self) {
        if self.state.open.is_none() {
            return;
        }
        if self.state.waiters.is_empty() {
            self.state.open = None;
            if let Err(e) = self.run("ROLLBACK").await {
                tracing::warn!(error = %e, "rolling back an empty SQLite transaction failed");
            }
            return;
        }
        let r = self.run("COMMIT").await;
        self.committed(r).await;
    }

    /// The outcome of the physical COMMIT, to every logical commit it carried.
    async fn committed(&mut self, r: Result<(), StoreError>) {
        match r {
            Ok(()) => {
                self.state.open = None;
                self.inner.commits.fetch_add(1, Ordering::Relaxed);
                for w in self.state.waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => self.abort(&e).await,
        }
    }

    /// Commit now rather than leave the batch to the next transaction?
    fn due(&self) -> bool {
        self.inner.queued.load(Ordering::SeqCst) == 0
            || self.state.waiters.len() >= MAX_BATCH
            || self.state.open.is_some_and(|t| t.elapsed() >= MAX_AGE)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A physical transaction left open with nobody queued to carry it on: the committer
        // finishes it. (A queued caller that gives up wakes the committer itself.)
        if self.state.open.is_some() && self.inner.queued.load(Ordering::SeqCst) == 0 {
            self.inner.idle.notify_one();
        }
    }
}

/// Finishes physical transactions that their last logical transaction left open.
async fn committer(writer: Weak<Inner>, idle: Arc<Notify>) {
    loop {
        idle.notified().await;
        let Some(inner) = writer.upgrade() else {
            return;
        };
        let writer_now = Writer { inner };
        match writer_now.lock(false).await {
            Ok(mut held) => held.finish().await,
            Err(e) => tracing::warn!(error = %e, "the SQLite committer could not take the writer"),
        }
    }
}

/// One logical transaction, holding the connection until it commits or drops.
pub(super) struct Logical {
    held: Option<Held>,
}

impl Logical {
    pub(super) fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        match self.held.as_mut() {
            Some(held) => held.conn(),
            None => Err(StoreError::Unavailable(
                "the SQLite transaction has ended".into(),
            )),
        }
    }

    /// Release the work into the shared physical transaction and wait for its COMMIT.
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut held) = self.held.take() else {
            return Err(StoreError::Unavailable(
                "the SQLite transaction has ended".into(),
            ));
        };
        let release = held.state.pending.take() == Some(Pending::Savepoint);
        if !held.due() {
            // Others are queued: the batch stays open for them.
            if release && let Err(e) = held.run("RELEASE lt").await {
                held.abort(&e).await;
                return Err(e);
            }
            let (tx, rx) = oneshot::channel();
            held.state.waiters.push(tx);
            drop(held);
            return rx.await.unwrap_or_else(|_| Err(writer_stopped()));
        }
        let sql = if release {
            "RELEASE lt; COMMIT"
        } else {
            "COMMIT"
        };
        if held.state.waiters.is_empty() {
            // Alone in the batch: committed here (marked closed first, so a caller cancelled
            // mid-COMMIT leaves nothing open behind it).
            held.state.open = None;
            let r = held.run(sql).await;
            if r.is_ok() {
                held.inner.commits.fetch_add(1, Ordering::Relaxed);
            } else {
                held.abort(&StoreError::Database("COMMIT failed".into()))
                    .await;
            }
            return r;
        }
        // On a task of its own: a caller cancelled mid-COMMIT must not leave the batch's outcome
        // unknown to the other commits in it.
        let (tx, rx) = oneshot::channel();
        held.state.waiters.push(tx);
        tokio::spawn(async move {
            let r = held.run(sql).await;
            held.committed(r).await;
        });
        rx.await.unwrap_or_else(|_| Err(writer_stopped()))
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer stopped before the commit finished".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactions_share_commits_and_keep_their_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
            .execute(&pool)
            .await
            .unwrap();
        let writer = Writer::new(pool);
        let insert = |id: i64, v: i64| {
            sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
                .bind(id)
                .bind(format!("v{v}"))
        };
        let tasks: Vec<_> = (0..200i64)
            .map(|i| {
                let (writer, readers) = (writer.clone(), readers.clone());
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    insert(i, i).execute(tx.conn().unwrap()).await.unwrap();
                    match i % 4 {
                        // A statement fails and the transaction is dropped: its first insert
                        // goes too, and nobody else's.
                        0 => {
                            let dup = insert(1000 + i, i).execute(tx.conn().unwrap()).await;
                            assert!(dup.is_err());
                        }
                        // Dropped without commit (a cancelled request).
                        1 => drop(tx),
                        _ => {
                            tx.commit().await.unwrap();
                            // Acknowledged means committed: another connection sees it at once.
                            let seen: i64 =
                                sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE id = ?")
                                    .bind(i)
                                    .fetch_one(&readers)
                                    .await
                                    .unwrap();
                            assert_eq!(seen, 1, "row {i}");
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The last dropped transaction's savepoint is rolled back by whoever comes next.
        let tx = writer.begin().await.unwrap();
        tx.commit().await.unwrap();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM t ORDER BY id")
            .fetch_all(&readers)
            .await
            .unwrap();
        let committed: Vec<i64> = (0..200).filter(|i| i % 4 >= 2).collect();
        assert_eq!(ids, committed);
        // 101 logical commits in fewer physical ones.
        let commits = writer.inner.commits.load(Ordering::Relaxed);
        assert!(commits < 100, "{commits} physical commits");
    }
}
