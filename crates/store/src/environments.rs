//! Environments in storage: made with a server-unique number that names their SQL tables.

use async_trait::async_trait;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::environment::Environment;
use uuid::Uuid;

use crate::sql::Row;
use crate::{SqlStore, StoreError};

#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Store a new environment with its tables; its `number` is chosen here (the one given is
    /// ignored). The environment row, its metadata and its SQL tables are made in one transaction.
    async fn environment_create(
        &self,
        env: &Environment,
        tables: &[EntityDef],
    ) -> Result<Environment, StoreError>;
    /// The environment's tables and columns.
    async fn environment_tables(&self, env_id: Uuid) -> Result<Vec<EntityDef>, StoreError>;
    async fn environment_get(&self, id: Uuid) -> Result<Option<Environment>, StoreError>;
    async fn environment_by_name(&self, name: &str) -> Result<Option<Environment>, StoreError>;
    async fn environment_list(&self, tenant_id: Uuid) -> Result<Vec<Environment>, StoreError>;
    async fn environment_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
}

const COLS: &str = "id, tenant_id, name, number, created_by, created_at";

fn env_from(r: &Row) -> Result<Environment, StoreError> {
    Ok(Environment {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        name: r.text(2)?,
        number: r.int(3)?,
        created_by: r.uuid(4)?,
        created_at: r.time(5)?,
    })
}

#[async_trait]
impl EnvironmentStore for SqlStore {
    async fn environment_create(
        &self,
        env: &Environment,
        tables: &[EntityDef],
    ) -> Result<Environment, StoreError> {
        let mut tx = self.db.begin().await?;
        // Numbers are never reused, so a deleted environment's tables cannot be mistaken for a
        // new one's. Two nodes racing here collide on the primary key: one of them retries.
        let next = tx
            .fetch(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM environment_numbers",
                vec![],
            )
            .await?
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(1);
        tx.execute(
            "INSERT INTO environment_numbers (number) VALUES ($1)",
            vec![next.into()],
        )
        .await?;
        tx.execute(
            &format!("INSERT INTO environments ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            vec![
                env.id.into(),
                env.tenant_id.into(),
                env.name.clone().into(),
                next.into(),
                env.created_by.into(),
                env.created_at.into(),
            ],
        )
        .await?;
        crate::dataverse::provision(&mut *tx, self.db.dialect(), env.id, next, tables).await?;
        tx.commit().await?;
        self.changed(Ok(()))?;
        Ok(Environment {
            number: next,
            ..env.clone()
        })
    }

    async fn environment_get(&self, id: Uuid) -> Result<Option<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(env_from)
            .transpose()
    }

    async fn environment_by_name(&self, name: &str) -> Result<Option<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE name = $1"),
                vec![name.into()],
            )
            .await?
            .first()
            .map(env_from)
            .transpose()
    }

    async fn environment_list(&self, tenant_id: Uuid) -> Result<Vec<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE tenant_id = $1 ORDER BY name"),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(env_from)
            .collect()
    }

    async fn environment_tables(&self, env_id: Uuid) -> Result<Vec<EntityDef>, StoreError> {
        let entities = self
            .db
            .fetch(crate::dataverse::ENTITY_QUERY, vec![env_id.into()])
            .await?;
        let attributes = self
            .db
            .fetch(crate::dataverse::ATTRIBUTE_QUERY, vec![env_id.into()])
            .await?;
        crate::dataverse::load(entities, attributes)
    }

    async fn environment_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let Some(env) = self
            .environment_get(id)
            .await?
            .filter(|e| e.tenant_id == tenant_id)
        else {
            return Ok(false);
        };
        let tables = self.environment_tables(id).await?;
        let mut tx = self.db.begin().await?;
        crate::dataverse::drop_tables(&mut *tx, env.number, &tables).await?;
        let n = tx
            .execute(
                "DELETE FROM environments WHERE tenant_id = $1 AND id = $2",
                vec![tenant_id.into(), id.into()],
            )
            .await?;
        tx.commit().await?;
        self.changed(Ok(n > 0))
    }
}
