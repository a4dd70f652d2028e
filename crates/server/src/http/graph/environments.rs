//! `/v1.0/environments` (Keyway's own): a tenant's environments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::wire::EnvironmentInput;

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, path_id};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::environments as svc;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1.0/environments", tag = "environments",
    responses((status = 200, description = "The tenant's environments")), security(("bearer" = [])))]
pub async fn environments_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let list = svc::list(&state, &caller).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "environments",
        ListQuery::default().apply(list),
    ))
}

#[utoipa::path(post, path = "/v1.0/environments", tag = "environments",
    request_body(content = inline(serde_json::Value), description = "{\"name\": \"dev\"}"),
    responses((status = 201, description = "The environment, with its id, name and url")), security(("bearer" = [])))]
pub async fn environments_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    GraphBody(input): GraphBody<EnvironmentInput>,
) -> Result<Response, GraphError> {
    let env = svc::create(&state, &caller, input).await.or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(env)).into_response())
}

#[utoipa::path(get, path = "/v1.0/environments/{id}", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 200, description = "One environment")), security(("bearer" = [])))]
pub async fn environments_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let env = svc::get(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(Json(env).into_response())
}

#[utoipa::path(delete, path = "/v1.0/environments/{id}", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 204, description = "Deleted")), security(("bearer" = [])))]
pub async fn environments_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    svc::delete(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
