-- Wallets hold their balance in integer minor units (cents); the ledger is append-only.

CREATE TABLE wallets (
    id          uuid        PRIMARY KEY,
    balance     bigint      NOT NULL DEFAULT 0,
    version     bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT wallets_balance_not_negative CHECK (balance >= 0),
    CONSTRAINT wallets_balance_within_maximum CHECK (balance <= 900000000000000000),
    CONSTRAINT wallets_version_not_negative CHECK (version >= 0)
);

CREATE INDEX wallets_by_creation ON wallets (created_at, id);

CREATE TABLE operations (
    id             uuid        PRIMARY KEY,
    wallet_id      uuid        NOT NULL REFERENCES wallets (id),
    operation_type text        NOT NULL,
    amount         bigint      NOT NULL,
    balance_after  bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT operations_known_type CHECK (operation_type IN ('DEPOSIT', 'WITHDRAW')),
    CONSTRAINT operations_amount_in_range CHECK (amount > 0 AND amount <= 100000000000000),
    CONSTRAINT operations_balance_after_in_range
        CHECK (balance_after >= 0 AND balance_after <= 900000000000000000)
);

CREATE INDEX operations_history ON operations (wallet_id, created_at DESC, id DESC);

CREATE FUNCTION operations_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the operations ledger is append-only: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER operations_append_only
    BEFORE UPDATE OR DELETE ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_are_append_only();

CREATE TRIGGER operations_no_truncate
    BEFORE TRUNCATE ON operations
    FOR EACH STATEMENT EXECUTE FUNCTION operations_are_append_only();

-- Secrets the service shares across processes and restarts, made here so that no
-- configuration is needed: the key that signs paging cursors.
CREATE TABLE service_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL CHECK (octet_length(value) >= 16)
);

INSERT INTO service_secrets (name, value)
VALUES ('cursor', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
