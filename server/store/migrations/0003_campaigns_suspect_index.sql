-- The index PostgreSQL's schema has had since its 0002 (deleting a suspect cascades to its
-- campaigns; without it SQLite scans every campaign). Same schema on both backends again.
CREATE INDEX IF NOT EXISTS campaigns_suspect ON campaigns (suspect_id);
