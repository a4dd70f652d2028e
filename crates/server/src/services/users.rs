//! People: user principal names in the tenant's domains, argon2id password hashes.

use keyway_core::directory::{self, DirectoryError, User};
use keyway_core::graph_roles::Permission;
use keyway_core::wire::{UserInput, UserView};
use keyway_store::DirectoryStore;
use uuid::Uuid;

use super::caller::Caller;
use super::{Result, ServiceError};
use crate::state::AppState;

pub fn view(u: &User) -> UserView {
    UserView {
        id: u.id,
        user_principal_name: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
        mail_nickname: u.mail_nickname.clone(),
        account_enabled: u.account_enabled,
        created_date_time: u.created_at,
    }
}

async fn hash(password: String) -> Result<String> {
    directory::validate_password(&password)?;
    tokio::task::spawn_blocking(move || keyway_crypto::password::hash(&password))
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing: {e}")))?
        .map_err(ServiceError::from)
}

async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<User> {
    Ok(state
        .store
        .user_get(caller.tenant_id, id)
        .await?
        .ok_or_else(|| DirectoryError::not_found("user", id))?)
}

pub async fn create(state: &AppState, caller: &Caller, input: UserInput) -> Result<UserView> {
    caller.require(Permission::WriteUsers)?;
    let tenant = state
        .store
        .tenant_get(caller.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("caller's tenant vanished".into()))?;
    let upn = directory::validate_user_principal_name(
        input
            .user_principal_name
            .as_deref()
            .ok_or_else(|| DirectoryError::invalid("userPrincipalName", "is required"))?,
        &tenant,
    )?;
    let display_name = directory::validate_display_name(
        "displayName",
        input
            .display_name
            .as_deref()
            .ok_or_else(|| DirectoryError::invalid("displayName", "is required"))?,
    )?;
    let password = input
        .password_profile
        .and_then(|p| p.password)
        .ok_or_else(|| DirectoryError::invalid("passwordProfile.password", "is required"))?;
    let alias = upn.split('@').next().unwrap_or_default().to_string();
    let user = User {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        mail_nickname: input.mail_nickname.unwrap_or(alias),
        user_principal_name: upn,
        display_name,
        account_enabled: input.account_enabled.unwrap_or(true),
        password_hash: hash(password).await?,
        created_at: state.clock.now(),
    };
    state.store.user_create(&user).await.map_err(|e| match e {
        keyway_store::StoreError::Conflict(_) => DirectoryError::Conflict(format!(
            "a user named {} already exists",
            user.user_principal_name
        ))
        .into(),
        other => ServiceError::from(other),
    })?;
    Ok(view(&user))
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<UserView>> {
    caller.require(Permission::ReadUsers)?;
    Ok(state
        .store
        .user_list(caller.tenant_id)
        .await?
        .iter()
        .map(view)
        .collect())
}

pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> Result<UserView> {
    caller.require(Permission::ReadUsers)?;
    Ok(view(&load(state, caller, id).await?))
}

pub async fn update(state: &AppState, caller: &Caller, id: Uuid, input: UserInput) -> Result<()> {
    caller.require(Permission::WriteUsers)?;
    let mut user = load(state, caller, id).await?;
    if input
        .user_principal_name
        .is_some_and(|u| !u.eq_ignore_ascii_case(&user.user_principal_name))
    {
        return Err(DirectoryError::invalid(
            "userPrincipalName",
            "renaming users is not supported",
        )
        .into());
    }
    if let Some(n) = input.display_name.as_deref() {
        user.display_name = directory::validate_display_name("displayName", n)?;
    }
    if let Some(m) = input.mail_nickname {
        user.mail_nickname = m;
    }
    if let Some(e) = input.account_enabled {
        user.account_enabled = e;
    }
    if let Some(p) = input.password_profile.and_then(|p| p.password) {
        user.password_hash = hash(p).await?;
    }
    state.store.user_update(&user).await?;
    Ok(())
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WriteUsers)?;
    if !state.store.user_delete(caller.tenant_id, id).await? {
        return Err(DirectoryError::not_found("user", id).into());
    }
    Ok(())
}
