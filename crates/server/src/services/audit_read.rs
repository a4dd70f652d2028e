//! Reading the audit history through the Web API: the `audits` entity set (needs
//! prvReadAuditSummary) and `RetrieveRecordChangeHistory` for one row (needs
//! prvReadRecordAuditHistory and Read on the row).

use keyway_core::dataverse::authz;
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::security::{self, Depth};
use keyway_core::odata::{CompareOp, Expr, Literal, Operand, QueryOptions};
use keyway_store::{EnvironmentStore, RecordStore, StoredAudit};
use serde_json::{Value, json};
use uuid::Uuid;

use super::webapi::{self, WebApiCaller};
use super::{Result, ServiceError};
use crate::state::AppState;

fn require(c: &WebApiCaller, privilege: &str) -> Result<()> {
    if c.principal.depth(privilege) == Depth::None {
        let d = authz::Denied {
            user_id: c.principal.user_id,
            privilege: privilege.into(),
            role_count: c.role_count,
        };
        return Err(DataverseError::MissingPrivilege(d.message()).into());
    }
    Ok(())
}

fn time(us: i64) -> String {
    keyway_core::wire::graph_time::format(&keyway_core::clock::from_micros(us))
}

/// One audit row as the `audits` entity set shows it.
pub fn audit_json(a: &StoredAudit) -> Value {
    let e = &a.entry;
    json!({
        "auditid": e.audit_id,
        "action": e.action,
        "operation": e.operation,
        "objecttypecode": e.entity,
        "_objectid_value": e.object_id,
        "_userid_value": e.user_id,
        "_callinguserid_value": e.calling_user_id,
        "attributemask": e.attribute_mask,
        "transactionid": e.transaction_id,
        "createdon": time(e.created_on),
        "changedata": e.change_data.to_string(),
    })
}

/// `audits`, newest first; `$filter` may only name the row (`_objectid_value eq <id>`).
pub async fn list(
    state: &AppState,
    c: &WebApiCaller,
    options: &QueryOptions,
) -> Result<Vec<Value>> {
    require(c, security::READ_AUDIT_SUMMARY)?;
    let newest_first = match options.orderby.as_slice() {
        [] => true,
        [o] => o.property == "createdon" && o.descending,
        _ => false,
    };
    if !newest_first {
        return Err(DataverseError::Unsupported(
            "audits are listed newest first ($orderby=createdon desc) only.".into(),
        )
        .into());
    }
    let object = match &options.filter {
        None => None,
        Some(Expr::Compare {
            left: Operand::Property(p),
            op: CompareOp::Eq,
            right: Operand::Literal(Literal::Guid(id)),
        }) if p.len() == 1 && p[0] == "_objectid_value" => Some(*id),
        Some(_) => {
            return Err(DataverseError::Unsupported(
                "audits can be filtered by _objectid_value eq <id> only.".into(),
            )
            .into());
        }
    };
    let top = options.top.map_or(5000, |t| u64::from(t.get()));
    let rows = state.store.audit_entries(&c.env, object, top, 0).await?;
    Ok(rows.iter().map(audit_json).collect())
}

/// The row a function's parameter alias names: `?@target={'@odata.id':'accounts(<id>)'}`.
pub fn row_alias<'a>(
    c: &'a WebApiCaller,
    options: &QueryOptions,
    function: &str,
    alias: &str,
) -> Result<(&'a keyway_core::dataverse::metadata::EntityDef, Uuid)> {
    let target = options
        .params
        .iter()
        .find(|(k, _)| k == alias)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            DataverseError::Syntax(format!(
                "{function} needs {alias}={{'@odata.id':'<set>(<id>)'}}."
            ))
        })?;
    let odata_id = target
        .split("@odata.id")
        .nth(1)
        .and_then(|rest| rest.split(['\'', '"']).nth(2))
        .ok_or_else(|| {
            DataverseError::Syntax(format!("{alias} '{target}' does not name a row."))
        })?;
    let (set, key) = odata_id
        .trim_start_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split_once('(')
        .ok_or_else(|| DataverseError::Syntax(format!("'{odata_id}' is not <set>(<id>).")))?;
    let entity = webapi::entity_by_set(c, set)?;
    let id = Uuid::parse_str(key.trim_end_matches(')')).map_err(|_| {
        ServiceError::from(DataverseError::Syntax(format!("'{key}' is not an id.")))
    })?;
    Ok((entity, id))
}

/// `RetrieveRecordChangeHistory(Target=@target)?@target={'@odata.id':'accounts(<id>)'}`.
pub async fn record_change_history(
    state: &AppState,
    c: &WebApiCaller,
    options: &QueryOptions,
) -> Result<Value> {
    require(c, security::READ_RECORD_AUDIT_HISTORY)?;
    let (entity, id) = row_alias(c, options, "RetrieveRecordChangeHistory", "@target")?;
    // The row must be one the caller may read (a deleted row's history is read by admins only).
    if state.store.record_get(&c.env, entity, id).await?.is_some() {
        webapi::retrieve(state, c, entity, id).await?;
    } else if c
        .principal
        .depth(&security::Access::Read.privilege(&entity.logical_name))
        != Depth::Organization
    {
        return Err(DataverseError::RecordNotFound {
            entity: entity.logical_name.clone(),
            id: id.to_string(),
        }
        .into());
    }
    let rows = state.store.audit_entries(&c.env, Some(id), 5000, 0).await?;
    let details: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({
                "@odata.type": "#Microsoft.Dynamics.CRM.AttributeAuditDetail",
                "AuditRecord": audit_json(a),
                "OldValue": a.entry.change_data["oldValue"],
                "NewValue": a.entry.change_data["newValue"],
            })
        })
        .collect();
    Ok(
        json!({"AuditDetailCollection": {"MoreRecords": false, "PagingCookie": null, "TotalRecordCount": details.len(), "AuditDetails": details}}),
    )
}
