-- One large job shared by replicas (issue 16): its input is cut at line starts into parts, each
-- claimed and run under its own lease (owner, expiry by the database's clock); the job itself is
-- finished (an audit's part statistics merged) once every part is done.
ALTER TABLE jobs ADD COLUMN parts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN parts_done BIGINT NOT NULL DEFAULT 0;
CREATE TABLE job_parts (
    job_id           TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    part_no          BIGINT NOT NULL,
    start_offset     BIGINT NOT NULL,   -- input bytes [start_offset, end_offset)
    end_offset       BIGINT NOT NULL,
    lines_before     BIGINT NOT NULL,   -- input lines before start_offset
    state            TEXT NOT NULL,      -- queued | running | done
    cursor_offset    BIGINT NOT NULL,   -- as a job's cursor, within the part
    cursor_line      BIGINT NOT NULL,
    stats            TEXT,               -- JSON: an audit part's sufficient statistics, once done
    lease_owner      TEXT,
    lease_expires_ms BIGINT,
    updated_ms       BIGINT NOT NULL,
    PRIMARY KEY (job_id, part_no)
);
CREATE INDEX job_parts_open ON job_parts (job_id) WHERE state <> 'done';
