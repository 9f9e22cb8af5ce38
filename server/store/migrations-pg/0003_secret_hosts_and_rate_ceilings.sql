-- Issue 14: a secret is sent only to the endpoints (`host:port`, comma-separated) an admin bound
-- it to (empty: none; secrets stored before this migration must be bound before use), and an
-- admin may cap the request rate of all campaigns to an allowlisted endpoint (requests/s; NULL:
-- no ceiling beyond each campaign's own rate).
ALTER TABLE secrets ADD COLUMN hosts TEXT NOT NULL DEFAULT '';
ALTER TABLE allowlist ADD COLUMN max_rate_per_sec DOUBLE PRECISION;
