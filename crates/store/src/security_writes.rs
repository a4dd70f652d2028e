//! Changes to an environment's security: application users, roles and their privileges, and
//! role assignments — each in one transaction with its audit rows.

use keyway_core::dataverse::audit::{self, AuditAction, AuditContext};
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::Privilege;
use keyway_core::environment::Environment;
use uuid::Uuid;

use crate::record_writes::{append_audit, lock_environment};
use crate::sql::{Tx, ident};
use crate::{SqlStore, StoreError};

/// Rows of `dv_role_privileges`: what each role grants.
pub(crate) async fn grant(
    tx: &mut dyn Tx,
    env_id: Uuid,
    grants: &[(Uuid, Privilege)],
) -> Result<(), StoreError> {
    for (role, p) in grants {
        tx.execute(
            "INSERT INTO dv_role_privileges (environment_id, role_id, privilege, depth) VALUES ($1, $2, $3, $4)",
            vec![env_id.into(), (*role).into(), p.name.clone().into(), p.depth.name().into()],
        )
        .await?;
    }
    Ok(())
}

/// A row of `dv_user_roles`: a user holds a role.
pub(crate) async fn hold(
    tx: &mut dyn Tx,
    env_id: Uuid,
    user: Uuid,
    role: Uuid,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO dv_user_roles (environment_id, systemuser_id, role_id) VALUES ($1, $2, $3)",
        vec![env_id.into(), user.into(), role.into()],
    )
    .await
    .map(|_| ())
}

async fn add_role(
    tx: &mut dyn Tx,
    env: &Environment,
    users: &EntityDef,
    user: Uuid,
    role: Uuid,
    ctx: &AuditContext,
) -> Result<(), StoreError> {
    hold(tx, env.id, user, role).await?;
    let change = Record::new("systemuser").with("roleid", FieldValue::Id(role));
    let entry = audit::entry(
        AuditAction::AssignRoleToUser,
        users,
        user,
        None,
        Some(&change),
        ctx,
    );
    append_audit(tx, env, &entry).await
}

#[async_trait::async_trait]
pub trait SecurityStore: Send + Sync {
    /// A new system user (one per application per environment) holding `roles`.
    async fn systemuser_create(
        &self,
        env: &Environment,
        users: &EntityDef,
        record: &Record,
        roles: &[Uuid],
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// A new role with its privileges.
    async fn role_create(
        &self,
        env: &Environment,
        roles: &EntityDef,
        record: &Record,
        privileges: &[Privilege],
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// Give a user a role (a no-op error if they hold it: Conflict).
    async fn role_assign(
        &self,
        env: &Environment,
        users: &EntityDef,
        user: Uuid,
        role: Uuid,
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// A new table, with privileges on it granted to roles (System Administrator and System
    /// Customizer get every privilege on a new custom table, as in Dataverse).
    async fn table_create(
        &self,
        env: &Environment,
        table: &EntityDef,
        grants: &[(Uuid, Privilege)],
    ) -> Result<(), StoreError>;
    /// A new column on a table.
    async fn column_add(
        &self,
        env: &Environment,
        table: &EntityDef,
        column: &keyway_core::dataverse::metadata::AttributeDef,
    ) -> Result<(), StoreError>;
    /// Every role: (id, name).
    async fn roles(&self, env: &Environment) -> Result<Vec<(Uuid, String)>, StoreError>;
}

#[async_trait::async_trait]
impl SecurityStore for SqlStore {
    async fn table_create(
        &self,
        env: &Environment,
        table: &EntityDef,
        grants: &[(Uuid, Privilege)],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        crate::dataverse::insert_entity_and_table(
            &mut *tx,
            self.db.dialect(),
            env.id,
            env.number,
            table,
        )
        .await?;
        grant(&mut *tx, env.id, grants).await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn column_add(
        &self,
        env: &Environment,
        table: &EntityDef,
        column: &keyway_core::dataverse::metadata::AttributeDef,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        crate::dataverse::add_attribute(
            &mut *tx,
            self.db.dialect(),
            env.id,
            env.number,
            table,
            column,
        )
        .await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn systemuser_create(
        &self,
        env: &Environment,
        users: &EntityDef,
        record: &Record,
        roles: &[Uuid],
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        if let Some(FieldValue::Id(app)) = record.fields.get("applicationid") {
            let table = ident(&users.sql_table(env.number));
            let existing = tx
                .fetch(
                    &format!("SELECT systemuserid FROM {table} WHERE applicationid = $1"),
                    vec![(*app).into()],
                )
                .await?;
            if !existing.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "application {app} already has an application user"
                )));
            }
        }
        crate::records::insert(&mut *tx, env.number, users, record).await?;
        let id = record
            .id(&users.primary_id)
            .ok_or_else(|| StoreError::Database("a new user needs its id".into()))?;
        append_audit(
            &mut *tx,
            env,
            &audit::entry(AuditAction::Create, users, id, None, Some(record), ctx),
        )
        .await?;
        for role in roles {
            add_role(&mut *tx, env, users, id, *role, ctx).await?;
        }
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn role_create(
        &self,
        env: &Environment,
        roles: &EntityDef,
        record: &Record,
        privileges: &[Privilege],
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        crate::records::insert(&mut *tx, env.number, roles, record).await?;
        let id = record
            .id(&roles.primary_id)
            .ok_or_else(|| StoreError::Database("a new role needs its id".into()))?;
        grant(
            &mut *tx,
            env.id,
            &privileges
                .iter()
                .map(|p| (id, p.clone()))
                .collect::<Vec<_>>(),
        )
        .await?;
        let mut audited = record.clone();
        audited.fields.insert(
            "privileges".into(),
            FieldValue::Text(
                privileges
                    .iter()
                    .map(|p| format!("{}:{}", p.name, p.depth.name()))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        );
        append_audit(
            &mut *tx,
            env,
            &audit::entry(AuditAction::Create, roles, id, None, Some(&audited), ctx),
        )
        .await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn role_assign(
        &self,
        env: &Environment,
        users: &EntityDef,
        user: Uuid,
        role: Uuid,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        add_role(&mut *tx, env, users, user, role, ctx).await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn roles(&self, env: &Environment) -> Result<Vec<(Uuid, String)>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT roleid, name FROM {} ORDER BY name",
                    ident(&format!("dv{}_role", env.number))
                ),
                vec![],
            )
            .await?
            .iter()
            .map(|r| Ok((r.uuid(0)?, r.text(1)?)))
            .collect()
    }
}
