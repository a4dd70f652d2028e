//! The Flow Service's use cases: organizations bound to tenants and their sandboxes (made by
//! administrators), who a request is (the gateway's checks, in Adobe's order), and the
//! connections of a sandbox — created and tested, read, patched under an etag, deleted, and
//! explored through their own credentials, so the Dynamics environment's security applies.

use keyway_core::connections::{self as conn, Api, Connection, ConnectionError, Status};
use keyway_core::directory::DirectoryError;
use keyway_core::graph_roles::Permission;
use keyway_store::{
    DirectoryStore, FlowOrganization, FlowSandbox, FlowServiceStore, PROD_SANDBOX, StoreError,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::caller::Caller;
use super::connections::{self as svc, ConnCaller, ConnectionInput};
use super::flowservice_query::{QueryError, apply_patch};
use super::{Result, ServiceError, connection_auth, outbound};
use crate::state::AppState;

/// What JSON Patch may touch on a connection.
pub const PATCHABLE: [&str; 3] = ["/name", "/description", "/auth/params/"];

fn bad(m: impl Into<String>) -> ServiceError {
    ConnectionError::BadRequest(m.into()).into()
}

fn missing(m: impl Into<String>) -> ServiceError {
    ConnectionError::NotFound(m.into()).into()
}

// ---- Organizations and sandboxes (administrators) ----

/// `ABC123@AdobeOrg`: letters and digits, then `@AdobeOrg`.
pub fn validate_org_id(id: &str) -> Result<String> {
    let ok = id.strip_suffix("@AdobeOrg").is_some_and(|head| {
        !head.is_empty() && head.len() <= 64 && head.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !ok {
        return Err(DirectoryError::invalid(
            "id",
            format!("'{id}' is not an organization id: use letters and digits followed by @AdobeOrg, such as ABC123@AdobeOrg."),
        )
        .into());
    }
    Ok(id.to_string())
}

/// Sandbox names as Adobe allows them: lowercase letters, digits and hyphens, up to 30.
pub fn validate_sandbox_name(name: &str) -> Result<String> {
    let ok = (1..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(DirectoryError::invalid(
            "name",
            format!("'{name}' is not a sandbox name: use up to 30 lowercase letters, digits and hyphens."),
        )
        .into());
    }
    Ok(name.to_string())
}

async fn is_system_admin(state: &AppState, caller: &Caller) -> Result<bool> {
    let system = state
        .store
        .tenant_system()
        .await?
        .ok_or_else(|| ServiceError::Internal("no system tenant".into()))?;
    Ok(caller.tenant_id == system.id && Permission::ManageTenants.is_granted(&caller.roles))
}

/// A tenant's own administrators manage its organizations; the system tenant's manage all.
async fn require_admin_of(
    state: &AppState,
    caller: &Caller,
    tenant_id: Uuid,
    p: Permission,
) -> Result<()> {
    if caller.tenant_id == tenant_id {
        return caller.require(p);
    }
    if is_system_admin(state, caller).await? {
        return Ok(());
    }
    Err(ServiceError::Forbidden(
        "Only the tenant's own administrators (or the system tenant's) manage its organizations."
            .into(),
    ))
}

/// What an administrator asks for.
#[derive(Debug, Clone)]
pub struct OrgInput {
    pub id: String,
    /// The tenant whose principals act in it; the caller's own when absent.
    pub tenant_id: Option<Uuid>,
    pub display_name: Option<String>,
}

pub async fn org_create(
    state: &AppState,
    caller: &Caller,
    input: OrgInput,
) -> Result<FlowOrganization> {
    let id = validate_org_id(&input.id)?;
    let tenant_id = input.tenant_id.unwrap_or(caller.tenant_id);
    require_admin_of(state, caller, tenant_id, Permission::ManageEnvironments).await?;
    if state.store.tenant_get(tenant_id).await?.is_none() {
        return Err(DirectoryError::not_found("tenant", tenant_id).into());
    }
    let org = FlowOrganization {
        id: id.clone(),
        tenant_id,
        display_name: input
            .display_name
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| id.clone()),
        created_at: state.clock.now(),
    };
    state
        .store
        .flow_org_create(&org)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(format!(
                "the organization {id} already exists"
            ))),
            other => other.into(),
        })?;
    tracing::info!(org = %org.id, tenant = %tenant_id, "flow service organization created");
    Ok(org)
}

pub async fn org_list(state: &AppState, caller: &Caller) -> Result<Vec<FlowOrganization>> {
    if is_system_admin(state, caller).await? {
        return Ok(state.store.flow_org_list(None).await?);
    }
    caller.require(Permission::ReadEnvironments)?;
    Ok(state.store.flow_org_list(Some(caller.tenant_id)).await?)
}

async fn org_for_admin(
    state: &AppState,
    caller: &Caller,
    org: &str,
    p: Permission,
) -> Result<FlowOrganization> {
    let found = state
        .store
        .flow_org_get(org)
        .await?
        .ok_or_else(|| DirectoryError::not_found("organization", org))?;
    require_admin_of(state, caller, found.tenant_id, p).await?;
    Ok(found)
}

pub async fn sandbox_create(
    state: &AppState,
    caller: &Caller,
    org: &str,
    name: &str,
) -> Result<FlowSandbox> {
    let org = org_for_admin(state, caller, org, Permission::ManageEnvironments).await?;
    let sandbox = FlowSandbox {
        org_id: org.id.clone(),
        name: validate_sandbox_name(name)?,
        created_at: state.clock.now(),
    };
    state
        .store
        .flow_sandbox_create(&sandbox)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Directory(DirectoryError::Conflict(format!(
                "the organization {} already has a sandbox named {}",
                org.id, sandbox.name
            ))),
            other => other.into(),
        })?;
    Ok(sandbox)
}

pub async fn sandbox_list(
    state: &AppState,
    caller: &Caller,
    org: &str,
) -> Result<Vec<FlowSandbox>> {
    let org = org_for_admin(state, caller, org, Permission::ReadEnvironments).await?;
    Ok(state.store.flow_sandbox_list(&org.id).await?)
}

/// Delete a sandbox and every connection in it; `prod` stays.
pub async fn sandbox_delete(
    state: &AppState,
    caller: &Caller,
    org: &str,
    name: &str,
) -> Result<()> {
    let org = org_for_admin(state, caller, org, Permission::ManageEnvironments).await?;
    if name == PROD_SANDBOX {
        return Err(DirectoryError::invalid(
            "name",
            "the prod sandbox cannot be deleted: it is where requests without x-sandbox-name go",
        )
        .into());
    }
    if !state.store.flow_sandbox_delete(&org.id, name).await? {
        return Err(DirectoryError::not_found("sandbox", name).into());
    }
    tracing::info!(org = %org.id, sandbox = %name, "flow service sandbox deleted");
    Ok(())
}

// ---- Who calls the API ----

/// Why the gateway turns a request away, before any Flow Service logic runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRefusal {
    TokenMissing,
    /// Expired, not ours, not for this API, or naming no enabled principal (the why is kept).
    TokenInvalid(String),
    ApiKeyMissing,
    /// `x-api-key` is not the client id the token was issued to.
    ApiKeyInvalid,
    OrgMissing,
    /// No such organization, or one not bound to the token's tenant.
    OrgNotAllowed(String),
}

/// A Flow Service request's failure: at the gateway, or in the service.
#[derive(Debug)]
pub enum FlowFailure {
    Gateway(GatewayRefusal),
    Service(ServiceError),
}

impl From<ServiceError> for FlowFailure {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

/// The request headers that say who calls, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub bearer: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub org: Option<&'a str>,
    pub sandbox: Option<&'a str>,
}

/// A verified caller in one organization's sandbox.
#[derive(Debug, Clone)]
pub struct FlowContext {
    pub caller: ConnCaller,
    pub org: FlowOrganization,
    pub sandbox: String,
}

impl FlowContext {
    /// Where its connections live: `<org>/<sandbox>`.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.org.id, self.sandbox)
    }
}

/// Check the headers in the order Adobe's gateway does (token, API key, organization), then
/// find the sandbox (`prod` when none is named).
pub async fn context(
    state: &AppState,
    h: Credentials<'_>,
) -> std::result::Result<FlowContext, FlowFailure> {
    use GatewayRefusal as G;
    let refuse = |g| Err(FlowFailure::Gateway(g));
    let Some(token) = h.bearer.filter(|t| !t.is_empty()) else {
        return refuse(G::TokenMissing);
    };
    let caller = match svc::caller(state, token, &[svc::FLOW_SERVICE_RESOURCE]).await {
        Ok(c) => c,
        Err(ServiceError::Unauthenticated(why)) => return refuse(G::TokenInvalid(why)),
        Err(ServiceError::Internal(detail)) => {
            return Err(ServiceError::Internal(detail).into());
        }
        Err(other) => return refuse(G::TokenInvalid(other.to_string())),
    };
    let Some(key) = h.api_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return refuse(G::ApiKeyMissing);
    };
    if !key.eq_ignore_ascii_case(&caller.client_id) {
        return refuse(G::ApiKeyInvalid);
    }
    let Some(org_id) = h.org.map(str::trim).filter(|o| !o.is_empty()) else {
        return refuse(G::OrgMissing);
    };
    let org = match state
        .store
        .flow_org_get(org_id)
        .await
        .map_err(ServiceError::from)?
    {
        Some(o) if o.tenant_id == caller.identity.tenant_id => o,
        // An organization of another tenant is refused exactly as one that does not exist.
        _ => {
            return refuse(G::OrgNotAllowed(format!(
                "The caller's tenant has no organization '{org_id}'."
            )));
        }
    };
    let sandbox = h
        .sandbox
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(PROD_SANDBOX);
    if state
        .store
        .flow_sandbox_get(&org.id, sandbox)
        .await
        .map_err(ServiceError::from)?
        .is_none()
    {
        return Err(missing(format!(
            "The sandbox '{sandbox}' does not exist in organization {}: an administrator creates it with `keyway flowservice sandbox create`.",
            org.id
        ))
        .into());
    }
    Ok(FlowContext {
        caller,
        org,
        sandbox: sandbox.to_string(),
    })
}

// ---- Connection specs ----

/// The connectors the Flow Service offers: those with a connection spec id (a UUID); the others
/// are Power Platform connectors.
pub fn specs() -> impl Iterator<Item = &'static conn::Connector> {
    conn::connectors()
        .iter()
        .filter(|c| Uuid::parse_str(c.id).is_ok())
}

pub fn spec(id: &str) -> Result<&'static conn::Connector> {
    specs()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| {
            missing(format!(
                "The connection spec '{id}' does not exist. Known specs: {}.",
                specs().map(|c| c.id).collect::<Vec<_>>().join(", ")
            ))
        })
}

// ---- Connections ----

/// A connection as `POST /connections` describes it.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub description: Option<String>,
    pub spec_id: String,
    pub spec_version: Option<String>,
    pub auth_spec: String,
    pub params: Map<String, Value>,
}

/// The etag: Adobe-shaped (`"<8 hex>-0000-0200-0000-<12 hex>"`), from the version and the id so
/// it changes with every edit.
pub fn etag(c: &Connection) -> String {
    let id = c.id.simple().to_string();
    format!(
        "\"{:08x}-0000-0200-0000-{}\"",
        c.version,
        &id[id.len() - 12..]
    )
}

fn name_of(id: &str) -> Result<String> {
    Uuid::parse_str(id)
        .map(|u| u.simple().to_string())
        .map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ServiceError {
    missing(format!(
        "The requested connections resource {id} is not found. Verify the resource ID before trying again."
    ))
}

/// Create a connection in the context's sandbox and test it; it is kept (with its status) even
/// when the credentials fail, as Adobe keeps it.
pub async fn create(
    state: &AppState,
    ctx: &FlowContext,
    input: NewConnection,
) -> Result<Connection> {
    let spec = spec(&input.spec_id)?;
    if let Some(v) = input.spec_version.as_deref().filter(|v| *v != "1.0") {
        return Err(bad(format!(
            "The connection spec {} has version 1.0, not {v}.",
            spec.id
        )));
    }
    if input.name.trim().is_empty() {
        return Err(bad("The connection needs a name."));
    }
    if spec.parameter_set(&input.auth_spec).is_none() {
        return Err(bad(format!(
            "The connection spec {} has no auth spec '{}': use {}.",
            spec.id,
            input.auth_spec,
            spec.parameter_sets
                .iter()
                .map(|p| format!("'{}'", p.name))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    let (c, _) = svc::put(
        state,
        &ctx.caller,
        ConnectionInput {
            api: Api::FlowService,
            scope: ctx.scope(),
            name: None,
            connector: spec.id.into(),
            parameter_set: Some(input.auth_spec),
            values: input.params,
            display_name: Some(input.name),
            description: input.description,
        },
        None,
    )
    .await?;
    Ok(c)
}

pub async fn get(state: &AppState, ctx: &FlowContext, id: &str) -> Result<Connection> {
    let name = name_of(id)?;
    svc::get(state, &ctx.caller, Api::FlowService, &ctx.scope(), &name)
        .await
        .map(|(c, _)| c)
        .map_err(|e| match e {
            ServiceError::Connection(c) if matches!(*c, ConnectionError::NotFound(_)) => {
                not_found(id)
            }
            other => other,
        })
}

/// Every connection of the sandbox, newest first.
pub async fn list(state: &AppState, ctx: &FlowContext) -> Result<Vec<Connection>> {
    Ok(
        svc::list(state, &ctx.caller, Api::FlowService, Some(&ctx.scope()))
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect(),
    )
}

/// The Flow Service's view of what a patch may change: name, description and the auth params
/// (secrets masked — a mask left in place keeps the stored secret).
fn patch_document(c: &Connection) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("name".into(), c.display_name.clone().into());
    doc.insert("description".into(), c.description.clone().into());
    doc.insert(
        "auth".into(),
        json!({"specName": c.parameter_set, "params": svc::shown_values(c)}),
    );
    doc
}

/// Apply a JSON Patch under `If-Match` (required; quoted or bare), test the result, and return
/// the connection with its new etag. A missing or stale etag is a precondition failure (412).
pub async fn patch(
    state: &AppState,
    ctx: &FlowContext,
    id: &str,
    if_match: Option<&str>,
    ops: &Value,
) -> Result<Connection> {
    let c = get(state, ctx, id).await?;
    let current = etag(&c);
    let Some(sent) = if_match.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(ConnectionError::Precondition(format!(
            "PATCH needs If-Match with the connection's etag (now {current}): read the connection and send its etag."
        ))
        .into());
    };
    let sent = sent.trim_start_matches("W/").trim_matches('"');
    if sent != "*" && sent != current.trim_matches('"') {
        return Err(ConnectionError::Precondition(format!(
            "Supplied version=[\"{sent}\"] does not match the current version on entity=[{current}]: read the connection again."
        ))
        .into());
    }
    let mut doc = patch_document(&c);
    apply_patch(&mut doc, ops, &PATCHABLE).map_err(|QueryError(m)| bad(m))?;
    let name = match doc.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => return Err(bad("The connection's name must stay a non-empty string.")),
    };
    let description = match doc.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(bad("The description must be a string.")),
    };
    let params = doc
        .get("auth")
        .and_then(|a| a.get("params"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (updated, _) = svc::put(
        state,
        &ctx.caller,
        ConnectionInput {
            api: Api::FlowService,
            scope: ctx.scope(),
            name: Some(c.name.clone()),
            connector: c.connector.clone(),
            parameter_set: Some(c.parameter_set.clone()),
            values: params,
            display_name: Some(name),
            description: Some(description),
        },
        Some(c.version),
    )
    .await?;
    Ok(updated)
}

pub async fn delete(state: &AppState, ctx: &FlowContext, id: &str) -> Result<()> {
    let c = get(state, ctx, id).await?;
    svc::delete(state, &ctx.caller, Api::FlowService, &ctx.scope(), &c.name).await
}

// ---- Explore: the Dynamics environment through the connection's credentials ----

/// One table of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub path: String,
}

/// One column: its name, Adobe's type and XDM's (type, format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: &'static str,
    pub xdm_type: &'static str,
    pub xdm_format: Option<&'static str>,
}

/// Adobe's and XDM's type for a Dataverse attribute type.
pub fn column_type(attribute_type: &str) -> (&'static str, &'static str, Option<&'static str>) {
    match attribute_type {
        "Integer" | "Picklist" | "State" | "Status" => ("integer", "integer", None),
        "BigInt" => ("long", "integer", None),
        "Decimal" | "Double" | "Money" => ("double", "number", None),
        "Boolean" => ("boolean", "boolean", None),
        "DateTime" => ("string", "string", Some("date-time")),
        _ => ("string", "string", None),
    }
}

/// A GET on the connection's environment with a token from its own credentials; the
/// environment's refusals (an unknown table, a missing privilege) come back as its own errors.
async fn environment_get(
    state: &AppState,
    ctx: &FlowContext,
    c: &Connection,
    path: &str,
) -> Result<Value> {
    let target = c
        .public_values
        .get("serviceUri")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_string())
        .ok_or_else(|| bad("The connection names no serviceUri."))?;
    outbound::check_target(state, "serviceUri", &target)?;
    let token = match connection_auth::token_for(state, c, &target, &ctx.caller.label(), "explore")
        .await?
    {
        Ok(t) => t,
        Err(Status::Error { code, message }) => {
            return Err(ConnectionError::Forbidden(format!(
                "The connection's credentials were refused ({code}): {message}"
            ))
            .into());
        }
        Err(other) => {
            return Err(bad(format!(
                "The connection cannot act ({}).",
                other.name()
            )));
        }
    };
    let sent = state
        .outbound
        .client
        .get(format!("{target}/api/data/v9.2/{path}"))
        .bearer_auth(token.as_str())
        .header("Accept", "application/json")
        .send()
        .await;
    let resp = sent.map_err(|e| bad(format!("{target} could not be reached: {e}.")))?;
    let http = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if http.is_success() {
        return Ok(body);
    }
    let code = body["error"]["code"]
        .as_str()
        .map_or_else(|| format!("HTTP{}", http.as_u16()), str::to_string);
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("The environment refused the request.");
    let text = format!(
        "The Dynamics environment answered {} ({code}): {message}",
        http.as_u16()
    );
    Err(match http.as_u16() {
        401 | 403 => ConnectionError::Forbidden(text),
        404 => ConnectionError::NotFound(text),
        _ => ConnectionError::BadRequest(text),
    }
    .into())
}

/// `objectType=root`: the environment's tables, by logical name.
pub async fn explore_root(state: &AppState, ctx: &FlowContext, id: &str) -> Result<Vec<Table>> {
    let c = get(state, ctx, id).await?;
    let body = environment_get(
        state,
        ctx,
        &c,
        "EntityDefinitions?$select=LogicalName,EntitySetName,DisplayName",
    )
    .await?;
    let mut tables: Vec<Table> = body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["LogicalName"].as_str())
        .map(|n| Table {
            name: n.to_string(),
            path: n.to_string(),
        })
        .collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// `objectType=table&object=<path>`: the table's columns.
pub async fn explore_table(
    state: &AppState,
    ctx: &FlowContext,
    id: &str,
    object: &str,
) -> Result<Vec<Column>> {
    if object.is_empty()
        || !object
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(bad(format!(
            "'{object}' is not a table path: use a path from objectType=root, such as account."
        )));
    }
    let c = get(state, ctx, id).await?;
    let body = environment_get(
        state,
        ctx,
        &c,
        &format!(
            "EntityDefinitions(LogicalName='{object}')/Attributes?$select=LogicalName,AttributeType"
        ),
    )
    .await?;
    Ok(body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let name = a["LogicalName"].as_str()?;
            let (kind, xdm_type, xdm_format) =
                column_type(a["AttributeType"].as_str().unwrap_or_default());
            Some(Column {
                name: name.to_string(),
                kind,
                xdm_type,
                xdm_format,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_ids_and_sandbox_names_follow_adobes_rules() {
        assert!(validate_org_id("ABC123@AdobeOrg").is_ok());
        for bad in [
            "ABC123",
            "@AdobeOrg",
            "AB C@AdobeOrg",
            "x@adobeorg",
            "A/B@AdobeOrg",
        ] {
            assert!(validate_org_id(bad).is_err(), "{bad}");
        }
        assert!(validate_sandbox_name("dev-2").is_ok());
        for bad in ["", "Dev", "-dev", "a_b", &"a".repeat(31)] {
            assert!(validate_sandbox_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_flow_service_specs_are_offered() {
        let ids: Vec<&str> = specs().map(|c| c.id).collect();
        assert_eq!(ids, vec![conn::catalog::DYNAMICS_SPEC]);
        assert!(spec("shared_commondataserviceforapps").is_err());
    }

    #[test]
    fn dataverse_types_map_to_xdm() {
        assert_eq!(column_type("String"), ("string", "string", None));
        assert_eq!(
            column_type("DateTime"),
            ("string", "string", Some("date-time"))
        );
        assert_eq!(column_type("Money"), ("double", "number", None));
        assert_eq!(column_type("Picklist"), ("integer", "integer", None));
        assert_eq!(column_type("Uniqueidentifier"), ("string", "string", None));
    }
}
