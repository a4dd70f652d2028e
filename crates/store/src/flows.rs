//! Cloud flows, the runs their triggers queue, and what each action of a run did. Runs are a queue
//! in the database: a row change inserts the runs it triggers in its own transaction
//! ([`queue_triggered`]), and workers claim them under a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite's single writer serializes claims), so each trigger event runs once even
//! with several server processes, and a run whose worker died is claimed again when its lease ends.
//! A run triggered by a change this process makes is leased to this process's worker in that same
//! transaction ([`LocalRuns`]) and started once it commits, without a claim.

use serde_json::Value as Json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::sql::{Dialect, Row, Tx, Value};
use crate::{SqlStore, StoreError};

/// A flow as stored: its definition is JSON the domain parses; the trigger columns are copied out
/// of it so row changes find their flows.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRow {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub name: String,
    /// The system user who owns it.
    pub owner_id: Uuid,
    pub on: bool,
    pub definition: Json,
    /// `dataverse`, `manual` or `recurrence`.
    pub trigger_kind: String,
    /// For Dataverse triggers: the table's logical name.
    pub trigger_entity: Option<String>,
    /// 1 Added, 2 Deleted, 3 Modified, 4 Added or Modified, 5 Added or Deleted, 6 Modified or
    /// Deleted, 7 all.
    pub trigger_message: Option<i64>,
    /// Only changes to these columns fire a Modified trigger (empty: any).
    pub trigger_attributes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub modified_at: OffsetDateTime,
    pub version: i64,
    /// The connection references its connection names stand for (Power Automate's clientdata
    /// `connectionReferences`): `{"<name>": {"connection": {"connectionReferenceLogicalName"}}}`.
    pub connection_references: Json,
}

/// A flow that is on with a recurrence trigger, and where its schedule stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFlow {
    pub flow: FlowRow,
    /// The instant its schedule counts from when it has no `startTime` (when it was turned on).
    pub anchor: Option<OffsetDateTime>,
    /// Its next occurrence; `None` until a server schedules it.
    pub next_fire_at: Option<OffsetDateTime>,
}

/// What happened to a row, as triggers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChange {
    Added,
    Modified,
    Deleted,
}

impl RowChange {
    /// Does a trigger's `message` (1–7) fire for this change?
    pub fn fires(self, message: i64) -> bool {
        let bit = match self {
            Self::Added => 1,
            Self::Deleted => 2,
            Self::Modified => 4,
        };
        // 1 Added, 2 Deleted, 3 Modified, 4 Added|Modified, 5 Added|Deleted, 6 Modified|Deleted, 7 all.
        let mask = match message {
            1 => 1,
            2 => 2,
            3 => 4,
            4 => 1 | 4,
            5 => 1 | 2,
            6 => 4 | 2,
            7 => 7,
            _ => 0,
        };
        mask & bit != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The trigger's conditions (filter expression, scope) did not hold for the row.
    Skipped,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Skipped => "Skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
            Self::Skipped,
        ]
        .into_iter()
        .find(|x| x.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: Uuid,
    pub flow_id: Uuid,
    pub environment_id: Uuid,
    pub status: RunStatus,
    /// What the trigger hands the flow (`triggerOutputs()`).
    pub trigger_outputs: Json,
    /// How many times a worker has claimed it.
    pub attempt: i64,
    pub not_before: OffsetDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub error: Option<(String, String)>,
}

/// How a run ended, as its worker writes it, with the records of its actions not written yet.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub id: Uuid,
    pub status: RunStatus,
    pub error: Option<(String, String)>,
    pub actions: Vec<ActionRow>,
    pub at: OffsetDateTime,
}

/// One action's outcome in a run's history (inputs and outputs already redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub name: String,
    pub status: String,
    pub inputs: Json,
    pub outputs: Json,
    pub connection_id: Option<Uuid>,
    /// The identity the action acted as (a system user id or an app id).
    pub identity: Option<String>,
    pub error: Option<(String, String)>,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
}

const FLOW_COLS: &str = "id, environment_id, name, owner_id, state, definition, trigger_kind, trigger_entity, trigger_message, trigger_attributes, created_at, modified_at, version, connection_references";
const RUN_COLS: &str = "id, flow_id, environment_id, status, trigger_outputs, attempt, not_before, lease_owner, lease_until, created_at, started_at, ended_at, error_code, error_message";

fn json_of(s: &str) -> Result<Json, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Database(format!("bad JSON column: {e}")))
}

fn flow_from(r: &Row) -> Result<FlowRow, StoreError> {
    Ok(FlowRow {
        id: r.uuid(0)?,
        environment_id: r.uuid(1)?,
        name: r.text(2)?,
        owner_id: r.uuid(3)?,
        on: r.text(4)? == "on",
        definition: json_of(&r.text(5)?)?,
        trigger_kind: r.text(6)?,
        trigger_entity: r.opt_text(7)?,
        trigger_message: r.opt_int(8)?,
        trigger_attributes: attribute_list(r.opt_text(9)?),
        created_at: r.time(10)?,
        modified_at: r.time(11)?,
        version: r.int(12)?,
        connection_references: json_of(&r.text(13)?)?,
    })
}

fn run_from(r: &Row) -> Result<RunRow, StoreError> {
    let status = r.text(3)?;
    Ok(RunRow {
        id: r.uuid(0)?,
        flow_id: r.uuid(1)?,
        environment_id: r.uuid(2)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Database(format!("unknown run status {status}")))?,
        trigger_outputs: json_of(&r.text(4)?)?,
        attempt: r.int(5)?,
        not_before: r.time(6)?,
        lease_owner: r.opt_text(7)?,
        lease_until: r.opt_time(8)?,
        created_at: r.time(9)?,
        started_at: r.opt_time(10)?,
        ended_at: r.opt_time(11)?,
        error: match (r.opt_text(12)?, r.opt_text(13)?) {
            (Some(c), Some(m)) => Some((c, m)),
            _ => None,
        },
    })
}

/// What a Dataverse trigger hands its run: `body` is the row as the Web API shows it (lookups as
/// `_x_value`; the old row for a deletion) with `SdkMessage`; `keyway` says who changed it and
/// which columns.
pub(crate) fn trigger_outputs(
    entity: &keyway_core::dataverse::metadata::EntityDef,
    change: RowChange,
    row: &keyway_core::dataverse::record::Record,
    changed_columns: &[String],
    ctx: &keyway_core::dataverse::audit::AuditContext,
) -> Json {
    let mut body = serde_json::Map::new();
    for (name, value) in &row.fields {
        let key = match entity.attribute(name) {
            Some(a) if a.kind.is_lookup() && name != &entity.primary_id => format!("_{name}_value"),
            _ => name.clone(),
        };
        body.insert(key, value.to_json());
    }
    body.insert(
        "SdkMessage".into(),
        match change {
            RowChange::Added => "Create",
            RowChange::Modified => "Update",
            RowChange::Deleted => "Delete",
        }
        .into(),
    );
    serde_json::json!({
        "body": body,
        "keyway": {
            "entity": entity.logical_name,
            "modifiedBy": ctx.user_id,
            "callingUser": ctx.calling_user_id,
            "transactionId": ctx.transaction_id,
            "changedColumns": changed_columns,
        },
    })
}

/// `a,b,c` as stored in `trigger_attributes` → the column names.
fn attribute_list(stored: Option<String>) -> Vec<String> {
    stored
        .map(|s| {
            s.split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A flow that is on and listens to a table: what its trigger fires on.
struct Subscriber {
    flow_id: Uuid,
    message: i64,
    only: Vec<String>,
}

/// The flows listening to each table, read once per transaction and table: a changeset of a
/// thousand rows asks the database once, not a thousand times.
#[derive(Default)]
pub(crate) struct Subscribers {
    by_entity: std::collections::HashMap<String, Vec<Subscriber>>,
    local: Option<std::sync::Arc<dyn LocalRuns>>,
    /// Runs leased to this process's worker, to hand it once the transaction commits.
    handed: Vec<(RunRow, StartRun)>,
    handed_count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Subscribers {
    /// After the commit: start the runs leased to this process.
    pub(crate) fn hand_over(&mut self) {
        for (run, start) in self.handed.drain(..) {
            start(run);
            self.handed_count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    async fn of(
        &mut self,
        tx: &mut dyn Tx,
        environment_id: Uuid,
        entity: &str,
    ) -> Result<&[Subscriber], StoreError> {
        if !self.by_entity.contains_key(entity) {
            let rows = tx
                .fetch(
                    "SELECT id, trigger_message, trigger_attributes FROM flows WHERE environment_id = $1 AND trigger_entity = $2 AND state = 'on'",
                    vec![environment_id.into(), entity.into()],
                )
                .await?;
            let subs = rows
                .iter()
                .map(|f| {
                    Ok(Subscriber {
                        flow_id: f.uuid(0)?,
                        message: f.opt_int(1)?.unwrap_or(0),
                        only: attribute_list(f.opt_text(2)?),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.by_entity.insert(entity.to_string(), subs);
        }
        Ok(self
            .by_entity
            .get(entity)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }
}

/// A process's run worker, taking the runs its own row changes trigger: each is inserted already
/// leased to it (so no other worker claims it while the lease holds; if the process dies, the
/// lease ends and another claims it as any run) and handed over once the transaction commits.
pub trait LocalRuns: Send + Sync {
    /// Who the runs are leased to.
    fn worker(&self) -> &str;
    /// How long the lease holds before the worker renews it.
    fn lease(&self) -> Duration;
    /// A free slot to execute one more run now, if there is one; called with the run after the
    /// commit (dropped unused when the transaction fails).
    fn reserve(&self) -> Option<StartRun>;
}

/// Starts a run in the slot reserved for it.
pub type StartRun = Box<dyn FnOnce(RunRow) + Send>;

/// The store's [`LocalRuns`], and how many runs it was handed.
#[derive(Default)]
pub(crate) struct LocalSlot {
    local: std::sync::OnceLock<std::sync::Arc<dyn LocalRuns>>,
    handed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SqlStore {
    /// Lease the runs this process's row changes trigger to `local` (set once, by its worker).
    pub fn take_local_runs(&self, local: std::sync::Arc<dyn LocalRuns>) {
        let _ = self.local_runs.local.set(local);
    }

    /// How many runs were handed to this process's worker without a claim.
    pub fn runs_handed_over(&self) -> u64 {
        self.local_runs
            .handed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn subscribers(&self) -> Subscribers {
        Subscribers {
            local: self.local_runs.local.get().cloned(),
            handed_count: self.local_runs.handed.clone(),
            ..Default::default()
        }
    }
}

/// Inside a row change's transaction: queue a run of every flow that is on and whose Dataverse
/// trigger fires for this change of `entity` (message, and for modifications the filtering
/// columns). Conditions on the row's values (filter expression, scope) are the run's to check.
/// `outputs` is built only when some flow fires. Returns the ids of the runs queued.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn queue_triggered(
    tx: &mut dyn Tx,
    subscribers: &mut Subscribers,
    environment_id: Uuid,
    entity: &str,
    change: RowChange,
    changed_columns: &[String],
    outputs: impl FnOnce() -> Json,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, StoreError> {
    let firing: Vec<Uuid> = subscribers
        .of(tx, environment_id, entity)
        .await?
        .iter()
        .filter(|f| change.fires(f.message))
        .filter(|f| {
            change != RowChange::Modified
                || f.only.is_empty()
                || changed_columns.iter().any(|c| f.only.contains(c))
        })
        .map(|f| f.flow_id)
        .collect();
    if firing.is_empty() {
        return Ok(Vec::new());
    }
    let outputs = outputs();
    let mut queued = Vec::with_capacity(firing.len());
    for flow_id in firing {
        let id = Uuid::now_v7();
        let local = subscribers
            .local
            .as_ref()
            .and_then(|l| Some((l.clone(), l.reserve()?)));
        match local {
            Some((local, start)) => {
                let (worker, until) = (local.worker().to_string(), now + local.lease());
                tx.execute(
                    "INSERT INTO flow_runs (id, flow_id, environment_id, status, trigger_outputs, attempt, not_before, created_at, lease_owner, lease_until, started_at) VALUES ($1, $2, $3, 'Running', $4, 1, $5, $5, $6, $7, $5)",
                    vec![
                        id.into(),
                        flow_id.into(),
                        environment_id.into(),
                        outputs.to_string().into(),
                        now.into(),
                        worker.as_str().into(),
                        until.into(),
                    ],
                )
                .await?;
                let run = RunRow {
                    id,
                    flow_id,
                    environment_id,
                    status: RunStatus::Running,
                    trigger_outputs: outputs.clone(),
                    attempt: 1,
                    not_before: now,
                    lease_owner: Some(worker),
                    lease_until: Some(until),
                    created_at: now,
                    started_at: Some(now),
                    ended_at: None,
                    error: None,
                };
                subscribers.handed.push((run, start));
            }
            None => insert_run(tx, id, flow_id, environment_id, &outputs, now).await?,
        }
        queued.push(id);
    }
    Ok(queued)
}

async fn insert_run(
    tx: &mut dyn Tx,
    id: Uuid,
    flow_id: Uuid,
    environment_id: Uuid,
    outputs: &Json,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO flow_runs (id, flow_id, environment_id, status, trigger_outputs, attempt, not_before, created_at) VALUES ($1, $2, $3, 'Queued', $4, 0, $5, $5)",
        vec![
            id.into(),
            flow_id.into(),
            environment_id.into(),
            outputs.to_string().into(),
            now.into(),
        ],
    )
    .await
    .map(|_| ())
}

#[async_trait::async_trait]
pub trait FlowStore: Send + Sync {
    /// Create a flow, or replace it at `expected_version` (`VersionMismatch` otherwise);
    /// `Conflict` when the name is taken in its environment.
    async fn flow_save(
        &self,
        flow: &FlowRow,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError>;
    async fn flow_get(&self, id: Uuid) -> Result<Option<FlowRow>, StoreError>;
    async fn flow_list(&self, environment_id: Uuid) -> Result<Vec<FlowRow>, StoreError>;
    async fn flow_delete(&self, id: Uuid) -> Result<(), StoreError>;
    /// Queue a run directly (manual and recurrence triggers).
    async fn run_queue(
        &self,
        flow_id: Uuid,
        environment_id: Uuid,
        outputs: &Json,
        now: OffsetDateTime,
    ) -> Result<Uuid, StoreError>;
    /// Claim the next run that is due (queued and not before now, or running with an expired
    /// lease) for `worker` until `now + lease`; `None` when there is nothing to do.
    async fn run_claim(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Option<RunRow>, StoreError> {
        Ok(self.runs_claim(worker, now, lease, 1).await?.pop())
    }
    /// Claim up to `limit` due runs in one transaction (expired leases first, then queued runs
    /// oldest first), so a busy worker pays one commit for several runs.
    async fn runs_claim(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RunRow>, StoreError>;
    /// Extend the lease of a run this worker holds (`RowMissing` if it holds it no more).
    async fn run_renew(
        &self,
        id: Uuid,
        worker: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Record one action's outcome (replacing an earlier attempt's) while the worker holds the run.
    async fn run_action(
        &self,
        id: Uuid,
        worker: &str,
        action: &ActionRow,
    ) -> Result<(), StoreError> {
        self.run_actions_record(id, worker, std::slice::from_ref(action))
            .await
    }
    /// Record several actions' outcomes in one transaction, as `run_action` does each.
    async fn run_actions_record(
        &self,
        id: Uuid,
        worker: &str,
        actions: &[ActionRow],
    ) -> Result<(), StoreError>;
    /// End a run this worker holds.
    async fn run_finish(
        &self,
        id: Uuid,
        worker: &str,
        status: RunStatus,
        error: Option<(String, String)>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let end = RunEnd {
            id,
            status,
            error,
            actions: Vec::new(),
            at: now,
        };
        match self.runs_end(worker, &[end]).await?.first() {
            Some(true) => Ok(()),
            _ => Err(StoreError::RowMissing),
        }
    }
    /// End several runs this worker holds, each with its unwritten action records, in one
    /// transaction (a group commit); for each, whether it was ended (false: the worker holds it
    /// no more, and nothing of it was written).
    async fn runs_end(&self, worker: &str, ends: &[RunEnd]) -> Result<Vec<bool>, StoreError>;
    /// Give a run back to the queue, due at `not_before` (a retry with back-off).
    async fn run_retry(
        &self,
        id: Uuid,
        worker: &str,
        not_before: OffsetDateTime,
        error: (String, String),
    ) -> Result<(), StoreError>;
    /// Cancel a run that has not ended (its worker sees it at its next step).
    async fn run_cancel(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError>;
    async fn run_get(&self, id: Uuid) -> Result<Option<RunRow>, StoreError>;
    async fn runs_of(&self, flow_id: Uuid, limit: u64) -> Result<Vec<RunRow>, StoreError>;
    async fn run_actions(&self, id: Uuid) -> Result<Vec<ActionRow>, StoreError>;
    /// Set the schedule of a flow as of `version`: the instant it counts from and its next
    /// occurrence (`None`: not scheduled). False when the flow changed since `version`.
    async fn flow_schedule_set(
        &self,
        id: Uuid,
        version: i64,
        anchor: Option<OffsetDateTime>,
        next_fire_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError>;
    /// Flows that are on with a recurrence trigger whose next occurrence is due by `now`, or not
    /// scheduled yet; soonest first.
    async fn flows_due(
        &self,
        now: OffsetDateTime,
        limit: u64,
    ) -> Result<Vec<ScheduledFlow>, StoreError>;
    /// One recurrence tick, in one transaction: move the flow's next occurrence from `due` to
    /// `next` (only if it is still on and still due at `due`), and if this call moved it, queue
    /// the run `run_id` unless a run of that id exists. True when this call queued the run.
    #[allow(clippy::too_many_arguments)]
    async fn recurrence_fire(
        &self,
        flow_id: Uuid,
        environment_id: Uuid,
        due: OffsetDateTime,
        next: Option<OffsetDateTime>,
        run_id: Uuid,
        outputs: &Json,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// The worker must still hold the run, and the run must not have ended (cancelled meanwhile).
async fn held(tx: &mut dyn Tx, id: Uuid, worker: &str) -> Result<(), StoreError> {
    let rows = tx
        .fetch(
            "SELECT status, lease_owner FROM flow_runs WHERE id = $1",
            vec![id.into()],
        )
        .await?;
    match rows.first() {
        Some(r) if r.text(0)? == "Running" && r.opt_text(1)?.as_deref() == Some(worker) => Ok(()),
        _ => Err(StoreError::RowMissing),
    }
}

/// Write actions' outcomes, each replacing an earlier attempt's record of the same action.
async fn record_actions(
    tx: &mut dyn Tx,
    id: Uuid,
    actions: &[ActionRow],
) -> Result<(), StoreError> {
    for a in actions {
        tx.execute(
            "DELETE FROM flow_run_actions WHERE run_id = $1 AND name = $2",
            vec![id.into(), a.name.clone().into()],
        )
        .await?;
        let (code, message) = a.error.clone().unzip();
        tx.execute(
            "INSERT INTO flow_run_actions (run_id, name, status, inputs, outputs, connection_id, identity, error_code, error_message, started_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            vec![
                id.into(),
                a.name.clone().into(),
                a.status.clone().into(),
                a.inputs.to_string().into(),
                a.outputs.to_string().into(),
                a.connection_id.into(),
                a.identity.clone().into(),
                code.into(),
                message.into(),
                a.started_at.into(),
                a.ended_at.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl FlowStore for SqlStore {
    async fn flow_save(
        &self,
        f: &FlowRow,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let args = vec![
            f.id.into(),
            f.environment_id.into(),
            f.name.clone().into(),
            f.owner_id.into(),
            if f.on { "on" } else { "off" }.into(),
            f.definition.to_string().into(),
            f.trigger_kind.clone().into(),
            f.trigger_entity.clone().into(),
            f.trigger_message.into(),
            Value::Text(Some(f.trigger_attributes.join(","))),
            f.created_at.into(),
            f.modified_at.into(),
            f.version.into(),
            f.connection_references.to_string().into(),
        ];
        let taken = tx
            .fetch(
                "SELECT id FROM flows WHERE environment_id = $1 AND name = $2",
                vec![f.environment_id.into(), f.name.clone().into()],
            )
            .await?;
        if taken.iter().any(|r| r.uuid(0).ok() != Some(f.id)) {
            return Err(StoreError::Conflict(format!(
                "a flow named {} exists",
                f.name
            )));
        }
        match expected_version {
            None => {
                tx.execute(
                    &format!("INSERT INTO flows ({FLOW_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"),
                    args,
                )
                .await?;
            }
            Some(v) => {
                let mut args = args;
                args.push(v.into());
                let n = tx
                    .execute(
                        "UPDATE flows SET environment_id = $2, name = $3, owner_id = $4, state = $5, definition = $6, trigger_kind = $7, trigger_entity = $8, trigger_message = $9, trigger_attributes = $10, created_at = $11, modified_at = $12, version = $13, connection_references = $14 WHERE id = $1 AND version = $15",
                        args,
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::VersionMismatch);
                }
            }
        }
        tx.commit().await
    }

    async fn flow_get(&self, id: Uuid) -> Result<Option<FlowRow>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {FLOW_COLS} FROM flows WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(flow_from)
            .transpose()
    }

    async fn flow_list(&self, environment_id: Uuid) -> Result<Vec<FlowRow>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {FLOW_COLS} FROM flows WHERE environment_id = $1 ORDER BY name"),
                vec![environment_id.into()],
            )
            .await?
            .iter()
            .map(flow_from)
            .collect()
    }

    async fn flow_delete(&self, id: Uuid) -> Result<(), StoreError> {
        let n = self
            .db
            .execute("DELETE FROM flows WHERE id = $1", vec![id.into()])
            .await?;
        if n == 0 {
            return Err(StoreError::RowMissing);
        }
        Ok(())
    }

    async fn run_queue(
        &self,
        flow_id: Uuid,
        environment_id: Uuid,
        outputs: &Json,
        now: OffsetDateTime,
    ) -> Result<Uuid, StoreError> {
        let mut tx = self.db.begin().await?;
        let id = Uuid::now_v7();
        insert_run(&mut *tx, id, flow_id, environment_id, outputs, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn runs_claim(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RunRow>, StoreError> {
        let limit = limit.clamp(1, 500);
        // Two index range scans (`status, not_before`), never a sort of the whole queue: runs
        // whose worker died, then due runs in the order they fell due.
        let picks = [
            "SELECT id FROM flow_runs WHERE status = 'Running' AND lease_until < $1",
            "SELECT id FROM flow_runs WHERE status = 'Queued' AND not_before <= $1 ORDER BY not_before",
        ];
        // A look without the write lock first: a worker woken for nothing takes no writer's turn.
        let mut due = false;
        for pick in picks {
            let found = self
                .db
                .fetch(&format!("{pick} LIMIT 1"), vec![now.into()])
                .await?;
            if !found.is_empty() {
                due = true;
                break;
            }
        }
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin().await?;
        // On PostgreSQL other workers skip the rows this one locked; SQLite's single writer
        // serializes claims.
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let mut ids = Vec::new();
        for pick in picks {
            let left = limit - ids.len();
            if left == 0 {
                break;
            }
            for r in tx
                .fetch(&format!("{pick} LIMIT {left}{lock}"), vec![now.into()])
                .await?
            {
                ids.push(r.uuid(0)?);
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (0..ids.len())
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let mut args: Vec<Value> = vec![worker.into(), (now + lease).into(), now.into()];
        args.extend(ids.iter().map(|id| Value::from(*id)));
        tx.execute(
            &format!("UPDATE flow_runs SET status = 'Running', lease_owner = $1, lease_until = $2, attempt = attempt + 1, started_at = COALESCE(started_at, $3) WHERE id IN ({list})"),
            args,
        )
        .await?;
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut runs = tx
            .fetch(
                &format!("SELECT {RUN_COLS} FROM flow_runs WHERE id IN ({list})"),
                ids.iter().map(|id| Value::from(*id)).collect(),
            )
            .await?
            .iter()
            .map(run_from)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        runs.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
        Ok(runs)
    }

    async fn run_renew(
        &self,
        id: Uuid,
        worker: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        held(&mut *tx, id, worker).await?;
        tx.execute(
            "UPDATE flow_runs SET lease_until = $2 WHERE id = $1",
            vec![id.into(), until.into()],
        )
        .await?;
        tx.commit().await
    }

    async fn run_actions_record(
        &self,
        id: Uuid,
        worker: &str,
        actions: &[ActionRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        held(&mut *tx, id, worker).await?;
        record_actions(&mut *tx, id, actions).await?;
        tx.commit().await
    }

    async fn runs_end(&self, worker: &str, ends: &[RunEnd]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.db.begin().await?;
        let mut ended = Vec::with_capacity(ends.len());
        for e in ends {
            match held(&mut *tx, e.id, worker).await {
                Ok(()) => {}
                Err(StoreError::RowMissing) => {
                    ended.push(false);
                    continue;
                }
                Err(other) => return Err(other),
            }
            record_actions(&mut *tx, e.id, &e.actions).await?;
            let (code, message) = e.error.clone().unzip();
            tx.execute(
                "UPDATE flow_runs SET status = $2, ended_at = $3, lease_owner = NULL, lease_until = NULL, error_code = $4, error_message = $5 WHERE id = $1",
                vec![e.id.into(), e.status.name().into(), e.at.into(), code.into(), message.into()],
            )
            .await?;
            ended.push(true);
        }
        tx.commit().await?;
        Ok(ended)
    }

    async fn run_retry(
        &self,
        id: Uuid,
        worker: &str,
        not_before: OffsetDateTime,
        error: (String, String),
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        held(&mut *tx, id, worker).await?;
        tx.execute(
            "UPDATE flow_runs SET status = 'Queued', not_before = $2, lease_owner = NULL, lease_until = NULL, error_code = $3, error_message = $4 WHERE id = $1",
            vec![id.into(), not_before.into(), error.0.into(), error.1.into()],
        )
        .await?;
        tx.commit().await
    }

    async fn run_cancel(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE flow_runs SET status = 'Cancelled', ended_at = $2, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND status IN ('Queued', 'Running')",
                vec![id.into(), now.into()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn run_get(&self, id: Uuid) -> Result<Option<RunRow>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {RUN_COLS} FROM flow_runs WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(run_from)
            .transpose()
    }

    async fn runs_of(&self, flow_id: Uuid, limit: u64) -> Result<Vec<RunRow>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {RUN_COLS} FROM flow_runs WHERE flow_id = $1 ORDER BY created_at DESC, id DESC LIMIT {}", limit.min(5000)),
                vec![flow_id.into()],
            )
            .await?
            .iter()
            .map(run_from)
            .collect()
    }

    async fn run_actions(&self, id: Uuid) -> Result<Vec<ActionRow>, StoreError> {
        self.db
            .fetch(
                "SELECT name, status, inputs, outputs, connection_id, identity, error_code, error_message, started_at, ended_at FROM flow_run_actions WHERE run_id = $1 ORDER BY started_at, name",
                vec![id.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ActionRow {
                    name: r.text(0)?,
                    status: r.text(1)?,
                    inputs: json_of(&r.text(2)?)?,
                    outputs: json_of(&r.text(3)?)?,
                    connection_id: r.opt_uuid(4)?,
                    identity: r.opt_text(5)?,
                    error: match (r.opt_text(6)?, r.opt_text(7)?) {
                        (Some(c), Some(m)) => Some((c, m)),
                        _ => None,
                    },
                    started_at: r.time(8)?,
                    ended_at: r.time(9)?,
                })
            })
            .collect()
    }

    async fn flow_schedule_set(
        &self,
        id: Uuid,
        version: i64,
        anchor: Option<OffsetDateTime>,
        next_fire_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE flows SET schedule_anchor = $2, next_fire_at = $3 WHERE id = $1 AND version = $4",
                vec![id.into(), anchor.into(), next_fire_at.into(), version.into()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn flows_due(
        &self,
        now: OffsetDateTime,
        limit: u64,
    ) -> Result<Vec<ScheduledFlow>, StoreError> {
        let at = FLOW_COLS.split(',').count();
        self.db
            .fetch(
                &format!(
                    "SELECT {FLOW_COLS}, schedule_anchor, next_fire_at FROM flows WHERE state = 'on' AND trigger_kind = 'recurrence' AND (next_fire_at IS NULL OR next_fire_at <= $1) ORDER BY next_fire_at, id LIMIT {}",
                    limit.min(1000)
                ),
                vec![now.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ScheduledFlow {
                    flow: flow_from(r)?,
                    anchor: r.opt_time(at)?,
                    next_fire_at: r.opt_time(at + 1)?,
                })
            })
            .collect()
    }

    async fn recurrence_fire(
        &self,
        flow_id: Uuid,
        environment_id: Uuid,
        due: OffsetDateTime,
        next: Option<OffsetDateTime>,
        run_id: Uuid,
        outputs: &Json,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        // The compare-and-set: of two processes that read the same due tick, one moves it on.
        let moved = tx
            .execute(
                "UPDATE flows SET next_fire_at = $2 WHERE id = $1 AND state = 'on' AND next_fire_at = $3",
                vec![flow_id.into(), next.into(), due.into()],
            )
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        // The run's id is the occurrence's: a tick queued before (by any process) stays one run.
        let queued = tx
            .execute(
                "INSERT INTO flow_runs (id, flow_id, environment_id, status, trigger_outputs, attempt, not_before, created_at) VALUES ($1, $2, $3, 'Queued', $4, 0, $5, $5) ON CONFLICT (id) DO NOTHING",
                vec![
                    run_id.into(),
                    flow_id.into(),
                    environment_id.into(),
                    outputs.to_string().into(),
                    now.into(),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(queued > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::RowChange;

    #[test]
    fn messages_fire_for_the_changes_they_name() {
        use RowChange::*;
        let fires = |m| [Added, Deleted, Modified].map(|c| c.fires(m));
        assert_eq!(fires(1), [true, false, false]);
        assert_eq!(fires(2), [false, true, false]);
        assert_eq!(fires(3), [false, false, true]);
        assert_eq!(fires(4), [true, false, true]);
        assert_eq!(fires(5), [true, true, false]);
        assert_eq!(fires(6), [false, true, true]);
        assert_eq!(fires(7), [true, true, true]);
        assert_eq!(fires(0), [false, false, false]);
    }
}
