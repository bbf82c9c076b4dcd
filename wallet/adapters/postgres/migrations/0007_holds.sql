-- Holds: money reserved on a wallet now, captured (moved as a withdrawal or a transfer)
-- or voided later, or left to expire. A hold is HELD until one of those happens; from
-- its expires_at on, a hold still marked HELD reads as EXPIRED and reserves nothing,
-- whether or not the background job has marked it yet (the database's clock decides).
--
-- wallets.held is the sum of the wallet's holds marked HELD, kept by the statements that
-- change them under the wallet's row lock; what a wallet reserves now is that less its
-- holds past their expiry and not yet marked (wallet_held_now). A wallet with nothing
-- held pays nothing for holds on its hot path.
--
-- A wallet's version counts its changes: ledger entries, holds placed, and holds voided
-- or marked expired (a capture is counted by its entry). The cache orders wallets by it.

ALTER TABLE wallets ADD COLUMN held bigint NOT NULL DEFAULT 0
    CONSTRAINT wallets_held_not_negative CHECK (held >= 0);

CREATE TABLE holds (
    id              uuid        PRIMARY KEY,
    wallet_id       uuid        NOT NULL,
    to_wallet_id    uuid        NULL,
    currency        text        NOT NULL,
    amount          bigint      NOT NULL,
    captured_amount bigint      NULL,
    status          text        NOT NULL DEFAULT 'HELD',
    expires_at      timestamptz NOT NULL,
    reference       text        NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT holds_known_status CHECK (status IN ('HELD', 'CAPTURED', 'VOIDED', 'EXPIRED')),
    CONSTRAINT holds_amount_in_range CHECK (amount > 0 AND amount <= 1000000000000000),
    CONSTRAINT holds_capture_within_hold
        CHECK ((status = 'CAPTURED') = (captured_amount IS NOT NULL)
               AND (captured_amount IS NULL OR captured_amount BETWEEN 1 AND amount)),
    CONSTRAINT holds_pay_another_wallet CHECK (to_wallet_id <> wallet_id),
    CONSTRAINT holds_expire_after_creation CHECK (expires_at > created_at)
);

-- A wallet's holds, newest first, for its list (and its list by status).
CREATE INDEX holds_of_wallet ON holds (wallet_id, created_at DESC, id DESC);
-- The holds still marked HELD, by expiry: what a wallet reserves, and what the job marks.
CREATE INDEX holds_open ON holds (wallet_id, expires_at) WHERE status = 'HELD';
CREATE INDEX holds_open_by_expiry ON holds (expires_at) WHERE status = 'HELD';

CREATE FUNCTION holds_change_only_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.status <> 'HELD' OR NEW.status = 'HELD'
       OR (NEW.id, NEW.wallet_id, NEW.to_wallet_id, NEW.amount, NEW.expires_at,
           NEW.created_at, NEW.currency)
          IS DISTINCT FROM
          (OLD.id, OLD.wallet_id, OLD.to_wallet_id, OLD.amount, OLD.expires_at,
           OLD.created_at, OLD.currency) THEN
        RAISE EXCEPTION 'a hold changes once, from HELD: % is not allowed', TG_OP;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER holds_settle_once
    BEFORE UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION holds_change_only_once();

-- What the wallet reserves now: its holds marked HELD, less those past their expiry. In
-- PL/pgSQL, so its query's plan is kept for the session (a SQL function's is made again
-- for every statement calling it, which costs more than the query), and VOLATILE, so its
-- query takes a snapshot of its own: a statement that waited for the wallet's row lock
-- sees the holds as they are now, as the locked row is.
CREATE FUNCTION wallet_held_now(wallet uuid, held bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF held = 0 THEN
        RETURN 0;
    END IF;
    RETURN held - coalesce((SELECT sum(h.amount) FROM holds h
                             WHERE h.wallet_id = wallet AND h.status = 'HELD'
                               AND h.expires_at <= clock_timestamp()), 0);
END;
$$;

-- When the next of the wallet's holds expires (NULL when none reserves anything now):
-- until then, what it reserves stays as read.
CREATE FUNCTION wallet_held_until(wallet uuid, held bigint) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF held = 0 THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT min(h.expires_at) FROM holds h
             WHERE h.wallet_id = wallet AND h.status = 'HELD'
               AND h.expires_at > clock_timestamp());
END;
$$;

-- Captures: entries of a capture name their hold; a capture to another wallet is a
-- transfer that names it too. A recorded answer may name the hold it placed or settled.
ALTER TABLE operations ADD COLUMN hold_id uuid NULL;
ALTER TABLE transfers ADD COLUMN hold_id uuid NULL;
CREATE INDEX operations_of_hold ON operations (hold_id) WHERE hold_id IS NOT NULL;

ALTER TABLE idempotency_keys ADD COLUMN hold_id uuid NULL;
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_known_outcome,
    ADD CONSTRAINT idempotency_keys_known_outcome
        CHECK (outcome IN ('CREATED', 'APPLIED', 'INSUFFICIENT_FUNDS', 'BALANCE_LIMIT_EXCEEDED',
                           'HELD', 'CAPTURED', 'VOIDED')),
    DROP CONSTRAINT idempotency_keys_applied_names_its_operation,
    ADD CONSTRAINT idempotency_keys_applied_names_its_operation
        CHECK ((outcome IN ('APPLIED', 'CAPTURED')) = (operation_id IS NOT NULL)),
    ADD CONSTRAINT idempotency_keys_hold_outcome_names_its_hold
        CHECK (outcome NOT IN ('HELD', 'CAPTURED', 'VOIDED') OR hold_id IS NOT NULL);
-- A refusal recorded with what holds reserved of the balance it saw, for its detail.
ALTER TABLE idempotency_keys ADD COLUMN held_before bigint NULL;
