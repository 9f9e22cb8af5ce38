-- pedigree server store, version 1.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    key_hash    TEXT NOT NULL UNIQUE,           -- hex sha256 of the full key; the key itself is never stored
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    key_id      TEXT,                            -- NULL when the request had no valid key
    role        TEXT,
    action      TEXT NOT NULL,                   -- e.g. "POST /v1/suspects/{id}/samples"
    target      TEXT NOT NULL,                   -- the concrete path, e.g. "/v1/suspects/sus_x/samples"
    detail      TEXT NOT NULL DEFAULT '{}',      -- JSON
    status      INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_key ON audit_log (key_id, id);

CREATE TABLE profiles (
    name        TEXT PRIMARY KEY,
    upstream    TEXT NOT NULL,
    meta        TEXT NOT NULL,                   -- JSON ProfileMeta
    path        TEXT,                            -- file under DATA/profiles/, NULL for the built-in one
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE suspects (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    profile         TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    verdict         TEXT,                        -- cached JSON verdict
    verdict_n       INTEGER,                     -- number of samples the cached verdict covers
    strength        REAL                         -- -log10 p of the cached verdict (dashboard ordering)
);
CREATE INDEX suspects_strength ON suspects (strength DESC);

CREATE TABLE samples (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    suspect_id      TEXT NOT NULL REFERENCES suspects (id) ON DELETE CASCADE,
    content_hash    TEXT NOT NULL,
    text            TEXT NOT NULL,
    prompt          TEXT,
    source          TEXT NOT NULL,
    added_ms        INTEGER NOT NULL,
    score           TEXT,                        -- JSON TextScore
    UNIQUE (suspect_id, content_hash)
);

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,               -- score | profile_build | (later) audit | probe
    state           TEXT NOT NULL,               -- queued | running | done | failed | cancelled
    params          TEXT NOT NULL DEFAULT '{}',  -- JSON, kind-specific
    input_path      TEXT,
    total           INTEGER,
    done            INTEGER NOT NULL DEFAULT 0,
    cursor_offset   INTEGER NOT NULL DEFAULT 0,  -- byte offset of the next unread input line
    cursor_line     INTEGER NOT NULL DEFAULT 0,  -- number of the next unread input line
    error           TEXT,
    created_by      TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE job_results (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    line_no     INTEGER NOT NULL,
    result      TEXT NOT NULL,                   -- JSON
    PRIMARY KEY (job_id, line_no)
) WITHOUT ROWID;
