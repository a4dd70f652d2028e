//! Environments: created by a tenant's administrators (who become their first System
//! Administrators), listed, shown and deleted; each reached at its own URL.

use keyway_core::dataverse::seed::Creator;
use keyway_core::directory::DirectoryError;
use keyway_core::environment::{self, Environment};
use keyway_core::graph_roles::Permission;
use keyway_core::wire::{EnvironmentInput, EnvironmentView};
use keyway_store::{EnvironmentStore, StoreError};
use uuid::Uuid;

use super::caller::Caller;
use super::{Result, ServiceError};
use crate::state::AppState;

/// The URL clients point their base URL at.
pub fn url(state: &AppState, env: &Environment) -> String {
    match &state.config.environment_domain {
        Some(domain) => {
            let (scheme, port) = match state.base_url.split_once("://") {
                Some((scheme, rest)) => {
                    let authority = rest.split('/').next().unwrap_or_default();
                    let port = authority
                        .rsplit_once(':')
                        .map(|(_, p)| format!(":{p}"))
                        .filter(|p| p[1..].chars().all(|c| c.is_ascii_digit()));
                    (scheme, port.unwrap_or_default())
                }
                None => ("https", String::new()),
            };
            format!("{scheme}://{}.{domain}{port}", env.name)
        }
        None => format!("{}/env/{}", state.base_url, env.name),
    }
}

pub fn view(state: &AppState, env: &Environment) -> EnvironmentView {
    EnvironmentView {
        id: env.id,
        name: env.name.clone(),
        tenant_id: env.tenant_id,
        url: url(state, env),
        created_by: env.created_by,
        created_date_time: env.created_at,
    }
}

/// The environment a resource URL names, if it is one of this server's and belongs to `tenant_id`.
pub async fn from_resource(
    state: &AppState,
    tenant_id: Uuid,
    resource: &str,
) -> Result<Option<Environment>> {
    let Some(name) = environment::environment_in_url(
        resource,
        |h| state.is_our_host(h),
        state.config.environment_domain.as_deref(),
    ) else {
        return Ok(None);
    };
    Ok(state
        .store
        .environment_by_name(&name)
        .await?
        .filter(|e| e.tenant_id == tenant_id))
}

async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<Environment> {
    state
        .store
        .environment_get(id)
        .await?
        .filter(|e| e.tenant_id == caller.tenant_id)
        .ok_or_else(|| DirectoryError::not_found("environment", id).into())
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: EnvironmentInput,
) -> Result<EnvironmentView> {
    caller.require(Permission::ManageEnvironments)?;
    let name = environment::validate_name(&input.name)?;
    let env = Environment {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        name,
        number: 0,
        created_by: caller.object_id,
        created_at: state.clock.now(),
    };
    // Every environment starts with the security tables and the standard account and contact,
    // a root business unit, the built-in roles, and its creator as a System Administrator.
    let tables = keyway_core::dataverse::system_tables::builtin_entities();
    let creator = creator(state, caller).await?;
    let seed = keyway_core::dataverse::seed::build(&env.name, &tables, &creator, env.created_at);
    let created = state
        .store
        .environment_create(&env, &tables, &seed)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(format!(
                "an environment named '{}' already exists on this server",
                env.name
            ))),
            other => other.into(),
        })?;
    tracing::info!(environment = %created.id, name = %created.name, "environment created");
    Ok(view(state, &created))
}

/// The caller as the environment will know them.
async fn creator(state: &AppState, caller: &Caller) -> Result<Creator> {
    use keyway_store::DirectoryStore;
    if caller.is_app {
        let sp = state
            .store
            .service_principal_get(caller.tenant_id, caller.object_id)
            .await?
            .ok_or_else(|| {
                ServiceError::Unauthenticated(
                    "the calling service principal no longer exists".into(),
                )
            })?;
        return Ok(Creator::Application {
            app_id: sp.app_id,
            display_name: sp.display_name,
        });
    }
    let user = state
        .store
        .user_get(caller.tenant_id, caller.object_id)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("the calling user no longer exists".into()))?;
    Ok(Creator::User {
        object_id: user.id,
        upn: user.user_principal_name,
        display_name: user.display_name,
    })
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<EnvironmentView>> {
    caller.require(Permission::ReadEnvironments)?;
    Ok(state
        .store
        .environment_list(caller.tenant_id)
        .await?
        .iter()
        .map(|e| view(state, e))
        .collect())
}

pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> Result<EnvironmentView> {
    caller.require(Permission::ReadEnvironments)?;
    Ok(view(state, &load(state, caller, id).await?))
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::ManageEnvironments)?;
    let env = load(state, caller, id).await?;
    state
        .store
        .environment_delete(caller.tenant_id, env.id)
        .await?;
    tracing::info!(environment = %env.id, name = %env.name, "environment deleted");
    Ok(())
}
