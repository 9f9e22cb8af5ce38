-- Work claiming across replicas (issue 16): an unfinished job is run by the replica holding its
-- lease; a lease not renewed by `lease_expires_ms` (the database's clock) can be claimed by any.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER;
