//! Cheap SQLite reads on the calling thread. sqlx runs every SQLite connection on a thread of its
//! own, so each query is two thread hand-offs and their wake-ups; for an indexed lookup that costs
//! several times the query itself (profiled: about half of a Web API read). Here a small pool of
//! read-only connections answers a read in place, under a budget of SQLite VM steps: a query that
//! would run longer is interrupted at once and given back to the caller, who runs it on sqlx's
//! threads instead, so the async runtime is never held for more than a fraction of a millisecond.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{Row, Value};

/// SQLite calls the progress handler every this many VM steps…
const STEPS_PER_TICK: i32 = 1000;
/// …and a read that reaches this many ticks (~0.2 ms here) moves to sqlx's threads.
const TICKS: u32 = 200;
/// Connections kept at most (the async runtime has as many threads as cores).
const MAX_CONNECTIONS: usize = 8;

pub(super) struct InlineReaders {
    path: String,
    idle: Mutex<Vec<Reader>>,
}

struct Reader {
    conn: Connection,
    ticks: Arc<AtomicU32>,
}

impl InlineReaders {
    /// For a database file; `None` for an in-memory database, which other connections cannot see.
    pub(super) fn for_file(path: &std::path::Path) -> Option<Self> {
        let path = path.to_str()?;
        if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
            return None;
        }
        Some(Self {
            path: path.to_string(),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> rusqlite::Result<Reader> {
        if let Some(r) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(r);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait for a lock on the async runtime: a busy database goes to sqlx's threads.
        conn.busy_timeout(Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(256);
        let ticks = Arc::new(AtomicU32::new(0));
        let counter = ticks.clone();
        conn.progress_handler(
            STEPS_PER_TICK,
            Some(move || counter.fetch_add(1, Ordering::Relaxed) + 1 >= TICKS),
        )?;
        Ok(Reader { conn, ticks })
    }

    fn give_back(&self, r: Reader) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_CONNECTIONS
        {
            idle.push(r);
        }
    }

    /// The rows of `sql` if it ran here within budget; `None` sends it to sqlx's threads (as
    /// does any error, so errors are reported the one way sqlx reports them).
    pub(super) fn fetch(&self, sql: &str, args: &[Value]) -> Option<Vec<Row>> {
        let r = self.take().ok()?;
        r.ticks.store(0, Ordering::Relaxed);
        let result = run(&r.conn, sql, args);
        self.give_back(r);
        match result {
            Ok(rows) => Some(rows),
            Err(e) => {
                if e.sqlite_error_code() != Some(ErrorCode::OperationInterrupted) {
                    tracing::debug!(error = %e, "inline SQLite read failed; retried on sqlx");
                }
                None
            }
        }
    }
}

fn run(conn: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    // `$n` names the n-th argument, wherever and however often it appears (as sqlx binds it).
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let Some(v) = n.checked_sub(1).and_then(|n| args.get(n)) else {
            return Err(rusqlite::Error::InvalidParameterCount(n, args.len()));
        };
        match v {
            Value::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Real(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Text(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Blob(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Bool(v) => stmt.raw_bind_parameter(i, v)?,
        }
    }
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Text(None),
                ValueRef::Integer(n) => Value::Int(Some(n)),
                ValueRef::Real(x) => Value::Real(Some(x)),
                ValueRef::Text(t) => Value::Text(Some(
                    String::from_utf8(t.to_vec())
                        .map_err(|e| rusqlite::Error::Utf8Error(i, e.utf8_error()))?,
                )),
                ValueRef::Blob(b) => Value::Blob(Some(b.to_vec())),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Db;
    use crate::sql::sqlite::SqliteDb;

    #[tokio::test]
    async fn quick_reads_run_here_and_long_ones_go_to_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let db = SqliteDb::open_file(&file).await.unwrap();
        db.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, x REAL, b BLOB)",
            vec![],
        )
        .await
        .unwrap();
        db.execute(
            "INSERT INTO t (id, name, x, b) VALUES ($1, $2, $3, $4)",
            vec![
                1i64.into(),
                "a".into(),
                Value::Real(Some(1.5)),
                Value::Blob(None),
            ],
        )
        .await
        .unwrap();
        let inline = InlineReaders::for_file(&file).unwrap();
        // `$2` before `$1`, and `$1` twice: bound by number, as sqlx binds them.
        let rows = inline
            .fetch(
                "SELECT id, name, x, b FROM t WHERE name = $2 AND id = $1 AND id + 0 = $1",
                &[1i64.into(), "a".into()],
            )
            .unwrap();
        assert_eq!(
            rows[0].0,
            vec![
                Value::Int(Some(1)),
                Value::Text(Some("a".into())),
                Value::Real(Some(1.5)),
                Value::Text(None)
            ]
        );
        // A write is seen by the next read.
        db.execute("UPDATE t SET name = 'b'", vec![]).await.unwrap();
        let rows = inline.fetch("SELECT name FROM t", &[]).unwrap();
        assert_eq!(rows[0].0, vec![Value::Text(Some("b".into()))]);
        // A long read is interrupted here, and the store still answers it, on sqlx's threads.
        let long = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000) SELECT COUNT(*) FROM c";
        assert!(inline.fetch(long, &[]).is_none());
        assert_eq!(
            db.fetch(long, vec![]).await.unwrap()[0].int(0).unwrap(),
            1_000_000
        );
        // Errors are left to sqlx to report.
        assert!(inline.fetch("SELECT nope FROM t", &[]).is_none());
        assert!(db.fetch("SELECT nope FROM t", vec![]).await.is_err());
        // An in-memory database is never read here: another connection would not see it.
        assert!(InlineReaders::for_file(std::path::Path::new(":memory:")).is_none());
    }
}
