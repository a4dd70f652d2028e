//! People: members with user principal names in the tenant's domains and argon2id password
//! hashes, and guests invited from other tenants (Entra B2B), who sign in with their home account.

use keyway_core::directory::{self, DirectoryError, HomeAccount, User, UserType};
use keyway_core::graph_roles::Permission;
use keyway_core::wire::{InvitationInput, InvitationView, InvitedUserRef, UserInput, UserView};
use keyway_store::{DirectoryStore, RefreshTokenStore};
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
        user_type: u.user_type.as_str().into(),
        mail: u.mail.clone(),
        creation_type: u.is_guest().then(|| "Invitation".into()),
        // Keyway sends no mail: an invitation is redeemed the moment it is made.
        external_user_state: u.is_guest().then(|| "Accepted".into()),
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
        user_type: UserType::Member,
        mail: None,
        home: None,
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
    let disabled = input.account_enabled == Some(false) && user.account_enabled;
    if let Some(e) = input.account_enabled {
        user.account_enabled = e;
    }
    let new_password = input.password_profile.and_then(|p| p.password);
    let password_changed = new_password.is_some();
    if let Some(p) = new_password {
        if user.is_guest() {
            return Err(DirectoryError::invalid(
                "passwordProfile.password",
                format!(
                    "a guest signs in with the password of their home account ({}): change it in their home tenant",
                    user.mail.as_deref().unwrap_or_default()
                ),
            )
            .into());
        }
        user.password_hash = hash(p).await?;
    }
    state.store.user_update(&user).await?;
    // As Entra does: a disabled account or a new password ends every sign-in's refresh tokens.
    let reason = match (disabled, password_changed) {
        (true, _) => Some("disabled"),
        (false, true) => Some("password"),
        _ => None,
    };
    if let Some(reason) = reason {
        state
            .store
            .refresh_tokens_revoke_user(user.id, state.clock.now(), reason)
            .await?;
    }
    Ok(())
}

/// `revokeSignInSessions`: every refresh token of the user (and, for a member, of the guests
/// its account signs in as elsewhere) stops working; access tokens run out within the hour.
pub async fn revoke_sign_in_sessions(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WriteUsers)?;
    let user = load(state, caller, id).await?;
    let n = state
        .store
        .refresh_tokens_revoke_user(user.id, state.clock.now(), "signout")
        .await?;
    tracing::info!(user = %user.id, revoked = n, "sign-in sessions revoked");
    Ok(())
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WriteUsers)?;
    if !state.store.user_delete(caller.tenant_id, id).await? {
        return Err(DirectoryError::not_found("user", id).into());
    }
    Ok(())
}

/// Invite a user of another Keyway tenant as a guest of the caller's tenant. Keyway has no mail
/// to send, so the invitation is redeemed at once: the guest object exists when this returns,
/// and inviting the same account again answers with the same guest.
pub async fn invite(
    state: &AppState,
    caller: &Caller,
    input: InvitationInput,
) -> Result<InvitationView> {
    caller.require(Permission::WriteUsers)?;
    let address = input
        .invited_user_email_address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| DirectoryError::invalid("invitedUserEmailAddress", "is required"))?
        .to_ascii_lowercase();
    let redirect = input
        .invite_redirect_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| DirectoryError::invalid("inviteRedirectUrl", "is required"))?
        .to_string();
    let absolute = redirect.starts_with("https://") || redirect.starts_with("http://");
    if !absolute || redirect.chars().any(char::is_whitespace) {
        return Err(DirectoryError::invalid(
            "inviteRedirectUrl",
            "must be an absolute http(s) URL, such as https://myapps.example",
        )
        .into());
    }
    if input.send_invitation_message == Some(true) {
        return Err(DirectoryError::invalid(
            "sendInvitationMessage",
            "Keyway sends no mail: send false (the invitation is redeemed at once and the guest signs in with their home account's password)",
        )
        .into());
    }
    if input.reset_redemption == Some(true) {
        return Err(DirectoryError::invalid(
            "resetRedemption",
            "is not supported: delete the guest user and invite the address again",
        )
        .into());
    }
    if input
        .invited_user_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("Guest"))
    {
        return Err(DirectoryError::invalid(
            "invitedUserType",
            "only Guest is supported: invited users stay members of their home tenant",
        )
        .into());
    }
    let display_name = input
        .invited_user_display_name
        .as_deref()
        .map(|n| directory::validate_display_name("invitedUserDisplayName", n))
        .transpose()?;
    let tenant = state
        .store
        .tenant_get(caller.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("caller's tenant vanished".into()))?;
    let home = state
        .store
        .user_by_upn(&address)
        .await?
        .ok_or_else(|| {
            DirectoryError::invalid(
                "invitedUserEmailAddress",
                format!("'{address}' is not a user of any tenant on this Keyway server. Keyway has no mail to send an invitation with: invite the user principal name of a user of another tenant here"),
            )
        })?;
    if home.tenant_id == tenant.id {
        return Err(DirectoryError::invalid(
            "invitedUserEmailAddress",
            format!("'{address}' is already a user of this tenant"),
        )
        .into());
    }
    if home.is_guest() {
        return Err(DirectoryError::invalid(
            "invitedUserEmailAddress",
            format!(
                "'{address}' is itself a guest: invite their home account ({})",
                home.mail.as_deref().unwrap_or_default()
            ),
        )
        .into());
    }
    let guest = match state.store.user_guest_of(tenant.id, home.id).await? {
        Some(existing) => existing,
        None => create_guest(state, &tenant, &home, display_name.clone()).await?,
    };
    Ok(InvitationView {
        id: Uuid::new_v4(),
        invited_user_display_name: display_name.or(Some(guest.display_name.clone())),
        invited_user_type: UserType::Guest.as_str().into(),
        invited_user_email_address: address,
        send_invitation_message: false,
        reset_redemption: false,
        // Already redeemed: following the redeem link simply lands on the redirect URL.
        invite_redeem_url: redirect.clone(),
        invite_redirect_url: redirect,
        status: "Completed".into(),
        invited_user: InvitedUserRef { id: guest.id },
    })
}

async fn create_guest(
    state: &AppState,
    tenant: &keyway_core::directory::Tenant,
    home: &User,
    display_name: Option<String>,
) -> Result<User> {
    let domain = tenant
        .domains
        .first()
        .ok_or_else(|| ServiceError::Internal("tenant without a domain".into()))?;
    let upn = directory::guest_user_principal_name(&home.user_principal_name, domain);
    let guest = User {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        mail_nickname: upn.split('@').next().unwrap_or_default().to_string(),
        user_principal_name: upn,
        display_name: display_name.unwrap_or_else(|| home.display_name.clone()),
        account_enabled: true,
        // Never checked: a guest's password is their home account's.
        password_hash: String::new(),
        created_at: state.clock.now(),
        user_type: UserType::Guest,
        mail: Some(home.user_principal_name.clone()),
        home: Some(HomeAccount {
            tenant_id: home.tenant_id,
            user_id: home.id,
        }),
    };
    match state.store.user_create(&guest).await {
        Ok(()) => Ok(guest),
        // Invited twice at once: the other request made the guest.
        Err(keyway_store::StoreError::Conflict(_)) => state
            .store
            .user_guest_of(tenant.id, home.id)
            .await?
            .ok_or_else(|| {
                DirectoryError::Conflict(format!(
                    "a user named {} already exists",
                    guest.user_principal_name
                ))
                .into()
            }),
        Err(e) => Err(e.into()),
    }
}
