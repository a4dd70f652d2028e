//! `/v1.0/invitations`: invite a user of another tenant as a guest (Entra B2B's invitation).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keyway_core::wire::InvitationInput;

use super::{GraphBody, GraphCaller, OrGraph, created};
use crate::http::context::origin;
use crate::http::error::GraphError;
use crate::services::users as svc;
use crate::state::AppState;

pub async fn invitations_create(
    State(state): State<AppState>,
    GraphCaller(caller, ctx): GraphCaller,
    headers: HeaderMap,
    GraphBody(input): GraphBody<InvitationInput>,
) -> Result<Response, GraphError> {
    let invitation = svc::invite(&state, &caller, input).await.or_graph(&ctx)?;
    Ok(created(
        &origin(&state, &headers),
        "invitations",
        &invitation,
    ))
}
