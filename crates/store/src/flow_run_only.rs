//! Run-only users of flows: the system users and teams a flow's owner lets start it without
//! reading or editing it (seed 004). Rows go with their flow.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::Row;
use crate::{SqlStore, StoreError};

/// One grant of run-only permission on a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOnlyGrant {
    pub flow_id: Uuid,
    /// A system user's or a team's id in the flow's environment.
    pub principal_id: Uuid,
    /// `systemuser` or `team`.
    pub principal_kind: String,
    /// The system user who granted it.
    pub granted_by: Uuid,
    pub granted_at: OffsetDateTime,
}

#[async_trait]
pub trait RunOnlyStore: Send + Sync {
    /// Grant (or grant again: the first grant stands); false when it already existed.
    async fn run_only_grant(&self, g: &RunOnlyGrant) -> Result<bool, StoreError>;
    /// Revoke; false when there was nothing to revoke.
    async fn run_only_revoke(&self, flow_id: Uuid, principal_id: Uuid) -> Result<bool, StoreError>;
    /// A flow's grants, oldest first.
    async fn run_only_list(&self, flow_id: Uuid) -> Result<Vec<RunOnlyGrant>, StoreError>;
    /// Whether any of `principals` (a user and their teams) may run the flow.
    async fn run_only_allows(&self, flow_id: Uuid, principals: &[Uuid])
    -> Result<bool, StoreError>;
    /// The flows any of `principals` (a user and their teams) may run.
    async fn run_only_flows(&self, principals: &[Uuid]) -> Result<Vec<Uuid>, StoreError>;
}

const COLS: &str = "flow_id, principal_id, principal_kind, granted_by, granted_at";

fn grant_from(r: &Row) -> Result<RunOnlyGrant, StoreError> {
    Ok(RunOnlyGrant {
        flow_id: r.uuid(0)?,
        principal_id: r.uuid(1)?,
        principal_kind: r.text(2)?,
        granted_by: r.uuid(3)?,
        granted_at: r.time(4)?,
    })
}

#[async_trait]
impl RunOnlyStore for SqlStore {
    async fn run_only_grant(&self, g: &RunOnlyGrant) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                &format!(
                    "INSERT INTO flow_run_only ({COLS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                ),
                vec![
                    g.flow_id.into(),
                    g.principal_id.into(),
                    g.principal_kind.clone().into(),
                    g.granted_by.into(),
                    g.granted_at.into(),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn run_only_revoke(&self, flow_id: Uuid, principal_id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "DELETE FROM flow_run_only WHERE flow_id = $1 AND principal_id = $2",
                vec![flow_id.into(), principal_id.into()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn run_only_list(&self, flow_id: Uuid) -> Result<Vec<RunOnlyGrant>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {COLS} FROM flow_run_only WHERE flow_id = $1 ORDER BY granted_at, principal_id"
                ),
                vec![flow_id.into()],
            )
            .await?
            .iter()
            .map(grant_from)
            .collect()
    }

    async fn run_only_allows(
        &self,
        flow_id: Uuid,
        principals: &[Uuid],
    ) -> Result<bool, StoreError> {
        if principals.is_empty() {
            return Ok(false);
        }
        let marks: Vec<String> = (0..principals.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let mut args = vec![flow_id.into()];
        args.extend(principals.iter().map(|p| (*p).into()));
        let rows = self
            .db
            .fetch(
                &format!(
                    "SELECT 1 FROM flow_run_only WHERE flow_id = $1 AND principal_id IN ({}) LIMIT 1",
                    marks.join(", ")
                ),
                args,
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn run_only_flows(&self, principals: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        if principals.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=principals.len()).map(|i| format!("${i}")).collect();
        let args = principals.iter().map(|p| (*p).into()).collect();
        self.db
            .fetch(
                &format!(
                    "SELECT DISTINCT flow_id FROM flow_run_only WHERE principal_id IN ({})",
                    marks.join(", ")
                ),
                args,
            )
            .await?
            .iter()
            .map(|r| r.uuid(0))
            .collect()
    }
}
