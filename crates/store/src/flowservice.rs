//! The Flow Service's organizations (each bound to one tenant) and their sandboxes; deleting a
//! sandbox deletes the connections that live in it, in the same transaction.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::Row;
use crate::{SqlStore, StoreError};

/// An organization (`<id>@AdobeOrg`) whose callers are the principals of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowOrganization {
    pub id: String,
    pub tenant_id: Uuid,
    pub display_name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSandbox {
    pub org_id: String,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// The sandbox every organization is born with (and requests without `x-sandbox-name` use).
pub const PROD_SANDBOX: &str = "prod";

#[async_trait::async_trait]
pub trait FlowServiceStore: Send + Sync {
    /// A new organization with its `prod` sandbox; `Conflict` when the id is taken.
    async fn flow_org_create(&self, org: &FlowOrganization) -> Result<(), StoreError>;
    async fn flow_org_get(&self, id: &str) -> Result<Option<FlowOrganization>, StoreError>;
    /// Every organization, or those bound to one tenant.
    async fn flow_org_list(
        &self,
        tenant_id: Option<Uuid>,
    ) -> Result<Vec<FlowOrganization>, StoreError>;
    /// `Conflict` when the organization already has a sandbox of that name.
    async fn flow_sandbox_create(&self, sandbox: &FlowSandbox) -> Result<(), StoreError>;
    async fn flow_sandbox_get(
        &self,
        org_id: &str,
        name: &str,
    ) -> Result<Option<FlowSandbox>, StoreError>;
    /// `prod` first, then by name.
    async fn flow_sandbox_list(&self, org_id: &str) -> Result<Vec<FlowSandbox>, StoreError>;
    /// Delete a sandbox and its connections; `false` when there was none.
    async fn flow_sandbox_delete(&self, org_id: &str, name: &str) -> Result<bool, StoreError>;
}

fn org_from(r: &Row) -> Result<FlowOrganization, StoreError> {
    Ok(FlowOrganization {
        id: r.text(0)?,
        tenant_id: r.uuid(1)?,
        display_name: r.text(2)?,
        created_at: r.time(3)?,
    })
}

fn sandbox_from(r: &Row) -> Result<FlowSandbox, StoreError> {
    Ok(FlowSandbox {
        org_id: r.text(0)?,
        name: r.text(1)?,
        created_at: r.time(2)?,
    })
}

const ORG_COLS: &str = "id, tenant_id, display_name, created_at";

#[async_trait::async_trait]
impl FlowServiceStore for SqlStore {
    async fn flow_org_create(&self, org: &FlowOrganization) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            &format!("INSERT INTO flowservice_orgs ({ORG_COLS}) VALUES ($1, $2, $3, $4)"),
            vec![
                org.id.clone().into(),
                org.tenant_id.into(),
                org.display_name.clone().into(),
                org.created_at.into(),
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO flowservice_sandboxes (org_id, name, created_at) VALUES ($1, $2, $3)",
            vec![
                org.id.clone().into(),
                PROD_SANDBOX.into(),
                org.created_at.into(),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn flow_org_get(&self, id: &str) -> Result<Option<FlowOrganization>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {ORG_COLS} FROM flowservice_orgs WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(org_from)
            .transpose()
    }

    async fn flow_org_list(
        &self,
        tenant_id: Option<Uuid>,
    ) -> Result<Vec<FlowOrganization>, StoreError> {
        let rows = match tenant_id {
            Some(t) => self
                .db
                .fetch(
                    &format!(
                        "SELECT {ORG_COLS} FROM flowservice_orgs WHERE tenant_id = $1 ORDER BY id"
                    ),
                    vec![t.into()],
                )
                .await?,
            None => {
                self.db
                    .fetch(
                        &format!("SELECT {ORG_COLS} FROM flowservice_orgs ORDER BY id"),
                        vec![],
                    )
                    .await?
            }
        };
        rows.iter().map(org_from).collect()
    }

    async fn flow_sandbox_create(&self, sandbox: &FlowSandbox) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO flowservice_sandboxes (org_id, name, created_at) VALUES ($1, $2, $3)",
                vec![
                    sandbox.org_id.clone().into(),
                    sandbox.name.clone().into(),
                    sandbox.created_at.into(),
                ],
            )
            .await
            .map(|_| ())
    }

    async fn flow_sandbox_get(
        &self,
        org_id: &str,
        name: &str,
    ) -> Result<Option<FlowSandbox>, StoreError> {
        self.db
            .fetch(
                "SELECT org_id, name, created_at FROM flowservice_sandboxes WHERE org_id = $1 AND name = $2",
                vec![org_id.into(), name.into()],
            )
            .await?
            .first()
            .map(sandbox_from)
            .transpose()
    }

    async fn flow_sandbox_list(&self, org_id: &str) -> Result<Vec<FlowSandbox>, StoreError> {
        self.db
            .fetch(
                "SELECT org_id, name, created_at FROM flowservice_sandboxes WHERE org_id = $1 ORDER BY CASE WHEN name = 'prod' THEN 0 ELSE 1 END, name",
                vec![org_id.into()],
            )
            .await?
            .iter()
            .map(sandbox_from)
            .collect()
    }

    async fn flow_sandbox_delete(&self, org_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                "DELETE FROM flowservice_sandboxes WHERE org_id = $1 AND name = $2",
                vec![org_id.into(), name.into()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        // Its connections go with it (their secrets and grants cascade; events stay as history).
        tx.execute(
            "DELETE FROM connections WHERE api = 'flowservice' AND scope = $1",
            vec![format!("{org_id}/{name}").into()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
