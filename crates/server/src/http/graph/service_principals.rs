//! `/v1.0/servicePrincipals` and their `appRoleAssignments`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keyway_core::wire::{AppRoleAssignmentInput, ServicePrincipalInput};

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, created, entity, path_id};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::principals as svc;
use crate::state::AppState;

pub async fn service_principals_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let query = ListQuery::parse(q.as_deref(), &ctx, &["appId", "displayName"])?;
    let list = svc::list(&state, &caller).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "servicePrincipals",
        query.apply(list),
    ))
}

pub async fn service_principals_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
    GraphBody(input): GraphBody<ServicePrincipalInput>,
) -> Result<Response, GraphError> {
    let sp = svc::create(&state, &caller, input).await.or_graph(&ctx)?;
    Ok(created(&origin(&state, &headers), "servicePrincipals", &sp))
}

pub async fn service_principals_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    let sp = svc::get(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(entity(&origin(&state, &headers), "servicePrincipals", &sp))
}

pub async fn service_principals_update(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<ServicePrincipalInput>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    svc::update(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn service_principals_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    svc::delete(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn app_role_assignments_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    let list = svc::assignments(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "appRoleAssignments",
        ListQuery::default().apply(list),
    ))
}

pub async fn app_role_assignments_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    GraphBody(input): GraphBody<AppRoleAssignmentInput>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    let a = svc::assign(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok(created(&origin(&state, &headers), "appRoleAssignments", &a))
}

pub async fn app_role_assignments_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path((id, assignment)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "servicePrincipal", &ctx)?;
    let assignment = path_id(&assignment, "appRoleAssignment", &ctx)?;
    svc::unassign(&state, &caller, id, assignment)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
