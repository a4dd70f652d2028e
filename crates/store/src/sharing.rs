//! Sharing rows with users and teams, and team membership and team roles — each change in one
//! transaction with its audit row, checked there against the caller's scopes.

use keyway_core::dataverse::audit::{self, AuditAction, AuditContext};
use keyway_core::dataverse::authz::RowScope;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::environment::Environment;
use uuid::Uuid;

use crate::record_writes::{admit, append_audit, lock_environment};
use crate::{SqlStore, StoreError};

/// Whom a row is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGrant {
    pub principal: Uuid,
    /// `systemuser` or `team`.
    pub principal_type: String,
    pub access_mask: u32,
}

/// A change to a row's sharing.
#[derive(Debug, Clone)]
pub struct ShareChange<'a> {
    pub entity: &'a EntityDef,
    pub id: Uuid,
    pub principal: Uuid,
    pub principal_type: &'a str,
    /// The new rights; `None` revokes every right.
    pub mask: Option<u32>,
    /// Every scope the row must be in for the caller to make this change (Share, and each right
    /// granted: nobody shares what they cannot do themselves).
    pub scopes: Vec<RowScope>,
}

/// Team membership or a team's role, added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamLink {
    Member(Uuid),
    Role(Uuid),
}

#[async_trait::async_trait]
pub trait SharingStore: Send + Sync {
    /// Grant, modify or revoke one principal's rights on a row; audited as Share, Modify Share
    /// or Unshare. Revoking what was never granted is `RowMissing`.
    async fn share_change(
        &self,
        env: &Environment,
        change: &ShareChange<'_>,
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// Everyone a row is shared with.
    async fn shares_of(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
    ) -> Result<Vec<ShareGrant>, StoreError>;
    /// Add (or remove) a member or a role of a team; audited on the team. Adding what is there
    /// is `Conflict`; removing what is not is `RowMissing`.
    async fn team_link(
        &self,
        env: &Environment,
        teams: &EntityDef,
        team: Uuid,
        link: TeamLink,
        add: bool,
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// The members (systemuser ids) of a team.
    async fn team_members(&self, env: &Environment, team: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// The roles (role ids) a team holds.
    async fn team_roles(&self, env: &Environment, team: Uuid) -> Result<Vec<Uuid>, StoreError>;
}

#[async_trait::async_trait]
impl SharingStore for SqlStore {
    async fn share_change(
        &self,
        env: &Environment,
        c: &ShareChange<'_>,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        let scopes: Vec<&RowScope> = c.scopes.iter().collect();
        admit(&mut *tx, env, c.entity, c.id, &scopes, None).await?;
        let table = c.entity.sql_table(env.number);
        let key = || -> Vec<crate::sql::Value> {
            vec![table.clone().into(), c.id.into(), c.principal.into()]
        };
        let before = tx
            .fetch(
                "SELECT access_mask FROM dv_shares WHERE table_name = $1 AND object_id = $2 AND principal_id = $3",
                key(),
            )
            .await?
            .first()
            .map(|r| r.int(0))
            .transpose()?;
        let action = match (before, c.mask) {
            (None, None) => return Err(StoreError::RowMissing),
            (None, Some(mask)) => {
                let mut args = key();
                args.extend([
                    c.principal_type.to_string().into(),
                    i64::from(mask).into(),
                    env.id.into(),
                ]);
                tx.execute(
                    "INSERT INTO dv_shares (table_name, object_id, principal_id, principal_type, access_mask, environment_id) VALUES ($1, $2, $3, $4, $5, $6)",
                    args,
                )
                .await?;
                AuditAction::Share
            }
            (Some(_), Some(mask)) => {
                let mut args = key();
                args.push(i64::from(mask).into());
                tx.execute(
                    "UPDATE dv_shares SET access_mask = $4 WHERE table_name = $1 AND object_id = $2 AND principal_id = $3",
                    args,
                )
                .await?;
                AuditAction::ModifyShare
            }
            (Some(_), None) => {
                tx.execute(
                    "DELETE FROM dv_shares WHERE table_name = $1 AND object_id = $2 AND principal_id = $3",
                    key(),
                )
                .await?;
                AuditAction::Unshare
            }
        };
        let grant = |mask: Option<i64>| {
            let mut r = Record::new(&c.entity.logical_name);
            r.fields
                .insert("principalid".into(), FieldValue::Id(c.principal));
            r.fields.insert(
                "principaltype".into(),
                FieldValue::Text(c.principal_type.to_string()),
            );
            r.fields.insert(
                "accessrightsmask".into(),
                mask.map_or(FieldValue::Null, FieldValue::Int),
            );
            r
        };
        let entry = audit::entry(
            action,
            c.entity,
            c.id,
            Some(&grant(before)),
            Some(&grant(c.mask.map(i64::from))),
            ctx,
        );
        append_audit(&mut *tx, env, &entry).await?;
        tx.commit().await
    }

    async fn shares_of(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
    ) -> Result<Vec<ShareGrant>, StoreError> {
        self.db
            .fetch(
                "SELECT principal_id, principal_type, access_mask FROM dv_shares WHERE table_name = $1 AND object_id = $2 ORDER BY principal_id",
                vec![entity.sql_table(env.number).into(), id.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ShareGrant {
                    principal: r.uuid(0)?,
                    principal_type: r.text(1)?,
                    access_mask: u32::try_from(r.int(2)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn team_link(
        &self,
        env: &Environment,
        teams: &EntityDef,
        team: Uuid,
        link: TeamLink,
        add: bool,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let (table, column, other, action, field) = match (link, add) {
            (TeamLink::Member(u), true) => (
                "dv_team_members",
                "systemuser_id",
                u,
                AuditAction::AddMember,
                "systemuserid",
            ),
            (TeamLink::Member(u), false) => (
                "dv_team_members",
                "systemuser_id",
                u,
                AuditAction::RemoveMember,
                "systemuserid",
            ),
            (TeamLink::Role(r), true) => (
                "dv_team_roles",
                "role_id",
                r,
                AuditAction::AssignRoleToTeam,
                "roleid",
            ),
            (TeamLink::Role(r), false) => (
                "dv_team_roles",
                "role_id",
                r,
                AuditAction::RemoveRoleFromTeam,
                "roleid",
            ),
        };
        let mut tx = self.db.begin().await?;
        lock_environment(&mut *tx, self.db.dialect(), env).await?;
        let args = || -> Vec<crate::sql::Value> { vec![env.id.into(), team.into(), other.into()] };
        let present = !tx
            .fetch(
                &format!("SELECT 1 FROM {table} WHERE environment_id = $1 AND team_id = $2 AND {column} = $3"),
                args(),
            )
            .await?
            .is_empty();
        match (present, add) {
            (true, true) => {
                return Err(StoreError::Conflict(format!(
                    "{other} is already linked to team {team}"
                )));
            }
            (false, false) => return Err(StoreError::RowMissing),
            (false, true) => {
                tx.execute(
                    &format!("INSERT INTO {table} (environment_id, team_id, {column}) VALUES ($1, $2, $3)"),
                    args(),
                )
                .await?;
            }
            (true, false) => {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE environment_id = $1 AND team_id = $2 AND {column} = $3"),
                    args(),
                )
                .await?;
            }
        }
        let change = Record::new("team").with(field, FieldValue::Id(other));
        let (old, new) = if add {
            (None, Some(&change))
        } else {
            (Some(&change), None)
        };
        append_audit(
            &mut *tx,
            env,
            &audit::entry(action, teams, team, old, new, ctx),
        )
        .await?;
        tx.commit().await?;
        // Who may do what changed: callers cached elsewhere must be read again.
        self.changed(Ok(()))
    }

    async fn team_members(&self, env: &Environment, team: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.db
            .fetch(
                "SELECT systemuser_id FROM dv_team_members WHERE environment_id = $1 AND team_id = $2 ORDER BY systemuser_id",
                vec![env.id.into(), team.into()],
            )
            .await?
            .iter()
            .map(|r| r.uuid(0))
            .collect()
    }

    async fn team_roles(&self, env: &Environment, team: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.db
            .fetch(
                "SELECT role_id FROM dv_team_roles WHERE environment_id = $1 AND team_id = $2 ORDER BY role_id",
                vec![env.id.into(), team.into()],
            )
            .await?
            .iter()
            .map(|r| r.uuid(0))
            .collect()
    }
}
