//! Metadata paths beyond tables and columns: `EntityDefinitions(…)/Keys`,
//! `…/OneToManyRelationships`, `…/ManyToOneRelationships`, `…/ManyToManyRelationships`,
//! `RelationshipDefinitions` (read, and `POST` to make a lookup), and the SDK message catalogue
//! (`sdkmessages`, `sdkmessagefilters`) that flow triggers look up.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::relationships::{self, Relationship};
use serde_json::{Map, Value, json};

use super::webapi::{json_body, odata};
use super::webapi_roles::in_memory;
use crate::services::metadata as md;
use crate::services::webapi::WebApiCaller;
use crate::services::{Result, ServiceError};
use crate::state::AppState;

fn syntax(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

fn options(query: Option<&str>) -> Result<keyway_core::odata::QueryOptions> {
    keyway_core::odata::QueryOptions::parse(query.unwrap_or_default())
        .map_err(|e| DataverseError::Syntax(e.message).into())
}

fn collection(base: &str, context: &str, value: Vec<Value>) -> Response {
    odata(
        Json(json!({"@odata.context": format!("{base}/$metadata#{context}"), "value": value}))
            .into_response(),
    )
}

fn single(base: &str, context: &str, mut value: Value) -> Response {
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            format!("{base}/$metadata#{context}/$entity").into(),
        );
    }
    odata(Json(value).into_response())
}

fn read_only(method: &Method, what: &str) -> Result<()> {
    if method != Method::GET {
        return Err(syntax(format!("{what} is read-only here: use GET.")));
    }
    Ok(())
}

/// The Web API paths this module serves, or `None` for every other path.
pub(crate) async fn route(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Result<Response>> {
    if let Some(rest) = path.strip_prefix("EntityDefinitions(") {
        let (key, tail) = rest.split_once(")/")?;
        return match tail {
            "Keys"
            | "OneToManyRelationships"
            | "ManyToOneRelationships"
            | "ManyToManyRelationships" => {
                Some(entity_navigation(c, base, method, key, tail, query))
            }
            _ => None,
        };
    }
    if path == "RelationshipDefinitions"
        || path.starts_with("RelationshipDefinitions(")
        || path.starts_with("RelationshipDefinitions/")
    {
        if *method == Method::POST && path == "RelationshipDefinitions" {
            return Some(create_relationship(state, c, base, body).await);
        }
        return Some(relationship_definitions(c, base, method, path, query));
    }
    let set = path.split('(').next().unwrap_or_default();
    if set == "sdkmessagefilters" || set == "sdkmessages" {
        return Some(sdk(c, base, method, path, set, query));
    }
    None
}

fn entity_navigation(
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    key: &str,
    navigation: &str,
    query: Option<&str>,
) -> Result<Response> {
    read_only(method, navigation)?;
    let entity = md::find_entity(&c.tables, key)?;
    let options = options(query)?;
    let all = relationships::all(&c.tables);
    let of = |keep: &dyn Fn(&Relationship) -> bool| -> Vec<Map<String, Value>> {
        all.iter()
            .filter(|r| keep(r))
            .map(md::relationship_json)
            .collect()
    };
    let (items, kind) = match navigation {
        // Keyway tables have no alternate keys: rows are found by their primary key only.
        "Keys" => (Vec::new(), "EntityKeyMetadata"),
        "OneToManyRelationships" => (
            of(&|r| r.referenced_entity == entity.logical_name),
            "OneToManyRelationshipMetadata",
        ),
        "ManyToOneRelationships" => (
            of(&|r| r.referencing_entity == entity.logical_name),
            "OneToManyRelationshipMetadata",
        ),
        _ => (Vec::new(), "ManyToManyRelationshipMetadata"),
    };
    Ok(collection(
        base,
        &format!("EntityDefinitions({})/{navigation}", entity.metadata_id),
        in_memory(items, &options, kind)?,
    ))
}

/// `RelationshipDefinitions`, `(<MetadataId>)`, `(SchemaName='x')`, and the casts
/// `/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata` (all of them here) and
/// `/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata` (none).
fn relationship_definitions(
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Response> {
    read_only(method, "RelationshipDefinitions")?;
    let options = options(query)?;
    let all = relationships::all(&c.tables);
    let items = || all.iter().map(md::relationship_json).collect::<Vec<_>>();
    match path {
        "RelationshipDefinitions"
        | "RelationshipDefinitions/Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata" => {
            Ok(collection(
                base,
                "RelationshipDefinitions",
                in_memory(items(), &options, "RelationshipMetadataBase")?,
            ))
        }
        "RelationshipDefinitions/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata" => {
            Ok(collection(base, "RelationshipDefinitions", Vec::new()))
        }
        _ => {
            let key = path
                .strip_prefix("RelationshipDefinitions(")
                .and_then(|k| k.strip_suffix(')'))
                .ok_or_else(|| {
                    DataverseError::Unsupported(format!(
                        "The metadata path '{path}' is not supported."
                    ))
                })?;
            let r = md::find_relationship(&all, key)?;
            let mut one = in_memory(
                vec![md::relationship_json(&r)],
                &keyway_core::odata::QueryOptions {
                    filter: None,
                    ..options
                },
                "RelationshipMetadataBase",
            )?;
            Ok(single(
                base,
                "RelationshipDefinitions",
                one.pop().unwrap_or(Value::Null),
            ))
        }
    }
}

/// `POST RelationshipDefinitions`: 204 with the new relationship's `OData-EntityId`.
async fn create_relationship(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    body: &[u8],
) -> Result<Response> {
    let (table, column) =
        crate::services::customization::create_relationship(state, c, &json_body(body)?).await?;
    // The relationship's id is derived from the column's, as every later read derives it.
    let id = uuid::Uuid::new_v5(
        &column.metadata_id,
        format!(
            "relationship:{}",
            column.target.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/RelationshipDefinitions({id})")) {
        r.headers_mut().insert("OData-EntityId", v);
    }
    tracing::debug!(table = %table.logical_name, column = %column.logical_name, "relationship made");
    Ok(r)
}

/// `sdkmessages` and `sdkmessagefilters` (with `$expand=sdkmessageid($select=name)` and the
/// navigation filter `sdkmessageid/name eq 'Create'`).
fn sdk(
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    set: &str,
    query: Option<&str>,
) -> Result<Response> {
    read_only(method, set)?;
    let options = options(query)?;
    let (items, key) = if set == "sdkmessages" {
        (md::sdk_messages(), "sdkmessageid")
    } else {
        (
            md::sdk_message_filters(c.env.id, &c.tables),
            "sdkmessagefilterid",
        )
    };
    let expand_message = match options.expand.as_slice() {
        [] => None,
        [x] if set == "sdkmessagefilters" && x.navigation == "sdkmessageid" => {
            Some(x.select.clone())
        }
        [x, ..] => {
            return Err(syntax(format!(
                "Could not find a navigation property named '{}' on type 'Microsoft.Dynamics.CRM.{}'.",
                x.navigation,
                set.trim_end_matches('s')
            )));
        }
    };
    let one = path
        .strip_prefix(set)
        .and_then(|k| k.strip_prefix('('))
        .and_then(|k| k.strip_suffix(')'));
    let items = match one {
        Some(k) => {
            let id = uuid::Uuid::parse_str(k.trim_matches('\'')).map_err(|_| {
                syntax(format!("'{k}' is not a valid key for {set}: use its GUID."))
            })?;
            let found: Vec<_> = items
                .into_iter()
                .filter(|m| m.get(key).and_then(|v| v.as_str()) == Some(id.to_string().as_str()))
                .collect();
            if found.is_empty() {
                return Err(DataverseError::RecordNotFound {
                    entity: set.trim_end_matches('s').into(),
                    id: id.to_string(),
                }
                .into());
            }
            found
        }
        None => items,
    };
    // Filter with the message still inside each row, then keep it only if expanded.
    let messages: Vec<Option<Value>> = items
        .iter()
        .map(|m| m.get("sdkmessageid").filter(|v| v.is_object()).cloned())
        .collect();
    let mut kept = Vec::new();
    for (item, message) in items.into_iter().zip(messages) {
        if let Some(f) = &options.filter
            && !md::matches(f, &item, set)?
        {
            continue;
        }
        kept.push((item, message));
    }
    if let Some(top) = options.top {
        kept.truncate(top.get() as usize);
    }
    let plain = keyway_core::odata::QueryOptions {
        filter: None,
        top: None,
        expand: vec![],
        ..options.clone()
    };
    let mut value = Vec::new();
    for (mut item, message) in kept {
        if set == "sdkmessagefilters" {
            item.remove("sdkmessageid");
        }
        let mut v = md::query(vec![item], &plain, set)?
            .pop()
            .unwrap_or(Value::Null);
        if let (Some(select), Some(o), Some(Value::Object(m))) =
            (&expand_message, v.as_object_mut(), message)
        {
            let mut out = Map::new();
            for (k, x) in &m {
                let wanted =
                    k == "sdkmessageid" || select.as_ref().is_none_or(|s| s.iter().any(|c| c == k));
                if wanted {
                    out.insert(k.clone(), x.clone());
                }
            }
            if let Some(bad) = select
                .iter()
                .flatten()
                .find(|c| !m.contains_key(c.as_str()))
            {
                return Err(syntax(format!(
                    "Could not find a property named '{bad}' on type 'Microsoft.Dynamics.CRM.sdkmessage'."
                )));
            }
            o.insert("sdkmessageid".into(), Value::Object(out));
        }
        value.push(v);
    }
    if one.is_some() {
        return Ok(single(base, set, value.pop().unwrap_or(Value::Null)));
    }
    Ok(collection(base, set, value))
}
