-- One large job shared by replicas (issue 16): its input is cut at line starts into parts, each
-- claimed and run under its own lease (owner, expiry by the database's clock); the job itself is
-- finished (an audit's part statistics merged) once every part is done.
ALTER TABLE jobs ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN parts_done INTEGER NOT NULL DEFAULT 0;
CREATE TABLE job_parts (
    job_id           TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    part_no          INTEGER NOT NULL,
    start_offset     INTEGER NOT NULL,   -- input bytes [start_offset, end_offset)
    end_offset       INTEGER NOT NULL,
    lines_before     INTEGER NOT NULL,   -- input lines before start_offset
    state            TEXT NOT NULL,      -- queued | running | done
    cursor_offset    INTEGER NOT NULL,   -- as a job's cursor, within the part
    cursor_line      INTEGER NOT NULL,
    stats            TEXT,               -- JSON: an audit part's sufficient statistics, once done
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (job_id, part_no)
) WITHOUT ROWID;
CREATE INDEX job_parts_open ON job_parts (job_id) WHERE state <> 'done';
