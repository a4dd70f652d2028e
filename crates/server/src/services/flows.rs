//! Cloud flows' use cases: save (the definition parsed, its trigger copied into the row, each
//! connection it names resolved and usable by the owner, `prvActOnBehalfOfAnotherUser` when it
//! acts for someone else), read, turn on and off, start a manual run, read runs and cancel them.
//! Callers are system users of the environment; a flow is its owner's, and System
//! Administrators and Customizers (`prvCustomizeEntities`) may manage every flow.

use keyway_core::connections::{Api, Connection, Role};
use keyway_core::dataverse::authz::{Denied, Principal};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::security::{ACT_ON_BEHALF, CUSTOMIZE, Depth};
use keyway_core::environment::Environment;
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
    fn is_admin(&self) -> bool {
        self.principal.depth(CUSTOMIZE) != Depth::None
    }

    fn require(&self, privilege: &str) -> Result<()> {
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
                .store
                .environment_by_name(&env_ref.to_ascii_lowercase())
                .await?
        }
    }
    .filter(|e| e.tenant_id == who.identity.tenant_id)
    .ok_or_else(|| FlowError::NotFound(format!("No environment '{env_ref}' in your tenant.")))?;
    let key = match who.app_id {
        Some(app) => SystemUserKey::ApplicationId(app),
        None => SystemUserKey::ObjectId(who.identity.id),
    };
    let user = state
        .store
        .dataverse_user(&env, key)
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

/// What a caller saves: `{"name", "definition", "state"?: "on"|"off"}`.
#[derive(Debug, Clone)]
pub struct FlowInput {
    pub name: Option<String>,
    pub definition: Option<Value>,
    pub on: Option<bool>,
}

impl FlowInput {
    pub fn from_json(body: &Value) -> Result<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| FlowError::BadRequest("The body must be a JSON object.".into()))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !["name", "definition", "state"].contains(&k.as_str()))
        {
            return Err(FlowError::BadRequest(format!(
                "Unknown property '{k}': a flow has 'name', 'definition' and 'state' (on or off)."
            )));
        }
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
        })
    }
}

/// The connection a flow's `connectionName` stands for in an environment. Today a connection's
/// own name; connection references (solutions) resolve here first when they come.
pub async fn find_connection(
    state: &AppState,
    env: &Environment,
    connection_name: &str,
) -> std::result::Result<Option<Connection>, ServiceError> {
    Ok(state
        .store
        .connection_find(Api::PowerPlatform, &env.id.to_string(), connection_name)
        .await?)
}

/// The connector each connection name is used with (Dataverse for the trigger and Dataverse
/// actions, desktop flows for their runs, any for an Http action's token).
fn connector_uses(def: &FlowDefinition) -> Vec<(String, Option<&'static str>)> {
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

/// Everything saving checks beyond the definition's own validity.
async fn check(state: &AppState, c: &FlowCaller, def: &FlowDefinition, on: bool) -> Result<()> {
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
    for (name, connector) in connector_uses(def) {
        let found = find_connection(state, &c.env, &name).await?;
        let role = match &found {
            Some(conn) => super::connections::role_of(state, &c.who, conn).await?,
            None => None,
        };
        let Some(conn) = found.filter(|_| role.is_some_and(|r| r >= Role::CanView)) else {
            return Err(FlowError::BadRequest(format!(
                "The flow uses the connection '{name}', which is not a connection of environment '{}' that you own or that is shared with you: create it (keyway connection create {} --name {name} …) or ask its owner to share it.",
                c.env.name, c.env.name
            )));
        };
        if let Some(want) = connector
            && conn.connector != want
        {
            return Err(FlowError::BadRequest(format!(
                "The connection '{name}' is a {} connection; this use needs a {want} connection.",
                conn.connector
            )));
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

fn check_trigger_columns(
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
fn check_can_turn_on(def: &FlowDefinition) -> Result<()> {
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
    check(state, c, &def, on).await?;
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
        },
        &def,
    );
    state.store.flow_save(&row, None).await?;
    super::recurrence::reschedule(state, None, &row).await?;
    Ok(view(&row))
}

/// A flow of the environment the caller may manage.
async fn flow_of(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<FlowRow> {
    state
        .store
        .flow_get(id)
        .await?
        .filter(|f| f.environment_id == c.env.id)
        .filter(|f| f.owner_id == c.principal.user_id || c.is_admin())
        .ok_or_else(|| {
            FlowError::NotFound(format!("The flow {id} was not found, or it is not yours."))
        })
}

pub async fn list(state: &AppState, c: &FlowCaller) -> Result<Vec<Value>> {
    Ok(state
        .store
        .flow_list(c.env.id)
        .await?
        .iter()
        .filter(|f| f.owner_id == c.principal.user_id || c.is_admin())
        .map(view)
        .collect())
}

pub async fn get(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<Value> {
    Ok(view(&flow_of(state, c, id).await?))
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
    let old = flow_of(state, c, id).await?;
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
    if input.definition.is_some() {
        check(state, c, &def, on).await?;
    } else if on && !old.on {
        check_can_turn_on(&def)?;
    }
    let mut row = with_trigger(old.clone(), &def);
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
    };
    replace(state, c, id, input, None).await
}

pub async fn delete(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<()> {
    flow_of(state, c, id).await?;
    state.store.flow_delete(id).await?;
    Ok(())
}

/// Start a manual (`Request`) flow with `inputs` as its trigger body; the run is queued.
pub async fn run_manual(state: &AppState, c: &FlowCaller, id: Uuid, inputs: Value) -> Result<Uuid> {
    let flow = flow_of(state, c, id).await?;
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
    let outputs = json!({
        "body": inputs,
        "keyway": {"modifiedBy": c.principal.user_id, "invokedBy": c.who.identity.id},
    });
    let run = state
        .store
        .run_queue(flow.id, c.env.id, &outputs, state.clock.now())
        .await?;
    state.flow_wake.notify_one();
    Ok(run)
}

pub async fn runs(state: &AppState, c: &FlowCaller, id: Uuid, top: u64) -> Result<Vec<Value>> {
    flow_of(state, c, id).await?;
    Ok(state
        .store
        .runs_of(id, top)
        .await?
        .iter()
        .map(|r| run_view(r, None))
        .collect())
}

async fn run_of(state: &AppState, c: &FlowCaller, id: Uuid, run_id: Uuid) -> Result<RunRow> {
    flow_of(state, c, id).await?;
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
    let run = run_of(state, c, id, run_id).await?;
    let mut actions = state.store.run_actions(run_id).await?;
    // In the order they run (the store's clock may give several the same instant).
    if let Some(flow) = state.store.flow_get(id).await?
        && let Ok(def) = FlowDefinition::parse(&flow.definition)
    {
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
    for a in &actions {
        let conn = match a.connection_id {
            Some(cid) => state.store.connection_get(cid).await?,
            None => None,
        };
        shown.push(action_view(a, conn.as_ref()));
    }
    Ok(run_view(&run, Some(shown)))
}

pub async fn cancel(state: &AppState, c: &FlowCaller, id: Uuid, run_id: Uuid) -> Result<Value> {
    let run = run_of(state, c, id, run_id).await?;
    if !state.store.run_cancel(run_id, state.clock.now()).await? {
        return Err(FlowError::Conflict(format!(
            "The run {run_id} has already ended ({}).",
            run.status.name()
        )));
    }
    let run = run_of(state, c, id, run_id).await?;
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
        (Value::Object(t), json!(connections))
    });
    let (trigger, connections) = trigger.unwrap_or((Value::Null, json!([])));
    json!({
        "id": f.id,
        "name": f.name,
        "environmentId": f.environment_id,
        "ownerId": f.owner_id,
        "state": if f.on { "on" } else { "off" },
        "trigger": trigger,
        "connectionNames": connections,
        "definition": f.definition,
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
