//! App registrations and their credentials: client secrets (shown once) and certificates.

use keyway_core::directory::{
    self, Application, DirectoryError, KeyCredential, PasswordCredential,
};
use keyway_core::graph_roles::Permission;
use keyway_core::wire::{
    AddPasswordRequest, ApplicationInput, ApplicationView, KeyCredentialInput, KeyCredentialView,
    PasswordCredentialView,
};
use keyway_crypto::certificate::Certificate;
use keyway_store::DirectoryStore;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::caller::Caller;
use crate::state::AppState;

const MAX_KEY_CREDENTIALS: usize = 50;
const MAX_PASSWORD_CREDENTIALS: usize = 50;
const MAX_IDENTIFIER_URIS: usize = 50;

pub fn password_view(
    p: &PasswordCredential,
    secret_text: Option<String>,
) -> PasswordCredentialView {
    PasswordCredentialView {
        custom_key_identifier: None,
        display_name: p.display_name.clone(),
        end_date_time: p.end,
        hint: p.hint.clone(),
        key_id: p.key_id,
        secret_text,
        start_date_time: p.start,
    }
}

fn key_view(k: &KeyCredential, include_key: bool) -> KeyCredentialView {
    let thumb = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &k.thumbprint_sha1,
    )
    .map(hex_upper)
    .unwrap_or_default();
    KeyCredentialView {
        custom_key_identifier: Some(thumb),
        display_name: k.display_name.clone(),
        end_date_time: k.end,
        key: include_key
            .then(|| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &k.der)),
        key_id: k.key_id,
        start_date_time: k.start,
        key_type: "AsymmetricX509Cert".into(),
        usage: "Verify".into(),
    }
}

fn hex_upper(b: Vec<u8>) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

async fn view(state: &AppState, app: &Application, include_key: bool) -> Result<ApplicationView> {
    let passwords = state.store.passwords(app.id).await?;
    let keys = state.store.key_credentials(app.id).await?;
    let tenant = state.store.tenant_get(app.tenant_id).await?;
    Ok(ApplicationView {
        id: app.id,
        app_id: app.app_id,
        display_name: app.display_name.clone(),
        created_date_time: app.created_at,
        sign_in_audience: app.sign_in_audience.clone(),
        identifier_uris: app.identifier_uris.clone(),
        is_fallback_public_client: app.is_fallback_public_client,
        publisher_domain: tenant.and_then(|t| t.domains.first().cloned()),
        password_credentials: passwords.iter().map(|p| password_view(p, None)).collect(),
        key_credentials: keys.iter().map(|k| key_view(k, include_key)).collect(),
    })
}

async fn load(state: &AppState, caller: &Caller, id: Uuid) -> Result<Application> {
    Ok(state
        .store
        .application_get(caller.tenant_id, id)
        .await?
        .ok_or_else(|| DirectoryError::not_found("application", id))?)
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<ApplicationView>> {
    caller.require(Permission::ReadApplications)?;
    let apps = state.store.application_list(caller.tenant_id).await?;
    let mut out = Vec::with_capacity(apps.len());
    for a in &apps {
        out.push(view(state, a, false).await?);
    }
    Ok(out)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    include_key: bool,
) -> Result<ApplicationView> {
    caller.require(Permission::ReadApplications)?;
    let app = load(state, caller, id).await?;
    view(state, &app, include_key).await
}

fn validate_uris(uris: Vec<String>) -> Result<Vec<String>> {
    if uris.len() > MAX_IDENTIFIER_URIS {
        return Err(DirectoryError::invalid(
            "identifierUris",
            format!("at most {MAX_IDENTIFIER_URIS}"),
        )
        .into());
    }
    let mut out: Vec<String> = Vec::new();
    for u in uris {
        let u = u.trim().to_string();
        let scheme_ok = u
            .split_once(':')
            .map(|(s, rest)| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
            })
            .unwrap_or(false);
        if !scheme_ok || u.len() > 256 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DirectoryError::invalid(
                "identifierUris",
                format!("'{u}' is not an absolute URI such as api://orders"),
            )
            .into());
        }
        if u.trim_end_matches('/')
            .eq_ignore_ascii_case(keyway_core::graph_roles::GRAPH_RESOURCE_URI)
        {
            return Err(DirectoryError::invalid(
                "identifierUris",
                "Microsoft Graph's URI is reserved",
            )
            .into());
        }
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&u)) {
            out.push(u);
        }
    }
    Ok(out)
}

/// Graph's PATCH semantics: the array is the whole new set. Entries without `key` keep an
/// existing credential by `keyId`; entries with `key` add a certificate.
fn merge_keys(
    application_id: Uuid,
    existing: &[KeyCredential],
    inputs: Vec<KeyCredentialInput>,
    now: OffsetDateTime,
) -> Result<Vec<KeyCredential>> {
    if inputs.len() > MAX_KEY_CREDENTIALS {
        return Err(DirectoryError::invalid(
            "keyCredentials",
            format!("at most {MAX_KEY_CREDENTIALS} certificates"),
        )
        .into());
    }
    let mut out: Vec<KeyCredential> = Vec::new();
    for input in inputs {
        let entry = match input.key.as_deref().filter(|k| !k.is_empty()) {
            Some(text) => {
                if input.key_type.as_deref() != Some("AsymmetricX509Cert") {
                    return Err(DirectoryError::invalid(
                        "keyCredentials.type",
                        "must be AsymmetricX509Cert",
                    )
                    .into());
                }
                if input.usage.as_deref() != Some("Verify") {
                    return Err(DirectoryError::invalid(
                        "keyCredentials.usage",
                        "must be Verify (certificates verify client assertions)",
                    )
                    .into());
                }
                let cert = Certificate::from_text(text)
                    .map_err(|e| DirectoryError::invalid("keyCredentials.key", e.to_string()))?;
                if cert.not_after <= now {
                    return Err(DirectoryError::invalid(
                        "keyCredentials.key",
                        format!("the certificate expired on {}", cert.not_after),
                    )
                    .into());
                }
                KeyCredential {
                    key_id: input.key_id.unwrap_or_else(Uuid::new_v4),
                    application_id,
                    display_name: Some(
                        input
                            .display_name
                            .clone()
                            .unwrap_or_else(|| cert.subject.clone()),
                    ),
                    thumbprint_sha1: cert.x5t(),
                    thumbprint_sha256: cert.x5t_s256(),
                    der: cert.der.clone(),
                    start: cert.not_before,
                    end: cert.not_after,
                }
            }
            None => {
                let key_id = input.key_id.ok_or_else(|| {
                    DirectoryError::invalid(
                        "keyCredentials",
                        "each entry needs 'key' (a new certificate) or the 'keyId' of one to keep",
                    )
                })?;
                let mut kept = existing
                    .iter()
                    .find(|k| k.key_id == key_id)
                    .cloned()
                    .ok_or_else(|| DirectoryError::invalid("keyCredentials", format!("keyId {key_id} is not a certificate of this application; send the certificate in 'key'")))?;
                if let Some(name) = input.display_name.clone() {
                    kept.display_name = Some(name);
                }
                kept
            }
        };
        if out
            .iter()
            .any(|k| k.key_id == entry.key_id || k.thumbprint_sha1 == entry.thumbprint_sha1)
        {
            return Err(DirectoryError::invalid(
                "keyCredentials",
                "the same certificate or keyId appears twice",
            )
            .into());
        }
        out.push(entry);
    }
    Ok(out)
}

fn reject_password_credentials(input: &ApplicationInput) -> Result<()> {
    if input.password_credentials.is_some() {
        return Err(DirectoryError::invalid(
            "passwordCredentials",
            "secrets are added with POST /applications/{id}/addPassword, so they can be shown once",
        )
        .into());
    }
    Ok(())
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: ApplicationInput,
) -> Result<ApplicationView> {
    caller.require(Permission::WriteApplications)?;
    reject_password_credentials(&input)?;
    let name = input
        .display_name
        .as_deref()
        .ok_or_else(|| DirectoryError::invalid("displayName", "is required"))?;
    let now = state.clock.now();
    let id = Uuid::new_v4();
    let app = Application {
        id,
        tenant_id: caller.tenant_id,
        app_id: Uuid::new_v4(),
        display_name: directory::validate_display_name("displayName", name)?,
        sign_in_audience: sign_in_audience(input.sign_in_audience)?,
        identifier_uris: validate_uris(input.identifier_uris.unwrap_or_default())?,
        is_fallback_public_client: input.is_fallback_public_client.unwrap_or(false),
        created_at: now,
    };
    let keys = merge_keys(id, &[], input.key_credentials.unwrap_or_default(), now)?;
    state
        .store
        .application_create(&app, &keys)
        .await
        .map_err(uri_conflict)?;
    view(state, &app, false).await
}

fn sign_in_audience(v: Option<String>) -> Result<String> {
    match v.as_deref() {
        None | Some("AzureADMyOrg") => Ok("AzureADMyOrg".into()),
        Some(other) => Err(DirectoryError::invalid(
            "signInAudience",
            format!(
                "'{other}' is not supported: Keyway applications are single-tenant (AzureADMyOrg)"
            ),
        )
        .into()),
    }
}

fn uri_conflict(e: keyway_store::StoreError) -> super::ServiceError {
    match e {
        keyway_store::StoreError::Conflict(_) => DirectoryError::Conflict(
            "another application in this tenant already uses one of these identifierUris".into(),
        )
        .into(),
        other => other.into(),
    }
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    input: ApplicationInput,
) -> Result<()> {
    caller.require(Permission::WriteApplications)?;
    reject_password_credentials(&input)?;
    let mut app = load(state, caller, id).await?;
    if let Some(name) = input.display_name.as_deref() {
        app.display_name = directory::validate_display_name("displayName", name)?;
    }
    if input.sign_in_audience.is_some() {
        app.sign_in_audience = sign_in_audience(input.sign_in_audience)?;
    }
    if let Some(uris) = input.identifier_uris {
        app.identifier_uris = validate_uris(uris)?;
    }
    if let Some(p) = input.is_fallback_public_client {
        app.is_fallback_public_client = p;
    }
    let keys = match input.key_credentials {
        Some(inputs) => {
            let existing = state.store.key_credentials(app.id).await?;
            Some(merge_keys(app.id, &existing, inputs, state.clock.now())?)
        }
        None => None,
    };
    state
        .store
        .application_update(&app, keys.as_deref())
        .await
        .map_err(uri_conflict)?;
    Ok(())
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WriteApplications)?;
    if !state.store.application_delete(caller.tenant_id, id).await? {
        return Err(DirectoryError::not_found("application", id).into());
    }
    Ok(())
}

/// A new client secret, returned this once and never again.
pub async fn add_password(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    req: AddPasswordRequest,
) -> Result<PasswordCredentialView> {
    caller.require(Permission::WriteApplications)?;
    let app = load(state, caller, id).await?;
    let input = req.password_credential.unwrap_or_default();
    let now = state.clock.now();
    let (start, end) = directory::secret_validity(now, input.start_date_time, input.end_date_time)?;
    let display_name = input
        .display_name
        .as_deref()
        .map(|n| directory::validate_display_name("displayName", n))
        .transpose()?;
    if state.store.passwords(app.id).await?.len() >= MAX_PASSWORD_CREDENTIALS {
        return Err(DirectoryError::invalid("passwordCredential", format!("an application holds at most {MAX_PASSWORD_CREDENTIALS} secrets; remove an old one first")).into());
    }
    let secret = state.secrets.generate();
    let cred = PasswordCredential {
        key_id: Uuid::new_v4(),
        application_id: app.id,
        display_name,
        hint: secret.hint.clone(),
        start,
        end,
        secret_hash: secret.hash.clone(),
    };
    state.store.password_add(&cred).await?;
    tracing::info!(app_id = %app.app_id, key_id = %cred.key_id, "client secret added");
    Ok(password_view(&cred, Some(secret.text.to_string())))
}

pub async fn remove_password(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    key_id: Uuid,
) -> Result<()> {
    caller.require(Permission::WriteApplications)?;
    let app = load(state, caller, id).await?;
    if !state.store.password_remove(app.id, key_id).await? {
        return Err(DirectoryError::not_found("passwordCredential", key_id).into());
    }
    tracing::info!(app_id = %app.app_id, key_id = %key_id, "client secret removed");
    Ok(())
}
