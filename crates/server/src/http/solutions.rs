//! `/v1.0/environments/{id}/solutions…` (Keyway's own): solutions, their components, export to
//! a `keyway-solution/1` archive and import with a deployment settings file. Callers are the
//! flows API's, with System Customizer or System Administrator rights in the environment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::context::RequestContext;
use super::flows::{bearer, fe, no_bearer};
use crate::services::flows::FlowCaller;
use crate::services::solutions::{self as svc, SolutionError};
use crate::state::AppState;

/// A refused solutions request, with the request it belongs to.
pub struct SolutionsError(Box<(SolutionError, RequestContext)>);

impl IntoResponse for SolutionsError {
    fn into_response(self) -> Response {
        let (error, ctx) = *self.0;
        let (status, code, message) = match error {
            SolutionError::Invalid { code, message } => (StatusCode::BAD_REQUEST, code, message),
            SolutionError::NotFound(m) => (StatusCode::NOT_FOUND, "SolutionNotFound", m),
            SolutionError::Conflict(m) => (StatusCode::CONFLICT, "SolutionConflict", m),
            SolutionError::Flow(e) => return fe(e, &ctx).into_response(),
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

type SResult = Result<Response, SolutionsError>;

trait OrSolutions<T> {
    fn or_sol(self, ctx: &RequestContext) -> Result<T, SolutionsError>;
}

impl<T> OrSolutions<T> for svc::Result<T> {
    fn or_sol(self, ctx: &RequestContext) -> Result<T, SolutionsError> {
        self.map_err(|e| SolutionsError(Box::new((e, ctx.clone()))))
    }
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    env: &str,
    ctx: &RequestContext,
) -> Result<FlowCaller, SolutionsError> {
    let token = bearer(headers).ok_or_else(|| SolutionError::Flow(no_bearer()));
    let token = svc::Result::from(token).or_sol(ctx)?;
    svc::caller(state, token, env).await.or_sol(ctx)
}

/// What every call with a body starts with: who is calling, then the body's JSON.
async fn caller_body(
    state: &AppState,
    headers: &HeaderMap,
    env: &str,
    body: &Bytes,
    ctx: &RequestContext,
) -> Result<(FlowCaller, Value), SolutionsError> {
    let c = caller(state, headers, env, ctx).await?;
    Ok((c, body_json(body, ctx)?))
}

fn body_json(bytes: &Bytes, ctx: &RequestContext) -> Result<Value, SolutionsError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    svc::Result::from(
        serde_json::from_slice(bytes).map_err(|e| SolutionError::Invalid {
            code: "InvalidSolution",
            message: format!("The body is not JSON: {e}"),
        }),
    )
    .or_sol(ctx)
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/solutions", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name")),
    responses((status = 200, description = "The environment's solutions")), security(("bearer" = [])))]
pub async fn solutions_list(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> SResult {
    let c = caller(&state, &headers, &env, &ctx).await?;
    let items = svc::list(&state, &c).await.or_sol(&ctx)?;
    Ok(Json(json!({"value": items})).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/solutions", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name")),
    request_body(content = inline(serde_json::Value), description = "{\"uniqueName\", \"friendlyName\"?, \"publisherPrefix\", \"version\"?}"),
    responses((status = 201, description = "The solution"), (status = 409, description = "The name is taken")),
    security(("bearer" = [])))]
pub async fn solutions_create(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(env): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> SResult {
    let (c, body) = caller_body(&state, &headers, &env, &body, &ctx).await?;
    let s = svc::create(&state, &c, &body).await.or_sol(&ctx)?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/solutions/{name}", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name"), ("name" = String, Path, description = "The solution's unique name")),
    responses((status = 200, description = "The solution with its components")), security(("bearer" = [])))]
pub async fn solution_get(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> SResult {
    let c = caller(&state, &headers, &env, &ctx).await?;
    Ok(Json(svc::get(&state, &c, &name).await.or_sol(&ctx)?).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/solutions/{name}/components", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name"), ("name" = String, Path, description = "The solution's unique name")),
    request_body(content = inline(serde_json::Value), description = "{\"type\": \"table|role|flow|connectionreference|environmentvariable\", \"name\"}"),
    responses((status = 200, description = "The solution with its components")), security(("bearer" = [])))]
pub async fn components_add(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> SResult {
    let (c, body) = caller_body(&state, &headers, &env, &body, &ctx).await?;
    let s = svc::add_component(&state, &c, &name, &body)
        .await
        .or_sol(&ctx)?;
    Ok(Json(s).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/solutions/{name}/components/remove", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name"), ("name" = String, Path, description = "The solution's unique name")),
    request_body(content = inline(serde_json::Value), description = "{\"type\", \"name\"}"),
    responses((status = 200, description = "The solution without it (the component itself stays)")), security(("bearer" = [])))]
pub async fn components_remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> SResult {
    let (c, body) = caller_body(&state, &headers, &env, &body, &ctx).await?;
    let s = svc::remove_component(&state, &c, &name, &body)
        .await
        .or_sol(&ctx)?;
    Ok(Json(s).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/solutions/{name}/export", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name"), ("name" = String, Path, description = "The solution's unique name")),
    request_body(content = inline(serde_json::Value), description = "{\"version\"?: \"1.2.0.0\"} (default: the next revision)"),
    responses((status = 200, description = "The archive (format keyway-solution/1)")), security(("bearer" = [])))]
pub async fn solution_export(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> SResult {
    let (c, body) = caller_body(&state, &headers, &env, &body, &ctx).await?;
    let archive = svc::export(&state, &c, &name, &body).await.or_sol(&ctx)?;
    Ok(Json(archive).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/solutions/import", tag = "solutions",
    params(("id" = String, Path, description = "Environment id or name")),
    request_body(content = inline(serde_json::Value), description = "{\"solution\": <archive>, \"settings\"?: {\"EnvironmentVariables\": […], \"ConnectionReferences\": […]}}"),
    responses((status = 200, description = "What was imported; each flow's state and the connection references it misses"), (status = 400, description = "A bad archive or settings file: nothing changed")),
    security(("bearer" = [])))]
pub async fn solution_import(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(env): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> SResult {
    let (c, body) = caller_body(&state, &headers, &env, &body, &ctx).await?;
    let report = svc::import(&state, &c, &body).await.or_sol(&ctx)?;
    Ok(Json(report).into_response())
}
