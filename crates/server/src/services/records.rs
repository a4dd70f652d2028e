//! Creating, updating and deleting rows through the Web API: JSON bodies checked against the
//! table's columns, the caller's privileges turned into the scope the store enforces, system
//! columns set by Keyway, and the audit row written with the change.

use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::authz::{self, BusinessUnits, RowScope};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{AttributeDef, AttributeType, EntityDef, Storage};
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::Access;
use keyway_store::{EnvironmentStore, RecordStore, StoreError};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::webapi::WebApiCaller;
use super::{Result, ServiceError};
use crate::state::AppState;

fn syntax(msg: String) -> ServiceError {
    DataverseError::Syntax(msg).into()
}

fn no_such_property(entity: &EntityDef, name: &str) -> ServiceError {
    syntax(format!(
        "The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type.",
        entity.logical_name
    ))
}

fn value_for(a: &AttributeDef, v: &Value) -> Result<FieldValue> {
    let bad = |want: &str| {
        syntax(format!(
            "Cannot convert the value of '{}' to {want} ({}).",
            a.logical_name,
            a.kind.name()
        ))
    };
    if v.is_null() {
        return Ok(FieldValue::Null);
    }
    Ok(match a.kind.storage() {
        Storage::Text => {
            let s = v.as_str().ok_or_else(|| bad("a string"))?;
            if let Some(max) = a.max_length
                && s.chars().count() > max as usize
            {
                return Err(syntax(format!(
                    "The value of '{}' is longer than its maximum length of {max}.",
                    a.logical_name
                )));
            }
            FieldValue::Text(s.to_string())
        }
        Storage::Int => {
            let n = v.as_i64().ok_or_else(|| bad("a whole number"))?;
            if a.kind == AttributeType::Integer && i32::try_from(n).is_err() {
                return Err(bad("a 32-bit whole number"));
            }
            a.check_option(n).map_err(syntax)?;
            FieldValue::Int(n)
        }
        Storage::Real => FieldValue::Real(v.as_f64().ok_or_else(|| bad("a number"))?),
        Storage::Bool => FieldValue::Bool(v.as_bool().ok_or_else(|| bad("true or false"))?),
        Storage::Instant => {
            let s = v.as_str().ok_or_else(|| bad("a date and time"))?;
            let t = OffsetDateTime::parse(s, &Rfc3339).or_else(|_| {
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .map(|d| d.midnight().assume_utc())
            });
            FieldValue::Instant(t.map_err(|_| bad("a date and time such as 2026-01-31T09:00:00Z"))?)
        }
        Storage::Id => FieldValue::Id(
            v.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| bad("a GUID"))?,
        ),
    })
}

/// `"/contacts(<id>)"`, `"contacts(<id>)"` or an absolute URL ending so.
fn bound_id(tables: &[EntityDef], a: &AttributeDef, v: &Value, targets: &[&str]) -> Result<Uuid> {
    let bad = || {
        syntax(format!(
            "'{}@odata.bind' must name a row, such as \"/{}(<id>)\".",
            a.logical_name,
            targets.first().copied().unwrap_or("accounts")
        ))
    };
    let s = v.as_str().ok_or_else(bad)?;
    let last = s.trim_end_matches('/').rsplit('/').next().ok_or_else(bad)?;
    let (set, rest) = last.split_once('(').ok_or_else(bad)?;
    let id = Uuid::parse_str(rest.trim_end_matches(')')).map_err(|_| bad())?;
    let target = tables
        .iter()
        .find(|e| e.entity_set_name == set)
        .ok_or_else(bad)?;
    if !targets.contains(&target.logical_name.as_str()) {
        return Err(syntax(format!(
            "'{}' cannot point at {set}.",
            a.logical_name
        )));
    }
    Ok(id)
}

/// The columns a request body sets, checked against the table.
pub fn fields_from_json(
    entity: &EntityDef,
    tables: &[EntityDef],
    body: &Value,
    creating: bool,
) -> Result<Record> {
    let obj = body
        .as_object()
        .ok_or_else(|| syntax("The request body must be a JSON object.".into()))?;
    let mut record = Record::new(&entity.logical_name);
    for (key, v) in obj {
        if let Some(nav) = key.strip_suffix("@odata.bind") {
            // Customer lookups are bound per target: parentcustomerid_account@odata.bind.
            let (col, only) = match nav.rsplit_once('_') {
                Some((c, t))
                    if entity
                        .attribute(c)
                        .is_some_and(|a| a.kind == AttributeType::Customer) =>
                {
                    (c, Some(t))
                }
                _ => (nav, None),
            };
            let a = entity
                .lookup_by_navigation(col)
                .ok_or_else(|| no_such_property(entity, nav))?;
            if a.system {
                return Err(syntax(format!(
                    "'{col}' is set by the system and cannot be written."
                )));
            }
            if a.kind == AttributeType::Owner && v.is_null() {
                return Err(syntax(format!(
                    "'{col}' cannot be empty: every row has an owner."
                )));
            }
            let targets: Vec<&str> = match (a.kind, only) {
                (AttributeType::Customer, Some(t)) => vec![t],
                (AttributeType::Customer, None) => vec!["account", "contact"],
                // A row is owned by a user or a team (assigning it is setting this).
                (AttributeType::Owner, _) => vec!["systemuser", "team"],
                _ => a.target.as_deref().into_iter().collect(),
            };
            let id = if v.is_null() {
                None
            } else {
                Some(bound_id(tables, a, v, &targets)?)
            };
            record.fields.insert(
                a.logical_name.clone(),
                id.map_or(FieldValue::Null, FieldValue::Id),
            );
            continue;
        }
        if key.starts_with('@') || key.contains("@odata.") || key.contains("@OData.") {
            continue; // annotations
        }
        let a = entity
            .attribute(key)
            .ok_or_else(|| no_such_property(entity, key))?;
        if a.kind.is_lookup() {
            return Err(syntax(format!(
                "Set '{key}' with \"{key}@odata.bind\": \"/<set>(<id>)\"."
            )));
        }
        if a.system && !(creating && a.logical_name == entity.primary_id) {
            return Err(syntax(format!(
                "'{key}' is set by the system and cannot be written."
            )));
        }
        if matches!(a.kind, AttributeType::State | AttributeType::Status) && !v.is_i64() {
            return Err(syntax(format!("'{key}' takes a whole number.")));
        }
        record
            .fields
            .insert(a.logical_name.clone(), value_for(a, v)?);
    }
    if creating {
        for a in entity.attributes.iter().filter(|a| a.required && !a.system) {
            if matches!(
                record.fields.get(&a.logical_name),
                None | Some(FieldValue::Null)
            ) {
                return Err(syntax(format!(
                    "'{}' is required to create a {}.",
                    a.logical_name, entity.logical_name
                )));
            }
        }
    }
    Ok(record)
}

pub(crate) async fn scope_for(
    state: &AppState,
    caller: &WebApiCaller,
    access: Access,
    entity: &EntityDef,
) -> Result<RowScope> {
    let units = BusinessUnits::new(
        state
            .directory
            .business_units(state, &caller.env)
            .await?
            .iter()
            .copied(),
    );
    authz::scope(
        &caller.principal,
        &units,
        &access.privilege(&entity.logical_name),
        entity.ownership,
        caller.role_count,
    )
    .map_err(|d| DataverseError::MissingPrivilege(d.message()).into())
}

fn denied(caller: &WebApiCaller, access: Access, entity: &EntityDef) -> ServiceError {
    let d = authz::Denied {
        user_id: caller.principal.user_id,
        privilege: access.privilege(&entity.logical_name),
        role_count: caller.role_count,
    };
    DataverseError::MissingPrivilege(d.message()).into()
}

fn map_write(
    e: StoreError,
    caller: &WebApiCaller,
    access: Access,
    entity: &EntityDef,
    id: Uuid,
) -> ServiceError {
    match e {
        StoreError::RowMissing => DataverseError::RecordNotFound {
            entity: entity.logical_name.clone(),
            id: id.to_string(),
        }
        .into(),
        StoreError::RowOutOfScope => denied(caller, access, entity),
        StoreError::VersionMismatch => DataverseError::VersionMismatch.into(),
        StoreError::Conflict(_) => DataverseError::Duplicate.into(),
        other => other.into(),
    }
}

fn audit_ctx(state: &AppState, caller: &WebApiCaller) -> AuditContext {
    AuditContext {
        user_id: caller.principal.user_id,
        calling_user_id: caller.on_behalf_of,
        transaction_id: Uuid::new_v4(),
        at: state.clock.now(),
    }
}

/// When `set` names a new owner (`ownerid@odata.bind`): the owner must be an enabled user or a
/// team of this environment, the row moves to the owner's business unit, and the caller needs the
/// Assign privilege — returned as the scope the row must be in.
async fn prepare_owner(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    set: &mut Record,
) -> Result<Option<RowScope>> {
    let Some(FieldValue::Id(owner)) = set.fields.get("ownerid").cloned() else {
        return Ok(None);
    };
    use super::sharing::{PrincipalRef, principal_unit};
    let unit = match principal_unit(state, caller, PrincipalRef::User(owner)).await {
        Err(ServiceError::Dataverse(DataverseError::RecordNotFound { .. })) => {
            principal_unit(state, caller, PrincipalRef::Team(owner))
                .await
                .map_err(|e| match e {
                    ServiceError::Dataverse(DataverseError::RecordNotFound { .. }) => {
                        syntax(format!(
                            "The owner {owner} is neither a user nor a team of this environment."
                        ))
                    }
                    other => other,
                })?
        }
        other => other?,
    };
    set.fields
        .insert("owningbusinessunit".into(), FieldValue::Id(unit));
    Ok(Some(
        scope_for(state, caller, Access::Assign, entity).await?,
    ))
}

/// Create a row owned by the caller; returns its id.
pub async fn create(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    record: Record,
) -> Result<Uuid> {
    let ids = create_many(state, caller, entity, vec![record]).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| ServiceError::Internal("no id for a created row".into()))
}

/// Who changed a row and when (and for whom, when impersonating).
fn stamp_modified(state: &AppState, caller: &WebApiCaller, entity: &EntityDef, set: &mut Record) {
    if entity.attribute("modifiedby").is_some() {
        set.fields.insert(
            "modifiedby".into(),
            FieldValue::Id(caller.principal.user_id),
        );
        set.fields
            .insert("modifiedon".into(), FieldValue::Instant(state.clock.now()));
        set.fields.insert(
            "modifiedonbehalfby".into(),
            caller.on_behalf_of.map_or(FieldValue::Null, FieldValue::Id),
        );
    }
}

/// Set the id and the system columns of a new row owned by the caller.
fn stamp_new(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    mut record: Record,
) -> (Uuid, Record) {
    let me = caller.principal.user_id;
    let now = state.clock.now();
    let id = record.id(&entity.primary_id).unwrap_or_else(Uuid::new_v4);
    let has_state = record.fields.contains_key("statecode");
    let has_owner = record.fields.contains_key("ownerid");
    let mut set = |col: &str, v: FieldValue| {
        if entity.attribute(col).is_some() {
            record.fields.insert(col.to_string(), v);
        }
    };
    set(&entity.primary_id, FieldValue::Id(id));
    // A row created for another owner (ownerid@odata.bind) already has its owner and unit.
    if !has_owner {
        set("ownerid", FieldValue::Id(me));
        set(
            "owningbusinessunit",
            FieldValue::Id(caller.principal.business_unit),
        );
    }
    set("createdby", FieldValue::Id(me));
    set("modifiedby", FieldValue::Id(me));
    if let Some(real) = caller.on_behalf_of {
        set("createdonbehalfby", FieldValue::Id(real));
        set("modifiedonbehalfby", FieldValue::Id(real));
    }
    set("createdon", FieldValue::Instant(now));
    set("modifiedon", FieldValue::Instant(now));
    set("versionnumber", FieldValue::Int(1));
    if !has_state {
        set("statecode", FieldValue::Int(0));
        set("statuscode", FieldValue::Int(1));
    }
    (id, record)
}

async fn check_create(state: &AppState, caller: &WebApiCaller, entity: &EntityDef) -> Result<()> {
    let scope = scope_for(state, caller, Access::Create, entity).await?;
    if !scope.admits(
        Some(caller.principal.user_id),
        Some(caller.principal.business_unit),
    ) {
        return Err(denied(caller, Access::Create, entity));
    }
    Ok(())
}

/// Create rows owned by the caller, all or none (CreateMultiple); returns their ids in order.
pub async fn create_many(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    records: Vec<Record>,
) -> Result<Vec<Uuid>> {
    check_create(state, caller, entity).await?;
    let mut owned = Vec::with_capacity(records.len());
    for mut r in records {
        super::reference_binding::check(state, caller, entity, None, &r).await?;
        super::variable_binding::check(state, caller, entity, &r).await?;
        prepare_owner(state, caller, entity, &mut r).await?;
        owned.push(r);
    }
    let (ids, rows): (Vec<Uuid>, Vec<Record>) = owned
        .into_iter()
        .map(|r| stamp_new(state, caller, entity, r))
        .unzip();
    let first = ids.first().copied().unwrap_or_default();
    state
        .store
        .record_create(&caller.env, entity, &rows, &audit_ctx(state, caller))
        .await
        .inspect(|_| state.flow_wake.notify_one())
        .map_err(|e| map_write(e, caller, Access::Create, entity, first))?;
    Ok(ids)
}

/// One prepared write of a changeset, with what it needs to explain a failure.
pub struct Prepared<'a> {
    pub op: keyway_store::RecordOp<'a>,
    pub access: Access,
    pub id: Uuid,
}

pub async fn prepare_create<'a>(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &'a EntityDef,
    record: Record,
) -> Result<Prepared<'a>> {
    check_create(state, caller, entity).await?;
    super::reference_binding::check(state, caller, entity, None, &record).await?;
    super::variable_binding::check(state, caller, entity, &record).await?;
    let mut record = record;
    prepare_owner(state, caller, entity, &mut record).await?;
    let (id, record) = stamp_new(state, caller, entity, record);
    Ok(Prepared {
        op: keyway_store::RecordOp::Create { entity, record },
        access: Access::Create,
        id,
    })
}

pub async fn prepare_update<'a>(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &'a EntityDef,
    id: Uuid,
    mut set: Record,
    expected_version: Option<i64>,
) -> Result<Prepared<'a>> {
    super::reference_binding::check(state, caller, entity, Some(id), &set).await?;
    super::variable_binding::check(state, caller, entity, &set).await?;
    let assign = prepare_owner(state, caller, entity, &mut set).await?;
    // Setting only the owner is an Assign, which Dataverse checks without Write.
    let only_owner = set
        .fields
        .keys()
        .all(|k| k == "ownerid" || k == "owningbusinessunit");
    let scope = if assign.is_some() && only_owner {
        RowScope::All
    } else {
        scope_for(state, caller, Access::Write, entity).await?
    };
    stamp_modified(state, caller, entity, &mut set);
    Ok(Prepared {
        access: if assign.is_some() && only_owner {
            Access::Assign
        } else {
            Access::Write
        },
        op: keyway_store::RecordOp::Update {
            entity,
            id,
            set,
            expected_version,
            scope,
            assign,
        },
        id,
    })
}

pub async fn prepare_delete<'a>(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &'a EntityDef,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<Prepared<'a>> {
    let scope = scope_for(state, caller, Access::Delete, entity).await?;
    Ok(Prepared {
        op: keyway_store::RecordOp::Delete {
            entity,
            id,
            expected_version,
            scope,
        },
        access: Access::Delete,
        id,
    })
}

/// Run a changeset: every write or none; on failure, which one failed and why.
pub async fn run_changeset(
    state: &AppState,
    caller: &WebApiCaller,
    prepared: Vec<Prepared<'_>>,
) -> std::result::Result<(), (usize, ServiceError)> {
    let ops: Vec<keyway_store::RecordOp<'_>> = prepared.iter().map(|p| p.op.clone()).collect();
    state
        .store
        .record_changeset(&caller.env, &ops, &audit_ctx(state, caller))
        .await
        .inspect(|_| state.flow_wake.notify_one())
        .map(|_| ())
        .map_err(|(i, e)| {
            let p = &prepared[i.min(prepared.len().saturating_sub(1))];
            let entity = match &p.op {
                keyway_store::RecordOp::Create { entity, .. }
                | keyway_store::RecordOp::Update { entity, .. }
                | keyway_store::RecordOp::Delete { entity, .. } => *entity,
            };
            (i, map_write(e, caller, p.access, entity, p.id))
        })
}

/// Set columns of an existing row the caller's Write privilege reaches.
pub async fn update(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    set: Record,
    expected_version: Option<i64>,
) -> Result<Record> {
    let p = prepare_update(state, caller, entity, id, set, expected_version).await?;
    let access = p.access;
    let write_scope = match &p.op {
        keyway_store::RecordOp::Update {
            scope,
            assign: Some(_),
            ..
        } if access == Access::Write => Some(scope.clone()),
        _ => None,
    };
    let result = state
        .store
        .record_changeset(&caller.env, &[p.op], &audit_ctx(state, caller))
        .await
        .inspect(|_| state.flow_wake.notify_one());
    let mut out = match result {
        Ok(out) => out,
        // Both Write and Assign were needed: name the one whose scope leaves the row out.
        Err((_, StoreError::RowOutOfScope)) if write_scope.is_some() => {
            let lacking = match (
                write_scope,
                state.store.record_get(&caller.env, entity, id).await?,
            ) {
                (Some(w), Some(row)) => {
                    let grants = super::sharing::grants(state, caller, entity, id).await?;
                    let of = |c: &str| match row.fields.get(c) {
                        Some(FieldValue::Id(u)) => Some(*u),
                        _ => None,
                    };
                    if w.admits_row(of("ownerid"), of("owningbusinessunit"), &grants) {
                        Access::Assign
                    } else {
                        Access::Write
                    }
                }
                _ => Access::Write,
            };
            return Err(denied(caller, lacking, entity));
        }
        Err((_, e)) => return Err(map_write(e, caller, access, entity, id)),
    };
    out.pop()
        .flatten()
        .ok_or_else(|| ServiceError::Internal("an update returned no row".into()))
}

pub async fn delete(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<()> {
    let scope = scope_for(state, caller, Access::Delete, entity).await?;
    state
        .store
        .record_delete(
            &caller.env,
            entity,
            id,
            expected_version,
            &scope,
            &audit_ctx(state, caller),
        )
        .await
        .inspect(|_| state.flow_wake.notify_one())
        .map_err(|e| map_write(e, caller, Access::Delete, entity, id))
}

/// Does the row exist at all (whatever the caller may see)? For upserts.
pub async fn exists(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
) -> Result<bool> {
    Ok(state
        .store
        .record_get(&caller.env, entity, id)
        .await?
        .is_some())
}

/// `UpdateMultiple` / `UpsertMultiple`: every target names its row by the table's key; all or none.
pub async fn update_or_upsert_many(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    targets: &[Value],
    upsert: bool,
) -> Result<()> {
    let mut prepared = Vec::with_capacity(targets.len());
    for t in targets {
        let mut t = t.clone();
        let id = t
            .as_object_mut()
            .and_then(|o| o.remove(&entity.primary_id))
            .and_then(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .ok_or_else(|| syntax(format!("Each target needs its '{}'.", entity.primary_id)))?;
        if upsert && !exists(state, caller, entity, id).await? {
            let mut record = fields_from_json(entity, &caller.tables, &t, true)?;
            record
                .fields
                .insert(entity.primary_id.clone(), FieldValue::Id(id));
            prepared.push(prepare_create(state, caller, entity, record).await?);
        } else {
            let set = fields_from_json(entity, &caller.tables, &t, false)?;
            prepared.push(prepare_update(state, caller, entity, id, set, None).await?);
        }
    }
    run_changeset(state, caller, prepared)
        .await
        .map_err(|(_, e)| e)
}
