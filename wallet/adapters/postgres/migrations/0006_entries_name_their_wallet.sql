-- A ledger entry names its wallet without a foreign key. The key's check looked the wallet
-- up again for every entry written, about a fifth of a group-committed batch's time, while
-- the one statement that writes entries writes each beside its own wallet's locked UPDATE:
-- the wallet is there, and stays. Wallets are never deleted (below), and `wallet audit`
-- proves every entry names a wallet of its own currency.

ALTER TABLE operations DROP CONSTRAINT operations_wallet_id_fkey;

CREATE FUNCTION wallets_are_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallets are kept for their ledger: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER wallets_never_deleted
    BEFORE DELETE ON wallets
    FOR EACH ROW EXECUTE FUNCTION wallets_are_kept();

CREATE TRIGGER wallets_never_truncated
    BEFORE TRUNCATE ON wallets
    FOR EACH STATEMENT EXECUTE FUNCTION wallets_are_kept();
