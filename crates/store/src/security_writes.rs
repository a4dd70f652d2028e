//! Changes to an environment's security: application users, roles and their privileges, and
//! role assignments — each in one transaction with its audit rows.

use keyway_core::dataverse::audit::{self, AuditAction, AuditContext};
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::privileges::RoleChange;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::{Depth, Privilege};
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
    /// What a role grants, ordered by privilege name.
    async fn role_privileges(
        &self,
        env: &Environment,
        role: Uuid,
    ) -> Result<Vec<Privilege>, StoreError>;
    /// Change what a role grants (read and written in one transaction, audited as an update of
    /// the role); returns the privileges it grants afterwards.
    async fn role_privileges_change(
        &self,
        env: &Environment,
        roles: &EntityDef,
        role: Uuid,
        change: &RoleChange,
        ctx: &AuditContext,
    ) -> Result<Vec<Privilege>, StoreError>;
    /// Take a role from a user (`RowMissing` if they do not hold it).
    async fn role_unassign(
        &self,
        env: &Environment,
        users: &EntityDef,
        user: Uuid,
        role: Uuid,
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// The roles a user holds directly.
    async fn user_roles(&self, env: &Environment, user: Uuid) -> Result<Vec<Uuid>, StoreError>;
}

/// A role's privileges inside a transaction, ordered by name.
async fn privileges_of(
    tx: &mut dyn Tx,
    env_id: Uuid,
    role: Uuid,
) -> Result<Vec<Privilege>, StoreError> {
    let rows = tx
        .fetch(PRIVILEGES_OF_ROLE, vec![env_id.into(), role.into()])
        .await?;
    privilege_rows(&rows)
}

const PRIVILEGES_OF_ROLE: &str = "SELECT privilege, depth FROM dv_role_privileges WHERE environment_id = $1 AND role_id = $2 ORDER BY privilege";

fn privilege_rows(rows: &[crate::sql::Row]) -> Result<Vec<Privilege>, StoreError> {
    rows.iter()
        .map(|r| {
            let depth = r.text(1)?;
            Ok(Privilege {
                name: r.text(0)?,
                depth: Depth::parse(&depth)
                    .ok_or_else(|| StoreError::Database(format!("unknown depth {depth}")))?,
            })
        })
        .collect()
}

/// `prvReadaccount:Organization,…`: how a role's privileges appear in its audit rows.
fn privileges_text(privileges: &[Privilege]) -> FieldValue {
    FieldValue::Text(
        privileges
            .iter()
            .map(|p| format!("{}:{}", p.name, p.depth.name()))
            .collect::<Vec<_>>()
            .join(","),
    )
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
        audited
            .fields
            .insert("privileges".into(), privileges_text(privileges));
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

    async fn role_privileges(
        &self,
        env: &Environment,
        role: Uuid,
    ) -> Result<Vec<Privilege>, StoreError> {
        let rows = self
            .db
            .fetch(PRIVILEGES_OF_ROLE, vec![env.id.into(), role.into()])
            .await?;
        privilege_rows(&rows)
    }

    async fn role_privileges_change(
        &self,
        env: &Environment,
        roles: &EntityDef,
        role: Uuid,
        change: &RoleChange,
        ctx: &AuditContext,
    ) -> Result<Vec<Privilege>, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        let old = privileges_of(&mut *tx, env.id, role).await?;
        let new = change.apply(&old);
        if new == old {
            tx.commit().await?;
            return Ok(new);
        }
        tx.execute(
            "DELETE FROM dv_role_privileges WHERE environment_id = $1 AND role_id = $2",
            vec![env.id.into(), role.into()],
        )
        .await?;
        grant(
            &mut *tx,
            env.id,
            &new.iter().map(|p| (role, p.clone())).collect::<Vec<_>>(),
        )
        .await?;
        let before = Record::new("role").with("privileges", privileges_text(&old));
        let after = Record::new("role").with("privileges", privileges_text(&new));
        append_audit(
            &mut *tx,
            env,
            &audit::entry(
                AuditAction::Update,
                roles,
                role,
                Some(&before),
                Some(&after),
                ctx,
            ),
        )
        .await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(new))
    }

    async fn role_unassign(
        &self,
        env: &Environment,
        users: &EntityDef,
        user: Uuid,
        role: Uuid,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        let gone = tx
            .execute(
                "DELETE FROM dv_user_roles WHERE environment_id = $1 AND systemuser_id = $2 AND role_id = $3",
                vec![env.id.into(), user.into(), role.into()],
            )
            .await?;
        if gone == 0 {
            return Err(StoreError::RowMissing);
        }
        let change = Record::new("systemuser").with("roleid", FieldValue::Id(role));
        let entry = audit::entry(
            AuditAction::RemoveRoleFromUser,
            users,
            user,
            Some(&change),
            None,
            ctx,
        );
        append_audit(&mut *tx, env, &entry).await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn user_roles(&self, env: &Environment, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.db
            .fetch(
                "SELECT role_id FROM dv_user_roles WHERE environment_id = $1 AND systemuser_id = $2 ORDER BY role_id",
                vec![env.id.into(), user.into()],
            )
            .await?
            .iter()
            .map(|r| r.uuid(0))
            .collect()
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
