//! The Adobe Flow Service API (seed 003) under `/data/foundation/flowservice`: connection specs,
//! connections (`?property=`, `?orderby=`, `?count=true`, `?limit=`), JSON Patch under `If-Match`,
//! and `explore`. Callers present a token for `https://platform.adobe.io/.default`, their client
//! id as `x-api-key`, an organization of their tenant as `x-gw-ims-org-id`, and optionally
//! `x-sandbox-name`. Also Keyway's own administration of organizations and sandboxes under
//! `/v1.0/flowservice`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_core::connections::{self as conn, Connection, ConnectionError, Status};
use keyway_store::{FlowOrganization, FlowSandbox};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::context::RequestContext;
use super::error::{FlowServiceError, GraphError};
use super::graph::{GraphBody, GraphCaller, OrGraph};
use crate::services::ServiceError;
use crate::services::connections as conns;
use crate::services::flowservice::{self as svc, Credentials, FlowContext, NewConnection};
use crate::services::flowservice_query::{OrderBy, Property, QueryError};
use crate::state::AppState;

const BASE: &str = "/data/foundation/flowservice";

type FResult = Result<Response, FlowServiceError>;

fn bad(m: impl Into<String>) -> ServiceError {
    ConnectionError::BadRequest(m.into()).into()
}

/// A caller the gateway let through, in its organization's sandbox.
pub struct FlowCall(pub FlowContext, pub RequestContext);

impl FromRequestParts<AppState> for FlowCall {
    type Rejection = FlowServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, FlowServiceError> {
        let ctx = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        let h = &parts.headers;
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        // A header that is not `Bearer …` is a token, only not a valid one.
        let bearer = text(header::AUTHORIZATION.as_str()).map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim()
        });
        let creds = Credentials {
            bearer,
            api_key: text("x-api-key"),
            org: text("x-gw-ims-org-id"),
            sandbox: text("x-sandbox-name"),
        };
        match svc::context(state, creds).await {
            Ok(c) => Ok(FlowCall(c, ctx)),
            Err(failure) => Err(FlowServiceError { failure, ctx }),
        }
    }
}

fn query_params(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default()
}

/// Bodies must say they are JSON, as Adobe insists.
fn json_body(headers: &HeaderMap, body: &[u8], patch: bool) -> Result<Value, ServiceError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let ok = ct.starts_with("application/json")
        || (patch && ct.starts_with("application/json-patch+json"));
    if !ok {
        return Err(bad(
            "A valid content-type must be specified: Content-Type: application/json.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad(format!("The request body is not valid JSON: {e}.")))
}

fn millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

// ---- Connection specs ----

/// Adobe's name of a spec (`dynamics-online`); filters also match the catalog's display name.
fn spec_name(c: &conn::Connector) -> &'static str {
    if c.id == conn::catalog::DYNAMICS_SPEC {
        "dynamics-online"
    } else {
        c.display_name
    }
}

fn spec_json(c: &conn::Connector) -> Value {
    let auth: Vec<Value> = c
        .parameter_sets
        .iter()
        .map(|p| {
            let kind = match p.auth {
                conn::AuthKind::UsernamePassword => "Basic Authentication",
                _ => "KeyBased",
            };
            json!({"name": p.name, "type": kind, "spec": p.schema})
        })
        .collect();
    json!({
        "id": c.id,
        "name": spec_name(c),
        "providerId": "0ed90a81-07f4-4586-8190-b40eccef1c5a",
        "version": "1.0",
        "attributes": {"category": "CRM", "displayName": c.display_name, "description": c.description},
        "authSpec": auth,
    })
}

fn properties(params: &[(String, String)]) -> Result<Vec<Property>, ServiceError> {
    params
        .iter()
        .filter(|(k, _)| k == "property")
        .map(|(_, v)| Property::parse(v).map_err(|QueryError(m)| bad(m)))
        .collect()
}

/// `GET /connectionSpecs` (with `?property=name=="dynamics-online"`).
pub async fn specs_list(FlowCall(_, ctx): FlowCall, RawQuery(raw): RawQuery) -> FResult {
    let fail = |e| FlowServiceError::service(e, &ctx);
    let props = properties(&query_params(raw.as_deref())).map_err(fail)?;
    let items: Vec<Value> = svc::specs()
        .filter(|c| {
            let item = spec_json(c);
            let mut by_label = item.clone();
            by_label["name"] = c.display_name.into();
            props
                .iter()
                .all(|p| p.matches(&item) || p.matches(&by_label))
        })
        .map(spec_json)
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

/// `GET /connectionSpecs/{id}`.
pub async fn spec_get(FlowCall(_, ctx): FlowCall, Path(id): Path<String>) -> FResult {
    let c = svc::spec(&id).map_err(|e| FlowServiceError::service(e, &ctx))?;
    Ok(Json(json!({"items": [spec_json(c)]})).into_response())
}

// ---- Connections ----

fn connection_json(c: &Connection) -> Value {
    let etag = svc::etag(c);
    let (org, sandbox) = c.scope.split_once('/').unwrap_or((c.scope.as_str(), ""));
    let (state, mut status) = match &c.status {
        Status::Connected => ("enabled", json!({"status": "Connected"})),
        Status::Error { code, message } => (
            "error",
            json!({"status": "Error", "code": code, "message": message}),
        ),
        Status::Unknown => ("draft", json!({"status": "Unknown"})),
    };
    if let (Some(t), Some(s)) = (c.tested_at, status.as_object_mut()) {
        s.insert("testedAt".into(), millis(t).into());
    }
    json!({
        "id": c.id,
        "createdAt": millis(c.created_at),
        "updatedAt": millis(c.modified_at),
        "createdBy": c.created_by.id,
        "updatedBy": c.modified_by.id,
        "sandboxName": sandbox,
        "imsOrgId": org,
        "name": c.display_name,
        "description": c.description,
        "connectionSpec": {"id": c.connector, "version": "1.0"},
        "state": state,
        "auth": {"specName": c.parameter_set, "params": conns::shown_values(c)},
        "version": etag,
        "etag": etag,
        "status": status,
    })
}

fn id_and_etag(c: &Connection) -> Value {
    json!({"id": c.id, "etag": svc::etag(c)})
}

/// `POST /connections` → 201 `{id, etag}`.
pub async fn connections_create(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let fail = |e| FlowServiceError::service(e, &ctx);
    let b = json_body(&headers, &body, false).map_err(fail)?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let required = |v: &Value, what: &str| {
        text(v).ok_or_else(|| fail(bad(format!("The connection needs {what}."))))
    };
    let params = b["auth"]["params"]
        .as_object()
        .cloned()
        .ok_or_else(|| fail(bad("The connection needs auth.params (an object).")))?;
    let input = NewConnection {
        name: required(&b["name"], "a name")?,
        description: text(&b["description"]),
        spec_id: required(&b["connectionSpec"]["id"], "connectionSpec.id")?,
        spec_version: text(&b["connectionSpec"]["version"]),
        auth_spec: required(&b["auth"]["specName"], "auth.specName")?,
        params,
    };
    let c = svc::create(&state, &fc, input).await.map_err(fail)?;
    Ok((StatusCode::CREATED, Json(id_and_etag(&c))).into_response())
}

/// `GET /connections` with `property`, `orderby`, `count=true`, `limit` and `start`.
pub async fn connections_list(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    RawQuery(raw): RawQuery,
) -> FResult {
    let fail = |e| FlowServiceError::service(e, &ctx);
    let params = query_params(raw.as_deref());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let props = properties(&params).map_err(fail)?;
    let order = get("orderby")
        .map(|o| OrderBy::parse(o).map_err(|QueryError(m)| fail(bad(m))))
        .transpose()?;
    let number = |k: &str, max: usize| {
        get(k)
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| fail(bad(format!("{k} must be a number from 0 to {max}."))))
            })
            .transpose()
    };
    let limit = number("limit", 1000)?.filter(|l| *l > 0);
    let start = number("start", usize::MAX)?.unwrap_or(0);
    let mut items: Vec<Value> = svc::list(&state, &fc)
        .await
        .map_err(fail)?
        .iter()
        .map(connection_json)
        .filter(|i| props.iter().all(|p| p.matches(i)))
        .collect();
    if get("count") == Some("true") {
        return Ok(Json(json!({"count": items.len()})).into_response());
    }
    if let Some(o) = order {
        o.sort(&mut items);
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let mut out = json!({"items": page});
    if let Some(l) = limit {
        // `start` is an offset Keyway gives back in `_links.next`; clients follow it as is.
        let next = (start + l < total).then(|| (start + l).to_string());
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "start")
            .cloned()
            .collect();
        out["_page"] = json!({"count": out["items"].as_array().map_or(0, Vec::len), "next": next});
        if let Some(n) = &next {
            query.push(("start".into(), n.clone()));
            let q = serde_urlencoded::to_string(&query).unwrap_or_default();
            out["_links"] = json!({"next": {"href": format!("{BASE}/connections?{q}")}});
        }
    }
    Ok(Json(out).into_response())
}

/// `GET /connections/{id}` → `{items:[…]}`.
pub async fn connection_get(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    Path(id): Path<String>,
) -> FResult {
    let c = svc::get(&state, &fc, &id)
        .await
        .map_err(|e| FlowServiceError::service(e, &ctx))?;
    Ok(Json(json!({"items": [connection_json(&c)]})).into_response())
}

/// `PATCH /connections/{id}` (JSON Patch, `If-Match` required) → `{id, etag}`.
pub async fn connection_patch(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let fail = |e| FlowServiceError::service(e, &ctx);
    let ops = json_body(&headers, &body, true).map_err(fail)?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let c = svc::patch(&state, &fc, &id, if_match, &ops)
        .await
        .map_err(fail)?;
    Ok(Json(id_and_etag(&c)).into_response())
}

/// `DELETE /connections/{id}` → 204.
pub async fn connection_delete(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    Path(id): Path<String>,
) -> FResult {
    svc::delete(&state, &fc, &id)
        .await
        .map_err(|e| FlowServiceError::service(e, &ctx))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connections/{id}/explore?objectType=root|table[&object=<path>]`.
pub async fn connection_explore(
    State(state): State<AppState>,
    FlowCall(fc, ctx): FlowCall,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> FResult {
    let fail = |e| FlowServiceError::service(e, &ctx);
    let params = query_params(raw.as_deref());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("objectType") {
        Some("root") => {
            let tables = svc::explore_root(&state, &fc, &id).await.map_err(fail)?;
            let items: Vec<Value> = tables
                .iter()
                .map(|t| json!({"type": "table", "name": t.name, "path": t.path, "canPreview": true, "canFetchSchema": true}))
                .collect();
            Ok(Json(Value::Array(items)).into_response())
        }
        Some("table") => {
            let object = get("object").ok_or_else(|| {
                fail(bad(
                    "objectType=table needs object=<path>, a path from objectType=root.",
                ))
            })?;
            let columns = svc::explore_table(&state, &fc, &id, object)
                .await
                .map_err(fail)?;
            let columns: Vec<Value> = columns
                .iter()
                .map(|c| {
                    let mut xdm = Map::new();
                    xdm.insert("type".into(), c.xdm_type.into());
                    if let Some(f) = c.xdm_format {
                        xdm.insert("format".into(), f.into());
                    }
                    json!({"name": c.name, "type": c.kind, "xdm": xdm})
                })
                .collect();
            Ok(Json(json!({"format": "flat", "schema": {"columns": columns}})).into_response())
        }
        other => Err(fail(bad(format!(
            "objectType must be root or table (not {}).",
            other.unwrap_or("absent")
        )))),
    }
}

// ---- Administration: organizations and sandboxes ----

fn org_json(o: &FlowOrganization) -> Value {
    json!({
        "id": o.id,
        "tenantId": o.tenant_id,
        "displayName": o.display_name,
        "createdDateTime": keyway_core::wire::graph_time::format(&o.created_at),
    })
}

fn sandbox_json(s: &FlowSandbox) -> Value {
    json!({
        "name": s.name,
        "organizationId": s.org_id,
        "createdDateTime": keyway_core::wire::graph_time::format(&s.created_at),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgBody {
    id: String,
    tenant_id: Option<Uuid>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxBody {
    name: String,
}

/// `POST /v1.0/flowservice/organizations` `{"id": "ABC123@AdobeOrg", "tenantId"?, "displayName"?}`.
pub async fn orgs_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    GraphBody(b): GraphBody<OrgBody>,
) -> Result<Response, GraphError> {
    let org = svc::org_create(
        &state,
        &caller,
        svc::OrgInput {
            id: b.id,
            tenant_id: b.tenant_id,
            display_name: b.display_name,
        },
    )
    .await
    .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(org_json(&org))).into_response())
}

/// `GET /v1.0/flowservice/organizations`.
pub async fn orgs_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
) -> Result<Response, GraphError> {
    let list = svc::org_list(&state, &caller).await.or_graph(&ctx)?;
    Ok(Json(json!({"value": list.iter().map(org_json).collect::<Vec<_>>()})).into_response())
}

/// `POST /v1.0/flowservice/organizations/{org}/sandboxes` `{"name": "dev"}`.
pub async fn sandboxes_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(org): Path<String>,
    GraphBody(b): GraphBody<SandboxBody>,
) -> Result<Response, GraphError> {
    let s = svc::sandbox_create(&state, &caller, &org, &b.name)
        .await
        .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(sandbox_json(&s))).into_response())
}

/// `GET /v1.0/flowservice/organizations/{org}/sandboxes`.
pub async fn sandboxes_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(org): Path<String>,
) -> Result<Response, GraphError> {
    let list = svc::sandbox_list(&state, &caller, &org)
        .await
        .or_graph(&ctx)?;
    Ok(Json(json!({"value": list.iter().map(sandbox_json).collect::<Vec<_>>()})).into_response())
}

/// `DELETE /v1.0/flowservice/organizations/{org}/sandboxes/{name}` (its connections go too).
pub async fn sandboxes_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path((org, name)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    svc::sandbox_delete(&state, &caller, &org, &name)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
