//! Security roles through the Web API: the `privileges` an environment knows, what a role grants
//! (`AddPrivilegesRole`, `ReplacePrivilegesRole`, `RemovePrivilegeRole`,
//! `RetrieveRolePrivilegesRole`) and who holds it (`systemuserroles_association`).
//!
//! Beyond Dataverse's own checks (prvWriterole to change a role; prvAssignrole and
//! prvWritesystemuser to give or take one), nobody hands out more than they hold: each privilege a
//! caller adds to a role, or that a role they assign grants, must be theirs at least as deep. A
//! System Administrator holds everything, so this never stops one; it stops a customizer from
//! making or assigning a role that reaches further than their own.

use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::authz::{Denied, RowScope};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::privileges::{self, PrivilegeInfo, RoleChange};
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::{Access, Depth, Privilege};
use keyway_store::{EnvironmentStore, SecurityStore, StoreError};
use serde_json::Value;
use uuid::Uuid;

use super::webapi::{self, WebApiCaller};
use super::{Result, ServiceError};
use crate::state::AppState;

fn syntax(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

fn table<'a>(c: &'a WebApiCaller, name: &str) -> Result<&'a EntityDef> {
    c.tables
        .iter()
        .find(|e| e.logical_name == name)
        .ok_or_else(|| ServiceError::Internal(format!("table {name} missing")))
}

fn denied(c: &WebApiCaller, privilege: &str) -> Denied {
    Denied {
        user_id: c.principal.user_id,
        privilege: privilege.to_string(),
        role_count: c.role_count,
    }
}

/// Roles and users are organization-owned: any depth of the privilege reaches every row.
fn require(c: &WebApiCaller, access: Access, entity: &str) -> Result<()> {
    let name = access.privilege(entity);
    if c.principal.depth(&name) == Depth::None {
        return Err(DataverseError::MissingPrivilege(denied(c, &name).message()).into());
    }
    Ok(())
}

/// Refuse privileges deeper than the caller's own.
fn within_own(c: &WebApiCaller, wanted: &[Privilege]) -> Result<()> {
    match privileges::exceeding(wanted, |n| c.principal.depth(n)) {
        None => Ok(()),
        Some(p) => Err(DataverseError::MissingPrivilege(format!(
            "{} A role may grant only what its editor or assigner holds: {} at {} depth is beyond yours ({}).",
            denied(c, &p.name).message(),
            p.name,
            privileges::depth_wire_name(p.depth),
            privileges::depth_wire_name(c.principal.depth(&p.name)),
        ))
        .into()),
    }
}

fn audit_ctx(state: &AppState, c: &WebApiCaller) -> AuditContext {
    AuditContext {
        user_id: c.principal.user_id,
        calling_user_id: c.on_behalf_of,
        transaction_id: Uuid::new_v4(),
        at: state.clock.now(),
    }
}

/// Every privilege of the caller's environment.
pub fn catalog(c: &WebApiCaller) -> Vec<PrivilegeInfo> {
    privileges::catalog(c.env.id, &c.tables)
}

/// The role row (404 if absent; reading it needs prvReadrole).
async fn role(state: &AppState, c: &WebApiCaller, role_id: Uuid) -> Result<Record> {
    webapi::retrieve(state, c, table(c, "role")?, role_id).await
}

/// One entry of `Privileges` (`{"PrivilegeId", "Depth", "BusinessUnitId"?, "PrivilegeName"?}`)
/// as a grant of this environment, its depth clamped to what the table allows.
fn grant(all: &[PrivilegeInfo], v: &Value, with_depth: bool) -> Result<Privilege> {
    let id = match v.get("PrivilegeId") {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| syntax(format!("PrivilegeId {x} is not a GUID.")))?,
        ),
    };
    let name = v.get("PrivilegeName").and_then(|n| n.as_str());
    let info = match (id, name) {
        (Some(id), _) => all.iter().find(|p| p.id == id).ok_or_else(|| {
            syntax(format!(
                "The privilege {id} does not exist in this environment: look its id up with GET privileges?$filter=name eq 'prvReadaccount'."
            ))
        })?,
        (None, Some(n)) => all.iter().find(|p| p.name == n).ok_or_else(|| {
            syntax(format!(
                "The privilege '{n}' does not exist in this environment."
            ))
        })?,
        (None, None) => return Err(syntax("Each privilege needs its PrivilegeId.")),
    };
    if let (Some(_), Some(n)) = (id, name)
        && n != info.name
    {
        return Err(syntax(format!(
            "PrivilegeId {} is {}, not '{n}'.",
            info.id, info.name
        )));
    }
    let depth = if with_depth {
        let d = v.get("Depth").ok_or_else(|| {
            syntax(format!(
                "The privilege '{}' needs a Depth: Basic, Local, Deep or Global.",
                info.name
            ))
        })?;
        privileges::parse_depth(d).ok_or_else(|| {
            syntax(format!(
                "{d} is not a Depth for '{}': use Basic, Local, Deep or Global (or 0 to 3).",
                info.name
            ))
        })?
    } else {
        Depth::Organization
    };
    Ok(Privilege {
        name: info.name.clone(),
        depth: info.clamp(depth),
    })
}

/// Which role-privilege action a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Add,
    Replace,
    Remove,
}

/// `AddPrivilegesRole`, `ReplacePrivilegesRole` or `RemovePrivilegeRole` on a role.
pub async fn edit_privileges(
    state: &AppState,
    c: &WebApiCaller,
    role_id: Uuid,
    edit: Edit,
    body: &Value,
) -> Result<()> {
    require(c, Access::Write, "role")?;
    role(state, c, role_id).await?;
    let all = catalog(c);
    let change = if edit == Edit::Remove {
        RoleChange::Remove(grant(&all, body, false)?.name)
    } else {
        let list = body
            .get("Privileges")
            .and_then(|p| p.as_array())
            .ok_or_else(|| {
                syntax("The action needs {\"Privileges\": [{\"PrivilegeId\": …, \"Depth\": \"Basic\"}]}.")
            })?;
        let wanted = list
            .iter()
            .map(|v| grant(&all, v, true))
            .collect::<Result<Vec<_>>>()?;
        within_own(c, &wanted)?;
        if edit == Edit::Add {
            RoleChange::Add(wanted)
        } else {
            RoleChange::Replace(wanted)
        }
    };
    state
        .store
        .role_privileges_change(
            &c.env,
            table(c, "role")?,
            role_id,
            &change,
            &audit_ctx(state, c),
        )
        .await?;
    Ok(())
}

/// What a role grants (`RetrieveRolePrivilegesRole`), with the role's business unit.
pub async fn role_privileges(
    state: &AppState,
    c: &WebApiCaller,
    role_id: Uuid,
) -> Result<(Option<Uuid>, Vec<(Uuid, Privilege)>)> {
    let row = role(state, c, role_id).await?;
    let unit = row.id("businessunitid");
    let granted = state.store.role_privileges(&c.env, role_id).await?;
    Ok((
        unit,
        granted
            .into_iter()
            .map(|p| (privileges::privilege_id(c.env.id, &p.name), p))
            .collect(),
    ))
}

/// Check that the caller may give or take `role_id` from `user_id`, and that both exist.
async fn may_assign(
    state: &AppState,
    c: &WebApiCaller,
    user_id: Uuid,
    role_id: Uuid,
    giving: bool,
) -> Result<()> {
    require(c, Access::Write, "systemuser")?;
    require(c, Access::Assign, "role")?;
    webapi::retrieve(state, c, table(c, "systemuser")?, user_id).await?;
    role(state, c, role_id).await?;
    if giving {
        let grants = state.store.role_privileges(&c.env, role_id).await?;
        within_own(c, &grants)?;
    }
    Ok(())
}

/// `POST systemusers(<id>)/systemuserroles_association/$ref`: the user holds the role from the
/// next request on.
pub async fn assign(
    state: &AppState,
    c: &WebApiCaller,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    may_assign(state, c, user_id, role_id, true).await?;
    state
        .store
        .role_assign(
            &c.env,
            table(c, "systemuser")?,
            user_id,
            role_id,
            &audit_ctx(state, c),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => DataverseError::Duplicate.into(),
            other => ServiceError::from(other),
        })
}

/// `DELETE systemusers(<id>)/systemuserroles_association(<roleid>)/$ref`.
pub async fn unassign(
    state: &AppState,
    c: &WebApiCaller,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    may_assign(state, c, user_id, role_id, false).await?;
    state
        .store
        .role_unassign(
            &c.env,
            table(c, "systemuser")?,
            user_id,
            role_id,
            &audit_ctx(state, c),
        )
        .await
        .map_err(|e| match e {
            StoreError::RowMissing => DataverseError::RecordNotFound {
                entity: "systemuserroles".into(),
                id: format!("{user_id}/{role_id}"),
            }
            .into(),
            other => ServiceError::from(other),
        })
}

/// `GET systemusers(<id>)/systemuserroles_association`: the roles a user holds directly.
pub async fn roles_of(state: &AppState, c: &WebApiCaller, user_id: Uuid) -> Result<Vec<Record>> {
    webapi::retrieve(state, c, table(c, "systemuser")?, user_id).await?;
    require(c, Access::Read, "role")?;
    let ids = state.store.user_roles(&c.env, user_id).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let roles = table(c, "role")?;
    let mut rows = state
        .store
        .records_by_ids(&c.env, roles, &ids, &RowScope::All)
        .await?;
    rows.sort_by(|a, b| {
        let name = |r: &Record| match r.fields.get("name") {
            Some(FieldValue::Text(s)) => s.clone(),
            _ => String::new(),
        };
        name(a).cmp(&name(b))
    });
    Ok(rows)
}
