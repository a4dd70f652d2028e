//! Operations endpoints and request ids.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(health_readiness_metrics_openapi);

async fn health_readiness_metrics_openapi(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |p: &'static str| app.http.get(format!("{}{p}", app.base)).send();
    let r = get("/healthz").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("request-id"));
    let r: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(r["status"], "ready");
    app.admin_token().await;
    let m = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(m.contains("keyway_token_requests_total"), "{m}");
    assert!(m.contains("keyway_http_requests_total"), "{m}");
    assert!(!m.contains(&app.profile.client_secret));
    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1.0/tenants",
        "/v1.0/tenants/{id}/signingKeys/rotate",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    let r = get("/no/such/route/here").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
