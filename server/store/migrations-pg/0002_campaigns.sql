-- Probe campaigns against suspect endpoints (PostgreSQL; as migrations/0002_campaigns.sql).

-- Targets a campaign may send requests to: `host:port`, managed by admins. See src/probe/allowlist.rs.
CREATE TABLE allowlist (
    entry       TEXT COLLATE "C" PRIMARY KEY,    -- lower-case "host:port" (IPv6 as "[::1]:port")
    note        TEXT NOT NULL DEFAULT '',
    created_by  TEXT,
    created_ms  BIGINT NOT NULL
);

-- Named API keys of suspect / upstream endpoints. Values are never returned by any route.
CREATE TABLE secrets (
    name        TEXT COLLATE "C" PRIMARY KEY,
    value       TEXT NOT NULL,
    created_by  TEXT,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id          TEXT COLLATE "C" PRIMARY KEY,
    suspect_id  TEXT COLLATE "C" NOT NULL REFERENCES suspects (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,                   -- queued | running | done | failed | cancelled
    spec        TEXT NOT NULL,                   -- JSON CampaignSpec (secret NAMES only)
    fingerprint TEXT NOT NULL,                   -- sha256 of the spec + probes (CLI resume)
    sequential  TEXT,                            -- JSON detector::sequential::Sequential (α spent, looks)
    p_value     DOUBLE PRECISION,
    decision    TEXT,                            -- distilled | independent | undecided
    teacher     TEXT,
    stop_reason TEXT,
    error       TEXT,
    tokens      BIGINT NOT NULL DEFAULT 0,       -- tokens used by the suspect's answers
    created_by  TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX campaigns_state ON campaigns (state);
CREATE INDEX campaigns_fingerprint ON campaigns (fingerprint);
CREATE INDEX campaigns_suspect ON campaigns (suspect_id);

-- One row per probe. A probe is marked `sent` (committed) BEFORE its first request goes out and
-- is never sent again once it left `pending`; see src/probe/campaign.rs for the restart policy.
CREATE TABLE campaign_probes (
    campaign_id     TEXT COLLATE "C" NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    probe_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    prompt          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | answered | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    answer          TEXT,
    error           TEXT,
    tokens          BIGINT,
    claims          TEXT,                              -- JSON identity claims found in the answer
    sample_id       BIGINT,
    upstream_state  TEXT,                              -- NULL without upstream; else as `state`
    upstream_answer TEXT,
    upstream_error  TEXT,
    sent_ms         BIGINT,
    done_ms         BIGINT,
    PRIMARY KEY (campaign_id, seq)
);
