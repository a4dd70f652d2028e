//! `/v1.0/users`: people, with passwords for the resource-owner password grant.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::wire::UserInput;

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, created, entity, path_id};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::users as svc;
use crate::state::AppState;

pub async fn users_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let query = ListQuery::parse(
        q.as_deref(),
        &ctx,
        &["userPrincipalName", "displayName", "userType", "mail"],
    )?;
    let list = svc::list(&state, &caller).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "users",
        query.apply(list),
    ))
}

pub async fn users_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
    GraphBody(input): GraphBody<UserInput>,
) -> Result<Response, GraphError> {
    let user = svc::create(&state, &caller, input).await.or_graph(&ctx)?;
    Ok(created(&origin(&state, &headers), "users", &user))
}

pub async fn users_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "user", &ctx)?;
    let user = svc::get(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(entity(&origin(&state, &headers), "users", &user))
}

pub async fn users_update(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    GraphBody(input): GraphBody<UserInput>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "user", &ctx)?;
    svc::update(&state, &caller, id, input)
        .await
        .or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn users_delete(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    let id = path_id(&id, "user", &ctx)?;
    svc::delete(&state, &caller, id).await.or_graph(&ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/users/{id}/revokeSignInSessions`: Graph answers `{"value": true}`.
pub async fn users_revoke_sign_in_sessions(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "user", &ctx)?;
    svc::revoke_sign_in_sessions(&state, &caller, id)
        .await
        .or_graph(&ctx)?;
    Ok(axum::Json(serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
        "value": true,
    }))
    .into_response())
}
