//! Solutions: a named, versioned list of an environment's components (kind and name), read when
//! the solution is exported. An import writes the solution and its list in one transaction.

use async_trait::async_trait;
use keyway_core::environment::Environment;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::Row;
use crate::{SqlStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolutionRow {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub unique_name: String,
    pub friendly_name: String,
    pub publisher_prefix: String,
    /// `major.minor.build.revision`.
    pub version: String,
    /// The system user who made it.
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub modified_at: OffsetDateTime,
}

/// One component of a solution: its kind (`table`, `role`, `flow`, `connectionreference`,
/// `environmentvariable`) and the name that finds it in the environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ComponentRow {
    pub kind: String,
    pub name: String,
}

#[async_trait]
pub trait SolutionStore: Send + Sync {
    /// A new solution (`Conflict` when the environment has one of that unique name).
    async fn solution_create(&self, s: &SolutionRow) -> Result<(), StoreError>;
    /// Write the solution (made or replaced by unique name) with exactly these components.
    async fn solution_put(
        &self,
        s: &SolutionRow,
        components: &[ComponentRow],
    ) -> Result<(), StoreError>;
    /// Change its display name, version and modification time.
    async fn solution_update(&self, s: &SolutionRow) -> Result<(), StoreError>;
    async fn solution_get(
        &self,
        environment_id: Uuid,
        unique_name: &str,
    ) -> Result<Option<SolutionRow>, StoreError>;
    async fn solution_list(&self, environment_id: Uuid) -> Result<Vec<SolutionRow>, StoreError>;
    /// Its components, ordered by kind and name.
    async fn solution_components(&self, id: Uuid) -> Result<Vec<ComponentRow>, StoreError>;
    /// Add a component (adding one twice changes nothing).
    async fn solution_component_add(&self, id: Uuid, c: &ComponentRow) -> Result<(), StoreError>;
    /// Remove a component; false when the solution did not hold it.
    async fn solution_component_remove(
        &self,
        id: Uuid,
        c: &ComponentRow,
    ) -> Result<bool, StoreError>;
    /// Every environment on this server (for bringing each up to date at start).
    async fn environments_all(&self) -> Result<Vec<Environment>, StoreError>;
}

const COLS: &str = "id, environment_id, unique_name, friendly_name, publisher_prefix, version, created_by, created_at, modified_at";

fn solution_from(r: &Row) -> Result<SolutionRow, StoreError> {
    Ok(SolutionRow {
        id: r.uuid(0)?,
        environment_id: r.uuid(1)?,
        unique_name: r.text(2)?,
        friendly_name: r.text(3)?,
        publisher_prefix: r.text(4)?,
        version: r.text(5)?,
        created_by: r.uuid(6)?,
        created_at: r.time(7)?,
        modified_at: r.time(8)?,
    })
}

fn args(s: &SolutionRow) -> Vec<crate::sql::Value> {
    vec![
        s.id.into(),
        s.environment_id.into(),
        s.unique_name.clone().into(),
        s.friendly_name.clone().into(),
        s.publisher_prefix.clone().into(),
        s.version.clone().into(),
        s.created_by.into(),
        s.created_at.into(),
        s.modified_at.into(),
    ]
}

const INSERT: &str = "INSERT INTO solutions (id, environment_id, unique_name, friendly_name, publisher_prefix, version, created_by, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

#[async_trait]
impl SolutionStore for SqlStore {
    async fn solution_create(&self, s: &SolutionRow) -> Result<(), StoreError> {
        self.db.execute(INSERT, args(s)).await.map(|_| ())
    }

    async fn solution_put(
        &self,
        s: &SolutionRow,
        components: &[ComponentRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let existing = tx
            .fetch(
                "SELECT id FROM solutions WHERE environment_id = $1 AND unique_name = $2",
                vec![s.environment_id.into(), s.unique_name.clone().into()],
            )
            .await?;
        let id = match existing.first() {
            Some(r) => {
                let id = r.uuid(0)?;
                tx.execute(
                    "UPDATE solutions SET friendly_name = $2, publisher_prefix = $3, version = $4, modified_at = $5 WHERE id = $1",
                    vec![
                        id.into(),
                        s.friendly_name.clone().into(),
                        s.publisher_prefix.clone().into(),
                        s.version.clone().into(),
                        s.modified_at.into(),
                    ],
                )
                .await?;
                tx.execute(
                    "DELETE FROM solution_components WHERE solution_id = $1",
                    vec![id.into()],
                )
                .await?;
                id
            }
            None => {
                tx.execute(INSERT, args(s)).await?;
                s.id
            }
        };
        for c in components {
            tx.execute(
                "INSERT INTO solution_components (solution_id, kind, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![id.into(), c.kind.clone().into(), c.name.clone().into()],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn solution_update(&self, s: &SolutionRow) -> Result<(), StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE solutions SET friendly_name = $2, version = $3, modified_at = $4 WHERE id = $1",
                vec![
                    s.id.into(),
                    s.friendly_name.clone().into(),
                    s.version.clone().into(),
                    s.modified_at.into(),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::RowMissing);
        }
        Ok(())
    }

    async fn solution_get(
        &self,
        environment_id: Uuid,
        unique_name: &str,
    ) -> Result<Option<SolutionRow>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {COLS} FROM solutions WHERE environment_id = $1 AND unique_name = $2"
                ),
                vec![environment_id.into(), unique_name.into()],
            )
            .await?
            .first()
            .map(solution_from)
            .transpose()
    }

    async fn solution_list(&self, environment_id: Uuid) -> Result<Vec<SolutionRow>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {COLS} FROM solutions WHERE environment_id = $1 ORDER BY unique_name"
                ),
                vec![environment_id.into()],
            )
            .await?
            .iter()
            .map(solution_from)
            .collect()
    }

    async fn solution_components(&self, id: Uuid) -> Result<Vec<ComponentRow>, StoreError> {
        self.db
            .fetch(
                "SELECT kind, name FROM solution_components WHERE solution_id = $1 ORDER BY kind, name",
                vec![id.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ComponentRow {
                    kind: r.text(0)?,
                    name: r.text(1)?,
                })
            })
            .collect()
    }

    async fn solution_component_add(&self, id: Uuid, c: &ComponentRow) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO solution_components (solution_id, kind, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![id.into(), c.kind.clone().into(), c.name.clone().into()],
            )
            .await
            .map(|_| ())
    }

    async fn solution_component_remove(
        &self,
        id: Uuid,
        c: &ComponentRow,
    ) -> Result<bool, StoreError> {
        Ok(self
            .db
            .execute(
                "DELETE FROM solution_components WHERE solution_id = $1 AND kind = $2 AND name = $3",
                vec![id.into(), c.kind.clone().into(), c.name.clone().into()],
            )
            .await?
            > 0)
    }

    async fn environments_all(&self) -> Result<Vec<Environment>, StoreError> {
        self.db
            .fetch(
                "SELECT id, tenant_id, name, number, created_by, created_at FROM environments ORDER BY number",
                vec![],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(Environment {
                    id: r.uuid(0)?,
                    tenant_id: r.uuid(1)?,
                    name: r.text(2)?,
                    number: r.int(3)?,
                    created_by: r.uuid(4)?,
                    created_at: r.time(5)?,
                })
            })
            .collect()
    }
}
