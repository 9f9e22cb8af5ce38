-- Profiles shared by replicas (issue 16): an uploaded or built profile's file is kept in the
-- database too, so that every replica loads it (each watches for new and deleted profiles),
-- whatever its data directory. A few MB per profile.
CREATE TABLE profile_files (
    name   TEXT COLLATE "C" PRIMARY KEY REFERENCES profiles (name) ON DELETE CASCADE,
    bytes  BYTEA NOT NULL
);
