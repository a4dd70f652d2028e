//! The run worker: claims queued runs under a lease (renewed while a run executes), checks the
//! trigger's conditions against the row (filter expression, scope relative to the flow owner,
//! trigger conditions; a miss ends the run Skipped), then runs the actions in execution order
//! with their `runAfter` decisions, recording each. Transient failures give the run back with
//! exponential back-off; a run whose worker died is claimed again when its lease ends and
//! resumes after the actions already recorded. A queued run of a flow that was turned off ends
//! Cancelled before any action; a cancelled run stops at its next step.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyway_core::dataverse::authz::BusinessUnits;
use keyway_core::environment::Environment;
use keyway_core::flows::{
    ActionKind, DataverseTrigger, FlowContext, FlowDefinition, RecordedRun, RunAs, RunDecision,
    RunStatus, Scope, TerminateStatus, TriggerKind, TriggerScope,
};
use keyway_store::{
    ActionRow, EnvironmentStore, FlowRow, FlowStore, RunRow, RunStatus as RunState, StoreError,
    SystemUserKey,
};
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use super::flow_actions::{self, ActionEnv, Done, Step};
use crate::state::AppState;

/// How long a claim holds a run; the worker renews it every third of that while it runs.
pub const LEASE: Duration = Duration::seconds(12);
/// Claims after which a transient failure fails the run instead of retrying it.
pub const MAX_ATTEMPTS: i64 = 6;
/// Concurrent run loops per server process.
const LOOPS: usize = 4;
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(5);
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub fn spawn(state: AppState) {
    let node = Uuid::new_v4().simple().to_string();
    for i in 0..LOOPS {
        let worker = format!("{}-{}-{i}", std::process::id(), &node[..8]);
        tokio::spawn(work(state.clone(), worker));
    }
}

async fn work(state: AppState, worker: String) {
    let mut pause = BUSY_POLL;
    loop {
        match state
            .store
            .run_claim(&worker, state.clock.now(), LEASE)
            .await
        {
            Ok(Some(run)) => {
                pause = BUSY_POLL;
                // More may be waiting: let another loop look while this one runs.
                state.flow_wake.notify_one();
                execute(&state, &worker, run).await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = state.flow_wake.notified() => pause = BUSY_POLL,
                    _ = tokio::time::sleep(pause) => pause = (pause * 2).min(IDLE_POLL),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming a flow run failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Why a run stops before its actions are done.
enum Halt {
    /// Cancelled, or the lease went to another worker: nothing more to write.
    Lost,
    /// A transient failure: back to the queue, or failed after too many attempts.
    Retry(String, String),
    /// `Terminate` ended it.
    End(RunState, Option<(String, String)>),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RowMissing => Halt::Lost,
            other => Halt::Retry("StoreUnavailable".into(), other.to_string()),
        }
    }
}

/// Execute a claimed run to its end (or hand it back).
pub async fn execute(state: &AppState, worker: &str, run: RunRow) {
    let lost = Arc::new(AtomicBool::new(false));
    let heartbeat = tokio::spawn(renew(
        state.clone(),
        worker.to_string(),
        run.id,
        lost.clone(),
    ));
    let outcome = run_to_end(state, worker, &run, &lost).await;
    heartbeat.abort();
    let now = state.clock.now();
    let written = match outcome {
        Ok((status, error)) => {
            state
                .store
                .run_finish(run.id, worker, status, error, now)
                .await
        }
        Err(Halt::Lost) => Ok(()),
        Err(Halt::End(status, error)) => {
            state
                .store
                .run_finish(run.id, worker, status, error, now)
                .await
        }
        Err(Halt::Retry(code, message)) if run.attempt >= MAX_ATTEMPTS => {
            let message = format!("{message} (gave up after {} attempts)", run.attempt);
            state
                .store
                .run_finish(run.id, worker, RunState::Failed, Some((code, message)), now)
                .await
        }
        Err(Halt::Retry(code, message)) => {
            let wait = Duration::seconds(1 << (run.attempt - 1).clamp(0, 6));
            state
                .store
                .run_retry(run.id, worker, now + wait, (code, message))
                .await
        }
    };
    match written {
        Ok(()) | Err(StoreError::RowMissing) => {}
        Err(e) => tracing::warn!(run = %run.id, error = %e, "recording a flow run's end failed"),
    }
}

/// Keep the lease while the run executes; note when it was lost (cancelled, or taken over).
async fn renew(state: AppState, worker: String, id: Uuid, lost: Arc<AtomicBool>) {
    let every = std::time::Duration::from_millis((LEASE.whole_milliseconds() / 3) as u64);
    loop {
        tokio::time::sleep(every).await;
        match state
            .store
            .run_renew(id, &worker, state.clock.now() + LEASE)
            .await
        {
            Ok(()) => {}
            Err(StoreError::RowMissing) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(run = %id, error = %e, "renewing a flow run's lease failed"),
        }
    }
}

fn reason(code: &str, message: impl Into<String>) -> Option<(String, String)> {
    Some((code.to_string(), message.into()))
}

async fn run_to_end(
    state: &AppState,
    worker: &str,
    run: &RunRow,
    lost: &Arc<AtomicBool>,
) -> Result<(RunState, Option<(String, String)>), Halt> {
    // A deleted flow or environment takes its runs with it.
    let Some(flow) = state.store.flow_get(run.flow_id).await? else {
        return Err(Halt::Lost);
    };
    let Some(env) = state.store.environment_get(run.environment_id).await? else {
        return Err(Halt::Lost);
    };
    let recorded = state.store.run_actions(run.id).await?;
    if !flow.on && recorded.is_empty() {
        return Ok((
            RunState::Cancelled,
            reason(
                "FlowOff",
                "The flow was turned off before this run started.",
            ),
        ));
    }
    let def = match FlowDefinition::parse(&flow.definition) {
        Ok(d) => d,
        Err(e) => return Ok((RunState::Failed, reason("InvalidDefinition", e.to_string()))),
    };
    let started = run.started_at.unwrap_or_else(|| state.clock.now());
    let mut ctx = RecordedRun::new(run.trigger_outputs.clone(), started);
    ctx.parameters = def.default_parameters();
    let mut errors = BTreeMap::new();
    for a in &recorded {
        let status = match a.status.as_str() {
            "Succeeded" => RunStatus::Succeeded,
            "Skipped" => RunStatus::Skipped,
            "TimedOut" => RunStatus::TimedOut,
            _ => RunStatus::Failed,
        };
        ctx.record(&a.name, status, a.outputs.clone());
        if let Some(e) = &a.error {
            errors.insert(a.name.clone(), e.clone());
        }
    }
    let mut run_as = None;
    if let TriggerKind::Dataverse(t) = &def.trigger.kind {
        if recorded.is_empty()
            && let Some(why) = trigger_misses(state, &env, &flow, t, &run.trigger_outputs).await?
        {
            return Ok((RunState::Skipped, reason("TriggerConditionNotMet", why)));
        }
        run_as = run_as_user(state, &env, t.run_as, &run.trigger_outputs).await?;
    }
    if recorded.is_empty() {
        for (i, c) in def.trigger.conditions.iter().enumerate() {
            match c.evaluate(&ctx) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok((
                        RunState::Skipped,
                        reason(
                            "TriggerConditionNotMet",
                            format!("The trigger's condition {} is false.", i + 1),
                        ),
                    ));
                }
                Err(e) => return Ok((RunState::Failed, reason("InvalidTemplate", e.to_string()))),
            }
        }
    }
    let mut engine = Engine {
        actions: ActionEnv {
            state,
            env: &env,
            flow: &flow,
            run,
            run_as,
        },
        worker,
        ctx,
        errors,
        lost: lost.clone(),
    };
    let statuses = engine.scope(&def.actions).await?;
    Ok(match unhandled_failure(&def.actions, &statuses) {
        Some(name) => {
            let (code, message) = engine
                .errors
                .get(name)
                .cloned()
                .unwrap_or_else(|| ("ActionFailed".into(), "An action failed.".into()));
            (
                RunState::Failed,
                Some((code, format!("The action '{name}' failed: {message}"))),
            )
        }
        None => (RunState::Succeeded, None),
    })
}

fn uuid_at(v: &Value, key: &str) -> Option<Uuid> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Why a Dataverse trigger does not fire for the row it was queued for, if it does not: the
/// filter expression, or the scope relative to the flow owner.
async fn trigger_misses(
    state: &AppState,
    env: &Environment,
    flow: &FlowRow,
    t: &DataverseTrigger,
    outputs: &Value,
) -> Result<Option<String>, Halt> {
    let empty = serde_json::Map::new();
    let row = outputs["body"].as_object().unwrap_or(&empty);
    if let Some(text) = &t.filter_expression {
        let matched = keyway_core::odata::Expr::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|f| f.matches(row).map_err(|e| e.to_string()));
        match matched {
            Ok(true) => {}
            Ok(false) => return Ok(Some(format!("The row does not match the filter '{text}'."))),
            Err(e) => {
                return Ok(Some(format!(
                    "The filter '{text}' cannot be evaluated: {e}"
                )));
            }
        }
    }
    if t.scope == TriggerScope::Organization {
        return Ok(None);
    }
    // Organization-owned tables have no owner: the scope does not narrow them.
    let Some(owner) = uuid_at(&outputs["body"], "_ownerid_value") else {
        return Ok(None);
    };
    let unit = uuid_at(&outputs["body"], "_owningbusinessunit_value");
    let Some(me) = state
        .store
        .dataverse_user(env, SystemUserKey::Id(flow.owner_id))
        .await?
    else {
        return Ok(Some(
            "The flow's owner is no longer a user of this environment.".into(),
        ));
    };
    let inside = match t.scope {
        TriggerScope::User => owner == me.id || me.teams.contains(&owner),
        TriggerScope::BusinessUnit => unit == Some(me.business_unit),
        TriggerScope::ParentChildBusinessUnit => {
            let units = BusinessUnits::new(state.store.business_units(env).await?);
            unit.is_some_and(|u| units.subtree(me.business_unit).contains(&u))
        }
        TriggerScope::Organization => true,
    };
    Ok((!inside).then(|| {
        format!(
            "The row is outside the trigger's scope ({:?}) relative to the flow's owner.",
            t.scope
        )
    }))
}

/// Whom the flow's Dataverse actions impersonate: the modifying user, the row's owner (a team
/// owning the row falls back to the flow owner), or nobody (the connection's identity).
async fn run_as_user(
    state: &AppState,
    env: &Environment,
    run_as: RunAs,
    outputs: &Value,
) -> Result<Option<Uuid>, Halt> {
    Ok(match run_as {
        RunAs::FlowOwner => None,
        RunAs::ModifyingUser => uuid_at(&outputs["keyway"], "modifiedBy"),
        RunAs::RowOwner => match uuid_at(&outputs["body"], "_ownerid_value") {
            Some(owner) => state
                .store
                .dataverse_user(env, SystemUserKey::Id(owner))
                .await?
                .map(|u| u.id),
            None => None,
        },
    })
}

/// The first action of `scope` that failed with no sibling running after its failure.
fn unhandled_failure<'s>(
    scope: &'s Scope,
    statuses: &BTreeMap<String, RunStatus>,
) -> Option<&'s str> {
    scope.order.iter().map(String::as_str).find(|name| {
        statuses.get(*name) == Some(&RunStatus::Failed)
            && !scope.in_order().any(|b| {
                b.run_after
                    .get(*name)
                    .is_some_and(|on| on.contains(&RunStatus::Failed))
                    && statuses
                        .get(&b.name)
                        .is_some_and(|s| *s != RunStatus::Skipped)
            })
    })
}

struct Engine<'a> {
    actions: ActionEnv<'a>,
    worker: &'a str,
    ctx: RecordedRun,
    errors: BTreeMap<String, (String, String)>,
    lost: Arc<AtomicBool>,
}

type Boxed<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

impl<'a> Engine<'a> {
    /// Run one scope's actions in order; their statuses by name.
    fn scope<'s>(
        &'s mut self,
        scope: &'s Scope,
    ) -> Boxed<'s, Result<BTreeMap<String, RunStatus>, Halt>> {
        Box::pin(async move {
            let mut statuses = BTreeMap::new();
            for action in scope.in_order() {
                if let Some(done) = self.ctx.action(&action.name) {
                    // Recorded by an earlier attempt of this run: not done twice.
                    statuses.insert(action.name.clone(), done.status);
                    continue;
                }
                let status = match action.decide(|n| statuses.get(n).copied()) {
                    RunDecision::Run => self.run_action(action).await?,
                    RunDecision::Skip | RunDecision::Wait => {
                        let skipped = Done {
                            status: RunStatus::Skipped,
                            ..Done::ok(Value::Null, Value::Null)
                        };
                        let now = self.actions.state.clock.now();
                        self.record(&action.name, skipped, now).await?;
                        RunStatus::Skipped
                    }
                };
                statuses.insert(action.name.clone(), status);
            }
            Ok(statuses)
        })
    }

    async fn run_action(&mut self, action: &keyway_core::flows::Action) -> Result<RunStatus, Halt> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Halt::Lost);
        }
        let started = self.actions.state.clock.now();
        let ctx = &self.ctx;
        let done = match &action.kind {
            ActionKind::If(branches) => match branches.condition.evaluate(ctx) {
                Err(e) => Done::failed(Value::Null, "InvalidTemplate", e.to_string()),
                Ok(taken) => {
                    let branch = if taken {
                        &branches.actions
                    } else {
                        &branches.else_actions
                    };
                    let inner = self.scope(branch).await?;
                    let outputs = json!({"expression": {"result": taken}});
                    match unhandled_failure(branch, &inner) {
                        Some(failed) => {
                            let (code, message) =
                                self.errors.get(failed).cloned().unwrap_or_else(|| {
                                    ("ActionFailed".into(), format!("'{failed}' failed."))
                                });
                            Done {
                                outputs,
                                ..Done::failed(Value::Null, code, message)
                            }
                        }
                        None => Done::ok(Value::Null, outputs),
                    }
                }
            },
            ActionKind::Compose(t) => match t.evaluate(ctx) {
                Ok(v) => Done::ok(v.clone(), v),
                Err(e) => Done::failed(Value::Null, "InvalidTemplate", e.to_string()),
            },
            ActionKind::Terminate(t) => {
                let text = |x: &Option<keyway_core::flows::Template>| {
                    x.as_ref()
                        .and_then(|x| x.evaluate(ctx).ok())
                        .map(|v| keyway_core::flows::to_text(&v))
                };
                let (status, error) = match t.status {
                    TerminateStatus::Succeeded => (RunState::Succeeded, None),
                    TerminateStatus::Cancelled => (RunState::Cancelled, None),
                    TerminateStatus::Failed => (
                        RunState::Failed,
                        Some((
                            text(&t.code).unwrap_or_else(|| "Terminated".into()),
                            text(&t.message).unwrap_or_default(),
                        )),
                    ),
                };
                let inputs = json!({"runStatus": status.name(), "runError": error.as_ref().map(|(c, m)| json!({"code": c, "message": m}))});
                self.record(&action.name, Done::ok(inputs, Value::Null), started)
                    .await?;
                return Err(Halt::End(status, error));
            }
            ActionKind::Dataverse(op) => {
                match flow_actions::dataverse(&self.actions, ctx, &action.name, op).await {
                    Step::Done(d) => *d,
                    Step::Transient(code, message) => return Err(Halt::Retry(code, message)),
                }
            }
            ActionKind::Http(h) => match flow_actions::http(&self.actions, ctx, h).await {
                Step::Done(d) => *d,
                Step::Transient(code, message) => return Err(Halt::Retry(code, message)),
            },
            ActionKind::RunDesktopFlow(_) => Done::failed(
                Value::Null,
                "MachinesNotAvailable",
                "Desktop flows need machines, which this server does not have yet.",
            ),
        };
        let status = done.status;
        self.record(&action.name, done, started).await?;
        Ok(status)
    }

    /// Record an action's outcome (the store refuses once the run is cancelled or taken over).
    async fn record(
        &mut self,
        name: &str,
        done: Done,
        started: time::OffsetDateTime,
    ) -> Result<(), Halt> {
        let now = self.actions.state.clock.now();
        let row = ActionRow {
            name: name.to_string(),
            status: done.status.as_str().to_string(),
            inputs: done.inputs,
            outputs: done.outputs.clone(),
            connection_id: done.connection_id,
            identity: done.identity,
            error: done.error.clone(),
            started_at: started,
            ended_at: now,
        };
        self.actions
            .state
            .store
            .run_action(self.actions.run.id, self.worker, &row)
            .await?;
        if let Some(e) = done.error {
            self.errors.insert(name.to_string(), e);
        }
        self.ctx.record(name, done.status, done.outputs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(actions: Value) -> Scope {
        let def = FlowDefinition::parse(&json!({
            "triggers": {"manual": {"type": "Request", "kind": "Button"}},
            "actions": actions,
        }))
        .unwrap();
        def.actions.clone()
    }

    #[test]
    fn a_failure_fails_the_run_unless_a_sibling_runs_after_it() {
        let s = scope(json!({
            "A": {"type": "Compose", "inputs": 1},
            "B": {"type": "Compose", "inputs": 2, "runAfter": {"A": ["Failed"]}},
            "C": {"type": "Compose", "inputs": 3, "runAfter": {"A": ["Succeeded"]}},
        }));
        let statuses = |a, b, c| {
            BTreeMap::from([
                ("A".to_string(), a),
                ("B".to_string(), b),
                ("C".to_string(), c),
            ])
        };
        use RunStatus::*;
        assert_eq!(
            unhandled_failure(&s, &statuses(Succeeded, Skipped, Succeeded)),
            None
        );
        assert_eq!(
            unhandled_failure(&s, &statuses(Failed, Succeeded, Skipped)),
            None,
            "handled by B"
        );
        assert_eq!(
            unhandled_failure(&s, &statuses(Failed, Failed, Skipped)),
            Some("B")
        );
        assert_eq!(
            unhandled_failure(&s, &statuses(Succeeded, Skipped, Failed)),
            Some("C")
        );
    }
}
