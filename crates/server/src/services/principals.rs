//! Service principals (an application's presence in the tenant, which tokens are issued to) and
//! the app roles granted to them.

use keyway_core::directory::{AppRoleAssignment, DirectoryError, ServicePrincipal};
use keyway_core::graph_roles::{self, GRAPH_APP_ID, Permission};
use keyway_core::wire::{
    AppRoleAssignmentInput, AppRoleAssignmentView, ServicePrincipalInput, ServicePrincipalView,
};
use keyway_store::DirectoryStore;
use uuid::Uuid;

use super::Result;
use super::caller::Caller;
use crate::state::AppState;

pub fn view(sp: &ServicePrincipal) -> ServicePrincipalView {
    ServicePrincipalView {
        id: sp.id,
        app_id: sp.app_id,
        display_name: sp.display_name.clone(),
        account_enabled: sp.account_enabled,
        service_principal_type: "Application".into(),
        app_owner_organization_id: sp.app_owner_organization_id,
        created_date_time: sp.created_at,
    }
}

async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<ServicePrincipal> {
    Ok(state
        .store
        .service_principal_get(caller.tenant_id, id)
        .await?
        .ok_or_else(|| DirectoryError::not_found("servicePrincipal", id))?)
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: ServicePrincipalInput,
) -> Result<ServicePrincipalView> {
    caller.require(Permission::WriteApplications)?;
    let app_id = input
        .app_id
        .ok_or_else(|| DirectoryError::invalid("appId", "is required"))?;
    let app = state
        .store
        .application_by_app_id(app_id)
        .await?
        .filter(|a| a.tenant_id == caller.tenant_id)
        .ok_or_else(|| {
            DirectoryError::invalid(
                "appId",
                format!("no application with appId {app_id} in this tenant"),
            )
        })?;
    let sp = ServicePrincipal {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        app_id,
        display_name: app.display_name.clone(),
        account_enabled: input.account_enabled.unwrap_or(true),
        app_owner_organization_id: Some(app.tenant_id),
        created_at: state.clock.now(),
    };
    state
        .store
        .service_principal_create(&sp)
        .await
        .map_err(|e| match e {
            keyway_store::StoreError::Conflict(_) => DirectoryError::Conflict(format!(
                "application {app_id} already has a service principal in this tenant"
            ))
            .into(),
            other => super::ServiceError::from(other),
        })?;
    Ok(view(&sp))
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<ServicePrincipalView>> {
    caller.require(Permission::ReadApplications)?;
    Ok(state
        .store
        .service_principal_list(caller.tenant_id)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> Result<ServicePrincipalView> {
    caller.require(Permission::ReadApplications)?;
    Ok(view(&load(state, caller, id).await?))
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    input: ServicePrincipalInput,
) -> Result<()> {
    caller.require(Permission::WriteApplications)?;
    let sp = load(state, caller, id).await?;
    if input.app_id.is_some_and(|a| a != sp.app_id) {
        return Err(DirectoryError::invalid("appId", "cannot be changed").into());
    }
    if let Some(enabled) = input.account_enabled {
        if sp.app_id == GRAPH_APP_ID {
            return Err(DirectoryError::Forbidden(
                "Microsoft Graph's service principal cannot be disabled".into(),
            )
            .into());
        }
        if !enabled && sp.id == caller.object_id {
            return Err(
                DirectoryError::Forbidden("a principal cannot disable itself".into()).into(),
            );
        }
        state
            .store
            .service_principal_set_enabled(caller.tenant_id, id, enabled)
            .await?;
    }
    Ok(())
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WriteApplications)?;
    let sp = load(state, caller, id).await?;
    if sp.app_id == GRAPH_APP_ID {
        return Err(DirectoryError::Forbidden(
            "Microsoft Graph's service principal cannot be deleted".into(),
        )
        .into());
    }
    if sp.id == caller.object_id {
        return Err(DirectoryError::Forbidden("a principal cannot delete itself".into()).into());
    }
    state
        .store
        .service_principal_delete(caller.tenant_id, id)
        .await?;
    Ok(())
}

async fn assignment_view(
    state: &AppState,
    caller: &Caller,
    a: &AppRoleAssignment,
) -> Result<AppRoleAssignmentView> {
    let name = |id| async move {
        Ok::<_, super::ServiceError>(
            state
                .store
                .service_principal_get(caller.tenant_id, id)
                .await?
                .map(|s| s.display_name)
                .unwrap_or_default(),
        )
    };
    Ok(AppRoleAssignmentView {
        id: a.id,
        app_role_id: a.app_role_id,
        principal_id: a.principal_id,
        principal_display_name: name(a.principal_id).await?,
        principal_type: "ServicePrincipal".into(),
        resource_id: a.resource_id,
        resource_display_name: name(a.resource_id).await?,
        created_date_time: a.created_at,
    })
}

pub async fn assignments(
    state: &AppState,
    caller: &Caller,
    principal_id: Uuid,
) -> Result<Vec<AppRoleAssignmentView>> {
    caller.require(Permission::ReadApplications)?;
    load(state, caller, principal_id).await?;
    let list = state
        .store
        .app_role_assignments(caller.tenant_id, principal_id)
        .await?;
    let mut out = Vec::with_capacity(list.len());
    for a in &list {
        out.push(assignment_view(state, caller, a).await?);
    }
    Ok(out)
}

/// Grant an app role of a resource (today: Microsoft Graph's administrator roles) to a principal.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    principal_id: Uuid,
    input: AppRoleAssignmentInput,
) -> Result<AppRoleAssignmentView> {
    caller.require(Permission::AssignRoles)?;
    if input.principal_id != principal_id {
        return Err(DirectoryError::invalid(
            "principalId",
            "must be the service principal in the URL",
        )
        .into());
    }
    load(state, caller, principal_id).await?;
    let resource = load(state, caller, input.resource_id).await?;
    let role = (resource.app_id == GRAPH_APP_ID)
        .then(|| graph_roles::by_id(input.app_role_id))
        .flatten()
        .ok_or_else(|| {
            DirectoryError::invalid(
                "appRoleId",
                format!(
                    "{} is not an app role of {}",
                    input.app_role_id, resource.display_name
                ),
            )
        })?;
    let system = state.store.tenant_system().await?;
    if role.id == graph_roles::KEYWAY_TENANT_READWRITE_ALL.id
        && system.map(|s| s.id) != Some(caller.tenant_id)
    {
        return Err(DirectoryError::Forbidden(format!(
            "{} exists only in the system tenant",
            role.value
        ))
        .into());
    }
    let a = AppRoleAssignment {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        principal_id,
        resource_id: resource.id,
        app_role_id: role.id,
        created_at: state.clock.now(),
    };
    state.store.app_role_assign(&a).await.map_err(|e| match e {
        keyway_store::StoreError::Conflict(_) => {
            DirectoryError::Conflict(format!("the principal already holds {}", role.value)).into()
        }
        other => super::ServiceError::from(other),
    })?;
    tracing::info!(principal = %principal_id, role = role.value, "app role granted");
    assignment_view(state, caller, &a).await
}

pub async fn unassign(
    state: &AppState,
    caller: &Caller,
    principal_id: Uuid,
    id: Uuid,
) -> Result<()> {
    caller.require(Permission::AssignRoles)?;
    if !state
        .store
        .app_role_unassign(caller.tenant_id, principal_id, id)
        .await?
    {
        return Err(DirectoryError::not_found("appRoleAssignment", id).into());
    }
    Ok(())
}
