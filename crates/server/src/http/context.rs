//! Per-request facts every handler may need: the request id (also sent back and logged), the
//! client's correlation id, when it arrived, and the origin the client used.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::state::{AppState, host_of_authority};

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub correlation_id: String,
    pub received_at: OffsetDateTime,
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext {
                request_id: Uuid::new_v4().to_string(),
                correlation_id: Uuid::new_v4().to_string(),
                received_at: state.clock.now(),
            }))
    }
}

/// A client-supplied correlation id, if it is a sane token (it is echoed and logged).
fn correlation_from(parts_headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = ["client-request-id", "x-ms-client-request-id"]
        .iter()
        .find_map(|h| {
            parts_headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
    let from_query = || {
        query.and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == "client-request-id")
                .map(|(_, v)| v)
        })
    };
    header.or_else(from_query).filter(|v| {
        !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Give each request an id, a span, metrics, and the ids in the response headers.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let correlation_id =
        correlation_from(req.headers(), req.uri().query()).unwrap_or_else(|| request_id.clone());
    let ctx = RequestContext {
        request_id: request_id.clone(),
        correlation_id: correlation_id.clone(),
        received_at: state.clock.now(),
    };
    req.extensions_mut().insert(ctx);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, %method, %route);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request done"
        );
    });
    metrics::histogram!("keyway_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone()).record(elapsed.as_secs_f64());
    metrics::counter!("keyway_http_requests_total", "method" => method, "route" => route, "status" => status.to_string()).increment(1);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v.clone());
        h.insert("x-ms-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        h.insert("client-request-id", v);
    }
    resp
}

/// `scheme://host[:port]` as the client addressed us, when the host is one we answer to;
/// otherwise the configured base URL. Issuers and endpoints are built from it.
pub fn origin(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let known = state.is_our_host(&host_of_authority(host));
    if host.is_empty()
        || !known
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
    {
        return state.base_url.clone();
    }
    let mut scheme = state.config.scheme();
    if scheme == "http"
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    {
        scheme = "https";
    }
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_without_ports() {
        use crate::state::{host_of_authority, host_of_url};
        assert_eq!(host_of_authority("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_of_authority("[::1]:8443"), "::1");
        assert_eq!(host_of_authority("Example.com"), "example.com");
        assert_eq!(
            host_of_url("https://id.example.com:9/x").as_deref(),
            Some("id.example.com")
        );
    }

    #[test]
    fn correlation_ids_are_sanitized() {
        let mut h = HeaderMap::new();
        h.insert("client-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(correlation_from(&h, None).as_deref(), Some("abc-123"));
        assert_eq!(
            correlation_from(&HeaderMap::new(), Some("client-request-id=q-1&x=2")).as_deref(),
            Some("q-1")
        );
        let mut bad = HeaderMap::new();
        bad.insert("client-request-id", HeaderValue::from_static("a b<script>"));
        assert_eq!(correlation_from(&bad, None), None);
    }
}
