//! The one seam between the store's use cases and a database: SQL text with `$n` placeholders
//! and a small set of value types, the same on SQLite and PostgreSQL. Each backend implements
//! `Db` and `Tx`; everything above is written once.

pub mod postgres;
pub mod query;
pub mod sqlite;
mod value;

pub use value::{Row, Value};

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
