//! Connections' use cases, for both API families: create or update (values checked, secrets
//! sealed, the connection tested for real), read (secrets masked; Can use holders see no
//! parameters), list, delete, share, and acting with one (a token from its credentials, cached).

use keyway_core::connections::{
    self as conn, Api, AuthKind, Connection, ConnectionError, Identity, PrincipalKind, Role, Status,
};
use keyway_core::token::{AccessTokenClaims, CLOCK_SKEW};
use keyway_store::{
    ConnectionEvent, ConnectionPermission, ConnectionStore, DirectoryStore, EnvironmentStore,
    SealedField, SecretChanges, SystemUserKey,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Result, ServiceError, vault};
use crate::state::AppState;

/// The well-known resource of the Power Platform API; connectivity callers present its tokens.
pub const POWER_PLATFORM_RESOURCE: &str = "https://api.powerplatform.com";
/// The resource Flow Service callers present tokens for.
pub const FLOW_SERVICE_RESOURCE: &str = "https://platform.adobe.io";
/// APIs Keyway serves that every tenant may ask tokens for.
pub const BUILT_IN_RESOURCES: [&str; 2] = [POWER_PLATFORM_RESOURCE, FLOW_SERVICE_RESOURCE];

/// Who calls a connections API.
#[derive(Debug, Clone)]
pub struct ConnCaller {
    pub identity: Identity,
    /// The client application, for app tokens.
    pub app_id: Option<Uuid>,
    /// The client id the token was issued to (apps and people alike).
    pub client_id: String,
}

impl ConnCaller {
    pub fn label(&self) -> String {
        self.identity.id.to_string()
    }
}

fn err(e: ConnectionError) -> ServiceError {
    e.into()
}

/// Verify a bearer token meant for one of `audiences` and say who it names.
pub async fn caller(state: &AppState, token: &str, audiences: &[&str]) -> Result<ConnCaller> {
    let claims: AccessTokenClaims = state.signing.verify(state, token).await?;
    let now = state.clock.now().unix_timestamp();
    if claims.exp + CLOCK_SKEW.whole_seconds() <= now {
        return Err(ServiceError::Unauthenticated(
            "The access token has expired.".into(),
        ));
    }
    let aud = claims.aud.trim_end_matches('/');
    if !audiences
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
    {
        return Err(ServiceError::Unauthenticated(format!(
            "The access token's audience '{}' is not this API: ask for scope {}/.default.",
            claims.aud,
            audiences.first().copied().unwrap_or_default()
        )));
    }
    let bad = || ServiceError::Unauthenticated("The access token names no valid principal.".into());
    let tenant_id = Uuid::parse_str(&claims.tid).map_err(|_| bad())?;
    let oid = Uuid::parse_str(&claims.oid).map_err(|_| bad())?;
    let (kind, display_name, app_id) = if claims.is_app() {
        let app_id = Uuid::parse_str(&claims.appid).map_err(|_| bad())?;
        let sp = state
            .store
            .service_principal_by_app_id(tenant_id, app_id)
            .await?
            .filter(|sp| sp.account_enabled)
            .ok_or_else(|| {
                ServiceError::Unauthenticated(
                    "The calling application has no enabled service principal.".into(),
                )
            })?;
        ("ServicePrincipal", sp.display_name, Some(app_id))
    } else {
        let user = state
            .store
            .user_get(tenant_id, oid)
            .await?
            .filter(|u| u.account_enabled)
            .ok_or_else(|| {
                ServiceError::Unauthenticated("The calling user is unknown or disabled.".into())
            })?;
        ("User", user.display_name, None)
    };
    Ok(ConnCaller {
        identity: Identity {
            id: oid,
            kind: kind.into(),
            display_name,
            tenant_id,
        },
        app_id,
        client_id: claims.appid.clone(),
    })
}

/// What a caller asks to create or change.
#[derive(Debug, Clone)]
pub struct ConnectionInput {
    pub api: Api,
    /// The environment id, or `<org>/<sandbox>`.
    pub scope: String,
    /// The name to address it by (generated when `None`).
    pub name: Option<String>,
    pub connector: String,
    /// `None` for single-set connectors.
    pub parameter_set: Option<String>,
    pub values: Map<String, Value>,
    pub display_name: Option<String>,
    pub description: Option<String>,
}

pub(crate) fn event(
    state: &AppState,
    id: Uuid,
    kind: &str,
    caller: &str,
    acting_as: Option<String>,
    purpose: &str,
) -> ConnectionEvent {
    ConnectionEvent {
        id: Uuid::now_v7(),
        connection_id: id,
        at: state.clock.now(),
        kind: kind.into(),
        caller: caller.into(),
        acting_as,
        purpose: purpose.into(),
    }
}

/// The role the caller holds on a connection, if any.
pub async fn role_of(
    state: &AppState,
    caller: &ConnCaller,
    c: &Connection,
) -> Result<Option<Role>> {
    if c.tenant_id != caller.identity.tenant_id {
        return Ok(None);
    }
    if c.created_by.id == caller.identity.id {
        return Ok(Some(Role::Owner));
    }
    // Adobe's model: whoever the organization's sandbox admits may use and edit its connections
    // (the gateway has already bound the caller's tenant to the organization).
    if c.api == Api::FlowService {
        return Ok(Some(Role::CanEdit));
    }
    Ok(state
        .store
        .connection_permissions(c.id)
        .await?
        .into_iter()
        .filter(|p| p.principal_id == caller.identity.id)
        .filter_map(|p| Role::parse(&p.role))
        .max())
}

fn not_found(name: &str) -> ServiceError {
    err(ConnectionError::NotFound(format!(
        "The connection '{name}' was not found, or you have no access to it."
    )))
}

/// A connection the caller may see, with their role.
pub async fn get(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: &str,
    name: &str,
) -> Result<(Connection, Role)> {
    let c = state
        .store
        .connection_find(api, scope, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let role = role_of(state, caller, &c)
        .await?
        .ok_or_else(|| not_found(name))?;
    Ok((c, role))
}

/// Every connection of a scope (or of the caller's tenant) the caller holds a role on.
pub async fn list(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: Option<&str>,
) -> Result<Vec<(Connection, Role)>> {
    let all = state
        .store
        .connection_list(api, caller.identity.tenant_id, scope)
        .await?;
    let shared: BTreeMap<Uuid, Role> = state
        .store
        .connections_shared_with(&[caller.identity.id])
        .await?
        .into_iter()
        .filter_map(|(id, r)| Role::parse(&r).map(|r| (id, r)))
        .collect();
    Ok(all
        .into_iter()
        .filter_map(|c| {
            let role = if c.created_by.id == caller.identity.id {
                Some(Role::Owner)
            } else if c.api == Api::FlowService {
                Some(Role::CanEdit)
            } else {
                shared.get(&c.id).copied()
            };
            role.map(|r| (c, r))
        })
        .collect())
}

/// The environment a Power Platform connection lives in; the caller must be an enabled user
/// (or application user) there.
async fn environment_for(
    state: &AppState,
    caller: &ConnCaller,
    scope: &str,
) -> Result<keyway_core::environment::Environment> {
    let missing = || {
        err(ConnectionError::NotFound(format!(
            "The environment '{scope}' was not found."
        )))
    };
    let id = Uuid::parse_str(scope).map_err(|_| missing())?;
    let env = state
        .store
        .environment_get(id)
        .await?
        .filter(|e| e.tenant_id == caller.identity.tenant_id)
        .ok_or_else(missing)?;
    let key = match caller.app_id {
        Some(app) => SystemUserKey::ApplicationId(app),
        None => SystemUserKey::ObjectId(caller.identity.id),
    };
    match state.store.dataverse_user(&env, key).await? {
        Some(u) if !u.disabled => Ok(env),
        _ => Err(err(ConnectionError::Forbidden(format!(
            "You are not an enabled user of environment '{}': an administrator adds you (application users with `keyway env app-user add`).",
            env.name
        )))),
    }
}

/// Create a connection, or change the one of that name (Can edit or owner); test it for real.
/// Returns it and whether it was created.
pub async fn put(
    state: &AppState,
    caller: &ConnCaller,
    input: ConnectionInput,
    expected_version: Option<i64>,
) -> Result<(Connection, bool)> {
    let connector = conn::connector(&input.connector).ok_or_else(|| {
        err(ConnectionError::UnknownConnector(format!(
            "The connector '{}' does not exist. Known connectors: {}.",
            input.connector,
            conn::connectors()
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    })?;
    let env = match input.api {
        Api::PowerPlatform => Some(environment_for(state, caller, &input.scope).await?),
        Api::FlowService => None,
    };
    let existing = match &input.name {
        Some(n) => {
            state
                .store
                .connection_find(input.api, &input.scope, n)
                .await?
        }
        None => None,
    };
    let set_name = input
        .parameter_set
        .clone()
        .or_else(|| existing.as_ref().map(|e| e.parameter_set.clone()))
        .or_else(|| {
            (connector.parameter_sets.len() == 1)
                .then(|| connector.parameter_sets[0].name.to_string())
        })
        .ok_or_else(|| {
            err(ConnectionError::BadRequest(format!(
                "The connector '{}' has several parameter sets: name one ({}).",
                connector.id,
                connector
                    .parameter_sets
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        })?;
    let set = connector.parameter_set(&set_name).ok_or_else(|| {
        err(ConnectionError::UnknownConnector(format!(
            "The connector '{}' has no parameter set '{set_name}' ({}).",
            connector.id,
            connector
                .parameter_sets
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    })?;
    let now = state.clock.now();
    let (mut c, created, stored) = match existing {
        Some(old) => {
            let role = role_of(state, caller, &old)
                .await?
                .ok_or_else(|| not_found(&old.name))?;
            if !role.can_edit() {
                return Err(err(ConnectionError::Forbidden(format!(
                    "You hold {} on connection '{}': only its owner or someone with CanEdit may change it.",
                    role.name(),
                    old.name
                ))));
            }
            if let Some(v) = expected_version
                && v != old.version
            {
                return Err(err(ConnectionError::Precondition(format!(
                    "The connection changed (version {} now, {v} expected): read it again.",
                    old.version
                ))));
            }
            let stored = if old.parameter_set == set.name {
                old.secret_fields.clone()
            } else {
                Vec::new()
            };
            (old, false, stored)
        }
        None => {
            let id = Uuid::now_v7();
            let c = Connection {
                id,
                api: input.api,
                scope: input.scope.clone(),
                name: input
                    .name
                    .clone()
                    .unwrap_or_else(|| id.simple().to_string()),
                tenant_id: caller.identity.tenant_id,
                connector: connector.id.into(),
                parameter_set: set.name.into(),
                display_name: String::new(),
                description: String::new(),
                public_values: Map::new(),
                secret_fields: Vec::new(),
                created_by: caller.identity.clone(),
                modified_by: caller.identity.clone(),
                run_owner: None,
                status: Status::Unknown,
                tested_at: None,
                expires_at: None,
                created_at: now,
                modified_at: now,
                version: 0,
                proof: None,
            };
            (c, true, Vec::new())
        }
    };
    let checked = conn::values::check(set, &input.values, &stored).map_err(|e| {
        err(ConnectionError::InvalidParameter {
            field: e.field,
            message: e.message,
        })
    })?;
    // Targets the connection will call must be ones Keyway may call.
    for key in ["environmentUrl", "token:authority", "serviceUri"] {
        if let Some(url) = checked.public.get(key).and_then(Value::as_str) {
            super::outbound::check_target(state, key, url)?;
        }
    }
    // A certificate must open (with its password) and hold the key its certificate names.
    if set.auth == AuthKind::ClientCertificate
        && let Some(cert) = checked.secrets.get("token:clientCertificate")
    {
        keyway_crypto::client_certificate::ClientCertificate::load(
            cert,
            checked
                .secrets
                .get("token:clientCertificatePassword")
                .map(String::as_str),
        )
        .map_err(|e| {
            err(ConnectionError::InvalidParameter {
                field: "token:clientCertificate".into(),
                message: format!("'token:clientCertificate' cannot be used: {e}."),
            })
        })?;
    }
    let before_version = c.version;
    // A new credential (another secret, client, user, tenant or target) must prove itself again
    // before the expired-connection fallback may act as anyone for it.
    let credential_changed = c.parameter_set != set.name
        || c.public_values != checked.public
        || !checked.secrets.is_empty();
    c.parameter_set = set.name.into();
    c.public_values = checked.public.clone();
    let mut secret_fields: Vec<String> = checked
        .secrets
        .keys()
        .cloned()
        .chain(checked.kept.iter().cloned())
        .collect();
    secret_fields.sort();
    let removed: Vec<String> = c
        .secret_fields
        .iter()
        .filter(|f| !secret_fields.contains(f))
        .cloned()
        .collect();
    if credential_changed || !removed.is_empty() {
        c.proof = None;
    }
    c.secret_fields = secret_fields;
    c.display_name = input
        .display_name
        .clone()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| {
            if c.display_name.is_empty() {
                connector.display_name.to_string()
            } else {
                c.display_name.clone()
            }
        });
    if let Some(d) = input.description.clone() {
        c.description = d;
    }
    if set.name == "azureRelayRunOwner" {
        c.run_owner = checked
            .public
            .get("tokenRunOwnerCert:clientId")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
    }
    c.modified_by = caller.identity.clone();
    c.modified_at = now;
    c.version = before_version + 1;
    let sealed: Vec<SealedField> = checked
        .secrets
        .iter()
        .map(|(field, value)| {
            Ok(SealedField {
                field: field.clone(),
                sealed: vault::seal(
                    state,
                    &vault::aad("connection", &c.id, field),
                    value.as_bytes(),
                )?,
            })
        })
        .collect::<Result<_>>()?;
    // What the secrets are worth is judged with them in hand, before they are dropped.
    let secrets: BTreeMap<String, Zeroizing<String>> = checked
        .secrets
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect();
    c.expires_at = super::connection_auth::expiry(state, &c, &secrets).await?;
    if created {
        let ev = event(state, c.id, "create", &caller.label(), None, "create");
        state
            .store
            .connection_create(&c, &sealed, &ev)
            .await
            .map_err(|e| match e {
                keyway_store::StoreError::Conflict(m) => err(ConnectionError::Conflict(m)),
                other => other.into(),
            })?;
    } else {
        let ev = event(state, c.id, "update", &caller.label(), None, "update");
        state
            .store
            .connection_update(
                &c,
                before_version,
                &SecretChanges {
                    set: sealed,
                    remove: removed,
                },
                &ev,
            )
            .await
            .map_err(|e| match e {
                keyway_store::StoreError::VersionMismatch => err(ConnectionError::Precondition(
                    "The connection changed while you were changing it: read it again.".into(),
                )),
                other => other.into(),
            })?;
        state.connection_tokens.forget(c.id);
    }
    let _ = env;
    let status = super::connection_auth::test(state, &caller.label(), &c).await?;
    c.status = status;
    c.tested_at = Some(state.clock.now());
    Ok((c, created))
}

/// Delete a connection (owner only).
pub async fn delete(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: &str,
    name: &str,
) -> Result<()> {
    let (c, role) = get(state, caller, api, scope, name).await?;
    if !role.can_delete() {
        return Err(err(ConnectionError::Forbidden(format!(
            "Only the owner may delete connection '{name}'; you hold {}.",
            role.name()
        ))));
    }
    state
        .store
        .connection_delete(
            c.id,
            &event(state, c.id, "delete", &caller.label(), None, "delete"),
        )
        .await?;
    state.connection_tokens.forget(c.id);
    Ok(())
}

/// Who a connection is shared with: the owner first, then each grant.
pub async fn permissions(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: &str,
    name: &str,
) -> Result<(Connection, Vec<ConnectionPermission>)> {
    let (c, _) = get(state, caller, api, scope, name).await?;
    let mut out = vec![ConnectionPermission {
        id: c.created_by.id,
        principal_id: c.created_by.id,
        principal_type: c.created_by.kind.clone(),
        role: Role::Owner.name().into(),
        created_at: c.created_at,
    }];
    out.extend(state.store.connection_permissions(c.id).await?);
    Ok((c, out))
}

/// One grant asked for.
#[derive(Debug, Clone)]
pub struct Grant {
    pub principal: Uuid,
    pub kind: PrincipalKind,
    pub role: Role,
}

/// Grant and revoke in one go, under the connector's sharing rules.
pub async fn modify_permissions(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: &str,
    name: &str,
    put: Vec<Grant>,
    delete: Vec<Uuid>,
) -> Result<()> {
    let (c, role) = get(state, caller, api, scope, name).await?;
    let connector = conn::connector(&c.connector)
        .ok_or_else(|| ServiceError::Internal(format!("connector {} vanished", c.connector)))?;
    let now = state.clock.now();
    let mut rows = Vec::with_capacity(put.len());
    for g in &put {
        conn::may_share(connector, c.run_owner.is_some(), role, g.kind, g.role)
            .map_err(|e| err(ConnectionError::Forbidden(e.0)))?;
        let known = match g.kind {
            PrincipalKind::ServicePrincipal => state
                .store
                .service_principal_get(c.tenant_id, g.principal)
                .await?
                .is_some(),
            PrincipalKind::User => state
                .store
                .user_get(c.tenant_id, g.principal)
                .await?
                .is_some(),
            PrincipalKind::Group => {
                return Err(err(ConnectionError::BadRequest(
                    "Keyway has no groups: share with users or service principals.".into(),
                )));
            }
        };
        if !known {
            return Err(err(ConnectionError::BadRequest(format!(
                "No {} with id {} in this tenant.",
                g.kind.name(),
                g.principal
            ))));
        }
        if g.principal == c.created_by.id {
            return Err(err(ConnectionError::BadRequest(
                "The owner already holds every right.".into(),
            )));
        }
        rows.push(ConnectionPermission {
            id: Uuid::now_v7(),
            principal_id: g.principal,
            principal_type: g.kind.name().into(),
            role: g.role.name().into(),
            created_at: now,
        });
    }
    if !delete.is_empty() && role != Role::Owner {
        return Err(err(ConnectionError::Forbidden(
            "Only the connection's owner may take shares away.".into(),
        )));
    }
    state
        .store
        .connection_permissions_change(
            c.id,
            &rows,
            &delete,
            &event(
                state,
                c.id,
                "share",
                &caller.label(),
                None,
                "modifyPermissions",
            ),
        )
        .await
        .map_err(|e| match e {
            keyway_store::StoreError::RowMissing => err(ConnectionError::NotFound(
                "A permission to delete does not exist.".into(),
            )),
            other => other.into(),
        })
}

/// A connection's history: every decryption (who asked, whom it acts as, why), test, change and
/// share. Its owner and editors may read it.
pub async fn events(
    state: &AppState,
    caller: &ConnCaller,
    api: Api,
    scope: &str,
    name: &str,
) -> Result<Vec<ConnectionEvent>> {
    let (c, role) = get(state, caller, api, scope, name).await?;
    if !role.can_read_parameters() {
        return Err(err(ConnectionError::Forbidden(format!(
            "You hold {} on connection '{name}': its history is for its owner and editors.",
            role.name()
        ))));
    }
    Ok(state.store.connection_events(c.id).await?)
}

/// Public values as a reader sees them: secrets masked.
pub fn shown_values(c: &Connection) -> Map<String, Value> {
    conn::values::masked_view(&c.public_values, &c.secret_fields)
}

/// `Warning` when the credential expires within the configured days: (days left, when).
pub fn expiry_warning(state: &AppState, c: &Connection) -> Option<(i64, OffsetDateTime)> {
    let now = state.clock.now();
    let days = c.days_left(now)?;
    (days <= state.config.connection_expiry_warning_days)
        .then(|| (days, c.expires_at.unwrap_or(now)))
}

/// Every connection whose credential's end is known, soonest first, for /metrics (all of them,
/// so a renewed credential's figure moves too).
pub async fn with_known_expiry(state: &AppState) -> Result<Vec<Connection>> {
    let horizon = state.clock.now() + time::Duration::days(365 * 100);
    Ok(state.store.connections_expiring(horizon).await?)
}
