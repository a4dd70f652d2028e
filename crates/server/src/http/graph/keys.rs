//! `/v1.0/keys` (Keyway's own): the master and data keys by id, and master key rotation. Key
//! material never leaves the server.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{GraphCaller, OrGraph};
use crate::http::error::GraphError;
use crate::services::master_keys as svc;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1.0/keys", tag = "keys",
    responses((status = 200, description = "The current master key id, the data keys and what each seals")),
    security(("bearer" = [])))]
pub async fn keys_get(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
) -> Result<Response, GraphError> {
    let status = svc::status(&state, &caller).await.or_graph(&ctx)?;
    Ok(Json(status).into_response())
}

#[utoipa::path(post, path = "/v1.0/keys/rotate", tag = "keys",
    responses((status = 200, description = "A new master key seals; data keys, signing keys and server secrets were re-wrapped under it")),
    security(("bearer" = [])))]
pub async fn keys_rotate(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
) -> Result<Response, GraphError> {
    let rotation = svc::rotate(&state, &caller).await.or_graph(&ctx)?;
    Ok(Json(rotation).into_response())
}
