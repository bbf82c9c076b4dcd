-- Idempotency keys: the outcome of the first request under a key, written in the same
-- transaction as that request's effect, so a crash can never keep one without the other.
-- Replies are rebuilt from the immutable ledger and wallet rows they point at.

CREATE TABLE idempotency_keys (
    key            text        PRIMARY KEY,
    fingerprint    bytea       NOT NULL,
    request_id     text        NOT NULL,
    outcome        text        NOT NULL,
    wallet_id      uuid        NOT NULL,
    operation_id   uuid,
    balance_before bigint,
    amount         bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_known_outcome
        CHECK (outcome IN ('CREATED', 'APPLIED', 'INSUFFICIENT_FUNDS', 'BALANCE_LIMIT_EXCEEDED')),
    CONSTRAINT idempotency_keys_applied_names_its_operation
        CHECK ((outcome = 'APPLIED') = (operation_id IS NOT NULL)),
    CONSTRAINT idempotency_keys_refusal_keeps_its_numbers
        CHECK ((outcome IN ('INSUFFICIENT_FUNDS', 'BALANCE_LIMIT_EXCEEDED'))
               = (balance_before IS NOT NULL AND amount IS NOT NULL))
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
