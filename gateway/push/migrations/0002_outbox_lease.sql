-- A lease on each callback, like the one on pushes: the node sending a callback claims it until claimed_until, so
-- that two gateway nodes on one database never POST the same callback at the same time, and a dead node's claims
-- run out and another node sends them (PushStore.outbox_due). ADD COLUMN without a default: both SQLite and
-- PostgreSQL add a NULL column without rewriting the table. NULL claimed_until: never claimed, or released.
ALTER TABLE callback_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE callback_outbox ADD COLUMN claimed_until DOUBLE PRECISION;
