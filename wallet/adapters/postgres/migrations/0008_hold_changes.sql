-- Changes to one wallet's holds, decided in order under its row lock by one call: a hot
-- wallet's placements, captures (without a payee) and voids share a statement, a lock
-- and a commit, as its deposits and withdrawals share a batch.
--
-- Each change is PLACE (the hold's id, amount, payee, seconds to expiry, reference and
-- metadata), CAPTURE (the hold's id, the amount captured, the WITHDRAW entry's id) or
-- VOID (the hold's id). Answered with one row per change, in order: its outcome (PLACED,
-- CAPTURED, VOIDED; REFUSED for a placement the wallet's available balance does not
-- cover; UNCHANGED for a capture or void of a hold that is not HELD), the status a
-- capture or void found the hold in (NULL: not the wallet's hold), the hold's expiry, and
-- the wallet right after the change (its updated_at is when the change was made) or, when
-- nothing changed, as it was. No rows when the wallet does not exist.
--
-- Every change is stamped a microsecond after the wallet's last (so its entries and
-- updated_at stay in order) and counts in the wallet's version as the one-change
-- statements count it; the wallet row is written once, at the end.
CREATE FUNCTION change_holds(
    wallet uuid,
    kinds text[],
    hold_ids uuid[],
    amounts bigint[],
    payees uuid[],
    expiries integer[],
    refs text[],
    metas jsonb[],
    entry_ids uuid[]
) RETURNS TABLE (
    change_outcome text,
    hold_status_found text,
    hold_expires_at timestamptz,
    wallet_balance bigint,
    wallet_held bigint,
    wallet_held_until timestamptz,
    wallet_version bigint,
    wallet_created_at timestamptz,
    wallet_updated_at timestamptz,
    wallet_metadata jsonb,
    wallet_currency text
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    w wallets%ROWTYPE;
    version_locked bigint;  -- the wallet's version when locked
    h holds%ROWTYPE;
    reserved bigint;       -- what the wallet's holds reserve now
    next_expiry timestamptz;
    stamp timestamptz;
    expiry timestamptz;
    found_status text;     -- the hold's status now, as a capture or void found it
    outcome text;
BEGIN
    SELECT * INTO w FROM wallets WHERE id = wallet FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    version_locked := w.version;
    reserved := wallet_held_now(w.id, w.held);
    next_expiry := wallet_held_until(w.id, w.held);
    FOR i IN 1 .. cardinality(kinds) LOOP
        expiry := NULL;
        IF kinds[i] = 'PLACE' THEN
            IF w.balance - reserved < amounts[i] THEN
                RETURN QUERY SELECT 'REFUSED'::text, NULL::text, NULL::timestamptz,
                    w.balance, reserved, next_expiry, w.version,
                    w.created_at, w.updated_at, w.metadata, w.currency;
                CONTINUE;
            END IF;
            stamp := greatest(clock_timestamp(), w.updated_at + interval '1 microsecond');
            expiry := stamp + make_interval(secs => expiries[i]);
            INSERT INTO holds (id, wallet_id, to_wallet_id, currency, amount, expires_at,
                               reference, metadata, created_at, updated_at)
            VALUES (hold_ids[i], w.id, payees[i], w.currency, amounts[i], expiry, refs[i],
                    metas[i], stamp, stamp);
            w.held := w.held + amounts[i];
            reserved := reserved + amounts[i];
            next_expiry := least(next_expiry, expiry);
            outcome := 'PLACED';
            found_status := NULL;
        ELSE
            SELECT * INTO h FROM holds WHERE id = hold_ids[i] AND wallet_id = w.id
               FOR UPDATE;
            found_status := CASE WHEN NOT FOUND THEN NULL
                                 WHEN h.status = 'HELD' AND h.expires_at <= clock_timestamp()
                                 THEN 'EXPIRED'
                                 ELSE h.status END;
            IF found_status = 'HELD' AND kinds[i] = 'CAPTURE'
               AND h.to_wallet_id IS NOT NULL THEN
                RAISE EXCEPTION 'hold % pays a wallet: its capture is a transfer', h.id;
            END IF;
            IF found_status IS DISTINCT FROM 'HELD' THEN
                RETURN QUERY SELECT 'UNCHANGED'::text, found_status, NULL::timestamptz,
                    w.balance, reserved, next_expiry, w.version,
                    w.created_at, w.updated_at, w.metadata, w.currency;
                CONTINUE;
            END IF;
            stamp := greatest(clock_timestamp(), w.updated_at + interval '1 microsecond');
            w.held := w.held - h.amount;
            reserved := reserved - h.amount;
            IF kinds[i] = 'CAPTURE' THEN
                w.balance := w.balance - amounts[i];
                INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after,
                                        currency, created_at, reference, metadata, hold_id)
                VALUES (entry_ids[i], w.id, 'WITHDRAW', amounts[i], w.balance, w.currency,
                        stamp, h.reference, h.metadata, h.id);
                UPDATE holds SET status = 'CAPTURED', captured_amount = amounts[i],
                                 updated_at = stamp
                 WHERE id = h.id;
                outcome := 'CAPTURED';
            ELSE
                UPDATE holds SET status = 'VOIDED', updated_at = stamp WHERE id = h.id;
                outcome := 'VOIDED';
            END IF;
            IF h.expires_at = next_expiry THEN
                next_expiry := wallet_held_until(w.id, w.held);
            END IF;
            expiry := h.expires_at;
        END IF;
        w.version := w.version + 1;
        w.updated_at := stamp;
        RETURN QUERY SELECT outcome, found_status, expiry, w.balance, reserved, next_expiry,
            w.version, w.created_at, w.updated_at, w.metadata, w.currency;
    END LOOP;
    IF w.version = version_locked THEN
        RETURN;  -- nothing changed: the row is left as it was
    END IF;
    UPDATE wallets SET balance = w.balance, held = w.held, version = w.version,
                       updated_at = w.updated_at
     WHERE id = w.id;
END;
$$;
