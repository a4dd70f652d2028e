//! `/v1.0/environments/{id}/…` (Keyway's own): application users, roles, role assignments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::wire::{AppUserInput, RoleAssignInput, RoleInput};

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, path_id};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::env_security as svc;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1.0/environments/{id}/addAppUser", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    request_body(content = inline(serde_json::Value), description = "{\"servicePrincipalAppId\": \"…\", \"roles\": [\"Basic User\"]}"),
    responses((status = 201, description = "The application user")), security(("bearer" = [])))]
pub async fn app_users_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<AppUserInput>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let user = svc::add_app_user(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/roles", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 200, description = "The environment's security roles")), security(("bearer" = [])))]
pub async fn roles_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let roles = svc::list_roles(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "roles",
        ListQuery::default().apply(roles),
    ))
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/roles", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    request_body(content = inline(serde_json::Value), description = "{\"name\": \"Invoice reader\", \"privileges\": [\"prvReadaccount:BusinessUnit\"]}"),
    responses((status = 201, description = "The new role")), security(("bearer" = [])))]
pub async fn roles_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<RoleInput>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let role = svc::create_role(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(role)).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/roles/{role}/assign", tag = "environments",
    params(("id" = String, Path, description = "Environment id"), ("role" = String, Path, description = "Role id")),
    request_body(content = inline(serde_json::Value), description = "{\"applicationId\": \"…\"} or {\"systemUserId\": \"…\"}"),
    responses((status = 204, description = "Assigned")), security(("bearer" = [])))]
pub async fn roles_assign(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path((id, role)): Path<(String, String)>,
    GraphBody(input): GraphBody<RoleAssignInput>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let role = path_id(&role, "role", &ctx)?;
    svc::assign_role(&state, &caller, id, role, input)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1.0/environments/{id}/audit/verify", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    responses((status = 200, description = "Whether the audit chain is intact, and where it breaks")), security(("bearer" = [])))]
pub async fn audit_verify_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let v = svc::verify_audit(&state, &caller, id)
        .await
        .or_graph(&ctx)?;
    Ok(Json(v).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/addUser", tag = "environments",
    params(("id" = String, Path, description = "Environment id")),
    request_body(content = inline(serde_json::Value), description = "{\"userPrincipalName\": \"alice@contoso.example\", \"roles\": [\"Basic User\"]} or {\"userId\": \"<object id of a member or a guest>\"}"),
    responses((status = 201, description = "The person's system user")), security(("bearer" = [])))]
pub async fn env_users_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<keyway_core::wire::EnvUserInput>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let user = svc::add_user(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(post, path = "/v1.0/environments/{id}/users/{user}/license", tag = "environments",
    params(("id" = String, Path, description = "Environment id"), ("user" = String, Path, description = "systemuserid")),
    responses((status = 204, description = "Licensed (islicensed = true)")), security(("bearer" = [])))]
pub async fn license_grant(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let user = path_id(&user, "system user", &ctx)?;
    svc::set_license(&state, &caller, id, user, true)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1.0/environments/{id}/users/{user}/license", tag = "environments",
    params(("id" = String, Path, description = "Environment id"), ("user" = String, Path, description = "systemuserid")),
    responses((status = 204, description = "Unlicensed (islicensed = false)")), security(("bearer" = [])))]
pub async fn license_remove(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "environment", &ctx)?;
    let user = path_id(&user, "system user", &ctx)?;
    svc::set_license(&state, &caller, id, user, false)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
