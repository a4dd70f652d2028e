//! Scratch databases for tests: a fresh SQLite file or a fresh PostgreSQL database each time.

use sqlx::{Connection, Executor};

use crate::StoreError;

/// Where tests find PostgreSQL.
pub fn postgres_base_url() -> String {
    std::env::var("KEYWAY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Create an empty database on the test server and return its URL.
pub async fn scratch_postgres() -> Result<String, StoreError> {
    let base = postgres_base_url();
    let name = format!("keyway_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .map_err(|e| StoreError::Unavailable(format!("PostgreSQL at {base}: {e}")))?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .map_err(crate::sql::map_err)?;
    let (prefix, _) = base
        .rsplit_once('/')
        .ok_or_else(|| StoreError::Config("KEYWAY_TEST_POSTGRES_URL has no database".into()))?;
    Ok(format!("{prefix}/{name}"))
}

/// Drop a database made by `scratch_postgres`.
pub async fn drop_postgres(url: &str) -> Result<(), StoreError> {
    let base = postgres_base_url();
    let Some((_, name)) = url.rsplit_once('/') else {
        return Ok(());
    };
    if !name.starts_with("keyway_t_") {
        return Err(StoreError::Config(
            "refusing to drop a database not made by tests".into(),
        ));
    }
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .map_err(crate::sql::map_err)?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await
    .map_err(crate::sql::map_err)?;
    Ok(())
}

/// Run one statement directly against a database, bypassing every rule of the store: for tests
/// that must tamper with rows (e.g. to prove the audit chain notices).
pub async fn execute_raw(url: &str, sql: &str) -> Result<u64, StoreError> {
    let db: Box<dyn crate::sql::Db> = if url.starts_with("sqlite:") {
        Box::new(crate::sql::sqlite::SqliteDb::open(url).await?)
    } else {
        Box::new(crate::sql::postgres::PgDb::open(url).await?)
    };
    db.execute(sql, vec![]).await
}

/// Make an environment as it was before built-in table `logical_name` existed: its metadata, SQL
/// table and privileges gone (to prove a server start adds it back).
pub async fn forget_builtin_table(
    store: &crate::SqlStore,
    env: &keyway_core::environment::Environment,
    logical_name: &str,
) -> Result<(), StoreError> {
    let mut tx = store.db.begin().await?;
    for sql in [
        "DELETE FROM dv_attributes WHERE environment_id = $1 AND entity = $2",
        "DELETE FROM dv_entities WHERE environment_id = $1 AND logical_name = $2",
    ] {
        tx.execute(sql, vec![env.id.into(), logical_name.into()])
            .await?;
    }
    let privileges: Vec<crate::sql::Value> = keyway_core::dataverse::security::ALL_ACCESS
        .iter()
        .map(|a| a.privilege(logical_name).into())
        .collect();
    for p in privileges {
        tx.execute(
            "DELETE FROM dv_role_privileges WHERE environment_id = $1 AND privilege = $2",
            vec![env.id.into(), p],
        )
        .await?;
    }
    tx.execute(
        &format!(
            "DROP TABLE {}",
            crate::sql::ident(&format!("dv{}_{logical_name}", env.number))
        ),
        vec![],
    )
    .await?;
    tx.commit().await
}
