//! Recurrence triggers: saving a flow sets its schedule (`flows.next_fire_at`, counted from
//! `startTime` or from when it was turned on), and a scheduler loop in every server process
//! queues one run per due occurrence. The run's id is derived from the flow and the occurrence,
//! and the tick moves `next_fire_at` on by compare-and-set in the transaction that queues it, so
//! several processes on one database, or a restart, queue each occurrence once. A flow that
//! missed occurrences (the server was down) runs only the latest of them, then keeps to its
//! schedule; a flow that is off is not scheduled, and turning it on starts counting again.

use std::collections::HashSet;

use keyway_core::clock::to_micros;
use keyway_core::flows::{DefinitionError, FlowDefinition, RecurrenceSchedule, TriggerKind};
use keyway_store::{FlowRow, FlowStore, ScheduledFlow, StoreError};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::state::AppState;

/// How often each process looks for due occurrences: the latest a tick can be.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Flows looked at per poll (the soonest due first; the rest on the next poll).
const BATCH: u64 = 200;

/// Saving checks that the recurrence can be scheduled here (UTC only; where `schedule` applies).
pub fn check(def: &FlowDefinition) -> Result<(), DefinitionError> {
    match &def.trigger.kind {
        TriggerKind::Recurrence(r) => {
            RecurrenceSchedule::check(r).map_err(|e| e.in_trigger(&def.trigger.name))
        }
        _ => Ok(()),
    }
}

/// After a save: a recurrence flow turned on, or whose trigger changed while on, counts from now
/// (when it has no `startTime`) and is due at its first occurrence from now; a flow turned off,
/// or no longer a recurrence, is unscheduled. Other saves (a rename) leave the schedule alone.
pub async fn reschedule(
    state: &AppState,
    before: Option<&FlowRow>,
    after: &FlowRow,
) -> Result<(), StoreError> {
    let unchanged = before.is_some_and(|b| {
        b.on == after.on
            && b.trigger_kind == after.trigger_kind
            && b.definition.get("triggers") == after.definition.get("triggers")
    });
    let was_scheduled = before.is_some_and(|b| b.on && b.trigger_kind == "recurrence");
    if unchanged {
        return Ok(());
    }
    let now = whole_second(state.clock.now());
    let schedule = match schedule_of(after, now) {
        Some(Ok(s)) if after.on => Some(s),
        _ if !was_scheduled => return Ok(()),
        _ => None,
    };
    let (anchor, next) = match &schedule {
        Some(s) => (Some(now), s.next_at_or_after(now)),
        None => (None, None),
    };
    state
        .store
        .flow_schedule_set(after.id, after.version, anchor, next)
        .await?;
    Ok(())
}

/// Schedules count from whole seconds: turning a flow on at 10:00:05.7 makes 10:00:05 its
/// first occurrence, due at once.
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The flow's recurrence schedule, counted from `turned_on` when it has no `startTime`; `None`
/// when its trigger is not a recurrence.
fn schedule_of(
    flow: &FlowRow,
    turned_on: OffsetDateTime,
) -> Option<Result<RecurrenceSchedule, String>> {
    let def = match FlowDefinition::parse(&flow.definition) {
        Ok(d) => d,
        Err(e) => return Some(Err(e.to_string())),
    };
    match &def.trigger.kind {
        TriggerKind::Recurrence(r) => {
            Some(RecurrenceSchedule::new(r, turned_on).map_err(|e| e.to_string()))
        }
        _ => None,
    }
}

pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        // Flows (at a version) that cannot be scheduled, reported once rather than every poll.
        let mut unschedulable = HashSet::new();
        loop {
            match tick(&state, &mut unschedulable).await {
                Ok(0) => {}
                Ok(_) => state.flow_wake.notify_one(),
                Err(e) => tracing::warn!(error = %e, "scheduling recurrence triggers failed"),
            }
            tokio::time::sleep(POLL).await;
        }
    });
}

/// The run id of a flow's occurrence: the same in every process.
pub fn occurrence_id(flow_id: Uuid, at: OffsetDateTime) -> Uuid {
    Uuid::new_v5(&flow_id, &to_micros(at).to_be_bytes())
}

/// What a recurrence hands its run (`triggerOutputs()`): the occurrence it runs for and when it
/// was queued.
fn outputs(scheduled: OffsetDateTime, started: OffsetDateTime) -> Value {
    let text = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    json!({
        "headers": {},
        "body": {"scheduledTime": text(scheduled), "startTime": text(started)},
    })
}

/// One pass: schedule flows that are on but not scheduled yet, and queue each due occurrence.
/// Returns how many runs this process queued.
pub async fn tick(
    state: &AppState,
    unschedulable: &mut HashSet<(Uuid, i64)>,
) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let mut queued = 0;
    for ScheduledFlow {
        flow,
        anchor,
        next_fire_at,
    } in state.store.flows_due(now, BATCH).await?
    {
        if unschedulable.contains(&(flow.id, flow.version)) {
            continue;
        }
        let turned_on = anchor.unwrap_or(now);
        let schedule = match schedule_of(&flow, turned_on) {
            Some(Ok(s)) => s,
            Some(Err(why)) => {
                tracing::warn!(flow = %flow.id, error = %why, "a recurrence flow cannot be scheduled");
                unschedulable.insert((flow.id, flow.version));
                continue;
            }
            None => continue,
        };
        let Some(due) = next_fire_at else {
            // On but never scheduled (saved before this server kept schedules, or the save's
            // schedule write was lost): count from now, as if turned on now.
            let next = schedule.next_at_or_after(whole_second(now));
            if next.is_none() {
                unschedulable.insert((flow.id, flow.version));
            }
            state
                .store
                .flow_schedule_set(flow.id, flow.version, Some(turned_on), next)
                .await?;
            continue;
        };
        // Missed occurrences are not replayed: the latest of them runs, for its own time.
        let fire = schedule
            .latest_at_or_before(now)
            .filter(|at| *at >= due)
            .unwrap_or(due);
        let next = schedule.next_after(now);
        if state
            .store
            .recurrence_fire(
                flow.id,
                flow.environment_id,
                due,
                next,
                occurrence_id(flow.id, fire),
                &outputs(fire, now),
                now,
            )
            .await?
        {
            queued += 1;
        }
    }
    Ok(queued)
}
