//! The one place where service errors become wire errors: Entra's AADSTS bodies for the token
//! service, Microsoft Graph's error object for the management API. Internal details are logged
//! with the request id and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_core::directory::DirectoryError;
use keyway_core::token::TokenError;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;

use super::context::RequestContext;
use crate::services::ServiceError;

/// A token-endpoint failure, rendered as Entra renders it.
pub struct EntraError {
    pub error: ServiceError,
    pub ctx: RequestContext,
    pub origin: String,
}

struct Aadsts {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

fn aadsts(e: &ServiceError) -> Aadsts {
    use TokenError as T;
    let (status, error, code, message) = match e {
        ServiceError::Token(t) => match t {
            T::UnknownTenant(x) => (400, "invalid_tenant", 90002, format!("Tenant '{x}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")),
            T::UnknownClient { client_id, tenant } => (400, "unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been registered in the tenant, has no service principal there, or if you sent the authentication request to the wrong tenant.")),
            T::DisabledClient(id) => (400, "unauthorized_client", 7000112, format!("Application '{id}' is disabled.")),
            T::InvalidSecret(id) => (401, "invalid_client", 7000215, format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{id}'.")),
            T::ExpiredSecret { client_id, key_id } => (401, "invalid_client", 7000222, format!("The provided client secret keys for app '{client_id}' are expired (key id {key_id}). Add a new secret with `keyway app secret add` and use it.")),
            T::UnknownCertificate(t) => (401, "invalid_client", 700027, format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{t}']")),
            T::BadAssertionSignature => (401, "invalid_client", 700027, "Client assertion failed signature validation.".into()),
            T::AssertionTime(why) => (401, "invalid_client", 700024, format!("Client assertion is not within its valid time range: {why}.")),
            T::BadAssertion(why) => (400, "invalid_request", 50027, format!("JWT token is invalid or malformed: {why}.")),
            T::AssertionReplay => (401, "invalid_client", 50027, "JWT token is invalid: its jti was already used with different claims.".into()),
            T::AssertionClientMismatch(who) => (401, "invalid_client", 700021, format!("Client assertion application identifier '{who}' doesn't match 'client_id' parameter.")),
            T::MissingClientCredential => (401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into()),
            T::InvalidScope(s) => (400, "invalid_scope", 1002012, format!("The provided value for scope '{s}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")),
            T::UnknownResource(r) => (400, "invalid_resource", 500011, format!("The resource principal named {r} was not found in the tenant. This can happen if the application has not been registered in the tenant or has no service principal there.")),
            T::UnsupportedGrantType(g) => (400, "unsupported_grant_type", 70003, format!("The app requested an unsupported grant type '{g}'. Keyway supports client_credentials, password and refresh_token.")),
            T::MissingParameter(p) => (400, "invalid_request", 900144, format!("The request body must contain the following parameter: '{p}'.")),
            T::Malformed(why) => (400, "invalid_request", 9002313, format!("Invalid request. Request is malformed or invalid: {why}.")),
            T::InvalidUserCredentials => (400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.".into()),
            T::UserDisabled => (400, "invalid_grant", 50057, "The user account is disabled.".into()),
            T::UserNotInTenant(a) => (400, "invalid_grant", 50020, format!("User account '{}' from identity provider '{}' does not exist in tenant '{}' and cannot access the application. The account must be added as an external user in the tenant first (POST /v1.0/invitations there).", a.user, a.idp, a.tenant)),
            T::RateLimited { .. } => (429, "temporarily_unavailable", 90055, "There are too many incoming requests. Retry after the time given in Retry-After.".into()),
            // Entra's refresh-token codes: 700082 inactivity, 50173 revoked; 70008 (ExpiredOrRevokedGrant)
            // for what Entra has no own code for (a maximum age, a rotated-out token redeemed again).
            T::InvalidRefreshToken(why) => (400, "invalid_grant", 70000, format!("Provided grant is invalid or malformed: {why}.")),
            T::RefreshTokenInactive { issued_at } => (400, "invalid_grant", 700082, format!("The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {}.", entra_instant(*issued_at), timespan(keyway_core::token::REFRESH_TOKEN_INACTIVITY))),
            T::RefreshTokenMaxAge { auth_time } => (400, "invalid_grant", 70008, format!("The provided authorization code or refresh token has expired: the sign-in it comes from ({}) is older than the maximum age of {}. Send a new interactive authorization request for this user and resource.", entra_instant(*auth_time), timespan(keyway_core::token::REFRESH_TOKEN_MAX_AGE))),
            T::RefreshTokenReused { family_revoked } => (400, "invalid_grant", 70008, format!("The provided authorization code or refresh token has expired or been revoked: it was already redeemed, and each refresh token is good for one use (use the one the last response returned).{} Send a new interactive authorization request for this user and resource.", if *family_revoked { " Redeeming it again revoked every refresh token of this sign-in." } else { "" })),
            T::RefreshTokenRevoked(g) => (400, "invalid_grant", 50173, format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. {} The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.", revoked_because(&g.reason), entra_instant(g.auth_time), entra_instant(g.valid_from))),
        },
        ServiceError::Internal(_) => (500, "server_error", 50000, "There was an error issuing a token. Retry later; if it persists, quote the trace id to the administrator.".into()),
        other => (400, "invalid_request", 9002313, format!("Invalid request: {other}.")),
    };
    Aadsts {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        error,
        code,
        message,
    }
}

/// An instant as Entra writes it in messages: `2018-10-19T17:26:59.8511467Z`.
fn entra_instant(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
        ))
        .unwrap_or_default()
}

/// A duration as .NET's TimeSpan prints it (`90.00:00:00`), as Entra's messages do.
fn timespan(d: time::Duration) -> String {
    let s = d.whole_seconds();
    format!(
        "{}.{:02}:{:02}:{:02}",
        s / 86_400,
        s % 86_400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn revoked_because(reason: &str) -> &'static str {
    match reason {
        "signout" => "Either an admin or the user revoked the tokens for this user.",
        "disabled" => "The user account was disabled.",
        "password" => "The user might have changed or reset their password.",
        "reuse" => {
            "A refresh token of this sign-in was redeemed twice, so every token of it was revoked."
        }
        _ => "The tokens of this user were revoked.",
    }
}

fn entra_timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        if let ServiceError::Internal(detail) = &self.error {
            tracing::error!(request_id = %self.ctx.request_id, %detail, "token request failed");
        }
        let a = aadsts(&self.error);
        let now = self.ctx.received_at;
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            a.code,
            a.message,
            self.ctx.request_id,
            self.ctx.correlation_id,
            entra_timestamp(now)
        );
        let body = json!({
            "error": a.error,
            "error_description": description,
            "error_codes": [a.code],
            "timestamp": entra_timestamp(now),
            "trace_id": self.ctx.request_id,
            "correlation_id": self.ctx.correlation_id,
            "error_uri": format!("{}/error?code={}", self.origin, a.code),
        });
        let mut resp = (a.status, Json(body)).into_response();
        if let ServiceError::Token(TokenError::RateLimited { retry_after_secs }) = &self.error
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        no_store(&mut resp);
        resp
    }
}

pub fn no_store(resp: &mut Response) {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A management-API failure, rendered as Microsoft Graph renders it.
pub struct GraphError {
    pub error: ServiceError,
    pub ctx: RequestContext,
}

impl GraphError {
    pub fn bad_request(ctx: &RequestContext, message: impl Into<String>) -> Self {
        Self {
            error: ServiceError::Directory(DirectoryError::Invalid {
                field: "request",
                reason: message.into(),
            }),
            ctx: ctx.clone(),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self.error {
            ServiceError::Directory(DirectoryError::NotFound { kind, id }) => (
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present ({kind})."
                ),
            ),
            ServiceError::Directory(DirectoryError::Invalid { field, reason })
                if *field == "request" =>
            {
                (
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    reason.clone(),
                )
            }
            ServiceError::Directory(DirectoryError::Invalid { field, reason }) => (
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Invalid value specified for property '{field}': {reason}"),
            ),
            ServiceError::Directory(DirectoryError::Conflict(m)) => (
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                m.clone(),
            ),
            ServiceError::Directory(DirectoryError::Forbidden(m)) | ServiceError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                m.clone(),
            ),
            ServiceError::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                m.clone(),
            ),
            ServiceError::Token(t) => {
                (StatusCode::BAD_REQUEST, "Request_BadRequest", t.to_string())
            }
            ServiceError::Dataverse(d) => {
                (StatusCode::BAD_REQUEST, "Request_BadRequest", d.to_string())
            }
            ServiceError::Connection(c) => (
                connection_status(c),
                match connection_status(c) {
                    StatusCode::NOT_FOUND => "Request_ResourceNotFound",
                    StatusCode::FORBIDDEN => "Authorization_RequestDenied",
                    StatusCode::CONFLICT => "Request_MultipleObjectsWithSameKeyValue",
                    _ => "Request_BadRequest",
                },
                c.to_string(),
            ),
            ServiceError::Internal(detail) => {
                tracing::error!(request_id = %self.ctx.request_id, %detail, "management request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "generalException",
                    format!(
                        "An internal error occurred. Quote request id {} to the administrator.",
                        self.ctx.request_id
                    ),
                )
            }
        };
        let body = json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": keyway_core::wire::graph_time::format(&self.ctx.received_at),
                "request-id": self.ctx.request_id,
                "client-request-id": self.ctx.correlation_id,
            }
        }});
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\", scope=\"https://graph.microsoft.com/.default\""),
            );
        }
        resp
    }
}

/// The HTTP status of a connection error, whichever API family renders it.
pub fn connection_status(e: &keyway_core::connections::ConnectionError) -> StatusCode {
    use keyway_core::connections::ConnectionError as C;
    match e {
        C::NotFound(_) | C::UnknownConnector(_) => StatusCode::NOT_FOUND,
        C::InvalidParameter { .. } | C::BadRequest(_) => StatusCode::BAD_REQUEST,
        C::Forbidden(_) => StatusCode::FORBIDDEN,
        C::Conflict(_) => StatusCode::CONFLICT,
        C::Precondition(_) => StatusCode::PRECONDITION_FAILED,
    }
}

/// A Web API failure, rendered as Dataverse renders it: `{"error":{"code":"0x8004…","message"}}`.
pub struct DataverseWireError {
    pub error: ServiceError,
    pub ctx: RequestContext,
}

impl IntoResponse for DataverseWireError {
    fn into_response(self) -> Response {
        use keyway_core::dataverse::error::DataverseError as D;
        let (status, code, message) = match &self.error {
            ServiceError::Dataverse(d) => {
                let (status, code) = match d {
                    D::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "0x80072560"),
                    D::NotAMember(_) => (StatusCode::FORBIDDEN, "0x80072560"),
                    D::UserDisabled(_) => (StatusCode::FORBIDDEN, "0x8004882e"),
                    D::Unlicensed(_) => (StatusCode::FORBIDDEN, "0x8004d24b"),
                    D::MissingPrivilege(_) => (StatusCode::FORBIDDEN, "0x80040220"),
                    D::RecordNotFound { .. } => (StatusCode::NOT_FOUND, "0x80040217"),
                    D::Duplicate => (StatusCode::PRECONDITION_FAILED, "0x80040237"),
                    D::VersionMismatch => (StatusCode::PRECONDITION_FAILED, "0x80060882"),
                    D::UnknownSegment(_) => (StatusCode::NOT_FOUND, "0x8006088a"),
                    D::Syntax(_) | D::Unsupported(_) => (StatusCode::BAD_REQUEST, "0x80060888"),
                };
                (status, code, d.to_string())
            }
            ServiceError::Internal(detail) => {
                tracing::error!(request_id = %self.ctx.request_id, %detail, "Web API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "0x80040216",
                    format!(
                        "An unexpected error occurred. Quote request id {} to the administrator.",
                        self.ctx.request_id
                    ),
                )
            }
            other => (StatusCode::BAD_REQUEST, "0x80040203", other.to_string()),
        };
        let mut resp = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        resp.headers_mut()
            .insert("OData-Version", HeaderValue::from_static("4.0"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A Power Platform connectivity failure: `{"error":{"code":"ConnectionNotFound","message"}}`.
pub struct PlatformError {
    pub error: ServiceError,
    pub ctx: RequestContext,
}

impl IntoResponse for PlatformError {
    fn into_response(self) -> Response {
        use keyway_core::connections::ConnectionError as C;
        let (status, code, message) = match &self.error {
            ServiceError::Connection(c) => (
                connection_status(c),
                match c.as_ref() {
                    C::NotFound(_) => "ConnectionNotFound",
                    C::UnknownConnector(_) => "ApiNotFound",
                    C::InvalidParameter { .. } => "InvalidConnectionParameters",
                    C::BadRequest(_) => "InvalidRequestContent",
                    C::Forbidden(_) => "Forbidden",
                    C::Conflict(_) => "ConnectionAlreadyExists",
                    C::Precondition(_) => "PreconditionFailed",
                },
                c.to_string(),
            ),
            ServiceError::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                m.clone(),
            ),
            ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m.clone()),
            ServiceError::Internal(detail) => {
                tracing::error!(request_id = %self.ctx.request_id, %detail, "connectivity request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    format!(
                        "An internal error occurred. Quote request id {} to the administrator.",
                        self.ctx.request_id
                    ),
                )
            }
            other => (
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                other.to_string(),
            ),
        };
        let mut resp = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer scope=\"https://api.powerplatform.com/.default\""),
            );
        }
        resp
    }
}

/// A Flow Service failure, as Adobe renders it: the gateway's `{error_code, message}` for
/// refused credentials, else `{type, title, status, report, errorMessage, errorDetails}`.
pub struct FlowServiceError {
    pub failure: crate::services::flowservice::FlowFailure,
    pub ctx: RequestContext,
}

impl FlowServiceError {
    pub fn service(error: ServiceError, ctx: &RequestContext) -> Self {
        Self {
            failure: crate::services::flowservice::FlowFailure::Service(error),
            ctx: ctx.clone(),
        }
    }
}

/// The gateway's code, status, Adobe's message and Keyway's explanation.
fn gateway(
    g: &crate::services::flowservice::GatewayRefusal,
) -> (StatusCode, &'static str, &'static str, String) {
    use crate::services::flowservice::GatewayRefusal as G;
    match g {
        G::TokenMissing => (
            StatusCode::FORBIDDEN,
            "403010",
            "Oauth token is missing.",
            "Send Authorization: Bearer <token> (scope https://platform.adobe.io/.default).".into(),
        ),
        G::TokenInvalid(why) => (
            StatusCode::UNAUTHORIZED,
            "401013",
            "Oauth token is not valid",
            why.clone(),
        ),
        G::ApiKeyMissing => (
            StatusCode::FORBIDDEN,
            "403000",
            "Api Key is required",
            "Send x-api-key: the client id the token was issued to.".into(),
        ),
        G::ApiKeyInvalid => (
            StatusCode::FORBIDDEN,
            "403003",
            "Api Key is invalid",
            "x-api-key must be the client id the token was issued to (its appid).".into(),
        ),
        G::OrgMissing => (
            StatusCode::BAD_REQUEST,
            "400003",
            "Missing header",
            "Send x-gw-ims-org-id: an organization bound to the token's tenant.".into(),
        ),
        G::OrgNotAllowed(why) => (
            StatusCode::FORBIDDEN,
            "403025",
            "Profile is not valid",
            format!("{why} An administrator binds one with `keyway flowservice org create`."),
        ),
    }
}

impl IntoResponse for FlowServiceError {
    fn into_response(self) -> Response {
        use crate::services::flowservice::{FlowFailure, GatewayRefusal};
        use keyway_core::connections::ConnectionError as C;
        let error = match self.failure {
            FlowFailure::Gateway(g) => {
                let (status, code, message, detail) = gateway(&g);
                return (
                    status,
                    Json(json!({"error_code": code, "message": message, "detail": detail})),
                )
                    .into_response();
            }
            FlowFailure::Service(ServiceError::Unauthenticated(why)) => {
                return Self {
                    failure: FlowFailure::Gateway(GatewayRefusal::TokenInvalid(why)),
                    ctx: self.ctx,
                }
                .into_response();
            }
            FlowFailure::Service(e) => e,
        };
        let mut field = None;
        let (status, message) = match &error {
            ServiceError::Connection(c) => {
                if let C::InvalidParameter { field: f, .. } = c.as_ref() {
                    field = Some(f.clone());
                }
                (connection_status(c), c.to_string())
            }
            ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            ServiceError::Directory(DirectoryError::Conflict(m)) => {
                (StatusCode::CONFLICT, m.clone())
            }
            ServiceError::Directory(DirectoryError::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, error.to_string())
            }
            ServiceError::Internal(detail) => {
                tracing::error!(request_id = %self.ctx.request_id, %detail, "flow service request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "An internal error occurred. Quote request id {} to the administrator.",
                        self.ctx.request_id
                    ),
                )
            }
            other => (StatusCode::BAD_REQUEST, other.to_string()),
        };
        let (code, title) = match status.as_u16() {
            404 => ("FLOW-1439-404", "Resource not found"),
            403 => ("FLOW-1403-403", "Forbidden"),
            409 => ("FLOW-1409-409", "Conflict"),
            412 => ("FLOW-1412-412", "Precondition failed"),
            500 => ("FLOW-1500-500", "Internal server error"),
            _ => ("FLOW-1400-400", "Bad request"),
        };
        let mut report = json!({"detailed-message": message, "request-id": self.ctx.request_id});
        if let (Some(f), Some(r)) = (field, report.as_object_mut()) {
            r.insert("field".into(), f.into());
        }
        (
            status,
            Json(json!({
                "type": format!("https://ns.adobe.com/aep/errors/{code}"),
                "title": title,
                "status": status.as_u16(),
                "report": report,
                "errorMessage": message,
                "errorDetails": message,
            })),
        )
            .into_response()
    }
}
