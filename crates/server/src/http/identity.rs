//! Entra ID v2.0-shaped endpoints: OpenID discovery, the JWKS, and the token endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_core::token::TokenError;
use serde_json::json;

use super::context::{RequestContext, origin};
use super::error::{EntraError, no_store};
use crate::services::ServiceError;
use crate::services::tenants;
use crate::services::tokens::{self, TokenRequest};
use crate::state::AppState;

async fn tenant_or_error(
    state: &AppState,
    segment: &str,
    ctx: &RequestContext,
    origin: &str,
) -> Result<keyway_core::directory::Tenant, EntraError> {
    let fail = |error: ServiceError| EntraError {
        error,
        ctx: ctx.clone(),
        origin: origin.to_string(),
    };
    tenants::resolve(state, segment)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(TokenError::UnknownTenant(segment.to_string()).into()))
}

pub async fn discovery_get(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    ctx: RequestContext,
) -> Result<Response, EntraError> {
    let base = origin(&state, &headers);
    let tenant = tenant_or_error(&state, &segment, &ctx, &base).await?;
    let tid = tenant.id;
    let body = json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid", "azp", "roles", "scp", "upn", "name", "idtyp", "ver"],
        "tenant_region_scope": null,
        "cloud_instance_name": "keyway",
        "msgraph_host": "graph.microsoft.com",
    });
    Ok(Json(body).into_response())
}

pub async fn keys_get(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    ctx: RequestContext,
) -> Result<Response, EntraError> {
    let base = origin(&state, &headers);
    let tenant = tenant_or_error(&state, &segment, &ctx, &base).await?;
    let keys = state
        .signing
        .published(&state, tenant.id, false)
        .await
        .map_err(|error| EntraError {
            error,
            ctx: ctx.clone(),
            origin: base.clone(),
        })?;
    let jwks: Vec<_> = keys.iter().map(|k| k.jwk()).collect();
    let mut resp = Json(json!({ "keys": jwks })).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// Interactive sign-in is not offered; discovery must still name the endpoint (msal reads it).
pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    ctx: RequestContext,
) -> EntraError {
    EntraError {
        error: TokenError::Malformed(
            "interactive sign-in (the authorization endpoint) is not available; use client_credentials or password".into(),
        )
        .into(),
        ctx,
        origin: origin(&state, &headers),
    }
}

/// The form body as name → value; a name sent twice with different values is refused.
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, TokenError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(TokenError::Malformed(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| TokenError::Malformed("the form body could not be decoded".into()))?;
    let mut form = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if let Some(prev) = form.get(&k)
            && prev != &v
        {
            return Err(TokenError::Malformed(format!(
                "the parameter '{k}' was sent twice"
            )));
        }
        form.insert(k, v);
    }
    Ok(form)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad =
        || TokenError::Malformed("the Authorization header is not valid Basic credentials".into());
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, TokenError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={}", s.replace('&', "%26").replace('=', "%3D")))
                .map_err(|_| bad())?;
        pairs.into_iter().next().map(|(_, v)| v).ok_or_else(bad)
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

pub async fn token_post(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, EntraError> {
    let base = origin(&state, &headers);
    let fail = |error: ServiceError| EntraError {
        error,
        ctx: ctx.clone(),
        origin: base.clone(),
    };
    let form = parse_form(&headers, &body).map_err(|e| fail(e.into()))?;
    let basic = parse_basic(&headers).map_err(|e| fail(e.into()))?;
    let req = TokenRequest {
        tenant: segment,
        origin: base.clone(),
        form,
        basic,
        client_addr: Some(peer.ip()),
    };
    let token = tokens::issue(&state, req).await.map_err(fail)?;
    let mut resp = Json(token).into_response();
    no_store(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded;charset=utf-8"),
        );
        h
    }

    #[test]
    fn form_parsing_refuses_conflicting_duplicates() {
        let h = form_headers();
        let f = parse_form(&h, b"a=1&b=x%20y&a=1").unwrap();
        assert_eq!(f["b"], "x y");
        assert!(parse_form(&h, b"a=1&a=2").is_err());
        assert!(parse_form(&HeaderMap::new(), b"a=1").is_err());
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut h = HeaderMap::new();
        let enc = STANDARD.encode("my%20id:s%3Acret+x");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).unwrap(),
        );
        assert_eq!(
            parse_basic(&h).unwrap(),
            Some(("my id".into(), "s:cret x".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(parse_basic(&h).is_err());
        assert_eq!(parse_basic(&HeaderMap::new()).unwrap(), None);
    }
}
