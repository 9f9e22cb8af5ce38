-- Issue 12: served logs (the answers the provider served to an account, or fresh answers of the
-- same snapshot to the same prompts), the membership results of suspects, and the further fresh
-- answers a served-log campaign asks the upstream for (`fresh_per_prompt` > 1).
CREATE TABLE served_logs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,                   -- served | fresh
    format      TEXT NOT NULL,                   -- the datasets format it was read as
    answers     INTEGER NOT NULL,
    prompts     INTEGER NOT NULL,                -- distinct normalised prompts
    summary     TEXT NOT NULL,                   -- JSON [datasets::AccountSummary]
    created_by  TEXT,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE served_answers (
    log_id      TEXT NOT NULL REFERENCES served_logs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,                -- 1-based order in the uploaded file
    prompt      TEXT NOT NULL,
    response    TEXT NOT NULL,
    account     TEXT,
    created     INTEGER,                         -- the record's own time (unix seconds), if any
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX served_answers_account ON served_answers (log_id, account);

CREATE TABLE membership_results (
    id          TEXT PRIMARY KEY,
    suspect_id  TEXT NOT NULL REFERENCES suspects (id) ON DELETE CASCADE,
    served_log  TEXT NOT NULL,                   -- not a foreign key: a result outlives its log
    account     TEXT,
    campaign_id TEXT,
    decision    TEXT NOT NULL,                   -- trained_on_served | not_detected | invalid
    p_value     REAL NOT NULL,
    prompts     INTEGER NOT NULL,
    report      TEXT NOT NULL,                   -- JSON: the detector's MembershipReport + inputs
    created_by  TEXT,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX membership_results_suspect ON membership_results (suspect_id, created_ms);

ALTER TABLE campaign_probes ADD COLUMN upstream_extra TEXT; -- JSON array of further fresh answers
