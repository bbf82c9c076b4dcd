-- A client's own words about an entry or a wallet: a reference (not unique) that a
-- wallet's history can be filtered by, and metadata, a small object of string values.
-- Both are checked by the service before they are written. Rows made before they existed
-- have neither; the constant defaults add the columns without rewriting the tables, and
-- the previous release, which names its columns, writes rows with neither too.

ALTER TABLE operations ADD COLUMN reference text NULL;
ALTER TABLE operations ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE wallets ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';

-- A wallet's entries of one reference, newest first: the history's order within the
-- reference. Only entries that have one are indexed. On a large ledger, build it by
-- hand first (CONCURRENTLY), as docs/operations.md says: this then finds it.
CREATE INDEX IF NOT EXISTS operations_by_reference
    ON operations (wallet_id, reference, created_at DESC, id DESC)
    WHERE reference IS NOT NULL;
