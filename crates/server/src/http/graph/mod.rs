//! The management API in Microsoft Graph v1.0 shapes: the caller from the bearer token, JSON
//! bodies and query options with Graph's errors, and one module per resource.

pub mod applications;
pub mod env_security;
pub mod environments;
pub mod invitations;
pub mod keys;
pub mod service_principals;
pub mod tenants;
pub mod users;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::RequestContext;
use super::error::GraphError;
use crate::services::ServiceError;
use crate::services::caller::{self, Caller};
use crate::state::AppState;

/// The verified caller of a management request.
pub struct GraphCaller(pub Caller, pub RequestContext);

impl FromRequestParts<AppState> for GraphCaller {
    type Rejection = GraphError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, GraphError> {
        let ctx = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        let fail = |m: &str| GraphError {
            error: ServiceError::Unauthenticated(m.to_string()),
            ctx: ctx.clone(),
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| fail("Access token is empty: send Authorization: Bearer <token> (scope https://graph.microsoft.com/.default)."))?
            .to_str()
            .map_err(|_| fail("The Authorization header is not valid."))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("The Authorization header must be 'Bearer <token>'."))?;
        let caller = caller::authenticate(state, token)
            .await
            .map_err(|error| GraphError {
                error,
                ctx: ctx.clone(),
            })?;
        Ok(GraphCaller(caller, ctx))
    }
}

/// A JSON body; malformed JSON or unknown properties are a Graph 400 naming the problem.
pub struct GraphBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for GraphBody<T> {
    type Rejection = GraphError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, GraphError> {
        let (mut parts, body) = req.into_parts();
        let ctx = RequestContext::from_request_parts(&mut parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(GraphError::bad_request(
                &ctx,
                "The request body must be JSON (Content-Type: application/json).",
            ));
        }
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            GraphError::bad_request(&ctx, format!("The request body could not be read: {e}"))
        })?;
        serde_json::from_slice(&bytes)
            .map(GraphBody)
            .map_err(|e| GraphError::bad_request(&ctx, format!("Invalid JSON body: {e}")))
    }
}

/// The query options Graph callers use on lists: `$filter` (`prop eq 'value'`), `$top`,
/// `$select`. Anything else is refused rather than silently ignored.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub filter: Option<(String, String)>,
    pub top: Option<usize>,
    pub select: Vec<String>,
}

impl ListQuery {
    pub fn parse(
        query: Option<&str>,
        ctx: &RequestContext,
        filterable: &[&str],
    ) -> Result<Self, GraphError> {
        let mut out = ListQuery::default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|_| GraphError::bad_request(ctx, "The query string could not be decoded."))?;
        for (k, v) in pairs {
            match k.as_str() {
                "$filter" => {
                    let parsed = parse_eq_filter(&v)
                        .filter(|(p, _)| filterable.iter().any(|f| f.eq_ignore_ascii_case(p)));
                    out.filter = Some(parsed.ok_or_else(|| {
                        GraphError::bad_request(ctx, format!("Unsupported filter '{v}': use <property> eq '<value>' with one of {}.", filterable.join(", ")))
                    })?);
                }
                "$top" => {
                    let n: usize = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=999).contains(n))
                        .ok_or_else(|| {
                            GraphError::bad_request(
                                ctx,
                                "Invalid $top: give a number from 1 to 999.",
                            )
                        })?;
                    out.top = Some(n);
                }
                "$select" => out.select = v.split(',').map(|s| s.trim().to_string()).collect(),
                other if other.starts_with('$') => {
                    return Err(GraphError::bad_request(
                        ctx,
                        format!("The query option '{other}' is not supported here."),
                    ));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Apply filter and top to serialized items (cheap: directory lists are small).
    pub fn apply<T: Serialize>(&self, items: Vec<T>) -> Vec<serde_json::Value> {
        let mut values: Vec<serde_json::Value> = items
            .into_iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .filter(|v| match &self.filter {
                Some((prop, want)) => v
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(prop)))
                    .and_then(|(_, x)| x.as_str())
                    .is_some_and(|x| x.eq_ignore_ascii_case(want)),
                None => true,
            })
            .collect();
        if let Some(top) = self.top {
            values.truncate(top);
        }
        if !self.select.is_empty() {
            for v in &mut values {
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| {
                        k == "id" || self.select.iter().any(|s| s.eq_ignore_ascii_case(k))
                    });
                }
            }
        }
        values
    }
}

fn parse_eq_filter(f: &str) -> Option<(String, String)> {
    let (prop, rest) = f.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let value = rest.strip_prefix("eq")?.trim();
    let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
    Some((prop.to_string(), inner.replace("''", "'")))
}

pub fn collection(origin: &str, set: &str, value: Vec<serde_json::Value>) -> Response {
    Json(serde_json::json!({
        "@odata.context": format!("{origin}/v1.0/$metadata#{set}"),
        "value": value,
    }))
    .into_response()
}

pub fn entity<T: Serialize>(origin: &str, set: &str, item: &T) -> Response {
    let mut v = serde_json::to_value(item).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            format!("{origin}/v1.0/$metadata#{set}/$entity").into(),
        );
    }
    Json(v).into_response()
}

pub fn created<T: Serialize>(origin: &str, set: &str, item: &T) -> Response {
    let mut r = entity(origin, set, item);
    *r.status_mut() = axum::http::StatusCode::CREATED;
    r
}

/// Map a service result into the Graph error shape with the request's context.
pub trait OrGraph<T> {
    fn or_graph(self, ctx: &RequestContext) -> Result<T, GraphError>;
}

impl<T> OrGraph<T> for Result<T, ServiceError> {
    fn or_graph(self, ctx: &RequestContext) -> Result<T, GraphError> {
        self.map_err(|error| GraphError {
            error,
            ctx: ctx.clone(),
        })
    }
}

/// An id from the path; a malformed one is simply not found, as in Graph.
pub fn path_id(
    raw: &str,
    kind: &'static str,
    ctx: &RequestContext,
) -> Result<uuid::Uuid, GraphError> {
    uuid::Uuid::parse_str(raw).map_err(|_| GraphError {
        error: keyway_core::directory::DirectoryError::not_found(kind, raw).into(),
        ctx: ctx.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_filters_parse() {
        assert_eq!(
            parse_eq_filter("appId eq 'abc'"),
            Some(("appId".into(), "abc".into()))
        );
        assert_eq!(
            parse_eq_filter("displayName eq 'O''Brien'"),
            Some(("displayName".into(), "O'Brien".into()))
        );
        assert_eq!(parse_eq_filter("startswith(displayName,'a')"), None);
    }
}
