//! The HTTP surface: one router, a folder or file per API family, errors mapped in `error`.

pub mod connectivity;
pub mod context;
pub mod error;
pub mod flows;
pub mod flowservice;
pub mod graph;
pub mod identity;
pub mod ops;
pub mod solutions;
pub mod webapi;
pub mod webapi_annotations;
pub mod webapi_batch;
pub mod webapi_metadata;
pub mod webapi_roles;
pub mod webapi_sharing;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};

use crate::state::AppState;
use graph::{
    applications as apps, environments as envs, service_principals as sps, tenants, users,
};

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz_get))
        .route("/readyz", get(ops::readyz_get))
        .route("/metrics", get(ops::metrics_get))
        .route("/openapi.json", get(ops::openapi_get))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::discovery_get),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(identity::keys_get))
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token_post))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(identity::authorize_get),
        )
        .route(
            "/v1.0/applications",
            get(apps::applications_list).post(apps::applications_create),
        )
        .route(
            "/v1.0/applications/{id}",
            get(apps::applications_get)
                .patch(apps::applications_update)
                .delete(apps::applications_delete),
        )
        .route(
            "/v1.0/applications/{id}/addPassword",
            post(apps::applications_add_password),
        )
        .route(
            "/v1.0/applications/{id}/removePassword",
            post(apps::applications_remove_password),
        )
        .route(
            "/v1.0/servicePrincipals",
            get(sps::service_principals_list).post(sps::service_principals_create),
        )
        .route(
            "/v1.0/servicePrincipals/{id}",
            get(sps::service_principals_get)
                .patch(sps::service_principals_update)
                .delete(sps::service_principals_delete),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignments",
            get(sps::app_role_assignments_list).post(sps::app_role_assignments_create),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignments/{assignment}",
            delete(sps::app_role_assignments_delete),
        )
        .route(
            "/v1.0/users",
            get(users::users_list).post(users::users_create),
        )
        .route(
            "/v1.0/users/{id}",
            get(users::users_get)
                .patch(users::users_update)
                .delete(users::users_delete),
        )
        .route(
            "/v1.0/users/{id}/revokeSignInSessions",
            post(users::users_revoke_sign_in_sessions),
        )
        .route(
            "/v1.0/invitations",
            post(graph::invitations::invitations_create),
        )
        .route(
            "/v1.0/environments/{id}/addUser",
            post(graph::env_security::env_users_create),
        )
        .route(
            "/v1.0/environments/{id}/users/{user}/license",
            post(graph::env_security::license_grant).delete(graph::env_security::license_remove),
        )
        .route(
            "/v1.0/environments/{id}/audit/verify",
            get(graph::env_security::audit_verify_get),
        )
        .route(
            "/v1.0/environments/{id}/addAppUser",
            post(graph::env_security::app_users_create),
        )
        .route(
            "/v1.0/environments/{id}/roles",
            get(graph::env_security::roles_list).post(graph::env_security::roles_create),
        )
        .route(
            "/v1.0/environments/{id}/roles/{role}/assign",
            post(graph::env_security::roles_assign),
        )
        .route(
            "/v1.0/environments/{id}/flows",
            get(flows::flows_list).post(flows::flows_create),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}",
            get(flows::flow_get)
                .put(flows::flow_put)
                .delete(flows::flow_delete),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/turnOn",
            post(flows::flow_turn_on),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/turnOff",
            post(flows::flow_turn_off),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/run",
            post(flows::flow_run),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/runs",
            get(flows::runs_list),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/runs/{run}",
            get(flows::run_get),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/runs/{run}/cancel",
            post(flows::run_cancel),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/runOnlyUsers",
            get(flows::run_only_list).post(flows::run_only_add),
        )
        .route(
            "/v1.0/environments/{id}/flows/{flow}/runOnlyUsers/{principal}",
            delete(flows::run_only_remove),
        )
        .route(
            "/v1.0/environments/{id}/solutions",
            get(solutions::solutions_list).post(solutions::solutions_create),
        )
        .route(
            "/v1.0/environments/{id}/solutions/import",
            post(solutions::solution_import),
        )
        .route(
            "/v1.0/environments/{id}/solutions/{name}",
            get(solutions::solution_get),
        )
        .route(
            "/v1.0/environments/{id}/solutions/{name}/components",
            post(solutions::components_add),
        )
        .route(
            "/v1.0/environments/{id}/solutions/{name}/components/remove",
            post(solutions::components_remove),
        )
        .route(
            "/v1.0/environments/{id}/solutions/{name}/export",
            post(solutions::solution_export),
        )
        .route(
            "/v1.0/environments",
            get(envs::environments_list).post(envs::environments_create),
        )
        .route(
            "/v1.0/environments/{id}",
            get(envs::environments_get).delete(envs::environments_delete),
        )
        .route(
            "/v1.0/tenants",
            get(tenants::tenants_list).post(tenants::tenants_create),
        )
        .route(
            "/v1.0/tenants/{id}/signingKeys",
            get(tenants::signing_keys_list),
        )
        .route(
            "/v1.0/tenants/{id}/signingKeys/rotate",
            post(tenants::signing_keys_rotate),
        )
        .route("/v1.0/keys", get(graph::keys::keys_get))
        .route("/v1.0/keys/rotate", post(graph::keys::keys_rotate))
        .route(
            "/env/{env}/api/data/v9.2",
            get(webapi::service_document_get),
        )
        .route(
            "/env/{env}/api/data/v9.2/",
            get(webapi::service_document_get),
        )
        .route(
            "/env/{env}/api/data/v9.2/{*path}",
            axum::routing::any(webapi::webapi_dispatch),
        )
        .route(
            "/connectivity/connectors",
            get(|s, h, c| connectivity::connectors_get(s, None, h, c)),
        )
        .route(
            "/connectivity/connectors/{connector}",
            get(|s, p, h, c| connectivity::connectors_get(s, Some(p), h, c)),
        )
        .route(
            "/connectivity/connections",
            get(|s, q, h, c| connectivity::connections_get(s, None, q, h, c)),
        )
        .route(
            "/connectivity/connectors/{connector}/connections",
            get(|s, p, q, h, c| connectivity::connections_get(s, Some(p), q, h, c)),
        )
        .route(
            "/connectivity/connectors/{connector}/connections/{id}",
            axum::routing::any(connectivity::connection_any),
        )
        .route(
            "/connectivity/connectors/{connector}/connections/{id}/test",
            post(connectivity::connection_test_post),
        )
        .route(
            "/connectivity/connectors/{connector}/connections/{id}/events",
            get(connectivity::events_get),
        )
        .route(
            "/connectivity/connectors/{connector}/connections/{id}/permissions",
            get(connectivity::permissions_get),
        )
        .route(
            "/connectivity/connectors/{connector}/connections/{id}/modifyPermissions",
            post(connectivity::modify_permissions_post),
        )
        .route(
            "/data/foundation/flowservice/connectionSpecs",
            get(flowservice::specs_list),
        )
        .route(
            "/data/foundation/flowservice/connectionSpecs/{id}",
            get(flowservice::spec_get),
        )
        .route(
            "/data/foundation/flowservice/connections",
            get(flowservice::connections_list).post(flowservice::connections_create),
        )
        .route(
            "/data/foundation/flowservice/connections/{id}",
            get(flowservice::connection_get)
                .patch(flowservice::connection_patch)
                .delete(flowservice::connection_delete),
        )
        .route(
            "/data/foundation/flowservice/connections/{id}/explore",
            get(flowservice::connection_explore),
        )
        .route(
            "/v1.0/flowservice/organizations",
            get(flowservice::orgs_list).post(flowservice::orgs_create),
        )
        .route(
            "/v1.0/flowservice/organizations/{org}/sandboxes",
            get(flowservice::sandboxes_list).post(flowservice::sandboxes_create),
        )
        .route(
            "/v1.0/flowservice/organizations/{org}/sandboxes/{name}",
            delete(flowservice::sandboxes_delete),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), too_large))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::middleware,
        ))
        .with_state(state)
}

/// A body over the limit is refused by the extractor in plain text; every refusal here answers
/// JSON with a stable code (`RequestTooLarge`, or OAuth's shape on the token endpoints).
async fn too_large(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let oauth = req.uri().path().contains("/oauth2/");
    let resp = next.run(req).await;
    let json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return resp;
    }
    let message = format!(
        "The request body is larger than this server accepts ({} bytes): send a smaller one.",
        state.config.max_body_bytes
    );
    let body = if oauth {
        serde_json::json!({"error": "invalid_request", "error_description": message})
    } else {
        serde_json::json!({"error": {"code": "RequestTooLarge", "message": message}})
    };
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// With an environment domain, `https://<name>.<domain>/api/…` reaches environment `<name>`:
/// the request is rewritten to `/env/<name>/api/…` before routing.
pub fn route_by_host<B>(
    domain: Option<String>,
) -> impl Fn(axum::http::Request<B>) -> axum::http::Request<B> + Clone {
    move |mut req: axum::http::Request<B>| {
        let Some(domain) = &domain else {
            return req;
        };
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(crate::state::host_of_authority)
            .unwrap_or_default();
        let Some(name) = host.strip_suffix(&format!(".{domain}")) else {
            return req;
        };
        let Ok(name) = keyway_core::environment::validate_name(name) else {
            return req;
        };
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if path_and_query.starts_with("/env/") {
            return req;
        }
        if let Ok(uri) = format!("/env/{name}{path_and_query}").parse() {
            *req.uri_mut() = uri;
        }
        req
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": {"code": "NotFound", "message": "No such route. See /openapi.json for Keyway's own routes."}}),
        ),
    )
}
