//! Cloud flows' use cases: save (the definition parsed, its trigger copied into the row, each
//! connection it names resolved and usable by the owner, `prvActOnBehalfOfAnotherUser` when it
//! acts for someone else), read, turn on and off, start a manual run, read runs and cancel them.
//! Callers are system users of the environment; a flow is its owner's. Others reach it with the
//! flow privileges (`prvReadWorkflow`, `prvWriteWorkflow`, `prvDeleteWorkflow`) at Organization
//! depth (System Administrators and Customizers); User depth (Environment Makers, Basic Users)
//! reaches only the caller's own flows, and an owner always manages their own.

use keyway_core::connections::{Api, Connection, Role, Status};
use keyway_core::dataverse::authz::{Denied, Principal};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::security::{
    ACT_ON_BEHALF, DELETE_WORKFLOW, Depth, READ_WORKFLOW, WRITE_WORKFLOW,
};
use keyway_core::environment::Environment;
use keyway_core::flows::references::{ConnectionReferences, RuntimeSource};
use keyway_core::flows::{
    ActionKind, DATAVERSE_API, DESKTOP_FLOW_API, DefinitionError, FlowDefinition, TriggerKind,
};
use keyway_core::graph_roles::{GRAPH_APP_ID, GRAPH_RESOURCE_URI};
use keyway_core::wire::graph_time;
use keyway_store::{ActionRow, FlowRow, FlowStore, RunRow, RunStatus};
use keyway_store::{ConnectionStore, EnvironmentStore, StoreError, SystemUserKey};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::ServiceError;
use super::connections::{ConnCaller, POWER_PLATFORM_RESOURCE};
use crate::state::AppState;

/// Why a flows request was refused.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The definition does not validate: its path and, in an expression, the offset.
    #[error("{0}")]
    Definition(DefinitionError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("The flow changed since version {0} was read: read it again.")]
    VersionMismatch(i64),
    /// A connection name that finds no connection to use (its `code` is stable).
    #[error("{}", .0.message)]
    Unresolved(Unresolved),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => FlowError::Conflict(m),
            other => FlowError::Service(other.into()),
        }
    }
}

impl From<DataverseError> for FlowError {
    fn from(e: DataverseError) -> Self {
        FlowError::Service(e.into())
    }
}

pub type Result<T> = std::result::Result<T, FlowError>;

/// A caller of the flows API, as the system user they are in the environment.
pub struct FlowCaller {
    pub env: Environment,
    pub who: ConnCaller,
    pub principal: Principal,
    pub role_count: usize,
}

impl FlowCaller {
    /// Whether the flow privilege reaches a flow of `owner`: its owner always; anyone else only
    /// at Organization depth (BusinessUnit and ParentChild depths reach, as User does, the
    /// caller's own flows).
    pub(crate) fn reaches(&self, privilege: &str, owner: Uuid) -> bool {
        owner == self.principal.user_id || self.principal.depth(privilege) == Depth::Organization
    }

    /// Refuse (403 with the privilege named) when the flow privilege does not reach `flow`.
    pub(crate) fn require_on(&self, privilege: &str, flow: &FlowRow) -> Result<()> {
        if self.reaches(privilege, flow.owner_id) {
            return Ok(());
        }
        let d = Denied {
            user_id: self.principal.user_id,
            privilege: privilege.into(),
            role_count: self.role_count,
        };
        Err(DataverseError::MissingPrivilege(format!(
            "{} The flow '{}' is someone else's: {privilege} at Organization depth reaches every flow (System Administrator, System Customizer).",
            d.message(),
            flow.name
        ))
        .into())
    }

    pub(crate) fn require(&self, privilege: &str) -> Result<()> {
        if self.principal.depth(privilege) == Depth::None {
            let d = Denied {
                user_id: self.principal.user_id,
                privilege: privilege.into(),
                role_count: self.role_count,
            };
            return Err(DataverseError::MissingPrivilege(d.message()).into());
        }
        Ok(())
    }
}

/// Verify a token (Graph or Power Platform audience) and find the caller's system user in the
/// environment named by id or name.
pub async fn caller(state: &AppState, token: &str, env_ref: &str) -> Result<FlowCaller> {
    let graph_app = GRAPH_APP_ID.to_string();
    let who = super::connections::caller(
        state,
        token,
        &[POWER_PLATFORM_RESOURCE, GRAPH_RESOURCE_URI, &graph_app],
    )
    .await?;
    let env = match Uuid::parse_str(env_ref) {
        Ok(id) => state.store.environment_get(id).await?,
        Err(_) => {
            state
                .directory
                .environment(state, &env_ref.to_ascii_lowercase())
                .await?
        }
    }
    .filter(|e| e.tenant_id == who.identity.tenant_id)
    .ok_or_else(|| FlowError::NotFound(format!("No environment '{env_ref}' in your tenant.")))?;
    let key = match who.app_id {
        Some(app) => SystemUserKey::ApplicationId(app),
        None => SystemUserKey::ObjectId(who.identity.id),
    };
    // Cached as the Web API caches its callers: flow requests come as often.
    let user = state
        .directory
        .system_user(state, &env, key)
        .await?
        .ok_or_else(|| {
            DataverseError::NotAMember(format!(
                "You are not a user of environment '{}': ask its System Administrator to add you.",
                env.name
            ))
        })?;
    if user.disabled {
        return Err(DataverseError::UserDisabled(user.id.to_string()).into());
    }
    Ok(FlowCaller {
        env,
        who,
        role_count: user.role_count,
        principal: Principal {
            user_id: user.id,
            business_unit: user.business_unit,
            privileges: user.privileges,
            teams: user.teams,
        },
    })
}

/// What a caller saves: `{"name", "definition", "connectionReferences"?, "state"?: "on"|"off"}`.
#[derive(Debug, Clone)]
pub struct FlowInput {
    pub name: Option<String>,
    pub definition: Option<Value>,
    pub on: Option<bool>,
    /// Checked and normalized (see [`ConnectionReferences::normalize`]).
    pub connection_references: Option<Value>,
}

impl FlowInput {
    pub fn from_json(body: &Value) -> Result<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| FlowError::BadRequest("The body must be a JSON object.".into()))?;
        if let Some(k) = obj.keys().find(|k| {
            !["name", "definition", "state", "connectionReferences"].contains(&k.as_str())
        }) {
            return Err(FlowError::BadRequest(format!(
                "Unknown property '{k}': a flow has 'name', 'definition', 'connectionReferences' and 'state' (on or off)."
            )));
        }
        let connection_references = obj
            .get("connectionReferences")
            .map(ConnectionReferences::normalize)
            .transpose()
            .map_err(FlowError::BadRequest)?;
        let name = match obj.get("name") {
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => {
                Some(s.trim().to_string())
            }
            Some(_) => {
                return Err(FlowError::BadRequest(
                    "'name' must be text of 1 to 200 characters.".into(),
                ));
            }
        };
        let on = match obj.get("state").map(|v| v.as_str()) {
            None => None,
            Some(Some(s)) if s.eq_ignore_ascii_case("on") || s.eq_ignore_ascii_case("started") => {
                Some(true)
            }
            Some(Some(s)) if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("stopped") => {
                Some(false)
            }
            Some(_) => {
                return Err(FlowError::BadRequest(
                    "'state' must be 'on' or 'off'.".into(),
                ));
            }
        };
        Ok(Self {
            name,
            definition: obj.get("definition").cloned(),
            on,
            connection_references,
        })
    }
}

/// Why a connection name finds no connection to use: a stable code and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// `ConnectionReferenceNotBound`, `ConnectionReferenceNotFound` or `ConnectionNotFound`.
    pub code: &'static str,
    pub message: String,
    /// The connection reference the name went through, if it did.
    pub reference: Option<String>,
}

/// What a flow's connection name stands for in its environment.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The connection reference (its logical name) the name went through, if it did.
    pub reference: Option<String>,
    /// From the flow's `connectionReferences` entry; `embedded` when it has none.
    pub runtime_source: RuntimeSource,
    pub connection: std::result::Result<Connection, Unresolved>,
}

/// The one place a flow's `connectionName` K becomes a connection, at save and at run time:
/// (a) the flow's `connectionReferences[K]` names a connection reference (its logical name),
/// whose `connectionid` names the connection; (b) else a connection reference whose logical
/// name is K; (c) else the connection named K (or `connectionReferences[K].connection.name`).
/// `references` is the flow's stored `connectionReferences` (null or `{}` when it has none).
pub async fn find_connection(
    state: &AppState,
    env: &Environment,
    references: &Value,
    connection_name: &str,
) -> std::result::Result<Resolution, ServiceError> {
    // Stored references were checked when the flow was saved.
    let refs = ConnectionReferences::parse(references).unwrap_or_default();
    let entry = refs.get(connection_name);
    let runtime_source = entry.map_or(RuntimeSource::Embedded, |e| e.runtime_source);
    let resolved = |reference: Option<&str>, connection| Resolution {
        reference: reference.map(str::to_string),
        runtime_source,
        connection,
    };
    if let Some(logical) = entry.and_then(|e| e.logical_name.as_deref()) {
        let connection = match reference_row(state, env, logical).await? {
            Some(row) => bound_connection(state, env, logical, &row).await?,
            None => Err(Unresolved {
                code: "ConnectionReferenceNotFound",
                message: format!(
                    "The flow's connection '{connection_name}' stands for the connection reference '{logical}', which environment '{}' does not have: create it (POST connectionreferences) or import the solution that holds it.",
                    env.name
                ),
                reference: Some(logical.to_string()),
            }),
        };
        return Ok(resolved(Some(logical), connection));
    }
    let direct = entry.and_then(|e| e.connection_name.as_deref());
    if direct.is_none()
        && let Some(row) = reference_row(state, env, connection_name).await?
    {
        let connection = bound_connection(state, env, connection_name, &row).await?;
        return Ok(resolved(Some(connection_name), connection));
    }
    let name = direct.unwrap_or(connection_name);
    let connection = state
        .store
        .connection_find(Api::PowerPlatform, &env.id.to_string(), name)
        .await?
        .ok_or_else(|| Unresolved {
            code: "ConnectionNotFound",
            message: format!(
                "The connection '{name}' does not exist in environment '{}'.",
                env.name
            ),
            reference: None,
        });
    Ok(resolved(None, connection))
}

/// The environment's connection reference with this logical name.
pub async fn reference_row(
    state: &AppState,
    env: &Environment,
    logical_name: &str,
) -> std::result::Result<Option<keyway_core::dataverse::record::Record>, ServiceError> {
    use keyway_core::odata::{CompareOp, Expr, Literal, Operand};
    let tables = state.directory.tables(state, env).await?;
    let Some(table) = tables
        .iter()
        .find(|t| t.logical_name == "connectionreference" && !t.is_custom)
    else {
        return Ok(None);
    };
    let filter = Expr::Compare {
        left: Operand::Property(vec!["connectionreferencelogicalname".into()]),
        op: CompareOp::Eq,
        right: Operand::Literal(Literal::String(logical_name.to_string())),
    };
    let (rows, _) = state
        .store
        .records_list(
            env,
            keyway_store::RecordList {
                entity: table,
                scope: &keyway_core::dataverse::authz::RowScope::All,
                filter: Some(&filter),
                orderby: &[],
                limit: 1,
                after: None,
                count: false,
            },
        )
        .await?;
    Ok(rows.into_iter().next())
}

/// The connection a connection reference row is bound to (`connectionid`, a connection's name).
async fn bound_connection(
    state: &AppState,
    env: &Environment,
    logical: &str,
    row: &keyway_core::dataverse::record::Record,
) -> std::result::Result<std::result::Result<Connection, Unresolved>, ServiceError> {
    use keyway_core::dataverse::record::FieldValue;
    let id = match row.fields.get("connectionid") {
        Some(FieldValue::Text(t)) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            return Ok(Err(Unresolved {
                code: "ConnectionReferenceNotBound",
                message: format!(
                    "The connection reference '{logical}' has no connection in environment '{}': bind it to one of the environment's connections (PATCH connectionreferences(<id>) with {{\"connectionid\": \"<connection name>\"}}, or import the solution with a settings file giving its ConnectionId).",
                    env.name
                ),
                reference: Some(logical.to_string()),
            }));
        }
    };
    Ok(state
        .store
        .connection_find(Api::PowerPlatform, &env.id.to_string(), &id)
        .await?
        .ok_or_else(|| Unresolved {
            code: "ConnectionNotFound",
            message: format!(
                "The connection reference '{logical}' is bound to the connection '{id}', which environment '{}' does not have: bind it to one of its connections.",
                env.name
            ),
            reference: Some(logical.to_string()),
        }))
}

/// The connector each connection name is used with (Dataverse for the trigger and Dataverse
/// actions, desktop flows for their runs, any for an Http action's token).
pub(crate) fn connector_uses(def: &FlowDefinition) -> Vec<(String, Option<&'static str>)> {
    let mut uses = Vec::new();
    if let TriggerKind::Dataverse(t) = &def.trigger.kind {
        uses.push((t.connection_name.clone(), Some(DATAVERSE_API)));
    }
    for a in def.actions.all_actions() {
        match &a.kind {
            ActionKind::Dataverse(op) => {
                uses.push((op.connection_name.clone(), Some(DATAVERSE_API)))
            }
            ActionKind::RunDesktopFlow(r) => {
                uses.push((r.connection_name.clone(), Some(DESKTOP_FLOW_API)))
            }
            ActionKind::Http(h) => {
                if let Some(auth) = &h.authentication {
                    uses.push((auth.connection_name.clone(), None));
                }
            }
            _ => {}
        }
    }
    uses
}

/// The connection references a flow's connections go through that find no connection (unbound,
/// missing, or bound to a connection that is gone), and the connections that are not connected,
/// each once: a flow turns on only without any.
pub async fn missing_references(
    state: &AppState,
    env: &Environment,
    def: &FlowDefinition,
    references: &Value,
) -> std::result::Result<Vec<Unresolved>, ServiceError> {
    let mut missing: Vec<Unresolved> = Vec::new();
    for (name, _) in connector_uses(def) {
        let found = find_connection(state, env, references, &name).await?;
        let u = match found.connection {
            Err(u) if u.reference.is_some() => u,
            Ok(conn) => match not_connected(&name, found.reference.as_deref(), &conn) {
                Some(u) => u,
                None => continue,
            },
            Err(_) => continue,
        };
        if !missing
            .iter()
            .any(|m| m.reference == u.reference && m.message == u.message)
        {
            missing.push(u);
        }
    }
    Ok(missing)
}

/// Power Automate: "A valid connection is required when saving or publishing the flow." A
/// connection whose last test failed (its credential wrong or lapsed) keeps a flow from turning
/// on, and from being saved on, until it is fixed and tested again.
fn not_connected(name: &str, reference: Option<&str>, conn: &Connection) -> Option<Unresolved> {
    let Status::Error { code, message } = &conn.status else {
        return None;
    };
    let through = reference
        .map(|r| format!(" (through the connection reference '{r}')"))
        .unwrap_or_default();
    Some(Unresolved {
        code: "ConnectionNotConnected",
        message: format!(
            "The flow's connection '{name}'{through} is the connection '{}', whose last test failed ({code}: {message}): fix its credentials and test it (keyway connection test <environment> {}), then turn the flow on.",
            conn.name, conn.name
        ),
        reference: reference.map(str::to_string),
    })
}

/// Everything saving checks beyond the definition's own validity. A flow whose connection
/// references are not all bound may be saved only off.
async fn check(
    state: &AppState,
    c: &FlowCaller,
    def: &FlowDefinition,
    references: &Value,
    on: bool,
) -> Result<()> {
    if on {
        check_can_turn_on(def)?;
    }
    super::recurrence::check(def).map_err(FlowError::Definition)?;
    if let TriggerKind::Dataverse(t) = &def.trigger.kind
        && t.run_as.acts_on_behalf()
    {
        // Seed 004: running as the modifying user or the row owner needs Delegate.
        c.require(ACT_ON_BEHALF)?;
    }
    super::flow_run_only::check_save(c, def, references)?;
    if let Some(u) = super::flow_variables::check_save(state, &c.env, def).await? {
        return Err(FlowError::Unresolved(u));
    }
    for (name, connector) in connector_uses(def) {
        let found = find_connection(state, &c.env, references, &name).await?;
        let conn = match found.connection {
            Ok(conn) => conn,
            Err(u) if u.code == "ConnectionReferenceNotBound" && !on => continue,
            Err(u) if u.reference.is_some() => return Err(FlowError::Unresolved(u)),
            Err(_) => {
                return Err(FlowError::BadRequest(format!(
                    "The flow uses the connection '{name}', which is not a connection of environment '{}' that you own or that is shared with you: create it (keyway connection create {} --name {name} …) or ask its owner to share it.",
                    c.env.name, c.env.name
                )));
            }
        };
        let role = super::connections::role_of(state, &c.who, &conn).await?;
        if role.is_none_or(|r| r < Role::CanView) {
            let through = found
                .reference
                .map(|r| format!(" (through the connection reference '{r}')"))
                .unwrap_or_default();
            return Err(FlowError::BadRequest(format!(
                "The flow uses the connection '{}'{through}, which is not a connection of environment '{}' that you own or that is shared with you: ask its owner to share it, or use one of yours.",
                conn.name, c.env.name
            )));
        }
        if let Some(want) = connector
            && conn.connector != want
        {
            return Err(FlowError::BadRequest(format!(
                "The connection '{}' is a {} connection; this use needs a {want} connection.",
                conn.name, conn.connector
            )));
        }
        super::flow_run_only::check_target(state, c, &name, found.runtime_source, &conn)?;
        if on && let Some(u) = not_connected(&name, found.reference.as_deref(), &conn) {
            return Err(FlowError::Unresolved(u));
        }
    }
    if let TriggerKind::Dataverse(t) = &def.trigger.kind {
        let tables = state.store.environment_tables(c.env.id).await?;
        let table = tables
            .iter()
            .find(|e| e.logical_name == t.entity_name)
            .ok_or_else(|| {
                FlowError::BadRequest(format!(
                    "The trigger's table '{}' does not exist in environment '{}'.",
                    t.entity_name, c.env.name
                ))
            })?;
        check_trigger_columns(
            table,
            &t.filtering_attributes,
            t.filter_expression.as_deref(),
        )?;
    }
    Ok(())
}

pub(crate) fn check_trigger_columns(
    table: &EntityDef,
    filtering: &[String],
    filter: Option<&str>,
) -> Result<()> {
    let path = "triggers.parameters.subscriptionRequest";
    for a in filtering {
        if table.attribute(a).is_none() {
            return Err(FlowError::BadRequest(format!(
                "{path}/filteringattributes: '{a}' is not a column of {}.",
                table.logical_name
            )));
        }
    }
    if let Some(text) = filter {
        let expr = keyway_core::odata::Expr::parse(text)
            .map_err(|e| FlowError::BadRequest(format!("{path}/filterexpression: {e}")))?;
        for p in expr.properties() {
            let known = match p {
                [name] => {
                    table.attribute(name).is_some()
                        || name
                            .strip_prefix('_')
                            .and_then(|n| n.strip_suffix("_value"))
                            .is_some_and(|n| table.attribute(n).is_some())
                }
                _ => false,
            };
            if !known {
                return Err(FlowError::BadRequest(format!(
                    "{path}/filterexpression: '{}' is not a column of {} (a trigger's filter tests the row's own columns).",
                    p.join("/"),
                    table.logical_name
                )));
            }
        }
    }
    Ok(())
}

/// A flow that runs desktop flows needs machines, which this server does not have yet.
pub(crate) fn check_can_turn_on(def: &FlowDefinition) -> Result<()> {
    if !def.required_features().is_empty() {
        return Err(FlowError::BadRequest(
            "This flow runs a desktop flow, which needs machines (not available on this server yet): it can be saved, but not turned on.".into(),
        ));
    }
    Ok(())
}

fn parse(definition: Option<&Value>) -> Result<FlowDefinition> {
    let v = definition.ok_or_else(|| FlowError::BadRequest("'definition' is required.".into()))?;
    FlowDefinition::parse(v).map_err(FlowError::Definition)
}

/// Copy the trigger into the row's columns, as the store finds flows by them.
fn with_trigger(mut row: FlowRow, def: &FlowDefinition) -> FlowRow {
    row.trigger_kind = def.trigger.kind.name().into();
    (
        row.trigger_entity,
        row.trigger_message,
        row.trigger_attributes,
    ) = match &def.trigger.kind {
        TriggerKind::Dataverse(t) => (
            Some(t.entity_name.clone()),
            Some(i64::from(t.message.code())),
            t.filtering_attributes.clone(),
        ),
        _ => (None, None, Vec::new()),
    };
    row.definition = def.source().clone();
    row
}

pub async fn create(state: &AppState, c: &FlowCaller, input: FlowInput) -> Result<Value> {
    let def = parse(input.definition.as_ref())?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| FlowError::BadRequest("'name' is required.".into()))?;
    let on = input.on.unwrap_or(true);
    let references = input
        .connection_references
        .clone()
        .unwrap_or_else(|| json!({}));
    check(state, c, &def, &references, on).await?;
    let now = state.clock.now();
    let row = with_trigger(
        FlowRow {
            id: Uuid::now_v7(),
            environment_id: c.env.id,
            name,
            owner_id: c.principal.user_id,
            on,
            definition: Value::Null,
            trigger_kind: String::new(),
            trigger_entity: None,
            trigger_message: None,
            trigger_attributes: Vec::new(),
            created_at: now,
            modified_at: now,
            version: 1,
            connection_references: references,
        },
        &def,
    );
    state.store.flow_save(&row, None).await?;
    super::recurrence::reschedule(state, None, &row).await?;
    Ok(view(&row))
}

/// A flow of the environment the caller may manage with `privilege` (a run-only user is told
/// they may only run it).
pub(crate) async fn flow_of(
    state: &AppState,
    c: &FlowCaller,
    id: Uuid,
    privilege: &str,
) -> Result<FlowRow> {
    match super::flow_run_only::access(state, c, id).await? {
        (flow, super::flow_run_only::Access::Manage) => {
            c.require_on(privilege, &flow)?;
            Ok(flow)
        }
        (flow, super::flow_run_only::Access::RunOnly) => {
            Err(super::flow_run_only::run_only_refused(&flow))
        }
    }
}

/// The flows the caller owns (every flow with prvReadWorkflow at Organization depth) and the
/// instant flows they may run, each marked with the caller's `access` (a run-only user sees no definition).
pub async fn list(state: &AppState, c: &FlowCaller) -> Result<Vec<Value>> {
    let runnable = super::flow_run_only::runnable(state, c).await?;
    Ok(state
        .store
        .flow_list(c.env.id)
        .await?
        .iter()
        .filter_map(|f| {
            if c.reaches(READ_WORKFLOW, f.owner_id) {
                Some(managed_view(c, f))
            } else if runnable.contains(&f.id) && f.trigger_kind == "manual" {
                Some(super::flow_run_only::runner_view(f))
            } else {
                None
            }
        })
        .collect())
}

/// The flow; a run-only user gets what they may see of it (without its definition).
pub async fn get(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<Value> {
    Ok(match super::flow_run_only::access(state, c, id).await? {
        (flow, super::flow_run_only::Access::Manage) => managed_view(c, &flow),
        (flow, super::flow_run_only::Access::RunOnly) => super::flow_run_only::runner_view(&flow),
    })
}

/// The whole flow, marked with why the caller may manage it.
fn managed_view(c: &FlowCaller, f: &FlowRow) -> Value {
    let mut v = view(f);
    v["access"] = if f.owner_id == c.principal.user_id {
        "owner"
    } else {
        "admin"
    }
    .into();
    v
}

/// Replace a flow's name, definition or state (at `if_match` when given). Saving re-checks the
/// definition as the caller, who must be able to use its connections.
pub async fn replace(
    state: &AppState,
    c: &FlowCaller,
    id: Uuid,
    input: FlowInput,
    if_match: Option<i64>,
) -> Result<Value> {
    let old = flow_of(state, c, id, WRITE_WORKFLOW).await?;
    if let Some(v) = if_match
        && v != old.version
    {
        return Err(FlowError::VersionMismatch(v));
    }
    let on = input.on.unwrap_or(old.on);
    let def = match &input.definition {
        Some(d) => FlowDefinition::parse(d).map_err(FlowError::Definition)?,
        None => FlowDefinition::parse(&old.definition).map_err(FlowError::Definition)?,
    };
    let references = input
        .connection_references
        .clone()
        .unwrap_or_else(|| old.connection_references.clone());
    if input.definition.is_some() || input.connection_references.is_some() {
        check(state, c, &def, &references, on).await?;
    } else if on && !old.on {
        check_can_turn_on(&def)?;
        if let Some(u) = missing_references(state, &c.env, &def, &references)
            .await?
            .into_iter()
            .next()
        {
            return Err(FlowError::Unresolved(u));
        }
    }
    let mut row = with_trigger(old.clone(), &def);
    row.connection_references = references;
    if let Some(n) = input.name {
        row.name = n;
    }
    row.on = on;
    row.modified_at = state.clock.now();
    row.version = old.version + 1;
    state
        .store
        .flow_save(&row, Some(old.version))
        .await
        .map_err(|e| match e {
            StoreError::VersionMismatch => FlowError::VersionMismatch(old.version),
            other => other.into(),
        })?;
    super::recurrence::reschedule(state, Some(&old), &row).await?;
    Ok(view(&row))
}

pub async fn set_on(state: &AppState, c: &FlowCaller, id: Uuid, on: bool) -> Result<Value> {
    let input = FlowInput {
        name: None,
        definition: None,
        on: Some(on),
        connection_references: None,
    };
    replace(state, c, id, input, None).await
}

pub async fn delete(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<()> {
    flow_of(state, c, id, DELETE_WORKFLOW).await?;
    state.store.flow_delete(id).await?;
    Ok(())
}

/// Start a manual (`Request`) flow with `inputs` as its trigger body; the run is queued.
pub async fn run_manual(state: &AppState, c: &FlowCaller, id: Uuid, inputs: Value) -> Result<Uuid> {
    // Its owner, or a run-only user (seed 004).
    let (flow, _) = super::flow_run_only::access(state, c, id).await?;
    if flow.trigger_kind != "manual" {
        return Err(FlowError::BadRequest(format!(
            "The flow '{}' starts on its {} trigger; only flows with a manual (Request) trigger are run by hand.",
            flow.name, flow.trigger_kind
        )));
    }
    if !flow.on {
        return Err(FlowError::Conflict(format!(
            "The flow '{}' is off: turn it on to run it.",
            flow.name
        )));
    }
    let (inputs, invoker) =
        super::flow_run_only::invoker_connections(state, c, &flow, inputs).await?;
    let mut outputs = json!({
        "body": inputs,
        "keyway": {"modifiedBy": c.principal.user_id, "invokedBy": c.who.identity.id},
    });
    if !invoker.is_empty() {
        outputs["keyway"]["invokerConnections"] = Value::Object(invoker);
    }
    let run = state
        .store
        .run_queue(flow.id, c.env.id, &outputs, state.clock.now())
        .await?;
    state.flow_wake.notify_one();
    Ok(run)
}

/// The flow when the caller manages it with `privilege`; `None` for a run-only user, who sees
/// and cancels only their own runs. One read of the flow decides both.
async fn managed(
    state: &AppState,
    c: &FlowCaller,
    id: Uuid,
    privilege: &str,
) -> Result<Option<FlowRow>> {
    match super::flow_run_only::access(state, c, id).await? {
        (flow, super::flow_run_only::Access::Manage) => {
            c.require_on(privilege, &flow)?;
            Ok(Some(flow))
        }
        (_, super::flow_run_only::Access::RunOnly) => Ok(None),
    }
}

pub async fn runs(state: &AppState, c: &FlowCaller, id: Uuid, top: u64) -> Result<Vec<Value>> {
    if managed(state, c, id, READ_WORKFLOW).await?.is_none() {
        return super::flow_run_only::own_runs(state, c, id, top).await;
    }
    Ok(state
        .store
        .runs_of(id, top)
        .await?
        .iter()
        .map(|r| run_view(r, None))
        .collect())
}

/// A run of a flow the caller manages.
async fn run_of(state: &AppState, id: Uuid, run_id: Uuid) -> Result<RunRow> {
    state
        .store
        .run_get(run_id)
        .await?
        .filter(|r| r.flow_id == id)
        .ok_or_else(|| FlowError::NotFound(format!("The run {run_id} of flow {id} was not found.")))
}

/// One run with each action's inputs and outputs (redacted when recorded), the connection it
/// used and the identity it acted as.
pub async fn run(state: &AppState, c: &FlowCaller, id: Uuid, run_id: Uuid) -> Result<Value> {
    let Some(flow) = managed(state, c, id, READ_WORKFLOW).await? else {
        // Without its actions: they show the definition.
        let own = super::flow_run_only::own_run(state, c, id, run_id).await?;
        return Ok(run_view(&own, None));
    };
    let run = run_of(state, id, run_id).await?;
    let mut actions = state.store.run_actions(run_id).await?;
    // In the order they run (the store's clock may give several the same instant).
    if let Ok(def) = FlowDefinition::parse(&flow.definition) {
        let order: Vec<&str> = def
            .actions
            .all_actions()
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        actions.sort_by_key(|a| {
            (
                a.started_at,
                order
                    .iter()
                    .position(|n| *n == a.name)
                    .unwrap_or(usize::MAX),
            )
        });
    }
    let mut shown = Vec::with_capacity(actions.len());
    // Actions mostly share a connection or two: each is read once.
    let mut conns: std::collections::HashMap<Uuid, Option<Connection>> = Default::default();
    for a in &actions {
        let conn = match a.connection_id {
            Some(cid) => {
                if let std::collections::hash_map::Entry::Vacant(e) = conns.entry(cid) {
                    e.insert(state.store.connection_get(cid).await?);
                }
                conns[&cid].as_ref()
            }
            None => None,
        };
        shown.push(action_view(a, conn));
    }
    Ok(run_view(&run, Some(shown)))
}

/// Cancel a run: those who manage the flow cancel any, a run-only user only their own.
pub async fn cancel(state: &AppState, c: &FlowCaller, id: Uuid, run_id: Uuid) -> Result<Value> {
    let run = match managed(state, c, id, WRITE_WORKFLOW).await? {
        Some(_) => run_of(state, id, run_id).await?,
        None => super::flow_run_only::own_run(state, c, id, run_id).await?,
    };
    if !state.store.run_cancel(run_id, state.clock.now()).await? {
        return Err(FlowError::Conflict(format!(
            "The run {run_id} has already ended ({}).",
            run.status.name()
        )));
    }
    let run = state.store.run_get(run_id).await?.unwrap_or(run);
    Ok(run_view(&run, None))
}

fn time(t: &time::OffsetDateTime) -> Value {
    graph_time::format(t).into()
}

pub fn view(f: &FlowRow) -> Value {
    let trigger = FlowDefinition::parse(&f.definition).ok().map(|d| {
        let mut t = Map::new();
        t.insert("name".into(), d.trigger.name.clone().into());
        t.insert("kind".into(), d.trigger.kind.name().into());
        if let TriggerKind::Dataverse(dv) = &d.trigger.kind {
            t.insert("entity".into(), dv.entity_name.clone().into());
            t.insert("message".into(), dv.message.code().into());
            t.insert("scope".into(), dv.scope.code().into());
            t.insert("runAs".into(), dv.run_as.code().into());
            t.insert("filteringAttributes".into(), json!(dv.filtering_attributes));
            t.insert("filterExpression".into(), json!(dv.filter_expression));
        }
        let connections: Vec<&str> = d.connection_names().into_iter().collect();
        // Which parameters take an environment variable's value at each run.
        let variables: Vec<Value> = d
            .environment_variables()
            .map(|(name, p)| json!({"parameter": name, "schemaName": p.schema_name}))
            .collect();
        (Value::Object(t), json!(connections), json!(variables))
    });
    let (trigger, connections, variables) = trigger.unwrap_or((Value::Null, json!([]), json!([])));
    json!({
        "id": f.id,
        "name": f.name,
        "environmentId": f.environment_id,
        "ownerId": f.owner_id,
        "state": if f.on { "on" } else { "off" },
        "trigger": trigger,
        "connectionNames": connections,
        "environmentVariables": variables,
        "definition": f.definition,
        "connectionReferences": f.connection_references,
        "createdDateTime": time(&f.created_at),
        "lastModifiedDateTime": time(&f.modified_at),
        "version": f.version,
    })
}

fn error_view(e: &Option<(String, String)>) -> Value {
    match e {
        Some((code, message)) => json!({"code": code, "message": message}),
        None => Value::Null,
    }
}

pub fn run_view(r: &RunRow, actions: Option<Vec<Value>>) -> Value {
    let mut v = json!({
        "id": r.id,
        "flowId": r.flow_id,
        "status": r.status.name(),
        "attempt": r.attempt,
        "createdDateTime": time(&r.created_at),
        "startDateTime": r.started_at.as_ref().map(time),
        "endDateTime": r.ended_at.as_ref().map(time),
        "error": error_view(&r.error),
        "trigger": {"outputs": r.trigger_outputs},
    });
    if r.status == RunStatus::Queued && r.error.is_some() {
        v["retryAfter"] = time(&r.not_before);
    }
    if let Some(a) = actions {
        v["actions"] = Value::Array(a);
    }
    v
}

fn action_view(a: &ActionRow, conn: Option<&Connection>) -> Value {
    json!({
        "name": a.name,
        "status": a.status,
        "inputs": a.inputs,
        "outputs": a.outputs,
        "connection": a.connection_id.map(|id| json!({
            "id": id,
            "name": conn.map(|c| c.name.clone()),
            "displayName": conn.map(|c| c.display_name.clone()),
            "connector": conn.map(|c| c.connector.clone()),
        })),
        "identity": a.identity.as_ref().map(|i| json!({"systemUserId": i})),
        "error": error_view(&a.error),
        "startDateTime": time(&a.started_at),
        "endDateTime": time(&a.ended_at),
    })
}
