//! `/v1.0/environments/{id}/flows…` (Keyway's own): cloud flows, their runs and run history.
//! Callers present a token for Microsoft Graph or the Power Platform API and act as their system
//! user in the environment. Errors use Dataverse's codes (`0x80040220` for a missing privilege).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::context::RequestContext;
use super::error::DataverseWireError;
use crate::services::ServiceError;
use crate::services::flow_run_only as run_only;
use crate::services::flows::{self as svc, FlowCaller, FlowError, FlowInput};
use crate::state::AppState;

/// A refused flows request, with the request it belongs to.
pub struct FlowsError(Box<(FlowError, RequestContext)>);

pub(crate) fn fe(e: FlowError, ctx: &RequestContext) -> FlowsError {
    FlowsError(Box::new((e, ctx.clone())))
}

impl IntoResponse for FlowsError {
    fn into_response(self) -> Response {
        let (error, ctx) = *self.0;
        let (status, body) = match error {
            FlowError::Definition(d) => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "InvalidFlowDefinition", "message": d.to_string(), "path": d.path, "offset": d.offset}}),
            ),
            FlowError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "0x80040203", "message": m}}),
            ),
            FlowError::NotFound(m) => (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "0x80040217", "message": m}}),
            ),
            FlowError::Conflict(m) => (
                StatusCode::CONFLICT,
                json!({"error": {"code": "Conflict", "message": m}}),
            ),
            e @ FlowError::VersionMismatch(_) => (
                StatusCode::PRECONDITION_FAILED,
                json!({"error": {"code": "0x80060882", "message": e.to_string()}}),
            ),
            FlowError::Unresolved(u) => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": u.code, "message": u.message, "connectionReference": u.reference}}),
            ),
            FlowError::Service(ServiceError::Unauthenticated(m)) => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"code": "0x80072560", "message": m}})),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            FlowError::Service(ServiceError::Forbidden(m)) => (
                StatusCode::FORBIDDEN,
                json!({"error": {"code": "0x80040220", "message": m}}),
            ),
            FlowError::Service(error) => return DataverseWireError { error, ctx }.into_response(),
        };
        (status, Json(body)).into_response()
    }
}

type FResult = Result<Response, FlowsError>;

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    env: &str,
    ctx: &RequestContext,
) -> Result<FlowCaller, FlowsError> {
    let fail = |e: FlowError| fe(e, ctx);
    let token = bearer(headers).ok_or_else(|| fail(no_bearer()))?;
    svc::caller(state, token, env).await.map_err(fail)
}

/// The refusal of a call without a bearer token (the solutions API's too).
pub(crate) fn no_bearer() -> FlowError {
    FlowError::Service(ServiceError::Unauthenticated(
        "Send Authorization: Bearer <token> (scope https://api.powerplatform.com/.default or https://graph.microsoft.com/.default).".into(),
    ))
}

/// What every call on one flow starts with: who is calling, then the flow's id.
async fn flow_caller(
    state: &AppState,
    headers: &HeaderMap,
    env: &str,
    flow: &str,
    ctx: &RequestContext,
) -> Result<(FlowCaller, Uuid), FlowsError> {
    let c = caller(state, headers, env, ctx).await?;
    Ok((c, id(flow, "flow", ctx)?))
}

fn id(s: &str, what: &str, ctx: &RequestContext) -> Result<Uuid, FlowsError> {
    Uuid::parse_str(s).map_err(|_| {
        fe(
            FlowError::BadRequest(format!("'{s}' is not a {what} id.")),
            ctx,
        )
    })
}

fn body_json(bytes: &Bytes, ctx: &RequestContext) -> Result<Value, FlowsError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        fe(
            FlowError::BadRequest(format!("The body is not JSON: {e}")),
            ctx,
        )
    })
}

trait OrFlows<T> {
    fn or_flows(self, ctx: &RequestContext) -> Result<T, FlowsError>;
}

impl<T> OrFlows<T> for svc::Result<T> {
    fn or_flows(self, ctx: &RequestContext) -> Result<T, FlowsError> {
        self.map_err(|e| fe(e, ctx))
    }
}

fn collection(items: Vec<Value>) -> Response {
    Json(json!({"value": items})).into_response()
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name")),
    request_body(content = inline(serde_json::Value), description = "{\"name\": \"…\", \"definition\": {…}, \"state\": \"on\"}"),
    responses((status = 201, description = "The flow"), (status = 400, description = "The definition's error, with its path and offset")),
    security(("bearer" = [])))]
pub async fn flows_create(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(env): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let c = caller(&state, &headers, &env, &ctx).await?;
    let input = FlowInput::from_json(&body_json(&body, &ctx)?).or_flows(&ctx)?;
    let flow = svc::create(&state, &c, input).await.or_flows(&ctx)?;
    Ok((StatusCode::CREATED, Json(flow)).into_response())
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/flows", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name")),
    responses((status = 200, description = "The caller's flows (every flow for System Administrators) and the instant flows they may run (`access`: owner, admin or runOnly; run-only users see no definition)")),
    security(("bearer" = [])))]
pub async fn flows_list(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> FResult {
    let c = caller(&state, &headers, &env, &ctx).await?;
    Ok(collection(svc::list(&state, &c).await.or_flows(&ctx)?))
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/flows/{flow}", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    responses((status = 200, description = "The flow (for a run-only user: its name, state and trigger, without the definition)")), security(("bearer" = [])))]
pub async fn flow_get(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    Ok(Json(svc::get(&state, &c, flow).await.or_flows(&ctx)?).into_response())
}

/// `If-Match: W/"3"` or `3`: the version the change applies to.
fn if_match(headers: &HeaderMap) -> Option<i64> {
    let v = headers.get(header::IF_MATCH)?.to_str().ok()?;
    v.trim_start_matches("W/").trim_matches('"').parse().ok()
}

#[utoipa::path(put, path = "/v1.0/environments/{id}/flows/{flow}", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    request_body(content = inline(serde_json::Value), description = "{\"name\"?, \"definition\"?, \"state\"?}"),
    responses((status = 200, description = "The flow as saved"), (status = 412, description = "If-Match names an older version")),
    security(("bearer" = [])))]
pub async fn flow_put(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let input = FlowInput::from_json(&body_json(&body, &ctx)?).or_flows(&ctx)?;
    let saved = svc::replace(&state, &c, flow, input, if_match(&headers))
        .await
        .or_flows(&ctx)?;
    Ok(Json(saved).into_response())
}

#[utoipa::path(delete, path = "/v1.0/environments/{id}/flows/{flow}", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    responses((status = 204, description = "Deleted, with its runs")), security(("bearer" = [])))]
pub async fn flow_delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    svc::delete(&state, &c, flow).await.or_flows(&ctx)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows/{flow}/turnOn", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    responses((status = 200, description = "The flow, on")), security(("bearer" = [])))]
pub async fn flow_turn_on(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    Ok(Json(svc::set_on(&state, &c, flow, true).await.or_flows(&ctx)?).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows/{flow}/turnOff", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    responses((status = 200, description = "The flow, off: no new runs")), security(("bearer" = [])))]
pub async fn flow_turn_off(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    Ok(Json(svc::set_on(&state, &c, flow, false).await.or_flows(&ctx)?).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows/{flow}/run", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    request_body(content = inline(serde_json::Value), description = "The manual trigger's inputs (its triggerBody())"),
    responses((status = 202, description = "The run, queued")), security(("bearer" = [])))]
pub async fn flow_run(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let inputs = body_json(&body, &ctx)?;
    let run = svc::run_manual(&state, &c, flow, inputs)
        .await
        .or_flows(&ctx)?;
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({"id": run, "status": "Queued"})),
    )
        .into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("/v1.0/environments/{env}/flows/{flow}/runs/{run}"))
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/flows/{flow}/runs", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id"), ("$top" = Option<u64>, Query, description = "At most this many (default 50)")),
    responses((status = 200, description = "Runs, newest first")), security(("bearer" = [])))]
pub async fn runs_list(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let top = match params.iter().find(|(k, _)| k == "$top") {
        None => 50,
        Some((_, v)) => v
            .parse()
            .ok()
            .filter(|n| (1..=5000).contains(n))
            .ok_or_else(|| {
                fe(
                    FlowError::BadRequest("$top must be a number from 1 to 5000.".into()),
                    &ctx,
                )
            })?,
    };
    Ok(collection(
        svc::runs(&state, &c, flow, top).await.or_flows(&ctx)?,
    ))
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/flows/{flow}/runs/{run}", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run with each action's inputs, outputs, connection and identity")), security(("bearer" = [])))]
pub async fn run_get(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow, run)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let run = id(&run, "run", &ctx)?;
    Ok(Json(svc::run(&state, &c, flow, run).await.or_flows(&ctx)?).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows/{flow}/runs/{run}/cancel", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run, cancelled (a run-only user cancels only the runs they started)"), (status = 404, description = "Not found, or not a run the run-only caller started"), (status = 409, description = "It had already ended")), security(("bearer" = [])))]
pub async fn run_cancel(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow, run)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let run = id(&run, "run", &ctx)?;
    Ok(Json(svc::cancel(&state, &c, flow, run).await.or_flows(&ctx)?).into_response())
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/flows/{flow}/runOnlyUsers", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    responses((status = 200, description = "The system users and teams who may run the flow")), security(("bearer" = [])))]
pub async fn run_only_list(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    Ok(collection(
        run_only::list(&state, &c, flow).await.or_flows(&ctx)?,
    ))
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/flows/{flow}/runOnlyUsers", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id")),
    request_body(content = inline(serde_json::Value), description = "{\"systemUserId\": \"…\"} or {\"teamId\": \"…\"}"),
    responses((status = 201, description = "Granted"), (status = 200, description = "Already granted")),
    security(("bearer" = [])))]
pub async fn run_only_add(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let body = body_json(&body, &ctx)?;
    let (grant, new) = run_only::grant(&state, &c, flow, &body)
        .await
        .or_flows(&ctx)?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(grant)).into_response())
}

#[utoipa::path(delete, path = "/v1.0/environments/{id}/flows/{flow}/runOnlyUsers/{principal}", tag = "flows",
    params(("id" = String, Path, description = "Environment id or name"), ("flow" = String, Path, description = "Flow id"), ("principal" = String, Path, description = "The system user's or team's id")),
    responses((status = 204, description = "Revoked")), security(("bearer" = [])))]
pub async fn run_only_remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, flow, principal)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> FResult {
    let (c, flow) = flow_caller(&state, &headers, &env, &flow, &ctx).await?;
    let principal = id(&principal, "system user or team", &ctx)?;
    run_only::revoke(&state, &c, flow, principal)
        .await
        .or_flows(&ctx)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
