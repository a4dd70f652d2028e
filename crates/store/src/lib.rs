//! Keyway's storage: the `Store` trait, one implementation written once over a small SQL seam,
//! and the SQLite and PostgreSQL backends chosen from the database URL.

mod connections;
mod data_keys;
mod dataverse;
mod directory;
mod environments;
mod error;
mod flow_run_only;
mod flows;
mod flowservice;
mod migrate;
mod record_writes;
mod records;
mod refresh_tokens;
mod security_writes;
mod sharing;
mod solutions;
pub mod sql;
pub mod testing;

use std::sync::Arc;

pub use connections::{
    ConnectionEvent, ConnectionPermission, ConnectionStore, SealedField, SecretChanges,
};
pub use data_keys::{DataKeyStore, MasterSealed, Reseal, StoredDataKey};
pub use directory::{AssertionUse, ClientRecord, DirectoryStore, StoredSigningKey, TenantBirth};
pub use environments::{EnvironmentStore, RecordList, SystemUserAccess, SystemUserKey};
pub use error::StoreError;
pub use flow_run_only::{RunOnlyGrant, RunOnlyStore};
pub use flows::{
    ActionRow, FlowRow, FlowStore, LocalRuns, RowChange, RunEnd, RunRow, RunStatus, ScheduledFlow,
    StartRun,
};
pub use flowservice::{FlowOrganization, FlowSandbox, FlowServiceStore, PROD_SANDBOX};
pub use record_writes::{AuditCheck, RecordOp, RecordStore, StoredAudit};
pub use refresh_tokens::{RefreshState, RefreshTokenStore, Rotation, StoredRefreshToken};
pub use security_writes::SecurityStore;
pub use sharing::{ShareChange, ShareGrant, SharingStore, TeamLink};
pub use solutions::{ComponentRow, SolutionRow, SolutionStore};

use sql::Db;

/// Everything the server persists. Each method is one atomic use case.
pub trait Store: DirectoryStore + EnvironmentStore + Send + Sync {}

/// The one implementation of `Store`, over whichever backend the URL chose.
pub struct SqlStore {
    db: Box<dyn Db>,
    /// Bumped by every committed change to applications, credentials, principals, role
    /// assignments or environments, so caches of them know they are stale.
    generation: std::sync::atomic::AtomicU64,
    /// This process's run worker, which takes the runs its own row changes trigger.
    local_runs: flows::LocalSlot,
}

impl Store for SqlStore {}

impl SqlStore {
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// Changes to the directory made through this store so far (this process only).
    pub fn directory_generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Pass a write's result through, counting a successful change for caches.
    fn changed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        result
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.fetch("SELECT 1", vec![]).await.map(|_| ())
    }
}

/// Open the database named by `url` (`sqlite://…` or `postgres://…`) and bring its schema up
/// to date. Several nodes may do this at once on PostgreSQL (the migrator takes a lock).
pub async fn open(url: &str) -> Result<Arc<SqlStore>, StoreError> {
    let db: Box<dyn Db> = if url.starts_with("sqlite:") {
        let db = sql::sqlite::SqliteDb::open(url).await?;
        migrate::sqlite(db.writer_pool()).await?;
        Box::new(db)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let db = sql::postgres::PgDb::open(url).await?;
        migrate::postgres(db.pool()).await?;
        Box::new(db)
    } else {
        return Err(StoreError::Config(
            "the database URL must start with sqlite:// or postgres://".into(),
        ));
    };
    Ok(Arc::new(SqlStore {
        db,
        generation: Default::default(),
        local_runs: Default::default(),
    }))
}
