-- Bulk campaigns (gateway/push/campaigns.py): a campaign is a template, a pace and a delivery window; each of its
-- recipients is a queued push with pushes.campaign set. claim_due reads the active campaigns and takes at most
-- what each one's token bucket (bucket: tokens, bucket_at: when last refilled) allows, inside its window, and
-- writes the bucket back in the claim's transaction: the pace holds across gateway nodes on one database.
-- state: loading (its upload is still being stored: nothing is claimed, nothing is shown), active, paused,
-- cancelled. "window" is a reserved word in PostgreSQL: the window is three columns, all NULL for none.
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    mode TEXT NOT NULL,
    route TEXT,
    callback_url TEXT,
    rate_per_s DOUBLE PRECISION NOT NULL,
    window_start TEXT,
    window_end TEXT,
    window_tz TEXT,
    state TEXT NOT NULL,
    token TEXT,
    msisdn_prefix TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    bucket_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX campaigns_state ON campaigns (state);
-- claim_due's scans, one per active campaign and one for the pushes of no campaign, each in claiming order: a
-- campaign of 100,000 queued pushes is not walked through to find the next single push, nor another campaign's.
CREATE INDEX pushes_campaign_waiting ON pushes (campaign, priority DESC, created_at, id)
    WHERE state IN ('queued', 'retry_wait') AND campaign IS NOT NULL;
CREATE INDEX pushes_single_waiting ON pushes (priority DESC, created_at, id)
    WHERE state IN ('queued', 'retry_wait') AND campaign IS NULL;
-- A campaign's rate of the last minute: the attempts (moves to routing) in the last 60 s.
CREATE INDEX push_history_routing ON push_history (at) WHERE state = 'routing';
