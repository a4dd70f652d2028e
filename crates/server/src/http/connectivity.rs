//! The Power Platform connectivity API (seed 000): connections of an environment under
//! `/connectivity/connectors/{connector}/connections/{id}?api-version=1`, their permissions, and
//! the connectors. Callers present a token for `https://api.powerplatform.com/.default`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_core::connections::{
    self as conn, Api, Connection, ConnectionError, PrincipalKind, Role, Status,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::context::RequestContext;
use super::error::PlatformError;
use crate::services::ServiceError;
use crate::services::connections::{self as svc, ConnCaller, ConnectionInput, Grant};
use crate::state::AppState;

type PResult = Result<Response, PlatformError>;

fn bad(m: impl Into<String>) -> ServiceError {
    ConnectionError::BadRequest(m.into()).into()
}

fn query_params(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default()
}

/// Every call names the API version, as the real service insists.
fn api_version(params: &[(String, String)]) -> Result<(), ServiceError> {
    if params.iter().any(|(k, _)| k == "api-version") {
        Ok(())
    } else {
        Err(bad(
            "The api-version query parameter is required (use api-version=1).",
        ))
    }
}

/// What every connection call starts with: its query parameters (with the API version checked)
/// and who is calling.
async fn open(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<(Vec<(String, String)>, ConnCaller), ServiceError> {
    let params = query_params(raw);
    api_version(&params)?;
    Ok((params, authenticate(state, headers).await?))
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<ConnCaller, ServiceError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            ServiceError::Unauthenticated(format!(
                "A bearer token for {}/.default is required.",
                svc::POWER_PLATFORM_RESOURCE
            ))
        })?;
    svc::caller(state, token.trim(), &[svc::POWER_PLATFORM_RESOURCE]).await
}

/// The environment from a `{envid}.environment.<domain>` host (the id with or without dashes,
/// its last two characters split off by a dot as the real host does).
fn environment_from_host(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let domain = state.config.environment_domain.as_deref()?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(crate::state::host_of_authority)?;
    let label = host.strip_suffix(&format!(".environment.{domain}"))?;
    Uuid::parse_str(&label.replace('.', ""))
        .ok()
        .map(|u| u.to_string())
}

/// `$filter=environment eq '<id>'`.
fn environment_from_filter(params: &[(String, String)]) -> Option<String> {
    let f = params
        .iter()
        .find(|(k, _)| k == "$filter")?
        .1
        .trim()
        .to_string();
    let rest = f.strip_prefix("environment")?.trim_start();
    let value = rest.strip_prefix("eq")?.trim();
    Some(value.trim_matches('\'').to_string())
}

/// `/providers/Microsoft.PowerApps/environments/<id>` or the bare id.
fn environment_id(s: &str) -> String {
    s.rsplit('/').next().unwrap_or(s).to_string()
}

fn scope_of(
    state: &AppState,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Option<&Value>,
) -> Result<String, ServiceError> {
    let from_body = body.and_then(|b| {
        let e = &b["properties"]["environment"];
        e["name"]
            .as_str()
            .or_else(|| e["id"].as_str())
            .map(environment_id)
    });
    let found = [
        from_body,
        environment_from_filter(params),
        environment_from_host(state, headers),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let first = found.first().cloned().ok_or_else(|| {
        bad("Name the environment: in the body (properties.environment), with $filter=environment eq '<id>', or through the <envid>.environment.<domain> host.")
    })?;
    let first = Uuid::parse_str(&first)
        .map(|u| u.to_string())
        .map_err(|_| bad(format!("'{first}' is not an environment id.")))?;
    if found
        .iter()
        .any(|f| Uuid::parse_str(f).map(|u| u.to_string()).ok().as_deref() != Some(first.as_str()))
    {
        return Err(bad("The request names two different environments."));
    }
    Ok(first)
}

fn time(t: time::OffsetDateTime) -> String {
    keyway_core::wire::graph_time::format(&t)
}

/// A connection as the connectivity API shows it; parameters only to those who may read them.
pub fn connection_json(state: &AppState, c: &Connection, role: Role) -> Value {
    let statuses = match &c.status {
        Status::Error { code, message } => {
            json!([{"status": "Error", "target": "token", "error": {"code": code, "message": message}}])
        }
        Status::Connected => match svc::expiry_warning(state, c) {
            Some((days, at)) => {
                json!([{"status": "Connected"}, {"status": "Warning", "target": "expiry", "error": {"code": "CredentialExpiresSoon", "message": format!("The credential this connection uses expires in {days} days ({}).", time(at))}}])
            }
            None => json!([{"status": "Connected"}]),
        },
        Status::Unknown => json!([{"status": "Unknown"}]),
    };
    let connector = conn::connector(&c.connector);
    let mut props = Map::new();
    props.insert(
        "apiId".into(),
        format!("/providers/Microsoft.PowerApps/apis/{}", c.connector).into(),
    );
    props.insert("displayName".into(), c.display_name.clone().into());
    props.insert("statuses".into(), statuses);
    if role.can_read_parameters() {
        let values: Map<String, Value> = svc::shown_values(c)
            .into_iter()
            .map(|(k, v)| (k, json!({"value": v})))
            .collect();
        props.insert(
            "connectionParametersSet".into(),
            json!({"name": c.parameter_set, "values": values}),
        );
    }
    props.insert(
        "createdBy".into(),
        json!({"id": c.created_by.id, "displayName": c.created_by.display_name, "type": c.created_by.kind, "tenantId": c.created_by.tenant_id}),
    );
    props.insert("createdTime".into(), time(c.created_at).into());
    props.insert("lastModifiedTime".into(), time(c.modified_at).into());
    if let Some(t) = c.tested_at {
        props.insert("lastTestedTime".into(), time(t).into());
    }
    if let Some(e) = c.expires_at {
        props.insert("expirationTime".into(), time(e).into());
    }
    props.insert(
        "environment".into(),
        json!({"id": format!("/providers/Microsoft.PowerApps/environments/{}", c.scope), "name": c.scope}),
    );
    props.insert(
        "allowSharing".into(),
        (connector.map(|k| k.sharing) == Some(conn::SharingPolicy::Standard)
            || c.run_owner.is_some())
        .into(),
    );
    // The run owner is the creator unless the connection names one (desktop flows' run owner).
    props.insert(
        "runOwner".into(),
        match c.run_owner {
            Some(owner) => json!({"id": owner, "type": "ServicePrincipal", "explicit": true}),
            None => json!({"id": c.created_by.id, "type": c.created_by.kind, "explicit": false}),
        },
    );
    props.insert("yourRole".into(), role.name().into());
    json!({
        "name": c.name,
        "id": format!("/providers/Microsoft.PowerApps/apis/{}/connections/{}", c.connector, c.name),
        "type": "Microsoft.PowerApps/apis/connections",
        "etag": format!("\"{}\"", c.version),
        "properties": props,
    })
}

/// `{"param": {"value": v}}` or `{"param": v}` → plain values.
fn plain_values(v: &Value) -> Result<Map<String, Value>, ServiceError> {
    let Some(obj) = v.as_object() else {
        return Err(bad(
            "Parameter values must be an object of {\"<name>\": {\"value\": …}}.",
        ));
    };
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let inner = v.get("value").cloned().unwrap_or_else(|| v.clone());
            (k.clone(), inner)
        })
        .collect())
}

fn body_json(body: &[u8]) -> Result<Value, ServiceError> {
    if body.is_empty() {
        return Err(bad("The request needs a JSON body."));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad(format!("The request body is not valid JSON: {e}.")))
}

/// `PUT` (or `POST`, as seed 000 sends) creates (201) or updates (200); `GET`; `DELETE`.
pub async fn connection_any(
    State(state): State<AppState>,
    Path((connector, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
    ctx: RequestContext,
    body: axum::body::Bytes,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    match method {
        Method::PUT | Method::POST => {
            let body = body_json(&body).map_err(fail)?;
            let scope = scope_of(&state, &headers, &params, Some(&body)).map_err(fail)?;
            let p = &body["properties"];
            let (set, values) = if let Some(set) = p.get("connectionParametersSet") {
                (
                    set["name"].as_str().map(str::to_string),
                    plain_values(&set["values"]).map_err(fail)?,
                )
            } else if let Some(values) = p.get("connectionParameters") {
                (None, plain_values(values).map_err(fail)?)
            } else {
                return Err(fail(bad(
                    "properties.connectionParametersSet {name, values} (or connectionParameters) is required.",
                )));
            };
            let expected = headers
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .filter(|v| *v != "*")
                .map(|v| v.trim_matches('"').parse::<i64>())
                .transpose()
                .map_err(|_| {
                    fail(bad(
                        "If-Match must be the etag the connection was read with.",
                    ))
                })?;
            let (c, created) = svc::put(
                &state,
                &caller,
                ConnectionInput {
                    api: Api::PowerPlatform,
                    scope,
                    name: Some(name),
                    connector,
                    parameter_set: set,
                    values,
                    display_name: p["displayName"].as_str().map(str::to_string),
                    description: p["description"].as_str().map(str::to_string),
                },
                expected,
            )
            .await
            .map_err(fail)?;
            let role = if created {
                Role::Owner
            } else {
                svc::role_of(&state, &caller, &c)
                    .await
                    .map_err(fail)?
                    .unwrap_or(Role::CanView)
            };
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(connection_json(&state, &c, role))).into_response())
        }
        Method::GET => {
            let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
            let (c, role) = svc::get(&state, &caller, Api::PowerPlatform, &scope, &name)
                .await
                .map_err(fail)?;
            if !c.connector.eq_ignore_ascii_case(&connector) {
                return Err(fail(
                    ConnectionError::NotFound(format!("The connection '{name}' was not found."))
                        .into(),
                ));
            }
            Ok(Json(connection_json(&state, &c, role)).into_response())
        }
        Method::DELETE => {
            let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
            svc::delete(&state, &caller, Api::PowerPlatform, &scope, &name)
                .await
                .map_err(fail)?;
            Ok(StatusCode::OK.into_response())
        }
        other => Err(fail(bad(format!(
            "{other} is not supported on a connection."
        )))),
    }
}

/// `GET /connectivity/connections` and `GET /connectivity/connectors/{connector}/connections`.
pub async fn connections_get(
    State(state): State<AppState>,
    connector: Option<Path<String>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ctx: RequestContext,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    let scope = scope_of(&state, &headers, &params, None).ok();
    let items: Vec<Value> = svc::list(&state, &caller, Api::PowerPlatform, scope.as_deref())
        .await
        .map_err(fail)?
        .iter()
        .filter(|(c, _)| {
            connector
                .as_ref()
                .is_none_or(|k| c.connector.eq_ignore_ascii_case(&k.0))
        })
        .map(|(c, r)| connection_json(&state, c, *r))
        .collect();
    Ok(Json(json!({"value": items})).into_response())
}

/// `POST …/connections/{id}/test` (Keyway's): test again now.
pub async fn connection_test_post(
    State(state): State<AppState>,
    Path((_connector, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ctx: RequestContext,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
    let (mut c, role) = svc::get(&state, &caller, Api::PowerPlatform, &scope, &name)
        .await
        .map_err(fail)?;
    // A test proves the credentials with the authority now, unless the caller is content with
    // a token still cached for this connection.
    let using = if params
        .iter()
        .any(|(k, v)| k == "useCachedToken" && v.eq_ignore_ascii_case("true"))
    {
        crate::services::connection_auth::TokenUse::Cached
    } else {
        crate::services::connection_auth::TokenUse::Fresh
    };
    c.status = crate::services::connection_auth::test_with(&state, &caller.label(), &c, using)
        .await
        .map_err(fail)?;
    c.tested_at = Some(state.clock.now());
    Ok(Json(connection_json(&state, &c, role)).into_response())
}

/// `GET …/connections/{id}/events` (Keyway's): the connection's history.
pub async fn events_get(
    State(state): State<AppState>,
    Path((_connector, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ctx: RequestContext,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
    let events = svc::events(&state, &caller, Api::PowerPlatform, &scope, &name)
        .await
        .map_err(fail)?;
    let value: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "time": time(e.at),
                "kind": e.kind,
                "caller": e.caller,
                "actingAs": e.acting_as,
                "purpose": e.purpose,
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

fn permission_json(c: &Connection, p: &keyway_store::ConnectionPermission) -> Value {
    json!({
        "name": p.id,
        "id": format!("/providers/Microsoft.PowerApps/apis/{}/connections/{}/permissions/{}", c.connector, c.name, p.id),
        "type": "Microsoft.PowerApps/apis/connections/permissions",
        "properties": {
            "roleName": p.role,
            "principal": {"id": p.principal_id, "type": p.principal_type, "tenantId": c.tenant_id},
        },
    })
}

/// `GET …/connections/{id}/permissions`.
pub async fn permissions_get(
    State(state): State<AppState>,
    Path((_connector, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ctx: RequestContext,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
    let (c, perms) = svc::permissions(&state, &caller, Api::PowerPlatform, &scope, &name)
        .await
        .map_err(fail)?;
    Ok(
        Json(json!({"value": perms.iter().map(|p| permission_json(&c, p)).collect::<Vec<_>>()}))
            .into_response(),
    )
}

/// `POST …/connections/{id}/modifyPermissions` `{"put":[…],"delete":[{"id"}]}`.
pub async fn modify_permissions_post(
    State(state): State<AppState>,
    Path((_connector, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ctx: RequestContext,
    body: axum::body::Bytes,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    let (params, caller) = open(&state, &headers, raw.as_deref()).await.map_err(fail)?;
    let body = body_json(&body).map_err(fail)?;
    let scope = scope_of(&state, &headers, &params, None).map_err(fail)?;
    let mut put = Vec::new();
    for p in body["put"].as_array().into_iter().flatten() {
        let props = &p["properties"];
        let role = props["roleName"]
            .as_str()
            .and_then(Role::parse)
            .ok_or_else(|| {
                fail(bad(
                    "Each put needs properties.roleName: CanView, CanViewWithShare or CanEdit.",
                ))
            })?;
        let principal = &props["principal"];
        let id = principal["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| {
                fail(bad(
                    "Each put needs properties.principal.id (an object id).",
                ))
            })?;
        let kind = principal["type"]
            .as_str()
            .and_then(PrincipalKind::parse)
            .ok_or_else(|| {
                fail(bad(
                    "properties.principal.type is User, ServicePrincipal or Group.",
                ))
            })?;
        put.push(Grant {
            principal: id,
            kind,
            role,
        });
    }
    let mut delete = Vec::new();
    for d in body["delete"].as_array().into_iter().flatten() {
        let id = d["id"]
            .as_str()
            .map(|s| s.rsplit('/').next().unwrap_or(s))
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| fail(bad("Each delete needs the permission's id.")))?;
        delete.push(id);
    }
    if put.is_empty() && delete.is_empty() {
        return Err(fail(bad(
            "modifyPermissions needs something to put or delete.",
        )));
    }
    svc::modify_permissions(
        &state,
        &caller,
        Api::PowerPlatform,
        &scope,
        &name,
        put,
        delete,
    )
    .await
    .map_err(fail)?;
    Ok(StatusCode::OK.into_response())
}

fn connector_json(c: &conn::Connector) -> Value {
    json!({
        "name": c.id,
        "id": c.api_id(),
        "type": "Microsoft.PowerApps/apis",
        "properties": {
            "displayName": c.display_name,
            "description": c.description,
            "connectionParameterSets": {"values": c.parameter_sets.iter().map(|p| json!({
                "name": p.name,
                "uiDefinition": {"displayName": p.display_name},
                "parameters": p.schema["properties"],
                "required": p.schema["required"],
            })).collect::<Vec<_>>()},
            "sharing": match c.sharing {
                conn::SharingPolicy::Standard => "Standard",
                conn::SharingPolicy::RunOwnerOnly => "RunOwnerOnly",
            },
        },
    })
}

/// `GET /connectivity/connectors` and `/connectivity/connectors/{connector}`.
pub async fn connectors_get(
    State(state): State<AppState>,
    id: Option<Path<String>>,
    headers: HeaderMap,
    ctx: RequestContext,
) -> PResult {
    let fail = |error| PlatformError {
        error,
        ctx: ctx.clone(),
    };
    authenticate(&state, &headers).await.map_err(fail)?;
    match id {
        Some(Path(id)) => {
            let c = conn::connector(&id).ok_or_else(|| {
                fail(
                    ConnectionError::UnknownConnector(format!(
                        "The connector '{id}' does not exist."
                    ))
                    .into(),
                )
            })?;
            Ok(Json(connector_json(c)).into_response())
        }
        None => Ok(Json(
            json!({"value": conn::connectors().iter().map(connector_json).collect::<Vec<_>>()}),
        )
        .into_response()),
    }
}
