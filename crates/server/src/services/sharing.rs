//! Sharing rows (`GrantAccess`, `ModifyAccess`, `RevokeAccess`,
//! `RetrieveSharedPrincipalsAndAccess`), team membership and team roles, and assigning rows to a
//! new owner — Dataverse's rules: the Share privilege on the row, and nobody hands out a right (or
//! a role's privileges) they do not hold themselves.

use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::authz::{self, BusinessUnits, RowScope};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::FieldValue;
use keyway_core::dataverse::security::{Access, SHAREABLE};
use keyway_store::{
    EnvironmentStore, SecurityStore, ShareChange, ShareGrant, SharingStore, StoreError, TeamLink,
};
use uuid::Uuid;

use super::webapi::WebApiCaller;
use super::{Result, ServiceError};
use crate::state::AppState;

/// A user or a team, as the sharing actions name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef {
    User(Uuid),
    Team(Uuid),
}

impl PrincipalRef {
    pub fn id(self) -> Uuid {
        match self {
            Self::User(u) | Self::Team(u) => u,
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Self::User(_) => "systemuser",
            Self::Team(_) => "team",
        }
    }
}

fn denied(caller: &WebApiCaller, privilege: String) -> ServiceError {
    let d = authz::Denied {
        user_id: caller.principal.user_id,
        privilege,
        role_count: caller.role_count,
    };
    DataverseError::MissingPrivilege(d.message()).into()
}

async fn units(state: &AppState, caller: &WebApiCaller) -> Result<BusinessUnits> {
    Ok(BusinessUnits::new(
        state
            .directory
            .business_units(state, &caller.env)
            .await?
            .iter()
            .copied(),
    ))
}

/// The rows `access` lets the caller reach in `entity`, or the refusal naming the privilege.
pub async fn scope(
    state: &AppState,
    caller: &WebApiCaller,
    access: Access,
    entity: &EntityDef,
) -> Result<RowScope> {
    authz::scope(
        &caller.principal,
        &units(state, caller).await?,
        &access.privilege(&entity.logical_name),
        entity.ownership,
        caller.role_count,
    )
    .map_err(|d| DataverseError::MissingPrivilege(d.message()).into())
}

/// Who a row is shared with, as `(principal, access mask)`.
pub async fn grants(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
) -> Result<Vec<(Uuid, u32)>> {
    Ok(state
        .store
        .shares_of(&caller.env, entity, id)
        .await?
        .into_iter()
        .map(|g| (g.principal, g.access_mask))
        .collect())
}

fn table<'a>(caller: &'a WebApiCaller, name: &str) -> Result<&'a EntityDef> {
    caller
        .tables
        .iter()
        .find(|e| e.logical_name == name)
        .ok_or_else(|| ServiceError::Internal(format!("table {name} missing")))
}

/// The principal must be a user or team of this environment; returns its business unit.
pub async fn principal_unit(
    state: &AppState,
    caller: &WebApiCaller,
    who: PrincipalRef,
) -> Result<Uuid> {
    let t = table(caller, who.table())?;
    let row = state
        .store
        .record_get(&caller.env, t, who.id())
        .await?
        .ok_or_else(|| DataverseError::RecordNotFound {
            entity: who.table().into(),
            id: who.id().to_string(),
        })?;
    if matches!(row.fields.get("isdisabled"), Some(FieldValue::Bool(true))) {
        return Err(DataverseError::UserDisabled(who.id().to_string()).into());
    }
    match row.fields.get("businessunitid") {
        Some(FieldValue::Id(u)) => Ok(*u),
        _ => Err(ServiceError::Internal(format!(
            "{} {} has no business unit",
            who.table(),
            who.id()
        ))),
    }
}

fn audit_ctx(state: &AppState, caller: &WebApiCaller) -> AuditContext {
    AuditContext {
        user_id: caller.principal.user_id,
        calling_user_id: caller.on_behalf_of,
        transaction_id: Uuid::new_v4(),
        at: state.clock.now(),
    }
}

fn not_found(entity: &EntityDef, id: Uuid) -> ServiceError {
    DataverseError::RecordNotFound {
        entity: entity.logical_name.clone(),
        id: id.to_string(),
    }
    .into()
}

/// Grant (`modify` false: GrantAccess adds to what the principal had) or set (`modify` true:
/// ModifyAccess) a principal's rights on a row. The caller needs Share on the row and every
/// right they hand out.
pub async fn grant(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    to: PrincipalRef,
    mask: u32,
    modify: bool,
) -> Result<()> {
    principal_unit(state, caller, to).await?;
    let mut needed = vec![Access::Share];
    needed.extend(SHAREABLE.iter().filter(|a| mask & a.right() != 0));
    let mut scopes = Vec::with_capacity(needed.len());
    for a in &needed {
        scopes.push(scope(state, caller, *a, entity).await?);
    }
    let before = state
        .store
        .shares_of(&caller.env, entity, id)
        .await?
        .into_iter()
        .find(|g| g.principal == to.id())
        .map(|g| g.access_mask);
    let mask = if modify {
        mask
    } else {
        mask | before.unwrap_or(0)
    };
    let change = ShareChange {
        entity,
        id,
        principal: to.id(),
        principal_type: to.table(),
        mask: Some(mask),
        scopes,
    };
    state
        .store
        .share_change(&caller.env, &change, &audit_ctx(state, caller))
        .await
        .map_err(|e| map_row(e, caller, entity, id, &needed))
}

/// Take every right on a row away from a principal (RevokeAccess); needs Share on the row.
pub async fn revoke(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    from: PrincipalRef,
) -> Result<()> {
    let share = scope(state, caller, Access::Share, entity).await?;
    let change = ShareChange {
        entity,
        id,
        principal: from.id(),
        principal_type: from.table(),
        mask: None,
        scopes: vec![share],
    };
    match state
        .store
        .share_change(&caller.env, &change, &audit_ctx(state, caller))
        .await
    {
        // Revoking what was never shared changes nothing, as in Dataverse — but the row must exist
        // and the caller must be allowed to share it.
        Err(StoreError::RowMissing) => {
            let row = state.store.record_get(&caller.env, entity, id).await?;
            if row.is_none() {
                return Err(not_found(entity, id));
            }
            Ok(())
        }
        other => other.map_err(|e| map_row(e, caller, entity, id, &[Access::Share])),
    }
}

/// Everyone a row is shared with; needs Read on the row.
pub async fn shared_with(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
) -> Result<Vec<ShareGrant>> {
    super::webapi::retrieve(state, caller, entity, id).await?;
    Ok(state.store.shares_of(&caller.env, entity, id).await?)
}

fn map_row(
    e: StoreError,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    needed: &[Access],
) -> ServiceError {
    match e {
        StoreError::RowMissing => not_found(entity, id),
        // The row is outside one of the scopes; name the first privilege the caller lacks there.
        StoreError::RowOutOfScope => denied(
            caller,
            needed
                .first()
                .map(|a| a.privilege(&entity.logical_name))
                .unwrap_or_default(),
        ),
        other => other.into(),
    }
}

/// Every privilege of a role must be one the caller holds at least as deep: a team role is a
/// way to hand privileges to people, and nobody hands out what they do not have.
async fn may_hand_out_role(state: &AppState, caller: &WebApiCaller, role: Uuid) -> Result<()> {
    let roles = table(caller, "role")?;
    if state
        .store
        .record_get(&caller.env, roles, role)
        .await?
        .is_none()
    {
        return Err(not_found(roles, role));
    }
    let privileges = state.store.role_privileges(&caller.env, role).await?;
    if let Some(p) = keyway_core::dataverse::privileges::exceeding(&privileges, |name| {
        caller.principal.depth(name)
    }) {
        return Err(DataverseError::MissingPrivilege(format!(
            "The role grants {} at {} depth, deeper than the caller holds it: only someone who holds every privilege of a role may give it to a team.",
            p.name,
            p.depth.name()
        ))
        .into());
    }
    Ok(())
}

/// Add or remove a team's member or role. Needs Write on teams (and, for a role, every privilege
/// the role grants).
pub async fn team_link(
    state: &AppState,
    caller: &WebApiCaller,
    team: Uuid,
    link: TeamLink,
    add: bool,
) -> Result<()> {
    let teams = table(caller, "team")?;
    let write = scope(state, caller, Access::Write, teams).await?;
    let row = state
        .store
        .record_get(&caller.env, teams, team)
        .await?
        .ok_or_else(|| not_found(teams, team))?;
    let id_of = |c: &str| match row.fields.get(c) {
        Some(FieldValue::Id(u)) => Some(*u),
        _ => None,
    };
    if !write.admits(id_of("ownerid"), id_of("businessunitid")) {
        return Err(denied(caller, Access::Write.privilege("team")));
    }
    match link {
        TeamLink::Member(u) => {
            principal_unit(state, caller, PrincipalRef::User(u)).await?;
        }
        TeamLink::Role(r) if add => may_hand_out_role(state, caller, r).await?,
        TeamLink::Role(_) => {}
    }
    state
        .store
        .team_link(
            &caller.env,
            teams,
            team,
            link,
            add,
            &audit_ctx(state, caller),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => DataverseError::Duplicate.into(),
            StoreError::RowMissing => DataverseError::RecordNotFound {
                entity: match link {
                    TeamLink::Member(_) => "teammembership".into(),
                    TeamLink::Role(_) => "teamroles".into(),
                },
                id: match link {
                    TeamLink::Member(u) | TeamLink::Role(u) => u.to_string(),
                },
            }
            .into(),
            other => other.into(),
        })
}

/// The members or roles of a team the caller may read.
pub async fn team_links(
    state: &AppState,
    caller: &WebApiCaller,
    team: Uuid,
    roles: bool,
) -> Result<Vec<Uuid>> {
    let teams = table(caller, "team")?;
    super::webapi::retrieve(state, caller, teams, team).await?;
    Ok(if roles {
        state.store.team_roles(&caller.env, team).await?
    } else {
        state.store.team_members(&caller.env, team).await?
    })
}
