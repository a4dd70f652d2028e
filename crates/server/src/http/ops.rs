//! Operations: liveness, readiness (the database answers), Prometheus metrics, OpenAPI.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up")))]
pub async fn healthz_get() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready to serve"), (status = 503, description = "The database does not answer")))]
pub async fn readyz_get(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": state.store.backend()}))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "unavailable", "reason": "the database does not answer"}))).into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics_get(State(state): State<AppState>) -> Response {
    // Connections about to lose their credential, read at scrape time so the figure is current
    // on every node.
    match crate::services::connections::with_known_expiry(&state).await {
        Ok(list) => {
            let now = state.clock.now();
            let warn = state.config.connection_expiry_warning_days;
            let expiring = list
                .iter()
                .filter(|c| c.days_left(now).is_some_and(|d| d <= warn))
                .count();
            metrics::gauge!("keyway_connections_expiring").set(expiring as f64);
            for c in &list {
                metrics::gauge!(
                    "keyway_connection_credential_days_left",
                    "connection" => c.name.clone(),
                    "scope" => c.scope.clone(),
                    "connector" => c.connector.clone()
                )
                .set(c.days_left(now).unwrap_or_default() as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read expiring connections for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Keyway", description = "Keyway's own routes. The Entra-shaped token service and the Graph-shaped management API follow Microsoft's published contracts."),
    paths(
        healthz_get,
        readyz_get,
        metrics_get,
        openapi_get,
        crate::http::graph::tenants::tenants_list,
        crate::http::graph::tenants::tenants_create,
        crate::http::graph::tenants::signing_keys_list,
        crate::http::graph::tenants::signing_keys_rotate,
        crate::http::graph::keys::keys_get,
        crate::http::graph::keys::keys_rotate,
        crate::http::graph::environments::environments_list,
        crate::http::graph::environments::environments_create,
        crate::http::graph::environments::environments_get,
        crate::http::graph::environments::environments_delete,
        crate::http::graph::env_security::app_users_create,
        crate::http::graph::env_security::roles_list,
        crate::http::graph::env_security::roles_create,
        crate::http::graph::env_security::roles_assign,
        crate::http::graph::env_security::audit_verify_get,
        crate::http::graph::env_security::env_users_create,
        crate::http::graph::env_security::license_grant,
        crate::http::graph::env_security::license_remove,
        crate::http::flows::flows_create,
        crate::http::flows::flows_list,
        crate::http::flows::flow_get,
        crate::http::flows::flow_put,
        crate::http::flows::flow_delete,
        crate::http::flows::flow_turn_on,
        crate::http::flows::flow_turn_off,
        crate::http::flows::flow_run,
        crate::http::flows::runs_list,
        crate::http::flows::run_get,
        crate::http::solutions::solutions_list,
        crate::http::solutions::solutions_create,
        crate::http::solutions::solution_get,
        crate::http::solutions::components_add,
        crate::http::solutions::components_remove,
        crate::http::solutions::solution_export,
        crate::http::solutions::solution_import,
        crate::http::flows::run_cancel,
        crate::http::flows::run_only_list,
        crate::http::flows::run_only_add,
        crate::http::flows::run_only_remove,
    ),
    tags((name = "operations"), (name = "tenants"), (name = "keys"), (name = "environments"), (name = "flows"))
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document")))]
pub async fn openapi_get() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
