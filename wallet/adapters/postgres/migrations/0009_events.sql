-- Events: every committed change, one row written by the statement that makes the change,
-- so an event exists exactly when its change committed. A row names what changed (the
-- wallet, the entry, the transfer or the hold); readers render it from those rows, which
-- are kept for good and, for a hold, settle once (the event's type says which state).
--
-- Ids come from a sequence, taken after the change's first write (its transaction has an
-- id by then). A reader returns only ids below a horizon that no transaction still running
-- can fill (see wallet/adapters/postgres/events.py), so a reader paging by the last id it
-- was given never later finds a smaller one. The sequence hands out one value at a time
-- (no per-session cache): ids follow the order they were taken in.

CREATE SEQUENCE events_id_seq AS bigint CACHE 1;

CREATE TABLE events (
    id         bigint      PRIMARY KEY DEFAULT nextval('events_id_seq'),
    type       text        NOT NULL,
    wallet_id  uuid        NOT NULL,
    payee_id   uuid        NULL,
    subject_id uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT events_known_type CHECK (type IN (
        'wallet.created', 'operation.applied', 'transfer.completed', 'hold.created',
        'hold.captured', 'hold.voided', 'hold.expired')),
    CONSTRAINT events_paying_another_wallet CHECK (payee_id <> wallet_id)
);

ALTER SEQUENCE events_id_seq OWNED BY events.id;

-- A wallet's events, and the transfers and captures paying it, for ?walletId=.
CREATE INDEX events_of_wallet ON events (wallet_id, id);
CREATE INDEX events_paying_wallet ON events (payee_id, id) WHERE payee_id IS NOT NULL;

CREATE FUNCTION events_are_never_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are never changed: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER events_never_updated
    BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_never_changed();

-- The feed itself: when it began (changes before have no event), and the highest id the
-- retention dropped, which tells a reader whose `after` is older that it missed some (410).
CREATE TABLE event_feed (
    single          boolean     PRIMARY KEY DEFAULT true CHECK (single),
    began_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    dropped_through bigint      NOT NULL DEFAULT 0
);
INSERT INTO event_feed DEFAULT VALUES;

-- Where each relay is in the feed: the last event its stream acknowledged.
CREATE TABLE event_relays (
    stream            text        PRIMARY KEY,
    published_through bigint      NOT NULL DEFAULT 0 CHECK (published_through >= 0),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The horizon's two readings, in this order: how far the sequence has come, then the
-- transactions of this database that hold an id now (any of them may still commit an
-- event id up to that value; a transaction starting later takes larger ones). The
-- activity view is read once per transaction, at its first use: after the sequence.
CREATE FUNCTION events_horizon(OUT taken bigint, OUT writing text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO taken FROM events_id_seq;
    SELECT coalesce(array_agg(a.backend_xid::text), '{}') INTO writing
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
       AND a.pid <> pg_backend_pid();
END;
$$;

-- change_holds (0008) as it was, each change it makes now writing its event beside it
-- (after the wallet's row lock, so the wallet's events follow its changes).
CREATE OR REPLACE FUNCTION change_holds(
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
            INSERT INTO events (type, wallet_id, subject_id, created_at)
            VALUES ('hold.created', w.id, hold_ids[i], stamp);
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
                INSERT INTO events (type, wallet_id, subject_id, created_at)
                VALUES ('hold.captured', w.id, h.id, stamp);
            ELSE
                UPDATE holds SET status = 'VOIDED', updated_at = stamp WHERE id = h.id;
                outcome := 'VOIDED';
                INSERT INTO events (type, wallet_id, subject_id, created_at)
                VALUES ('hold.voided', w.id, h.id, stamp);
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
