//! Run-only users of instant flows (seed 004): the flow's owner lets system users or teams of
//! the environment start the flow by hand — and see their own runs — without reading or editing
//! it. A connection reference with `runtimeSource: invoker` runs with a connection the person
//! starting the run supplies (theirs, or shared with them); `embedded` ones run with the flow's
//! own. Cross-environment actions support neither run-only connections nor run-as.

use std::collections::HashSet;

use keyway_core::connections::Role;
use keyway_core::dataverse::security::{READ_WORKFLOW, WRITE_WORKFLOW};
use keyway_core::flows::references::{ConnectionReferences, RuntimeSource};
use keyway_core::flows::{ActionKind, DATAVERSE_API, FlowDefinition, TriggerKind};
use keyway_store::SystemUserKey;
use keyway_store::{
    ConnectionStore, EnvironmentStore, FlowRow, FlowStore, RunOnlyGrant, RunOnlyStore, RunRow,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::flows::{FlowCaller, FlowError, Result};
use crate::state::AppState;

/// Where an instant flow's run-time connections are named in a manual run's body, beside its
/// inputs: `{"$connections": {"<name>": "<connection>"}}` (Logic Apps' own word for them).
pub const CONNECTIONS_KEY: &str = "$connections";

/// Whether a trigger starts an instant flow (started by hand, from a button or an app).
pub fn is_instant(def: &FlowDefinition) -> bool {
    matches!(def.trigger.kind, TriggerKind::Request(_))
}

/// The connection names of a flow that run with the invoker's connection.
pub fn invoker_names(references: &Value) -> Vec<String> {
    ConnectionReferences::parse(references)
        .map(|r| {
            r.iter()
                .filter(|(_, r)| r.runtime_source == RuntimeSource::Invoker)
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the caller (or one of their teams) may run the flow as a run-only user.
pub async fn allows(state: &AppState, c: &FlowCaller, flow: &FlowRow) -> Result<bool> {
    let mut who = vec![c.principal.user_id];
    who.extend(c.principal.teams.iter().copied());
    Ok(state.store.run_only_allows(flow.id, &who).await?)
}

/// What a caller may do with a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its owner, or one whose prvReadWorkflow reaches it (Organization depth: System
    /// Administrator or Customizer); what they may change each flow privilege says.
    Manage,
    /// A run-only user: start it by hand and see their own runs.
    RunOnly,
}

/// The flow with what the caller may do with it; not found when neither.
pub async fn access(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<(FlowRow, Access)> {
    let not_found =
        || FlowError::NotFound(format!("The flow {id} was not found, or it is not yours."));
    let flow = state
        .store
        .flow_get(id)
        .await?
        .filter(|f| f.environment_id == c.env.id)
        .ok_or_else(not_found)?;
    if c.reaches(READ_WORKFLOW, flow.owner_id) {
        return Ok((flow, Access::Manage));
    }
    if allows(state, c, &flow).await? {
        return Ok((flow, Access::RunOnly));
    }
    Err(not_found())
}

/// Why a run-only user may not change the flow or read its definition and run-only users.
pub fn run_only_refused(flow: &FlowRow) -> FlowError {
    FlowError::Service(super::ServiceError::Forbidden(format!(
        "You are a run-only user of the flow '{}': you may see it (GET …/flows/{}), run it (POST …/run), see and cancel your own runs, but not read its definition or change it.",
        flow.name, flow.id
    )))
}

/// Whether the run was started by the caller.
fn started_by(run: &RunRow, c: &FlowCaller) -> bool {
    run.trigger_outputs["keyway"]["modifiedBy"].as_str() == Some(&c.principal.user_id.to_string())
}

/// A run-only user's own runs of the flow (without their actions), the caller having found
/// their access to it `RunOnly`.
pub async fn own_runs(state: &AppState, c: &FlowCaller, id: Uuid, top: u64) -> Result<Vec<Value>> {
    Ok(state
        .store
        .runs_of(id, 5000)
        .await?
        .iter()
        .filter(|r| started_by(r, c))
        .take(usize::try_from(top).unwrap_or(usize::MAX))
        .map(|r| super::flows::run_view(r, None))
        .collect())
}

/// A run-only user's own run of the flow, the caller having found their access to it `RunOnly`.
/// Another's run is not found.
pub async fn own_run(state: &AppState, c: &FlowCaller, id: Uuid, run_id: Uuid) -> Result<RunRow> {
    state
        .store
        .run_get(run_id)
        .await?
        .filter(|r| r.flow_id == id && started_by(r, c))
        .ok_or_else(|| {
            FlowError::NotFound(format!(
                "The run {run_id} of flow {id} was not found among your runs: a run-only user sees and cancels only the runs they started."
            ))
        })
}

/// The instant flows of the environment the caller (or a team of theirs) may run.
pub async fn runnable(state: &AppState, c: &FlowCaller) -> Result<HashSet<Uuid>> {
    let mut who = vec![c.principal.user_id];
    who.extend(c.principal.teams.iter().copied());
    Ok(state
        .store
        .run_only_flows(&who)
        .await?
        .into_iter()
        .collect())
}

/// What a run-only user sees of a flow: enough to find and run it (its name, state, trigger and
/// the trigger's inputs schema, the connections they must bring), never its definition, its
/// connection references or the owner's connections.
pub fn runner_view(f: &FlowRow) -> Value {
    let def = FlowDefinition::parse(&f.definition).ok();
    let trigger = def.as_ref().map_or(Value::Null, |d| {
        let mut t = json!({"name": d.trigger.name, "kind": d.trigger.kind.name()});
        if let TriggerKind::Request(r) = &d.trigger.kind {
            t["inputsSchema"] = r.schema.clone().unwrap_or(Value::Null);
        }
        t
    });
    let references = ConnectionReferences::parse(&f.connection_references).unwrap_or_default();
    let bring: Vec<Value> = invoker_names(&f.connection_references)
        .into_iter()
        .map(|name| {
            let api = references
                .get(&name)
                .and_then(|r| r.api_name.clone())
                .or_else(|| {
                    def.as_ref()
                        .and_then(|d| connector_of(d, &name))
                        .map(str::to_string)
                });
            json!({"name": name, "api": api})
        })
        .collect();
    json!({
        "id": f.id,
        "name": f.name,
        "environmentId": f.environment_id,
        "ownerId": f.owner_id,
        "state": if f.on { "on" } else { "off" },
        "access": "runOnly",
        "trigger": trigger,
        "runnerConnections": bring,
        "lastModifiedDateTime": keyway_core::wire::graph_time::format(&f.modified_at),
    })
}

fn view(g: &RunOnlyGrant) -> Value {
    let kind = if g.principal_kind == "team" {
        "teamId"
    } else {
        "systemUserId"
    };
    json!({
        kind: g.principal_id,
        "type": g.principal_kind,
        "grantedBy": g.granted_by,
        "grantedDateTime": keyway_core::wire::graph_time::format(&g.granted_at),
    })
}

pub async fn list(state: &AppState, c: &FlowCaller, id: Uuid) -> Result<Vec<Value>> {
    let flow = super::flows::flow_of(state, c, id, READ_WORKFLOW).await?;
    Ok(state
        .store
        .run_only_list(flow.id)
        .await?
        .iter()
        .map(view)
        .collect())
}

/// `{"systemUserId": "…"}` or `{"teamId": "…"}`: who to grant or revoke.
fn principal_of(body: &Value) -> Result<(Uuid, &'static str)> {
    let obj = body.as_object().filter(|o| o.len() == 1);
    let named = obj.and_then(|o| {
        [("systemUserId", "systemuser"), ("teamId", "team")]
            .into_iter()
            .find_map(|(k, kind)| o.get(k).map(|v| (v, kind)))
    });
    let Some((v, kind)) = named else {
        return Err(FlowError::BadRequest(
            "Send {\"systemUserId\": \"<id>\"} or {\"teamId\": \"<id>\"}: the system user or team of the environment who may run the flow.".into(),
        ));
    };
    let id = v
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| FlowError::BadRequest(format!("'{v}' is not an id.")))?;
    Ok((id, kind))
}

/// Let a system user or team of the environment run an instant flow. The grant, and whether it
/// is new.
pub async fn grant(
    state: &AppState,
    c: &FlowCaller,
    id: Uuid,
    body: &Value,
) -> Result<(Value, bool)> {
    let flow = super::flows::flow_of(state, c, id, WRITE_WORKFLOW).await?;
    if flow.trigger_kind != "manual" {
        return Err(FlowError::BadRequest(format!(
            "The flow '{}' starts on its {} trigger: only instant flows (a manual trigger) have run-only users.",
            flow.name, flow.trigger_kind
        )));
    }
    let (principal, kind) = principal_of(body)?;
    let exists = if kind == "team" {
        let tables = state.store.environment_tables(c.env.id).await?;
        match tables.iter().find(|t| t.logical_name == "team") {
            Some(team) => state
                .store
                .record_get(&c.env, team, principal)
                .await?
                .is_some(),
            None => false,
        }
    } else {
        state
            .store
            .dataverse_user(&c.env, SystemUserKey::Id(principal))
            .await?
            .is_some()
    };
    if !exists {
        return Err(FlowError::BadRequest(format!(
            "There is no {kind} {principal} in environment '{}'.",
            c.env.name
        )));
    }
    let g = RunOnlyGrant {
        flow_id: flow.id,
        principal_id: principal,
        principal_kind: kind.into(),
        granted_by: c.principal.user_id,
        granted_at: state.clock.now(),
    };
    let new = state.store.run_only_grant(&g).await?;
    let stored = state
        .store
        .run_only_list(flow.id)
        .await?
        .into_iter()
        .find(|x| x.principal_id == principal)
        .unwrap_or(g);
    Ok((view(&stored), new))
}

pub async fn revoke(state: &AppState, c: &FlowCaller, id: Uuid, principal: Uuid) -> Result<()> {
    let flow = super::flows::flow_of(state, c, id, WRITE_WORKFLOW).await?;
    if !state.store.run_only_revoke(flow.id, principal).await? {
        return Err(FlowError::NotFound(format!(
            "{principal} is not a run-only user of the flow '{}'.",
            flow.name
        )));
    }
    Ok(())
}

/// The connector a connection name is used with in the definition, when it says.
fn connector_of(def: &FlowDefinition, name: &str) -> Option<&'static str> {
    let dataverse = match &def.trigger.kind {
        TriggerKind::Dataverse(t) => t.connection_name == name,
        _ => false,
    } || def.actions.all_actions().iter().any(|a| match &a.kind {
        ActionKind::Dataverse(op) => op.connection_name == name,
        _ => false,
    });
    dataverse.then_some(DATAVERSE_API)
}

/// Take the invoker's connections out of a manual run's body: for each of the flow's invoker
/// references, a connection of the environment the caller owns or that is shared with them, of
/// the reference's connector. Returns the inputs left and `{"<name>": "<connection id>"}`.
pub async fn invoker_connections(
    state: &AppState,
    c: &FlowCaller,
    flow: &FlowRow,
    mut inputs: Value,
) -> Result<(Value, Map<String, Value>)> {
    let supplied = match inputs.as_object_mut() {
        Some(o) => o.remove(CONNECTIONS_KEY),
        None => None,
    };
    let wanted = invoker_names(&flow.connection_references);
    let supplied = match supplied {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(FlowError::BadRequest(format!(
                "'{CONNECTIONS_KEY}' must be an object: {{\"<connection name of the flow>\": \"<your connection's name>\"}}."
            )));
        }
    };
    if let Some(k) = supplied.keys().find(|k| !wanted.contains(k)) {
        return Err(FlowError::BadRequest(format!(
            "The flow '{}' does not take '{k}' from the person running it{}.",
            flow.name,
            if wanted.is_empty() {
                String::new()
            } else {
                format!(" (it takes {})", quoted(&wanted))
            }
        )));
    }
    let def = FlowDefinition::parse(&flow.definition).map_err(FlowError::Definition)?;
    let references = ConnectionReferences::parse(&flow.connection_references).unwrap_or_default();
    let mut chosen = Map::new();
    for k in &wanted {
        let connector = references
            .get(k)
            .and_then(|r| r.api_name.clone())
            .or_else(|| connector_of(&def, k).map(str::to_string));
        let Some(name) = supplied.get(k) else {
            return Err(FlowError::BadRequest(format!(
                "The flow '{}' runs '{k}' with your own connection: send {{\"{CONNECTIONS_KEY}\": {{\"{k}\": \"<your {} connection>\"}}}} with the inputs (keyway flow run … --connection {k}=<name>).",
                flow.name,
                connector.as_deref().unwrap_or("")
            )));
        };
        let name = name.as_str().ok_or_else(|| {
            FlowError::BadRequest(format!(
                "{CONNECTIONS_KEY}.{k} must be the name of one of your connections."
            ))
        })?;
        let found = state
            .store
            .connection_find(
                keyway_core::connections::Api::PowerPlatform,
                &c.env.id.to_string(),
                name,
            )
            .await?;
        let role = match &found {
            Some(conn) => super::connections::role_of(state, &c.who, conn).await?,
            None => None,
        };
        let Some(conn) = found.filter(|_| role.is_some_and(|r| r >= Role::CanView)) else {
            return Err(FlowError::BadRequest(format!(
                "{CONNECTIONS_KEY}.{k}: '{name}' is not a connection of environment '{}' that you own or that is shared with you.",
                c.env.name
            )));
        };
        if let Some(want) = &connector
            && keyway_core::flows::references::connector_name(want) != conn.connector
        {
            return Err(FlowError::BadRequest(format!(
                "{CONNECTIONS_KEY}.{k}: '{name}' is a {} connection; '{k}' needs a {want} connection.",
                conn.connector
            )));
        }
        chosen.insert(k.clone(), conn.id.to_string().into());
    }
    Ok((inputs, chosen))
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Saving a flow with invoker references: only on instant triggers, and (seed 004) the owner
/// needs `prvActOnBehalfOfAnotherUser`, as for run-as.
pub fn check_save(c: &FlowCaller, def: &FlowDefinition, references: &Value) -> Result<()> {
    let invoker = invoker_names(references);
    if invoker.is_empty() {
        return Ok(());
    }
    if !is_instant(def) {
        return Err(FlowError::BadRequest(format!(
            "connectionReferences {}: connections provided by run-only users ('runtimeSource': 'invoker') need an instant trigger (manual, Button or PowerAppV2); this flow starts on its {} trigger. Use 'embedded'.",
            quoted(&invoker),
            def.trigger.kind.name()
        )));
    }
    c.require(keyway_core::dataverse::security::ACT_ON_BEHALF)
}

/// Whether a Dataverse URL is `env`'s own.
pub fn is_environment(
    state: &AppState,
    url: &str,
    env: &keyway_core::environment::Environment,
) -> bool {
    keyway_core::environment::environment_in_url(
        url,
        |h| state.is_our_host(h),
        state.config.environment_domain.as_deref(),
    )
    .is_some_and(|name| name == env.name)
}

/// Seed 004: actions against another environment support no connection provided by run-only
/// users. Refused at save when the connection a `runtimeSource: invoker` name is saved with
/// points elsewhere (at run time otherwise).
pub fn check_target(
    state: &AppState,
    c: &FlowCaller,
    name: &str,
    source: RuntimeSource,
    conn: &keyway_core::connections::Connection,
) -> Result<()> {
    if source != RuntimeSource::Invoker || conn.connector != DATAVERSE_API {
        return Ok(());
    }
    match super::connection_auth::target_url(state, conn, Some(&c.env)) {
        Some(target) if !is_environment(state, &target, &c.env) => {
            Err(FlowError::BadRequest(format!(
                "connectionReferences.{name}: the connection '{}' acts in another environment ({target}), and actions against another environment do not support connections provided by run-only users: use 'embedded' for '{name}', or a connection to environment '{}'.",
                conn.name, c.env.name
            )))
        }
        _ => Ok(()),
    }
}
