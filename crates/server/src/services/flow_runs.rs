//! The run worker: claims queued runs under a lease (renewed while a run executes), checks the
//! trigger's conditions against the row (filter expression, scope relative to the flow owner,
//! trigger conditions; a miss ends the run Skipped), then runs the actions in execution order
//! with their `runAfter` decisions, recording each. Transient failures give the run back with
//! exponential back-off; a run whose worker died is claimed again when its lease ends and
//! resumes after the actions already recorded. A queued run of a flow that was turned off ends
//! Cancelled before any action; a cancelled run stops at its next step. A run triggered by this
//! process's own row change is leased to it in that change's transaction and handed over once it
//! commits (no claim transaction: the end-to-end latency of a flow is mostly its commits).

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
    ActionRow, EnvironmentStore, FlowRow, FlowStore, LocalRuns, RunEnd, RunRow,
    RunStatus as RunState, StartRun, StoreError, SystemUserKey,
};
use serde_json::{Value, json};
use time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::flow_actions::{self, ActionEnv, Done, Step};
use crate::state::AppState;

/// How long a claim holds a run; the worker renews it every third of that while it runs.
pub const LEASE: Duration = Duration::seconds(12);
/// Claims after which a transient failure fails the run instead of retrying it.
pub const MAX_ATTEMPTS: i64 = 6;
/// Runs executing at once per server process (their actions mostly wait on I/O).
const CONCURRENCY: usize = 32;
/// Runs claimed in one transaction at most.
const CLAIM_BATCH: usize = 16;
/// Run ends written in one transaction at most.
const END_BATCH: usize = 64;
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(5);
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub fn spawn(state: AppState) {
    let node = Uuid::new_v4().simple().to_string();
    let worker: Arc<str> = format!("{}-{}", std::process::id(), &node[..8]).into();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let (ends, finished) = mpsc::channel(CONCURRENCY);
    let (handed, taken) = mpsc::unbounded_channel();
    // The store holds only the sending end (not the state): no cycle keeps a stopped server alive.
    state.store.take_local_runs(Arc::new(Local {
        worker: worker.clone(),
        slots: slots.clone(),
        handed,
    }));
    tokio::spawn(finisher(state.clone(), worker.clone(), finished));
    tokio::spawn(take(state.clone(), worker.clone(), ends.clone(), taken));
    tokio::spawn(work(state, worker, slots, ends));
}

/// A run leased to this process in the transaction that queued it, with its slot.
type Handed = (RunRow, OwnedSemaphorePermit);

/// Takes the runs this process's own row changes trigger, in their transaction, when a slot is free.
struct Local {
    worker: Arc<str>,
    slots: Arc<Semaphore>,
    handed: mpsc::UnboundedSender<Handed>,
}

impl LocalRuns for Local {
    fn worker(&self) -> &str {
        &self.worker
    }

    fn lease(&self) -> Duration {
        LEASE
    }

    fn reserve(&self) -> Option<StartRun> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        let handed = self.handed.clone();
        Some(Box::new(move |run| {
            let _ = handed.send((run, permit));
        }))
    }
}

/// Execute the runs handed over after their commit (no claim: they are leased to this worker).
async fn take(
    state: AppState,
    worker: Arc<str>,
    ends: mpsc::Sender<Ending>,
    mut taken: mpsc::UnboundedReceiver<Handed>,
) {
    while let Some((run, permit)) = taken.recv().await {
        // A run whose lease is nearly over is left to the claims once it ends (never run twice).
        if run
            .lease_until
            .is_none_or(|until| until - LEASE / 2 < state.clock.now())
        {
            continue;
        }
        let (state, worker, ends) = (state.clone(), worker.clone(), ends.clone());
        tokio::spawn(async move {
            execute(&state, &worker, run, &ends).await;
            drop(permit);
        });
    }
}

/// A run's end on its way to the store, and who waits for it to be written.
type Ending = (RunEnd, oneshot::Sender<Result<bool, StoreError>>);

/// Claim runs as slots free up, a batch per transaction, and execute each in a task of its own.
async fn work(
    state: AppState,
    worker: Arc<str>,
    slots: Arc<Semaphore>,
    ends: mpsc::Sender<Ending>,
) {
    let mut pause = BUSY_POLL;
    loop {
        let Ok(first) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut permits = vec![first];
        while permits.len() < CLAIM_BATCH
            && let Ok(p) = slots.clone().try_acquire_owned()
        {
            permits.push(p);
        }
        let claimed = state
            .store
            .runs_claim(&worker, state.clock.now(), LEASE, permits.len())
            .await;
        match claimed {
            Ok(runs) if !runs.is_empty() => {
                pause = BUSY_POLL;
                let drained = runs.len() < permits.len();
                for (run, permit) in runs.into_iter().zip(permits) {
                    let (state, worker, ends) = (state.clone(), worker.clone(), ends.clone());
                    tokio::spawn(async move {
                        execute(&state, &worker, run, &ends).await;
                        drop(permit);
                    });
                }
                if drained {
                    // Nothing more was due: wait for the next commit that queues a run.
                    tokio::select! {
                        _ = state.flow_wake.notified() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
            Ok(_) => {
                drop(permits);
                tokio::select! {
                    _ = state.flow_wake.notified() => pause = BUSY_POLL,
                    _ = tokio::time::sleep(pause) => pause = (pause * 2).min(IDLE_POLL),
                }
            }
            Err(e) => {
                drop(permits);
                tracing::warn!(error = %e, "claiming flow runs failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Write run ends as they come, all that are waiting in one transaction (a group commit: the
/// writes of many runs share one durable commit instead of paying one each).
async fn finisher(state: AppState, worker: Arc<str>, mut finished: mpsc::Receiver<Ending>) {
    let mut batch = Vec::with_capacity(END_BATCH);
    while finished.recv_many(&mut batch, END_BATCH).await > 0 {
        let (ends, waiting): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match state.store.runs_end(&worker, &ends).await {
            Ok(ended) => {
                for (tx, ok) in waiting.into_iter().zip(ended) {
                    let _ = tx.send(Ok(ok));
                }
            }
            Err(e) => {
                for tx in waiting {
                    let _ = tx.send(Err(e.clone()));
                }
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

impl From<super::ServiceError> for Halt {
    fn from(e: super::ServiceError) -> Self {
        Halt::Retry("StoreUnavailable".into(), e.to_string())
    }
}

/// Execute a claimed run to its end (or hand it back).
async fn execute(state: &AppState, worker: &str, run: RunRow, ends: &mpsc::Sender<Ending>) {
    let lost = Arc::new(AtomicBool::new(false));
    let heartbeat = tokio::spawn(renew(
        state.clone(),
        worker.to_string(),
        run.id,
        lost.clone(),
    ));
    let mut pending = Vec::new();
    let outcome = run_to_end(state, worker, &run, &lost, &mut pending).await;
    heartbeat.abort();
    let now = state.clock.now();
    let end = |status, error, actions| RunEnd {
        id: run.id,
        status,
        error,
        actions,
        at: now,
    };
    let written = match outcome {
        Ok((status, error)) | Err(Halt::End(status, error)) => {
            finish(state, worker, ends, end(status, error, pending)).await
        }
        Err(Halt::Lost) => Ok(()),
        Err(Halt::Retry(code, message)) if run.attempt >= MAX_ATTEMPTS => {
            let message = format!("{message} (gave up after {} attempts)", run.attempt);
            let failed = end(RunState::Failed, Some((code, message)), pending);
            finish(state, worker, ends, failed).await
        }
        Err(Halt::Retry(code, message)) => {
            let wait = Duration::seconds(1 << (run.attempt - 1).clamp(0, 6));
            // What did run is recorded first, so the retry does not do it again.
            let recorded = if pending.is_empty() {
                Ok(())
            } else {
                state
                    .store
                    .run_actions_record(run.id, worker, &pending)
                    .await
            };
            match recorded {
                Ok(()) => {
                    state
                        .store
                        .run_retry(run.id, worker, now + wait, (code, message))
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    match written {
        Ok(()) | Err(StoreError::RowMissing) => {}
        Err(e) => tracing::warn!(run = %run.id, error = %e, "recording a flow run's end failed"),
    }
}

/// Write a run's end through the finisher (with other runs' ends), waiting until it is durable.
async fn finish(
    state: &AppState,
    worker: &str,
    ends: &mpsc::Sender<Ending>,
    end: RunEnd,
) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    let ended = match ends.send((end, tx)).await {
        Ok(()) => rx
            .await
            .unwrap_or_else(|_| Err(StoreError::Database("the run finisher stopped".into()))),
        // No finisher (the runtime is shutting down): write it alone.
        Err(mpsc::error::SendError((end, _))) => state
            .store
            .runs_end(worker, std::slice::from_ref(&end))
            .await
            .map(|e| e.first() == Some(&true)),
    };
    match ended? {
        true => Ok(()),
        false => Err(StoreError::RowMissing),
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
    pending: &mut Vec<ActionRow>,
) -> Result<(RunState, Option<(String, String)>), Halt> {
    // A deleted flow or environment takes its runs with it.
    let Some(flow) = state.store.flow_get(run.flow_id).await? else {
        return Err(Halt::Lost);
    };
    let Some(env) = state.store.environment_get(run.environment_id).await? else {
        return Err(Halt::Lost);
    };
    // Each claim counts an attempt, and only the worker holding an attempt records actions:
    // a first attempt has none to resume from, so it skips the read.
    let recorded = if run.attempt > 1 {
        state.store.run_actions(run.id).await?
    } else {
        Vec::new()
    };
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
    // Environment variables are read as each run starts (or resumes on another node).
    ctx.parameters = match super::flow_variables::run_parameters(state, &env, &def).await {
        Ok(Ok(values)) => values,
        Ok(Err((code, message))) => return Ok((RunState::Failed, Some((code, message)))),
        Err(e) => return Err(Halt::Retry("StoreUnavailable".into(), e.to_string())),
    };
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
        pending,
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
    // Through the directory cache, as the Web API reads its callers: every run of a
    // user-scoped trigger asks about the same owner.
    let Some(me) = state
        .directory
        .system_user(state, env, SystemUserKey::Id(flow.owner_id))
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
            let units = BusinessUnits::new(
                state
                    .directory
                    .business_units(state, env)
                    .await?
                    .iter()
                    .copied(),
            );
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
                .directory
                .system_user(state, env, SystemUserKey::Id(owner))
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
    /// Action records not written yet: written before the next action that reaches outside
    /// the run starts, and with the run's end, so a resumed run never repeats an effect it
    /// recorded, and a run pays one commit for its last action and its end.
    pending: &'a mut Vec<ActionRow>,
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
                        self.record(&action.name, skipped, now);
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
        if matches!(action.kind, ActionKind::Dataverse(_) | ActionKind::Http(_)) {
            self.flush().await?;
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
                self.record(&action.name, Done::ok(inputs, Value::Null), started);
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
        self.record(&action.name, done, started);
        Ok(status)
    }

    /// Write the pending action records (the store refuses once the run is cancelled or taken
    /// over).
    async fn flush(&mut self) -> Result<(), Halt> {
        if !self.pending.is_empty() {
            let run = self.actions.run.id;
            let store = &self.actions.state.store;
            store
                .run_actions_record(run, self.worker, self.pending)
                .await?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Record an action's outcome (written by `flush` or with the run's end).
    fn record(&mut self, name: &str, done: Done, started: time::OffsetDateTime) {
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
        self.pending.push(row);
        if let Some(e) = done.error {
            self.errors.insert(name.to_string(), e);
        }
        self.ctx.record(name, done.status, done.outputs);
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
