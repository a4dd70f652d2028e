//! The one seam between the store's use cases and a database: SQL text with `$n` placeholders
//! and a small set of value types, the same on SQLite and PostgreSQL. Each backend implements
//! `Db` and `Tx`; everything above is written once.

pub mod postgres;
pub mod query;
pub mod sqlite;
mod sqlite_inline;
mod sqlite_writer;
mod value;

pub use value::{Row, Value};

/// Rows each `INSERT` of a transaction added, by table, until it commits.
pub(crate) type Inserted = std::collections::HashMap<String, u64>;

use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait Db: Send + Sync {
    async fn fetch(&self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError>;
    async fn execute(&self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError>;
    /// A write transaction (on SQLite it takes the write lock at once).
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    fn backend(&self) -> &'static str;
    fn dialect(&self) -> Dialect;
}

/// The few places SQL text differs between the backends: column types in DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn column_type(self, storage: keyway_core::dataverse::metadata::Storage) -> &'static str {
        use keyway_core::dataverse::metadata::Storage as S;
        match (self, storage) {
            (_, S::Text | S::Id) => "TEXT",
            (Self::Sqlite, S::Int | S::Instant | S::Bool) => "INTEGER",
            (Self::Postgres, S::Int | S::Instant) => "BIGINT",
            (Self::Postgres, S::Bool) => "BOOLEAN",
            (Self::Sqlite, S::Real) => "REAL",
            (Self::Postgres, S::Real) => "DOUBLE PRECISION",
        }
    }
}

/// A quoted SQL identifier. Callers pass only names validated as logical names.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[async_trait]
pub trait Tx: Send {
    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError>;
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Rows inserted into each table since the planner last sampled it. A table loaded in bulk
/// (CreateMultiple, imports) has no statistics until autovacuum or a later `PRAGMA optimize`
/// gets to it, and without them both planners walk the index that serves ORDER BY instead of the
/// selective one — every read then costs O(table). So a table that grew by a tenth (and at least
/// `MIN_GROWTH` rows) since it was last analyzed is analyzed again, once, in the background.
/// (In full on SQLite, about a second per million rows: its sampled `analysis_limit` reports a
/// column holding one value as selective, and the planner then sorts the whole table.)
#[derive(Default)]
pub(crate) struct Growth {
    tables: std::sync::Mutex<std::collections::HashMap<String, TableGrowth>>,
}

#[derive(Default)]
struct TableGrowth {
    analyzed_at: u64,
    added: u64,
    running: bool,
}

const MIN_GROWTH: u64 = 500;

impl Growth {
    /// The table an `INSERT INTO <table> …` statement writes, as written (quoted or bare).
    pub(crate) fn inserted_table(sql: &str) -> Option<&str> {
        let rest = sql.strip_prefix("INSERT INTO ")?;
        let end = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"')? + 2
        } else {
            rest.find([' ', '('])?
        };
        let table = &rest[..end];
        // Only names this store writes: the text goes back into an ANALYZE statement.
        table
            .trim_matches('"')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            .then_some(table)
    }

    /// Count committed inserts; the tables now due for `ANALYZE`, marked as running.
    pub(crate) fn note(&self, inserted: &std::collections::HashMap<String, u64>) -> Vec<String> {
        let Ok(mut tables) = self.tables.lock() else {
            return Vec::new();
        };
        let mut due = Vec::new();
        for (table, n) in inserted {
            let t = tables.entry(table.clone()).or_default();
            t.added += n;
            if !t.running && t.added >= MIN_GROWTH.max(t.analyzed_at / 10) {
                t.running = true;
                due.push(table.clone());
            }
        }
        due
    }

    /// `ANALYZE` of `table` finished (or failed: then it is tried again after more growth).
    pub(crate) fn analyzed(&self, table: &str, ok: bool) {
        if let Ok(mut tables) = self.tables.lock()
            && let Some(t) = tables.get_mut(table)
        {
            t.running = false;
            if ok {
                t.analyzed_at += t.added;
                t.added = 0;
            }
        }
    }
}

/// Map a driver error to the store's: constraint violations become conflicts the caller can
/// explain; anything else is internal, and its text stays in the log.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_string());
        }
        if db.is_foreign_key_violation() {
            return StoreError::MissingReference(db.message().to_string());
        }
    }
    if matches!(e, sqlx::Error::PoolTimedOut) {
        return StoreError::Unavailable("the database pool timed out".into());
    }
    StoreError::Database(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_asks_for_analyze_after_a_tenth_more_rows() {
        assert_eq!(
            Growth::inserted_table(r#"INSERT INTO "dv1_account" ("a") VALUES ($1)"#),
            Some(r#""dv1_account""#)
        );
        assert_eq!(
            Growth::inserted_table("INSERT INTO dv_audit (a) VALUES ($1)"),
            Some("dv_audit")
        );
        assert_eq!(Growth::inserted_table("UPDATE t SET a = 1"), None);
        let g = Growth::default();
        let batch = |n| Inserted::from([("t".to_string(), n)]);
        assert!(g.note(&batch(100)).is_empty());
        assert_eq!(g.note(&batch(1000)), vec!["t".to_string()]);
        // Running: not asked again until it finished.
        assert!(g.note(&batch(1000)).is_empty());
        g.analyzed("t", true);
        // 2100 rows analyzed: due again at 500 more (a tenth is less), then at a tenth more.
        assert!(g.note(&batch(400)).is_empty());
        assert_eq!(g.note(&batch(100)), vec!["t".to_string()]);
        g.analyzed("t", true);
        for _ in 0..25 {
            if !g.note(&batch(1000)).is_empty() {
                g.analyzed("t", true);
            }
        }
        let t = g.tables.lock().unwrap();
        assert!(t["t"].analyzed_at >= 20_000 && t["t"].added < t["t"].analyzed_at / 10 + 1000);
    }
}
