-- The push store's first schema, in the SQL both SQLite (3.8+: partial indexes) and PostgreSQL run unchanged:
-- TEXT, INTEGER, DOUBLE PRECISION (SQLite gives it REAL affinity; PostgreSQL's REAL would be 4 bytes), JSON as TEXT.
-- Times are Unix seconds. The migration runner (store_sqlite.py, store_postgres.py) adds the schema_version row.

CREATE TABLE pushes (
    id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    text TEXT NOT NULL,
    mode TEXT NOT NULL,
    route TEXT,
    state TEXT NOT NULL,
    cause TEXT,
    answer TEXT,
    attempts INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    campaign TEXT,
    metadata TEXT NOT NULL,
    callback_url TEXT,
    callback_every_change INTEGER NOT NULL,
    dcs INTEGER NOT NULL,
    language TEXT,
    priority INTEGER NOT NULL,
    token TEXT,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION
);

-- design.md §8: per-MSISDN exclusivity is this index, not an in-memory set: never two pushes of one MSISDN in
-- flight, whichever node moves them (https://www.sqlite.org/partialindex.html,
-- https://www.postgresql.org/docs/15/indexes-partial.html).
CREATE UNIQUE INDEX pushes_msisdn_in_flight ON pushes (msisdn) WHERE state IN ('routing', 'sent');
-- claim_due's scan: the waiting pushes in claiming order.
CREATE INDEX pushes_waiting ON pushes (priority DESC, created_at, id) WHERE state IN ('queued', 'retry_wait');
-- list(): newest first, and its filters.
CREATE INDEX pushes_created ON pushes (created_at, id);
CREATE INDEX pushes_state ON pushes (state, created_at, id);
CREATE INDEX pushes_msisdn ON pushes (msisdn, created_at, id);
-- Campaigns come later; their pushes are already findable.
CREATE INDEX pushes_campaign ON pushes (campaign, created_at, id) WHERE campaign IS NOT NULL;

CREATE TABLE push_history (
    push_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (push_id, seq)
);

-- Stripe's idempotency rules (design.md §8): the same (token, key) replays the first push within the retention.
CREATE TABLE idempotency_keys (
    token TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    push_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (token, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The callback outbox, written in the transaction of the change it reports: at-least-once, the receiver
-- de-duplicates on delivery_id. No foreign key: a row outlives the purge of its push (its payload is a copy).
CREATE TABLE callback_outbox (
    delivery_id TEXT PRIMARY KEY,
    push_id TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX callback_outbox_due ON callback_outbox (next_at);

-- API tokens: only a hash is stored (gateway/push/tokens.py).
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    msisdn_prefix TEXT NOT NULL,
    rate DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
