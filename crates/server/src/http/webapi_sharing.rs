//! Web API paths for sharing and teams: `GrantAccess`, `ModifyAccess`, `RevokeAccess`,
//! `RetrieveSharedPrincipalsAndAccess`, `teams(<id>)/Microsoft.Dynamics.CRM.AddMembersTeam` /
//! `RemoveMembersTeam`, and the `teammembership_association` / `teamroles_association`
//! relationships (`$ref` to add and remove, plain GET to list).

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::security::{access_mask_names, parse_access_mask};
use keyway_store::TeamLink;
use serde_json::{Value, json};
use uuid::Uuid;

use super::webapi::{json_body, odata};
use crate::services::sharing::{self, PrincipalRef};
use crate::services::webapi::{WebApiCaller, entity_by_set};
use crate::services::{ServiceError, audit_read};
use crate::state::AppState;

type Outcome = Result<Response, ServiceError>;

fn syntax(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("OData-Version", axum::http::HeaderValue::from_static("4.0"));
    r
}

/// The Web API paths this module answers, or `None` to let the caller go on.
pub(crate) async fn route(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Outcome> {
    let action = path.trim_start_matches("Microsoft.Dynamics.CRM.");
    match action {
        "GrantAccess" | "ModifyAccess" | "RevokeAccess" => {
            return Some(if method == Method::POST {
                share_action(state, c, action, body).await
            } else {
                Err(syntax(format!("{action} is an action: call it with POST.")))
            });
        }
        _ => {}
    }
    if path.starts_with("RetrieveSharedPrincipalsAndAccess(") {
        return Some(if method == Method::GET {
            shared_principals(state, c, base, query).await
        } else {
            Err(syntax(
                "RetrieveSharedPrincipalsAndAccess is a function: call it with GET.",
            ))
        });
    }
    let rest = path.strip_prefix("teams(")?;
    let (key, nav) = rest.split_once(")/")?;
    let team = match Uuid::parse_str(key.trim_matches('\'')) {
        Ok(t) => t,
        Err(_) => return Some(Err(syntax(format!("'{key}' is not a team id.")))),
    };
    Some(team_path(state, c, base, method, team, nav, body).await)
}

/// `{"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "<id>"}` or
/// `{"@odata.id": "accounts(<id>)"}`: the row an action's parameter names.
fn row_of<'a>(
    c: &'a WebApiCaller,
    v: &Value,
    name: &str,
) -> Result<(&'a EntityDef, Uuid), ServiceError> {
    let bad = || {
        syntax(format!(
            "'{name}' must name a row: {{\"@odata.type\": \"Microsoft.Dynamics.CRM.account\", \"accountid\": \"<id>\"}}."
        ))
    };
    let obj = v.as_object().ok_or_else(bad)?;
    if let Some(id) = obj.get("@odata.id").and_then(Value::as_str) {
        let last = id
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let (set, key) = last.split_once('(').ok_or_else(bad)?;
        let entity = entity_by_set(c, set)?;
        let id = Uuid::parse_str(key.trim_end_matches(')')).map_err(|_| bad())?;
        return Ok((entity, id));
    }
    let ty = obj
        .get("@odata.type")
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    let logical = ty
        .trim_start_matches('#')
        .strip_prefix("Microsoft.Dynamics.CRM.")
        .ok_or_else(bad)?;
    let entity = c
        .tables
        .iter()
        .find(|e| e.logical_name == logical)
        .ok_or_else(|| syntax(format!("'{ty}' is not a table of this environment.")))?;
    let id = obj
        .get(&entity.primary_id)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| syntax(format!("'{name}' needs its '{}'.", entity.primary_id)))?;
    Ok((entity, id))
}

/// A user or team named by an action's parameter.
fn principal_of(c: &WebApiCaller, v: &Value, name: &str) -> Result<PrincipalRef, ServiceError> {
    let (entity, id) = row_of(c, v, name)?;
    match entity.logical_name.as_str() {
        "systemuser" => Ok(PrincipalRef::User(id)),
        "team" => Ok(PrincipalRef::Team(id)),
        other => Err(syntax(format!(
            "'{name}' must be a systemuser or a team, not a {other}."
        ))),
    }
}

async fn share_action(state: &AppState, c: &WebApiCaller, action: &str, body: &[u8]) -> Outcome {
    let body = json_body(body)?;
    let target = body
        .get("Target")
        .ok_or_else(|| syntax(format!("{action} needs a 'Target' row.")))?;
    let (entity, id) = row_of(c, target, "Target")?;
    if action == "RevokeAccess" {
        let revokee = body
            .get("Revokee")
            .ok_or_else(|| syntax("RevokeAccess needs a 'Revokee' user or team."))?;
        let who = principal_of(c, revokee, "Revokee")?;
        sharing::revoke(state, c, entity, id, who).await?;
        return Ok(no_content());
    }
    let pa = body.get("PrincipalAccess").ok_or_else(|| {
        syntax(format!(
            "{action} needs 'PrincipalAccess' {{Principal, AccessMask}}."
        ))
    })?;
    let who = principal_of(
        c,
        pa.get("Principal")
            .ok_or_else(|| syntax("'PrincipalAccess' needs its 'Principal'."))?,
        "Principal",
    )?;
    let mask = match pa.get("AccessMask") {
        Some(Value::String(s)) => parse_access_mask(s),
        Some(Value::Number(n)) => parse_access_mask(&n.to_string()),
        _ => Err(
            "'PrincipalAccess' needs its 'AccessMask', such as \"ReadAccess, WriteAccess\".".into(),
        ),
    }
    .map_err(syntax)?;
    sharing::grant(state, c, entity, id, who, mask, action == "ModifyAccess").await?;
    Ok(no_content())
}

async fn shared_principals(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    query: Option<&str>,
) -> Outcome {
    let options = keyway_core::odata::QueryOptions::parse(query.unwrap_or_default())
        .map_err(|e| syntax(e.message))?;
    let (entity, id) =
        audit_read::row_alias(c, &options, "RetrieveSharedPrincipalsAndAccess", "@tid").or_else(
            |_| audit_read::row_alias(c, &options, "RetrieveSharedPrincipalsAndAccess", "@target"),
        )?;
    let grants = sharing::shared_with(state, c, entity, id).await?;
    let items: Vec<Value> = grants
        .iter()
        .map(|g| {
            json!({
                "AccessMask": access_mask_names(g.access_mask),
                "Principal": {
                    "@odata.type": format!("#Microsoft.Dynamics.CRM.{}", g.principal_type),
                    "ownerid": g.principal,
                },
            })
        })
        .collect();
    Ok(odata(
        Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.RetrieveSharedPrincipalsAndAccessResponse"),
            "PrincipalAccesses": items,
        }))
        .into_response(),
    ))
}

/// The id a `$ref` body or a relationship path names, from the table it must be in.
fn ref_id(c: &WebApiCaller, v: &Value, want: &str) -> Result<Uuid, ServiceError> {
    let (entity, id) = row_of(c, v, "@odata.id")?;
    if entity.logical_name != want {
        return Err(syntax(format!(
            "This relationship links {want} rows, not {}.",
            entity.logical_name
        )));
    }
    Ok(id)
}

async fn team_path(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: &Method,
    team: Uuid,
    nav: &str,
    body: &[u8],
) -> Outcome {
    let nav = nav.trim_end_matches('/');
    let action = nav.trim_start_matches("Microsoft.Dynamics.CRM.");
    if action == "AddMembersTeam" || action == "RemoveMembersTeam" {
        if method != Method::POST {
            return Err(syntax(format!("{action} is an action: call it with POST.")));
        }
        let body = json_body(body)?;
        let members = body
            .get("Members")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                syntax(format!(
                    "{action} needs 'Members': [{{\"systemuserid\": \"<id>\"}}]."
                ))
            })?;
        for m in members {
            let user = m
                .get("systemuserid")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| syntax("Each member needs its 'systemuserid'."))?;
            let add = action == "AddMembersTeam";
            match sharing::team_link(state, c, team, TeamLink::Member(user), add).await {
                // Adding a member twice, or removing one who is not there, changes nothing.
                Err(ServiceError::Dataverse(DataverseError::Duplicate)) if add => {}
                Err(ServiceError::Dataverse(DataverseError::RecordNotFound { entity, .. }))
                    if !add && entity == "teammembership" => {}
                other => other?,
            }
        }
        return Ok(no_content());
    }
    let (relation, target, table) = if let Some(r) = nav.strip_prefix("teammembership_association")
    {
        (r, "systemuser", "systemusers")
    } else if let Some(r) = nav.strip_prefix("teamroles_association") {
        (r, "role", "roles")
    } else {
        return Err(DataverseError::Unsupported(format!(
            "The path 'teams({team})/{nav}' is not supported."
        ))
        .into());
    };
    let link = |id| {
        if target == "role" {
            TeamLink::Role(id)
        } else {
            TeamLink::Member(id)
        }
    };
    match (method.clone(), relation) {
        (Method::GET, "") => {
            let ids = sharing::team_links(state, c, team, target == "role").await?;
            let key = format!("{target}id");
            let value: Vec<Value> = ids.iter().map(|id| json!({ key.clone(): id })).collect();
            Ok(odata(
                Json(
                    json!({"@odata.context": format!("{base}/$metadata#{table}"), "value": value}),
                )
                .into_response(),
            ))
        }
        (Method::POST, "/$ref") => {
            let id = ref_id(c, &json_body(body)?, target)?;
            sharing::team_link(state, c, team, link(id), true).await?;
            Ok(no_content())
        }
        (Method::DELETE, r) if r.starts_with('(') && r.ends_with(")/$ref") => {
            let key = &r[1..r.len() - ")/$ref".len()];
            let id = Uuid::parse_str(key).map_err(|_| syntax(format!("'{key}' is not an id.")))?;
            sharing::team_link(state, c, team, link(id), false).await?;
            Ok(no_content())
        }
        _ => Err(syntax(format!(
            "{method} teams(<id>)/{nav} is not a valid request: GET lists, POST …/$ref adds, DELETE …(<id>)/$ref removes."
        ))),
    }
}
