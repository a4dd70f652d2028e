//! The PostgreSQL backend: one pool; several Keyway nodes may share the database.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Column, Postgres, Row as _, Transaction, TypeInfo, ValueRef};

use super::{Db, Growth, Inserted, Row, Tx, Value, map_err};
use crate::StoreError;

pub struct PgDb {
    pool: PgPool,
    growth: Arc<Growth>,
}

impl PgDb {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(map_err)?;
        Ok(Self {
            pool,
            growth: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn query(sql: &str, args: Vec<Value>) -> sqlx::query::Query<'static, Postgres, PgArguments> {
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

fn decode(row: &PgRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Text(None));
            continue;
        }
        let v = match col.type_info().name() {
            "INT8" => Value::Int(row.try_get(i).map_err(map_err)?),
            "INT4" => Value::Int(
                row.try_get::<Option<i32>, _>(i)
                    .map_err(map_err)?
                    .map(i64::from),
            ),
            "INT2" => Value::Int(
                row.try_get::<Option<i16>, _>(i)
                    .map_err(map_err)?
                    .map(i64::from),
            ),
            "FLOAT8" => Value::Real(row.try_get(i).map_err(map_err)?),
            "TEXT" | "VARCHAR" | "NAME" => Value::Text(row.try_get(i).map_err(map_err)?),
            "BYTEA" => Value::Blob(row.try_get(i).map_err(map_err)?),
            "BOOL" => Value::Bool(row.try_get(i).map_err(map_err)?),
            other => {
                return Err(StoreError::Database(format!(
                    "unexpected PostgreSQL type {other} in column {i}"
                )));
            }
        };
        out.push(v);
    }
    Ok(Row(out))
}

#[async_trait]
impl Db for PgDb {
    async fn fetch(&self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let rows = query(sql, args)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn execute(&self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
        let r = query(sql, args)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if let Some(table) = Growth::inserted_table(sql) {
            self.handle()
                .grew(Inserted::from([(table.to_string(), r.rows_affected())]));
        }
        Ok(r.rows_affected())
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Ok(Box::new(PgTx {
            tx,
            inserted: Inserted::new(),
            db: self.handle(),
        }))
    }

    fn dialect(&self) -> super::Dialect {
        super::Dialect::Postgres
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

impl PgDb {
    fn handle(&self) -> GrowthHandle {
        GrowthHandle {
            pool: self.pool.clone(),
            growth: self.growth.clone(),
        }
    }
}

/// What a transaction needs to ask for ANALYZE once it has committed (autovacuum would, but
/// only a minute or more later, and reads planned meanwhile walk the wrong index).
struct GrowthHandle {
    pool: PgPool,
    growth: Arc<Growth>,
}

impl GrowthHandle {
    fn grew(&self, inserted: Inserted) {
        for table in self.growth.note(&inserted) {
            let (pool, growth) = (self.pool.clone(), self.growth.clone());
            tokio::spawn(async move {
                let r = sqlx::query(AssertSqlSafe(format!("ANALYZE {table}")))
                    .execute(&pool)
                    .await;
                if let Err(e) = &r {
                    tracing::warn!(table, error = %e, "ANALYZE after a bulk load failed");
                }
                growth.analyzed(&table, r.is_ok());
            });
        }
    }
}

struct PgTx {
    tx: Transaction<'static, Postgres>,
    inserted: Inserted,
    db: GrowthHandle,
}

#[async_trait]
impl Tx for PgTx {
    async fn fetch(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let rows = query(sql, args)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode).collect()
    }

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
        let r = query(sql, args)
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        if let Some(table) = Growth::inserted_table(sql) {
            *self.inserted.entry(table.to_string()).or_default() += r.rows_affected();
        }
        Ok(r.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let Self { tx, inserted, db } = *self;
        tx.commit().await.map_err(map_err)?;
        db.grew(inserted);
        Ok(())
    }
}
