-- When what a wallet's holds reserve may change next: the earliest expiry among its holds
-- still marked HELD, passed or not. It is read beside wallet_held_now, each with a clock
-- reading of its own; until now it looked only at expiries still to come, so a hold
-- expiring between the two readings was counted as reserving by one and missing from the
-- other: the wallet read as holding it, with no moment to stop trusting that, and a cache
-- could serve it so until the next change. Now a hold past its expiry and not yet marked
-- gives a moment already past, and readers go to the database until the job marks it.
CREATE OR REPLACE FUNCTION wallet_held_until(wallet uuid, held bigint) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF held = 0 THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT min(h.expires_at) FROM holds h
             WHERE h.wallet_id = wallet AND h.status = 'HELD');
END;
$$;
