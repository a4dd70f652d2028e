//! Giving an environment variable a value (a value row whose `environmentvariabledefinitionid`
//! names the definition) chooses what every flow reading the variable runs with, so it is
//! appending to the definition: the writer needs `prvAppendToenvironmentvariabledefinition` at a
//! depth that reaches that definition (theirs, their unit's, or one shared with them with Append
//! To), as Dataverse checks a lookup's target. Otherwise a user who cannot even see a variable
//! could set the URL an administrator's flow posts to.

use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::Access;
use keyway_store::EnvironmentStore;

use super::Result;
use super::webapi::WebApiCaller;
use crate::state::AppState;

const DEFINITION: &str = "environmentvariabledefinition";

/// Check a write to `entity` that sets a value row's definition.
pub async fn check(
    state: &AppState,
    c: &WebApiCaller,
    entity: &EntityDef,
    record: &Record,
) -> Result<()> {
    if entity.logical_name != "environmentvariablevalue" || entity.is_custom {
        return Ok(());
    }
    let Some(FieldValue::Id(id)) = record.fields.get("environmentvariabledefinitionid") else {
        return Ok(());
    };
    let Some(table) = c
        .tables
        .iter()
        .find(|e| e.logical_name == DEFINITION && !e.is_custom)
    else {
        return Ok(());
    };
    let scope = super::records::scope_for(state, c, Access::AppendTo, table).await?;
    // A definition that does not exist is the lookup's own error, answered by the write.
    let Some(row) = state.store.record_get(&c.env, table, *id).await? else {
        return Ok(());
    };
    let of = |col: &str| match row.fields.get(col) {
        Some(FieldValue::Id(u)) => Some(*u),
        _ => None,
    };
    let grants = super::sharing::grants(state, c, table, *id).await?;
    if scope.admits_row(of("ownerid"), of("owningbusinessunit"), &grants) {
        return Ok(());
    }
    let name = match row.fields.get("schemaname") {
        Some(FieldValue::Text(t)) => t.clone(),
        _ => id.to_string(),
    };
    Err(DataverseError::MissingPrivilege(format!(
        "You cannot set a value of the environment variable '{name}': that appends to its definition, which needs prvAppendTo{DEFINITION} on it, and it is neither yours nor within your roles' depth nor shared with you. Ask its owner or a System Customizer to set it."
    ))
    .into())
}
