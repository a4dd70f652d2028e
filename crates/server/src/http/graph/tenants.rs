//! `/v1.0/tenants` (Keyway's own): tenants and their signing keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyway_core::wire::TenantInput;

use super::{GraphBody, GraphCaller, ListQuery, OrGraph, collection, path_id};
use crate::http::context::origin;
use crate::http::error::{GraphError, no_store};
use crate::services::tenants as svc;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1.0/tenants", tag = "tenants",
    responses((status = 200, description = "The tenants the caller may see")),
    security(("bearer" = [])))]
pub async fn tenants_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let list = svc::list(&state, &caller).await.or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "tenants",
        ListQuery::default().apply(list),
    ))
}

#[utoipa::path(post, path = "/v1.0/tenants", tag = "tenants",
    request_body(content = inline(serde_json::Value), description = "{\"displayName\": \"Contoso\", \"domains\": [\"contoso.example\"]}"),
    responses((status = 201, description = "The tenant and its administrator's credentials, shown once")),
    security(("bearer" = [])))]
pub async fn tenants_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    GraphBody(input): GraphBody<TenantInput>,
) -> Result<Response, GraphError> {
    let created = svc::create(&state, &caller, input).await.or_graph(&ctx)?;
    let mut resp = (StatusCode::CREATED, Json(created)).into_response();
    no_store(&mut resp);
    Ok(resp)
}

#[utoipa::path(get, path = "/v1.0/tenants/{id}/signingKeys", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant's signing keys, newest first")),
    security(("bearer" = [])))]
pub async fn signing_keys_list(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "tenant", &ctx)?;
    let keys = svc::signing_keys(&state, &caller, id)
        .await
        .or_graph(&ctx)?;
    Ok(collection(
        &origin(&state, &headers),
        "signingKeys",
        ListQuery::default().apply(keys),
    ))
}

#[utoipa::path(post, path = "/v1.0/tenants/{id}/signingKeys/rotate", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, description = "The new active key; the old one stays published until its tokens expire")),
    security(("bearer" = [])))]
pub async fn signing_keys_rotate(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let id = path_id(&id, "tenant", &ctx)?;
    let key = svc::rotate_signing_key(&state, &caller, id)
        .await
        .or_graph(&ctx)?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}
