//! `/v1.0/applications`: app registrations, addPassword/removePassword, certificates by PATCH.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::wire::{AddPasswordRequest, ApplicationInput, RemovePasswordRequest};

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, created, entity, path_id};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::applications as svc;
use crate::state::AppState;

pub async fn applications_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let query = ListQuery::parse(q.as_deref(), &ctx, &["appId", "displayName"])?;
    let apps = svc::list(&state, &caller).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "applications",
        query.apply(apps),
    ))
}

pub async fn applications_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
    GraphBody(input): GraphBody<ApplicationInput>,
) -> Result<Response, GraphError> {
    let app = svc::create(&state, &caller, input).await.or_graph(&ctx)?;
    Ok(created(&origin(&state, &headers), "applications", &app))
}

pub async fn applications_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "application", &ctx)?;
    let query = ListQuery::parse(q.as_deref(), &ctx, &[])?;
    // Graph returns the certificate itself only when asked for with $select=keyCredentials.
    let include_key = query
        .select
        .iter()
        .any(|s| s.eq_ignore_ascii_case("keyCredentials"));
    let app = svc::get(&state, &caller, id, include_key)
        .await
        .or_graph(&ctx)?;
    let mut values = query.apply(vec![app]);
    Ok(entity(
        &origin(&state, &headers),
        "applications",
        &values.pop(),
    ))
}

pub async fn applications_update(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<ApplicationInput>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "application", &ctx)?;
    svc::update(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn applications_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "application", &ctx)?;
    svc::delete(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn applications_add_password(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    GraphBody(input): GraphBody<AddPasswordRequest>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "application", &ctx)?;
    let cred = svc::add_password(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    let mut resp = entity(
        &origin(&state, &headers),
        "microsoft.graph.passwordCredential",
        &cred,
    );
    crate::http::error::no_store(&mut resp);
    Ok(resp.into_response())
}

pub async fn applications_remove_password(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<RemovePasswordRequest>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "application", &ctx)?;
    svc::remove_password(&state, &caller, id, input.key_id)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
