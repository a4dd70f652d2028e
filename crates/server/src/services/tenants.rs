//! Tenants: born with a signing key, the Microsoft Graph principal and an administrator app;
//! found by id or by domain name; their signing keys rotated on demand.

use std::collections::HashMap;
use std::sync::RwLock;

use keyway_core::directory::{
    self, AppRoleAssignment, Application, DirectoryError, PasswordCredential, ServicePrincipal,
    Tenant,
};
use keyway_core::graph_roles::{self, Permission};
use keyway_core::wire::{AdminCredentials, SigningKeyView, TenantCreated, TenantInput, TenantView};
use keyway_store::{DirectoryStore, TenantBirth};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::caller::Caller;
use super::{Result, ServiceError};
use crate::state::AppState;

/// Tenants never change once made, so a found tenant is kept for good.
#[derive(Default)]
pub struct TenantCache {
    by_key: RwLock<HashMap<String, Tenant>>,
}

impl TenantCache {
    fn get(&self, key: &str) -> Option<Tenant> {
        self.by_key.read().ok().and_then(|m| m.get(key).cloned())
    }

    fn put(&self, key: String, t: &Tenant) {
        if let Ok(mut m) = self.by_key.write() {
            m.insert(key, t.clone());
        }
    }
}

/// The tenant a path segment names: its id, or one of its domain names.
pub async fn resolve(state: &AppState, segment: &str) -> Result<Option<Tenant>> {
    let key = segment.to_ascii_lowercase();
    if let Some(t) = state.tenants.get(&key) {
        return Ok(Some(t));
    }
    let found = match Uuid::parse_str(&key) {
        Ok(id) => state.store.tenant_get(id).await?,
        Err(_) if key.contains('.') => state.store.tenant_by_domain(&key).await?,
        Err(_) => None,
    };
    if let Some(t) = &found {
        state.tenants.put(key, t);
    }
    Ok(found)
}

pub fn view(t: &Tenant) -> TenantView {
    TenantView {
        id: t.id,
        display_name: t.display_name.clone(),
        domains: t.domains.clone(),
        is_system: t.is_system,
        created_date_time: t.created_at,
    }
}

/// Everything a new tenant starts with, and its administrator's secret (to be shown once).
pub fn birth(
    state: &AppState,
    display_name: &str,
    domains: Vec<String>,
    is_system: bool,
    now: OffsetDateTime,
) -> Result<(TenantBirth, Zeroizing<String>)> {
    let display_name = directory::validate_display_name("displayName", display_name)?;
    if domains.is_empty() {
        return Err(
            DirectoryError::invalid("domains", "a tenant needs at least one domain name").into(),
        );
    }
    let mut clean = Vec::with_capacity(domains.len());
    for d in &domains {
        let d = directory::validate_domain(d)?;
        if !clean.contains(&d) {
            clean.push(d);
        }
    }
    let tid = Uuid::new_v4();
    let tenant = Tenant {
        id: tid,
        display_name,
        domains: clean,
        is_system,
        created_at: now,
    };
    let graph = ServicePrincipal {
        id: Uuid::new_v4(),
        tenant_id: tid,
        app_id: graph_roles::GRAPH_APP_ID,
        display_name: "Microsoft Graph".into(),
        account_enabled: true,
        app_owner_organization_id: None,
        created_at: now,
    };
    let admin_app = Application {
        id: Uuid::new_v4(),
        tenant_id: tid,
        app_id: Uuid::new_v4(),
        display_name: "Keyway administrator".into(),
        sign_in_audience: "AzureADMyOrg".into(),
        identifier_uris: vec![],
        is_fallback_public_client: false,
        created_at: now,
    };
    let secret = state.secrets.generate();
    let (start, end) =
        directory::secret_validity(now, None, Some(now + directory::MAX_SECRET_LIFETIME))?;
    let admin_secret = PasswordCredential {
        key_id: Uuid::new_v4(),
        application_id: admin_app.id,
        display_name: Some("administrator".into()),
        hint: secret.hint.clone(),
        start,
        end,
        secret_hash: secret.hash.clone(),
    };
    let admin_sp = ServicePrincipal {
        id: Uuid::new_v4(),
        tenant_id: tid,
        app_id: admin_app.app_id,
        display_name: admin_app.display_name.clone(),
        account_enabled: true,
        app_owner_organization_id: Some(tid),
        created_at: now,
    };
    let roles = graph_roles::ADMINISTRATOR
        .iter()
        .filter(|r| is_system || r.id != graph_roles::KEYWAY_TENANT_READWRITE_ALL.id)
        .map(|r| AppRoleAssignment {
            id: Uuid::new_v4(),
            tenant_id: tid,
            principal_id: admin_sp.id,
            resource_id: graph.id,
            app_role_id: r.id,
            created_at: now,
        })
        .collect();
    let signing_key = super::signing::new_key(state, tid, now)?;
    Ok((
        TenantBirth {
            tenant,
            signing_key,
            graph,
            admin_app,
            admin_secret,
            admin_sp,
            admin_roles: roles,
        },
        secret.text,
    ))
}

fn require_system_admin(caller: &Caller, system: &Tenant) -> Result<()> {
    caller.require(Permission::ManageTenants)?;
    if caller.tenant_id != system.id {
        return Err(ServiceError::Forbidden(
            "Only administrators of the system tenant manage tenants.".into(),
        ));
    }
    Ok(())
}

async fn system_tenant(state: &AppState) -> Result<Tenant> {
    state
        .store
        .tenant_system()
        .await?
        .ok_or_else(|| ServiceError::Internal("no system tenant".into()))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: TenantInput,
) -> Result<TenantCreated> {
    require_system_admin(caller, &system_tenant(state).await?)?;
    let now = state.clock.now();
    let domains = if input.domains.is_empty() {
        return Err(DirectoryError::invalid(
            "domains",
            "give the tenant at least one domain name, such as contoso.example",
        )
        .into());
    } else {
        input.domains
    };
    let (b, secret) = birth(state, &input.display_name, domains, false, now)?;
    state.store.tenant_create(&b).await.map_err(|e| match e {
        keyway_store::StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(
            "one of these domain names already belongs to a tenant".into(),
        )),
        other => other.into(),
    })?;
    Ok(TenantCreated {
        tenant: view(&b.tenant),
        administrator: AdminCredentials {
            client_id: b.admin_app.app_id,
            client_secret: secret.to_string(),
        },
    })
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<TenantView>> {
    let system = system_tenant(state).await?;
    if caller.tenant_id != system.id {
        // A tenant's own administrators see their own tenant only.
        caller.require(Permission::ReadApplications)?;
        let own = state.store.tenant_get(caller.tenant_id).await?;
        return Ok(own.iter().map(view).collect());
    }
    require_system_admin(caller, &system)?;
    Ok(state.store.tenant_list().await?.iter().map(view).collect())
}

async fn authorize_keys(state: &AppState, caller: &Caller, tenant_id: Uuid) -> Result<Tenant> {
    let tenant = state
        .store
        .tenant_get(tenant_id)
        .await?
        .ok_or_else(|| DirectoryError::not_found("tenant", tenant_id))?;
    if caller.tenant_id == tenant_id {
        caller.require(Permission::WriteApplications)?;
    } else {
        require_system_admin(caller, &system_tenant(state).await?)?;
    }
    Ok(tenant)
}

pub async fn signing_keys(
    state: &AppState,
    caller: &Caller,
    tenant_id: Uuid,
) -> Result<Vec<SigningKeyView>> {
    authorize_keys(state, caller, tenant_id).await?;
    Ok(state
        .store
        .signing_keys(tenant_id)
        .await?
        .iter()
        .map(|k| SigningKeyView {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            status: if k.retired_at.is_some() {
                "retired"
            } else {
                "active"
            }
            .into(),
            created_date_time: k.created_at,
        })
        .collect())
}

/// Make a new active key; the old one stays published until its tokens have expired.
pub async fn rotate_signing_key(
    state: &AppState,
    caller: &Caller,
    tenant_id: Uuid,
) -> Result<SigningKeyView> {
    authorize_keys(state, caller, tenant_id).await?;
    let now = state.clock.now();
    let key = super::signing::new_key(state, tenant_id, now)?;
    state.store.signing_key_rotate(&key, now).await?;
    state.signing.invalidate(tenant_id);
    Ok(SigningKeyView {
        kid: key.kid,
        alg: key.alg,
        status: "active".into(),
        created_date_time: now,
    })
}
