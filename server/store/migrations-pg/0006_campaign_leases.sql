-- Campaigns across replicas (issue 16): an unfinished campaign is run by the replica holding its
-- lease (the database's clock, like jobs'); a probe is marked sent only under the lease.
ALTER TABLE campaigns ADD COLUMN lease_owner TEXT;
ALTER TABLE campaigns ADD COLUMN lease_expires_ms BIGINT;
-- Request pacing shared by every replica: one row per limiter (a campaign's own rate, an
-- endpoint's ceiling); `next_us` is the next free send slot in epoch microseconds of the
-- database's clock. A request reserves the slot and moves it on by its interval.
CREATE TABLE rate_slots (
    key TEXT PRIMARY KEY,
    next_us BIGINT NOT NULL
);
