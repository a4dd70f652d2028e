//! The SQLite backend: WAL, one writer connection (writes and transactions, `BEGIN IMMEDIATE`,
//! several of them sharing one COMMIT: `sqlite_writer`) and a pool of readers, so writers never
//! meet `SQLITE_BUSY` and readers never wait on them.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _, Sqlite, TypeInfo, ValueRef};

use super::sqlite_writer::{Logical, Writer};
use super::{Db, Growth, Inserted, Row, Tx, Value, map_err};
use crate::StoreError;

pub struct SqliteDb {
    /// The writer connection's pool: migrations run on it before the first write; from then on
    /// `writer` holds its one connection.
    pool: SqlitePool,
    writer: Writer,
    readers: SqlitePool,
    growth: Arc<Growth>,
    inline: Option<super::sqlite_inline::InlineReaders>,
}

impl SqliteDb {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let inline = super::sqlite_inline::InlineReaders::for_file(base.get_filename());
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone())
            .await
            .map_err(map_err)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self {
            writer: Writer::new(writer.clone()),
            pool: writer,
            readers,
            growth: Arc::default(),
            inline,
        })
    }

    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// For migrations only, before the first write (which keeps the pool's one connection).
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn query(sql: &str, args: Vec<Value>) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
    for a in args {
        q = match a {
            Value::Int(v) => q.bind(v),
            Value::Real(v) => q.bind(v),
            Value::Text(v) => q.bind(v),
            Value::Blob(v) => q.bind(v),
            Value::Bool(v) => q.bind(v),
        };
    }
    q
}

fn decode(row: &SqliteRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Text(None));
            continue;
        }
        let v = match raw.type_info().name() {
            "INTEGER" | "BOOLEAN" | "INT8" | "BIGINT" => {
                Value::Int(row.try_get(i).map_err(map_err)?)
            }
            "REAL" => Value::Real(row.try_get(i).map_err(map_err)?),
            "TEXT" => Value::Text(row.try_get(i).map_err(map_err)?),
            "BLOB" => Value::Blob(row.try_get(i).map_err(map_err)?),
            other => {
                return Err(StoreError::Database(format!(
                    "unexpected SQLite type {other} in column {i}"
                )));
            }
        };
        out.push(v);
    }
    Ok(Row(out))
}

#[async_trait]
impl Db for SqliteDb {
    async fn fetch(&self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        if let Some(rows) = self.inline.as_ref().and_then(|i| i.fetch(sql, &args)) {
            return Ok(rows);
        }
        let rows = query(sql, args)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    /// A transaction of one statement (it shares a COMMIT like any other).
    async fn execute(&self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
        let mut tx = self.begin_tx().await?;
        let n = tx.execute(sql, args).await?;
        tx.commit_tx().await?;
        Ok(n)
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(self.begin_tx().await?))
    }

    fn dialect(&self) -> super::Dialect {
        super::Dialect::Sqlite
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

impl SqliteDb {
    async fn begin_tx(&self) -> Result<SqliteTx, StoreError> {
        Ok(SqliteTx {
            tx: self.writer.begin().await?,
            inserted: Inserted::new(),
            db: GrowthHandle {
                writer: self.writer.clone(),
                growth: self.growth.clone(),
            },
        })
    }
}

/// What a transaction needs to ask for ANALYZE once it has committed.
struct GrowthHandle {
    writer: Writer,
    growth: Arc<Growth>,
}

impl GrowthHandle {
    fn grew(&self, inserted: Inserted) {
        for table in self.growth.note(&inserted) {
            let (writer, growth) = (self.writer.clone(), self.growth.clone());
            tokio::spawn(async move {
                let r = analyze(&writer, &table).await;
                if let Err(e) = &r {
                    tracing::warn!(table, error = %e, "ANALYZE after a bulk load failed");
                }
                growth.analyzed(&table, r.is_ok());
            });
        }
    }
}

async fn analyze(writer: &Writer, table: &str) -> Result<(), StoreError> {
    let mut tx = writer.begin().await?;
    sqlx::query(AssertSqlSafe(format!("ANALYZE {table}")))
        .execute(tx.conn()?)
        .await
        .map_err(map_err)?;
    tx.commit().await
}

struct SqliteTx {
    tx: Logical,
    inserted: Inserted,
    db: GrowthHandle,
}

impl SqliteTx {
    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
        let r = query(sql, args)
            .execute(self.tx.conn()?)
            .await
            .map_err(map_err)?;
        if let Some(table) = Growth::inserted_table(sql) {
            *self.inserted.entry(table.to_string()).or_default() += r.rows_affected();
        }
        Ok(r.rows_affected())
    }

    async fn commit_tx(self) -> Result<(), StoreError> {
        let Self { tx, inserted, db } = self;
        tx.commit().await?;
        db.grew(inserted);
        Ok(())
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let rows = query(sql, args)
            .fetch_all(self.tx.conn()?)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
        SqliteTx::execute(self, sql, args).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.commit_tx().await
    }
}
