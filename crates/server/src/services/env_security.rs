//! An environment's security through the admin API: application users, custom roles and role
//! assignments. The caller acts as their own system user there, with its privileges checked.

use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::authz::{self, BusinessUnits};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{EntityDef, Ownership};
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::{self, ALL_ACCESS, Access, Privilege};
use keyway_core::dataverse::seed::{self, Creator};
use keyway_core::directory::DirectoryError;
use keyway_core::graph_roles::Permission;
use keyway_core::wire::{AppUserInput, RoleAssignInput, RoleInput, RoleView, SystemUserView};
use keyway_store::{DirectoryStore, EnvironmentStore, SecurityStore, StoreError, SystemUserKey};
use uuid::Uuid;

use super::caller::Caller;
use super::webapi::WebApiCaller;
use super::{Result, ServiceError};
use crate::state::AppState;

/// The Graph caller as a system user of the environment.
async fn as_system_user(state: &AppState, caller: &Caller, env_id: Uuid) -> Result<WebApiCaller> {
    caller.require(Permission::ManageEnvironments)?;
    let env = state
        .store
        .environment_get(env_id)
        .await?
        .filter(|e| e.tenant_id == caller.tenant_id)
        .ok_or_else(|| DirectoryError::not_found("environment", env_id))?;
    let key = if caller.is_app {
        SystemUserKey::ApplicationId(caller.app_id)
    } else {
        SystemUserKey::ObjectId(caller.object_id)
    };
    let user = state
        .store
        .dataverse_user(&env, key)
        .await?
        .ok_or_else(|| {
            ServiceError::Forbidden(format!(
                "You are not a user of environment '{}': ask its System Administrator to add you.",
                env.name
            ))
        })?;
    if user.disabled {
        return Err(ServiceError::Forbidden(
            "Your system user in this environment is disabled.".into(),
        ));
    }
    let tables = std::sync::Arc::new(state.store.environment_tables(env.id).await?);
    Ok(WebApiCaller {
        on_behalf_of: None,
        env,
        tables,
        role_count: user.role_count,
        principal: authz::Principal {
            user_id: user.id,
            business_unit: user.business_unit,
            privileges: user.privileges,
            teams: user.teams,
        },
    })
}

fn table<'a>(c: &'a WebApiCaller, name: &str) -> Result<&'a EntityDef> {
    c.tables
        .iter()
        .find(|e| e.logical_name == name)
        .ok_or_else(|| ServiceError::Internal(format!("table {name} missing")))
}

fn require(c: &WebApiCaller, access: Access, entity: &str, units: &BusinessUnits) -> Result<()> {
    authz::scope(
        &c.principal,
        units,
        &access.privilege(entity),
        Ownership::OrganizationOwned,
        c.role_count,
    )
    .map(|_| ())
    .map_err(|d| ServiceError::Forbidden(d.message()))
}

fn ctx(state: &AppState, c: &WebApiCaller) -> AuditContext {
    AuditContext {
        user_id: c.principal.user_id,
        calling_user_id: None,
        transaction_id: Uuid::new_v4(),
        at: state.clock.now(),
    }
}

async fn role_ids(
    state: &AppState,
    c: &WebApiCaller,
    names: &[String],
) -> Result<Vec<(Uuid, String)>> {
    let all = state.store.roles(&c.env).await?;
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(n))
                .cloned()
                .ok_or_else(|| {
                    DirectoryError::invalid(
                        "roles",
                        format!("no role named '{n}' in this environment"),
                    )
                    .into()
                })
        })
        .collect()
}

fn business_unit(root: Uuid, given: Option<Uuid>, all: &[(Uuid, Option<Uuid>)]) -> Result<Uuid> {
    match given {
        None => Ok(root),
        Some(id) if all.iter().any(|(u, _)| *u == id) => Ok(id),
        Some(id) => Err(DirectoryError::invalid(
            "businessUnitId",
            format!("no business unit {id} in this environment"),
        )
        .into()),
    }
}

fn root_of(all: &[(Uuid, Option<Uuid>)]) -> Result<Uuid> {
    all.iter()
        .find(|(_, p)| p.is_none())
        .map(|(u, _)| *u)
        .ok_or_else(|| ServiceError::Internal("no root business unit".into()))
}

/// An application user for a service principal of the tenant.
pub async fn add_app_user(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
    input: AppUserInput,
) -> Result<SystemUserView> {
    let c = as_system_user(state, caller, env_id).await?;
    let all_units = state.store.business_units(&c.env).await?;
    let units = BusinessUnits::new(all_units.clone());
    require(&c, Access::Create, "systemuser", &units)?;
    let app_id = input.service_principal_app_id;
    let sp = state
        .store
        .service_principal_by_app_id(caller.tenant_id, app_id)
        .await?
        .ok_or_else(|| DirectoryError::invalid("servicePrincipalAppId", format!("no service principal for app {app_id} in this tenant: create it first (`keyway sp create {app_id}`)")))?;
    let bu = business_unit(root_of(&all_units)?, input.business_unit_id, &all_units)?;
    let roles = role_ids(state, &c, &input.roles).await?;
    if !roles.is_empty() {
        require(&c, Access::Assign, "role", &units)?;
    }
    let id = Uuid::new_v4();
    let record = seed::system_user(
        &Creator::Application {
            app_id,
            display_name: sp.display_name.clone(),
        },
        id,
        bu,
        c.principal.user_id,
        state.clock.now(),
    );
    let users = table(&c, "systemuser")?;
    let ids: Vec<Uuid> = roles.iter().map(|(r, _)| *r).collect();
    state
        .store
        .systemuser_create(&c.env, users, &record, &ids, &ctx(state, &c))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(format!(
                "app {app_id} already has an application user in this environment"
            ))),
            other => other.into(),
        })?;
    Ok(SystemUserView {
        systemuserid: id,
        applicationid: Some(app_id),
        businessunitid: bu,
        fullname: format!("# {}", sp.display_name),
        roles: roles.into_iter().map(|(_, n)| n).collect(),
        isguest: false,
        islicensed: false,
    })
}

/// Parse `prvReadaccount:BusinessUnit`, checking the privilege exists in this environment.
fn privilege(c: &WebApiCaller, spec: &str) -> Result<Privilege> {
    let p = security::parse_privilege(spec).ok_or_else(|| {
        DirectoryError::invalid("privileges", format!("'{spec}' is not prvName:Depth (depths: None, User, BusinessUnit, ParentChildBusinessUnits, Organization)"))
    })?;
    if security::NAMED.contains(&p.name.as_str()) || security::WORKFLOW.contains(&p.name.as_str()) {
        return Ok(p);
    }
    for e in c.tables.iter() {
        for a in ALL_ACCESS {
            if a.privilege(&e.logical_name) == p.name {
                return Ok(Privilege {
                    depth: security::clamp(p.depth, e.ownership),
                    ..p
                });
            }
        }
    }
    Err(DirectoryError::invalid(
        "privileges",
        format!("'{}' is not a privilege of this environment", p.name),
    )
    .into())
}

pub async fn create_role(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
    input: RoleInput,
) -> Result<RoleView> {
    let c = as_system_user(state, caller, env_id).await?;
    let all_units = state.store.business_units(&c.env).await?;
    let units = BusinessUnits::new(all_units.clone());
    require(&c, Access::Create, "role", &units)?;
    let name = keyway_core::directory::validate_display_name("name", &input.name)?;
    if state
        .store
        .roles(&c.env)
        .await?
        .iter()
        .any(|(_, n)| n.eq_ignore_ascii_case(&name))
    {
        return Err(
            DirectoryError::Conflict(format!("a role named '{name}' already exists")).into(),
        );
    }
    let privileges = input
        .privileges
        .iter()
        .map(|p| privilege(&c, p))
        .collect::<Result<Vec<_>>>()?;
    let bu = business_unit(root_of(&all_units)?, input.business_unit_id, &all_units)?;
    let id = Uuid::new_v4();
    let record = seed::role(&name, id, bu, c.principal.user_id, state.clock.now());
    state
        .store
        .role_create(
            &c.env,
            table(&c, "role")?,
            &record,
            &privileges,
            &ctx(state, &c),
        )
        .await?;
    Ok(RoleView { roleid: id, name })
}

pub async fn list_roles(state: &AppState, caller: &Caller, env_id: Uuid) -> Result<Vec<RoleView>> {
    let c = as_system_user(state, caller, env_id).await?;
    let units = BusinessUnits::new(state.store.business_units(&c.env).await?);
    require(&c, Access::Read, "role", &units)?;
    Ok(state
        .store
        .roles(&c.env)
        .await?
        .into_iter()
        .map(|(roleid, name)| RoleView { roleid, name })
        .collect())
}

pub async fn assign_role(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
    role_id: Uuid,
    input: RoleAssignInput,
) -> Result<()> {
    let c = as_system_user(state, caller, env_id).await?;
    let units = BusinessUnits::new(state.store.business_units(&c.env).await?);
    require(&c, Access::Assign, "role", &units)?;
    if !state
        .store
        .roles(&c.env)
        .await?
        .iter()
        .any(|(r, _)| *r == role_id)
    {
        return Err(DirectoryError::not_found("role", role_id).into());
    }
    let key = match (input.system_user_id, input.application_id) {
        (Some(u), None) => SystemUserKey::Id(u),
        (None, Some(a)) => SystemUserKey::ApplicationId(a),
        _ => {
            return Err(DirectoryError::invalid(
                "systemUserId",
                "give exactly one of systemUserId or applicationId",
            )
            .into());
        }
    };
    let user = state
        .store
        .dataverse_user(&c.env, key)
        .await?
        .ok_or_else(|| {
            DataverseError::NotAMember("no such system user in this environment".into())
        })?;
    state
        .store
        .role_assign(
            &c.env,
            table(&c, "systemuser")?,
            user.id,
            role_id,
            &ctx(state, &c),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(
                "the user already holds this role".into(),
            )),
            other => other.into(),
        })
}

/// Walk the environment's audit chain (needs prvReadAuditSummary there).
pub async fn verify_audit(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
) -> Result<keyway_core::wire::AuditVerification> {
    use keyway_store::RecordStore;
    let c = as_system_user(state, caller, env_id).await?;
    if c.principal.depth(security::READ_AUDIT_SUMMARY) == security::Depth::None {
        let d = authz::Denied {
            user_id: c.principal.user_id,
            privilege: security::READ_AUDIT_SUMMARY.into(),
            role_count: c.role_count,
        };
        return Err(ServiceError::Forbidden(d.message()));
    }
    let check = state.store.audit_verify(&c.env).await?;
    Ok(keyway_core::wire::AuditVerification {
        environment: c.env.name.clone(),
        rows: check.rows,
        intact: check.first_broken.is_none(),
        first_broken_row: check.first_broken,
    })
}

/// A person of the tenant as a system user (found later by their directory object id): a member,
/// licensed from the start, or a guest from another tenant (`isguest`), who starts unlicensed.
pub async fn add_user(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
    input: keyway_core::wire::EnvUserInput,
) -> Result<SystemUserView> {
    let c = as_system_user(state, caller, env_id).await?;
    let all_units = state.store.business_units(&c.env).await?;
    let units = BusinessUnits::new(all_units.clone());
    require(&c, Access::Create, "systemuser", &units)?;
    let person = match (&input.user_principal_name, input.user_id) {
        (Some(upn), None) => state
            .store
            .user_by_upn(upn)
            .await?
            .filter(|u| u.tenant_id == caller.tenant_id)
            .ok_or_else(|| {
                DirectoryError::invalid(
                    "userPrincipalName",
                    format!("no user {upn} in this tenant (a guest is named by its #EXT# name or its id: invite them first with POST /v1.0/invitations)"),
                )
            })?,
        (None, Some(id)) => state
            .store
            .user_get(caller.tenant_id, id)
            .await?
            .ok_or_else(|| {
                DirectoryError::invalid(
                    "userId",
                    format!("no user {id} in this tenant (invite a user of another tenant first with POST /v1.0/invitations)"),
                )
            })?,
        _ => {
            return Err(DirectoryError::invalid(
                "userId",
                "give exactly one of userPrincipalName or userId",
            )
            .into());
        }
    };
    if state
        .store
        .dataverse_user(&c.env, SystemUserKey::ObjectId(person.id))
        .await?
        .is_some()
    {
        return Err(DirectoryError::Conflict(format!(
            "{} is already a user of this environment",
            person.user_principal_name
        ))
        .into());
    }
    let bu = business_unit(root_of(&all_units)?, input.business_unit_id, &all_units)?;
    let roles = role_ids(state, &c, &input.roles).await?;
    if !roles.is_empty() {
        require(&c, Access::Assign, "role", &units)?;
    }
    let id = Uuid::new_v4();
    let who = Creator::User {
        object_id: person.id,
        upn: person.user_principal_name.clone(),
        display_name: person.display_name.clone(),
    };
    let mut record = seed::system_user(&who, id, bu, c.principal.user_id, state.clock.now());
    let guest = person.is_guest();
    if guest {
        // Dataverse's guests: flagged, reachable at their real address, and unlicensed until an
        // administrator gives them a license.
        record
            .fields
            .insert("isguest".into(), FieldValue::Bool(true));
        record
            .fields
            .insert("islicensed".into(), FieldValue::Bool(false));
        if let Some(mail) = &person.mail {
            record.fields.insert(
                "internalemailaddress".into(),
                FieldValue::Text(mail.clone()),
            );
        }
    }
    let ids: Vec<Uuid> = roles.iter().map(|(r, _)| *r).collect();
    state
        .store
        .systemuser_create(
            &c.env,
            table(&c, "systemuser")?,
            &record,
            &ids,
            &ctx(state, &c),
        )
        .await?;
    Ok(SystemUserView {
        systemuserid: id,
        applicationid: None,
        businessunitid: bu,
        fullname: person.display_name,
        roles: roles.into_iter().map(|(_, n)| n).collect(),
        isguest: guest,
        islicensed: !guest,
    })
}

/// Give a person of the environment a license, or take it away (`islicensed`), as an ordinary
/// audited update of their system user: it needs prvWritesystemuser, as a PATCH would.
pub async fn set_license(
    state: &AppState,
    caller: &Caller,
    env_id: Uuid,
    system_user_id: Uuid,
    licensed: bool,
) -> Result<()> {
    let c = as_system_user(state, caller, env_id).await?;
    let user = state
        .store
        .dataverse_user(&c.env, SystemUserKey::Id(system_user_id))
        .await?
        .ok_or_else(|| DirectoryError::not_found("system user", system_user_id))?;
    if user.application_id.is_some() {
        return Err(DirectoryError::invalid(
            "systemuserid",
            "an application user needs no license: it acts through its roles alone",
        )
        .into());
    }
    let users = table(&c, "systemuser")?.clone();
    let set = Record::new("systemuser").with("islicensed", FieldValue::Bool(licensed));
    super::records::update(state, &c, &users, system_user_id, set, None).await?;
    Ok(())
}
