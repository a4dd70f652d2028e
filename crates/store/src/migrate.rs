//! Schema migrations for both backends, embedded in the binary with matching version numbers.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::StoreError;

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("migrations/sqlite/0001_directory.sql"),
    ),
    (
        2,
        "environments",
        include_str!("migrations/sqlite/0002_environments.sql"),
    ),
    (
        3,
        "dataverse metadata",
        include_str!("migrations/sqlite/0003_dataverse_metadata.sql"),
    ),
    (
        4,
        "dataverse security",
        include_str!("migrations/sqlite/0004_dataverse_security.sql"),
    ),
    (
        5,
        "dataverse audit",
        include_str!("migrations/sqlite/0005_dataverse_audit.sql"),
    ),
    (
        6,
        "dataverse options",
        include_str!("migrations/sqlite/0006_dataverse_options.sql"),
    ),
    (
        7,
        "dataverse guests",
        include_str!("migrations/sqlite/0007_dataverse_guests.sql"),
    ),
    (
        8,
        "dataverse teams and sharing",
        include_str!("migrations/sqlite/0008_dataverse_teams_sharing.sql"),
    ),
    (
        10,
        "connections",
        include_str!("migrations/sqlite/0010_connections.sql"),
    ),
    (
        11,
        "data keys",
        include_str!("migrations/sqlite/0011_data_keys.sql"),
    ),
    (
        12,
        "flow service",
        include_str!("migrations/sqlite/0012_flowservice.sql"),
    ),
    (
        13,
        "refresh tokens",
        include_str!("migrations/sqlite/0013_refresh_tokens.sql"),
    ),
    (
        14,
        "flows",
        include_str!("migrations/sqlite/0014_flows.sql"),
    ),
    (
        15,
        "solutions",
        include_str!("migrations/sqlite/0015_solutions.sql"),
    ),
    (
        16,
        "flow run-only users",
        include_str!("migrations/sqlite/0016_flow_run_only.sql"),
    ),
    (
        17,
        "flow schedules",
        include_str!("migrations/sqlite/0017_flow_schedules.sql"),
    ),
    (
        18,
        "connection proof",
        include_str!("migrations/sqlite/0018_connection_proof.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("migrations/postgres/0001_directory.sql"),
    ),
    (
        2,
        "environments",
        include_str!("migrations/postgres/0002_environments.sql"),
    ),
    (
        3,
        "dataverse metadata",
        include_str!("migrations/postgres/0003_dataverse_metadata.sql"),
    ),
    (
        4,
        "dataverse security",
        include_str!("migrations/postgres/0004_dataverse_security.sql"),
    ),
    (
        5,
        "dataverse audit",
        include_str!("migrations/postgres/0005_dataverse_audit.sql"),
    ),
    (
        6,
        "dataverse options",
        include_str!("migrations/postgres/0006_dataverse_options.sql"),
    ),
    (
        7,
        "dataverse guests",
        include_str!("migrations/postgres/0007_dataverse_guests.sql"),
    ),
    (
        8,
        "dataverse teams and sharing",
        include_str!("migrations/postgres/0008_dataverse_teams_sharing.sql"),
    ),
    (
        10,
        "connections",
        include_str!("migrations/postgres/0010_connections.sql"),
    ),
    (
        11,
        "data keys",
        include_str!("migrations/postgres/0011_data_keys.sql"),
    ),
    (
        12,
        "flow service",
        include_str!("migrations/postgres/0012_flowservice.sql"),
    ),
    (
        13,
        "refresh tokens",
        include_str!("migrations/postgres/0013_refresh_tokens.sql"),
    ),
    (
        14,
        "flows",
        include_str!("migrations/postgres/0014_flows.sql"),
    ),
    (
        15,
        "solutions",
        include_str!("migrations/postgres/0015_solutions.sql"),
    ),
    (
        16,
        "flow run-only users",
        include_str!("migrations/postgres/0016_flow_run_only.sql"),
    ),
    (
        17,
        "flow schedules",
        include_str!("migrations/postgres/0017_flow_schedules.sql"),
    ),
    (
        18,
        "connection proof",
        include_str!("migrations/postgres/0018_connection_proof.sql"),
    ),
];

fn migrator(list: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn map(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Database(format!("migration failed: {e}"))
}

pub async fn sqlite(pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    migrator(SQLITE).run(pool).await.map_err(map)
}

pub async fn postgres(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    migrator(POSTGRES).run(pool).await.map_err(map)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_versions() {
        let a: Vec<i64> = super::SQLITE.iter().map(|m| m.0).collect();
        let b: Vec<i64> = super::POSTGRES.iter().map(|m| m.0).collect();
        assert_eq!(a, b);
    }
}
