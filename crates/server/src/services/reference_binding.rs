//! Binding a connection reference (setting its `connectionid`) is choosing the connection its
//! flows run with, so it is checked wherever it happens — Web API writes and solution imports
//! alike: the connection must be one of the environment's, of the reference's connector, that
//! whoever binds it owns or may use. A flow then never runs with a connection nobody who could
//! pick it chose.

use keyway_core::connections::{Api, Identity, Role};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::flows::references::connector_name;
use keyway_store::{ConnectionStore, DirectoryStore, EnvironmentStore};
use uuid::Uuid;

use super::connections::ConnCaller;
use super::webapi::WebApiCaller;
use super::{Result, ServiceError};
use crate::state::AppState;

fn text(r: &Record, col: &str) -> Option<String> {
    match r.fields.get(col) {
        Some(FieldValue::Text(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => None,
    }
}

/// The directory identity of the system user the caller acts as (a person's object id, or the
/// service principal of an application user).
async fn identity(state: &AppState, c: &WebApiCaller) -> Result<Option<ConnCaller>> {
    let Some(users) = c.tables.iter().find(|e| e.logical_name == "systemuser") else {
        return Ok(None);
    };
    let Some(row) = state
        .store
        .record_get(&c.env, users, c.principal.user_id)
        .await?
    else {
        return Ok(None);
    };
    let (id, kind, app_id) = match (
        row.id("azureactivedirectoryobjectid"),
        row.id("applicationid"),
    ) {
        (Some(object), _) => (object, "User", None),
        (None, Some(app)) => match state
            .store
            .service_principal_by_app_id(c.env.tenant_id, app)
            .await?
        {
            Some(sp) => (sp.id, "ServicePrincipal", Some(app)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(ConnCaller {
        identity: Identity {
            id,
            kind: kind.into(),
            display_name: text(&row, "fullname").unwrap_or_default(),
            tenant_id: c.env.tenant_id,
        },
        app_id,
        client_id: String::new(),
    }))
}

/// Check a write to `entity` (row `id` when updating) that sets `connectionid`.
pub async fn check(
    state: &AppState,
    c: &WebApiCaller,
    entity: &EntityDef,
    id: Option<Uuid>,
    record: &Record,
) -> Result<()> {
    if entity.logical_name != "connectionreference" || entity.is_custom {
        return Ok(());
    }
    // Unbinding (null or empty) is always allowed.
    let Some(name) = text(record, "connectionid") else {
        return Ok(());
    };
    let connector = match (text(record, "connectorid"), id) {
        (Some(c), _) => Some(c),
        (None, Some(id)) => state
            .store
            .record_get(&c.env, entity, id)
            .await?
            .and_then(|r| text(&r, "connectorid")),
        (None, None) => None,
    };
    let conn = state
        .store
        .connection_find(Api::PowerPlatform, &c.env.id.to_string(), &name)
        .await?
        .ok_or_else(|| {
            ServiceError::from(DataverseError::Syntax(format!(
                "'connectionid' names '{name}', which is not a connection of environment '{}': give the name of one of its connections.",
                c.env.name
            )))
        })?;
    if let Some(want) = connector
        && connector_name(&want) != conn.connector
    {
        return Err(DataverseError::Syntax(format!(
            "The connection '{name}' is a {} connection; this reference is to {want}.",
            conn.connector
        ))
        .into());
    }
    let role = match identity(state, c).await? {
        Some(who) => super::connections::role_of(state, &who, &conn).await?,
        None => None,
    };
    if role.is_none_or(|r| r < Role::CanView) {
        return Err(DataverseError::MissingPrivilege(format!(
            "The connection '{name}' is neither yours nor shared with you, so you cannot bind a connection reference to it: ask its owner to share it (Can use), or use one of yours."
        ))
        .into());
    }
    Ok(())
}
