//! Security roles on the Web API: `privileges`, the role-privilege actions
//! (`roles(<id>)/Microsoft.Dynamics.CRM.AddPrivilegesRole`, `ReplacePrivilegesRole`,
//! `RemovePrivilegeRole`, `RetrieveRolePrivilegesRole(RoleId=…)`) and who holds a role
//! (`systemusers(<id>)/systemuserroles_association[/$ref]`). Thin: the rules are in
//! `services::roles`.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::privileges::{PrivilegeInfo, depth_wire_name};
use keyway_core::dataverse::security::Depth;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::webapi::{json_body, odata, render};
use crate::services::metadata as md;
use crate::services::roles::{self, Edit};
use crate::services::webapi::{self as svc, WebApiCaller};
use crate::services::{Result, ServiceError};
use crate::state::AppState;

const ASSOCIATION: &str = "systemuserroles_association";

fn syntax(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    r
}

/// `set(<guid>)` → (set, id).
fn keyed(segment: &str) -> Option<(&str, Uuid)> {
    let (set, rest) = segment.split_once('(')?;
    let key = rest.strip_suffix(')')?;
    Some((set, Uuid::parse_str(key.trim().trim_matches('\'')).ok()?))
}

/// The `(set, id)` an `@odata.id` names: `https://…/api/data/v9.2/roles(<id>)`, `/roles(<id>)`
/// or `roles(<id>)`.
fn reference(url: &str) -> Result<(String, Uuid)> {
    let last = url
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    keyed(last)
        .map(|(set, id)| (set.to_string(), id))
        .ok_or_else(|| syntax(format!("'{url}' does not name a row, such as roles(<id>).")))
}

fn privilege_json(p: &PrivilegeInfo) -> Map<String, Value> {
    let v = json!({
        "privilegeid": p.id,
        "name": p.name,
        "accessright": p.access_right(),
        "canbebasic": p.can_be(Depth::User),
        "canbelocal": p.can_be(Depth::BusinessUnit),
        "canbedeep": p.can_be(Depth::ParentChild),
        "canbeglobal": p.can_be(Depth::Organization),
        "canbeentityreference": false,
        "canbeparententityreference": false,
        "isdisabledwhenintegrated": false,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `$filter`, `$select` and `$top` over rows built in memory.
pub(crate) fn in_memory(
    items: Vec<Map<String, Value>>,
    options: &keyway_core::odata::QueryOptions,
    kind: &str,
) -> Result<Vec<Value>> {
    let plain = keyway_core::odata::QueryOptions {
        top: None,
        expand: vec![],
        ..options.clone()
    };
    let mut out = md::query(items, &plain, kind)?;
    if let Some(top) = options.top {
        out.truncate(top.get() as usize);
    }
    Ok(out)
}

fn parse_options(query: Option<&str>) -> Result<keyway_core::odata::QueryOptions> {
    keyway_core::odata::QueryOptions::parse(query.unwrap_or_default())
        .map_err(|e| DataverseError::Syntax(e.message).into())
}

/// The Web API paths this module serves, or `None` for every other path.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn route(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Result<Response>> {
    if path == "privileges" || path.starts_with("privileges(") {
        return Some(privileges(c, base, method, path, query));
    }
    if let Some(args) = path.strip_prefix("RetrieveRolePrivilegesRole(") {
        return Some(retrieve_role_privileges(state, c, base, method, args, query).await);
    }
    let (head, tail) = path.split_once('/')?;
    let (set, id) = keyed(head)?;
    match (set, tail) {
        ("roles", action) if action.starts_with("Microsoft.Dynamics.CRM.") => {
            let edit = match action.trim_start_matches("Microsoft.Dynamics.CRM.") {
                "AddPrivilegesRole" => Edit::Add,
                "ReplacePrivilegesRole" => Edit::Replace,
                "RemovePrivilegeRole" => Edit::Remove,
                "RetrieveRolePrivilegesRole" | "RetrieveRolePrivilegesRole()" => {
                    return Some(role_privileges(state, c, base, method, id).await);
                }
                _ => return None,
            };
            Some(edit_privileges(state, c, method, id, edit, body).await)
        }
        ("systemusers", rest) if rest.starts_with(ASSOCIATION) => Some(
            user_roles(
                state,
                c,
                base,
                method,
                id,
                &rest[ASSOCIATION.len()..],
                query,
                body,
            )
            .await,
        ),
        ("roles", rest) if rest.starts_with(ASSOCIATION) => Some(
            role_users(
                state,
                c,
                method,
                id,
                &rest[ASSOCIATION.len()..],
                query,
                body,
            )
            .await,
        ),
        _ => None,
    }
}

fn privileges(
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Response> {
    if method != Method::GET {
        return Err(syntax(
            "privileges are read-only: grant them to a role with AddPrivilegesRole.",
        ));
    }
    let options = parse_options(query)?;
    let all = roles::catalog(c);
    if let Some((_, id)) = keyed(path) {
        let p = all
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| DataverseError::RecordNotFound {
                entity: "privilege".into(),
                id: id.to_string(),
            })?;
        let mut one = in_memory(vec![privilege_json(p)], &options, "privilege")?;
        let mut v = one.pop().unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "@odata.context".into(),
                format!("{base}/$metadata#privileges/$entity").into(),
            );
        }
        return Ok(odata(Json(v).into_response()));
    }
    let value = in_memory(
        all.iter().map(privilege_json).collect(),
        &options,
        "privilege",
    )?;
    Ok(odata(
        Json(json!({"@odata.context": format!("{base}/$metadata#privileges"), "value": value}))
            .into_response(),
    ))
}

async fn edit_privileges(
    state: &AppState,
    c: &WebApiCaller,
    method: &Method,
    role_id: Uuid,
    edit: Edit,
    body: &[u8],
) -> Result<Response> {
    if method != Method::POST {
        return Err(syntax("Role privilege actions are called with POST."));
    }
    roles::edit_privileges(state, c, role_id, edit, &json_body(body)?).await?;
    Ok(no_content())
}

/// `RetrieveRolePrivilegesRole(RoleId=<id>)` or `(RoleId=@p1)?@p1=<id>`.
async fn retrieve_role_privileges(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    args: &str,
    query: Option<&str>,
) -> Result<Response> {
    let arg = args
        .strip_suffix(')')
        .and_then(|a| a.trim().strip_prefix("RoleId="))
        .ok_or_else(|| syntax("Call RetrieveRolePrivilegesRole(RoleId=<role id>)."))?
        .trim();
    let value = match arg.strip_prefix('@') {
        Some(alias) => parse_options(query)?
            .params
            .iter()
            .find(|(k, _)| k.strip_prefix('@') == Some(alias))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| syntax(format!("The parameter alias @{alias} has no value.")))?,
        None => arg.to_string(),
    };
    let id = Uuid::parse_str(value.trim().trim_matches('\''))
        .map_err(|_| syntax(format!("RoleId '{value}' is not a GUID.")))?;
    role_privileges(state, c, base, method, id).await
}

async fn role_privileges(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    role_id: Uuid,
) -> Result<Response> {
    if method != Method::GET {
        return Err(syntax(
            "RetrieveRolePrivilegesRole is a function: call it with GET.",
        ));
    }
    let (unit, granted) = roles::role_privileges(state, c, role_id).await?;
    let list: Vec<Value> = granted
        .iter()
        .map(|(id, p)| {
            json!({
                "Depth": depth_wire_name(p.depth),
                "PrivilegeId": id,
                "BusinessUnitId": unit,
                "PrivilegeName": p.name,
            })
        })
        .collect();
    Ok(odata(
        Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRoleResponse"),
            "RolePrivileges": list,
        }))
        .into_response(),
    ))
}

/// The other side of a `$ref` request: from the body's `@odata.id` (POST), the key in the path
/// (`…_association(<id>)/$ref`) or `?$id=<url>` (DELETE).
fn other_side(rest: &str, query: Option<&str>, body: &[u8], want_set: &str) -> Result<Uuid> {
    let (set, id) = if let Some(key) = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(")/$ref"))
    {
        let id = Uuid::parse_str(key.trim().trim_matches('\''))
            .map_err(|_| syntax(format!("'{key}' is not a GUID.")))?;
        (want_set.to_string(), id)
    } else if rest == "/$ref" && !body.iter().all(u8::is_ascii_whitespace) {
        let v = json_body(body)?;
        let url = v
            .get("@odata.id")
            .and_then(|u| u.as_str())
            .ok_or_else(|| syntax(format!("Send {{\"@odata.id\": \"{want_set}(<id>)\"}}.")))?;
        reference(url)?
    } else if rest == "/$ref" {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|_| syntax("The query string is malformed."))?;
        let url = pairs
            .iter()
            .find(|(k, _)| k == "$id")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                syntax(format!(
                    "Name the row to unlink: …/$ref?$id={want_set}(<id>)."
                ))
            })?;
        reference(&url)?
    } else {
        return Err(syntax(format!(
            "Link or unlink through {ASSOCIATION}/$ref or {ASSOCIATION}(<id>)/$ref."
        )));
    };
    if set != want_set {
        return Err(syntax(format!(
            "{ASSOCIATION} links systemusers and roles: '{set}' is neither."
        )));
    }
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
async fn user_roles(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    user_id: Uuid,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    if rest.is_empty() && *method == Method::GET {
        let entity = svc::entity_by_set(c, "roles")?;
        let options = svc::parse_query(query, entity)?;
        if options.filter.is_some()
            || !options.orderby.is_empty()
            || options.top.is_some()
            || !options.expand.is_empty()
        {
            return Err(
                DataverseError::Unsupported(format!("{ASSOCIATION} takes only $select.")).into(),
            );
        }
        let rows = roles::roles_of(state, c, user_id).await?;
        let value: Vec<Value> = rows
            .iter()
            .map(|r| Value::Object(render(entity, r, options.select.as_deref())))
            .collect();
        return Ok(odata(
            Json(json!({"@odata.context": format!("{base}/$metadata#roles"), "value": value}))
                .into_response(),
        ));
    }
    if *method == Method::POST && rest == "/$ref" {
        let role_id = other_side(rest, query, body, "roles")?;
        roles::assign(state, c, user_id, role_id).await?;
        return Ok(no_content());
    }
    if *method == Method::DELETE {
        let role_id = other_side(rest, query, body, "roles")?;
        roles::unassign(state, c, user_id, role_id).await?;
        return Ok(no_content());
    }
    Err(DataverseError::Unsupported(format!(
        "{method} on systemusers(…)/{ASSOCIATION}{rest} is not supported: GET lists, POST …/$ref links, DELETE …(<id>)/$ref unlinks."
    ))
    .into())
}

/// The same association seen from the role: `roles(<id>)/systemuserroles_association/$ref`.
async fn role_users(
    state: &AppState,
    c: &WebApiCaller,
    method: &Method,
    role_id: Uuid,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    if *method == Method::POST && rest == "/$ref" {
        let user_id = other_side(rest, query, body, "systemusers")?;
        roles::assign(state, c, user_id, role_id).await?;
        return Ok(no_content());
    }
    if *method == Method::DELETE {
        let user_id = other_side(rest, query, body, "systemusers")?;
        roles::unassign(state, c, user_id, role_id).await?;
        return Ok(no_content());
    }
    Err(DataverseError::Unsupported(format!(
        "{method} on roles(…)/{ASSOCIATION}{rest} is not supported: read a user's roles with systemusers(<id>)/{ASSOCIATION}."
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_absolute_relative_or_bare() {
        let id = Uuid::new_v4();
        for url in [
            format!("https://h/env/dev/api/data/v9.2/roles({id})"),
            format!("/roles({id})"),
            format!("roles({id})"),
        ] {
            assert_eq!(reference(&url).unwrap(), ("roles".to_string(), id));
        }
        assert!(reference("roles(nope)").is_err());
    }

    #[test]
    fn unlinks_name_the_row_in_the_path_or_the_query() {
        let id = Uuid::new_v4();
        assert_eq!(
            other_side(&format!("({id})/$ref"), None, b"", "roles").unwrap(),
            id
        );
        let q = format!("$id=https%3A%2F%2Fh%2Fapi%2Fdata%2Fv9.2%2Froles({id})");
        assert_eq!(other_side("/$ref", Some(&q), b"", "roles").unwrap(), id);
        assert!(other_side("/$ref", Some(&format!("$id=accounts({id})")), b"", "roles").is_err());
    }
}
