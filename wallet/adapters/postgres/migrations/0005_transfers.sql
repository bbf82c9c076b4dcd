-- Transfers: money moved between two wallets of one currency, as a TRANSFER_OUT entry of
-- the payer and a TRANSFER_IN entry of the payee that commit together. The transfer
-- names its two entries; each entry names its transfer (entries of other kinds: none).
-- An idempotency record of an applied transfer names it beside its first entry.
-- The transfer row and its entries are written by one statement; they carry no foreign
-- keys (each would cost a lookup per row on the hottest write), and `wallet audit`
-- proves every transfer is exactly its two entries, on the wallets it names.

ALTER TABLE operations
    DROP CONSTRAINT operations_known_type,
    ADD CONSTRAINT operations_known_type
        CHECK (operation_type IN ('DEPOSIT', 'WITHDRAW', 'TRANSFER_OUT', 'TRANSFER_IN'));
ALTER TABLE operations ADD COLUMN transfer_id uuid NULL;
ALTER TABLE operations ADD CONSTRAINT operations_transfer_entries_name_their_transfer
    CHECK ((operation_type IN ('TRANSFER_OUT', 'TRANSFER_IN')) = (transfer_id IS NOT NULL))
    NOT VALID;

CREATE TABLE transfers (
    id               uuid        PRIMARY KEY,
    from_wallet_id   uuid        NOT NULL,
    to_wallet_id     uuid        NOT NULL,
    currency         text        NOT NULL,
    amount           bigint      NOT NULL,
    reference        text        NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    out_operation_id uuid        NOT NULL UNIQUE,
    in_operation_id  uuid        NOT NULL UNIQUE,
    CONSTRAINT transfers_between_two_wallets CHECK (from_wallet_id <> to_wallet_id),
    CONSTRAINT transfers_amount_positive CHECK (amount > 0)
);

CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION operations_are_append_only();

ALTER TABLE idempotency_keys ADD COLUMN transfer_id uuid NULL;
