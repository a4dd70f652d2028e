-- Recurrence triggers: the instant a flow's schedule counts from when it has no startTime (the
-- moment it was turned on), and its next occurrence. The scheduler moves next_fire_at on by
-- compare-and-set in the transaction that queues the tick's run, so each tick queues once across
-- server processes and restarts.

ALTER TABLE flows ADD COLUMN schedule_anchor BIGINT;
ALTER TABLE flows ADD COLUMN next_fire_at BIGINT;
CREATE INDEX flows_next_fire ON flows (state, trigger_kind, next_fire_at);
