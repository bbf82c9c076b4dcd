-- Every wallet holds one currency, fixed at creation; each ledger entry carries its
-- wallet's (written by the statement that writes the entry, from the wallet's row, so
-- it has no default). Wallets made before currencies existed are USD, as they always were.

ALTER TABLE wallets ADD COLUMN currency text NOT NULL DEFAULT 'USD'
    CONSTRAINT wallets_currency_is_a_code CHECK (currency ~ '^[A-Z]{3}$');

ALTER TABLE operations ADD COLUMN currency text NOT NULL DEFAULT 'USD';
ALTER TABLE operations ALTER COLUMN currency DROP DEFAULT;

-- The bounds are in major units, so in minor units they depend on the currency's digits:
-- each wallet keeps its currency's, and its balance is held to 9,000,000,000,000,000 of
-- its major units. A ledger entry is held to the bounds of the most digits, 3 (its
-- wallet's row holds the exact ones at every change).
ALTER TABLE wallets ADD COLUMN minor_digits smallint NOT NULL DEFAULT 2
    CONSTRAINT wallets_minor_digits_known CHECK (minor_digits IN (0, 2, 3));
ALTER TABLE wallets
    DROP CONSTRAINT wallets_balance_within_maximum,
    ADD CONSTRAINT wallets_balance_within_maximum CHECK (
        balance <= CASE minor_digits
                       WHEN 0 THEN 9000000000000000
                       WHEN 2 THEN 900000000000000000
                       ELSE 9000000000000000000
                   END
    );
ALTER TABLE operations
    DROP CONSTRAINT operations_amount_in_range,
    ADD CONSTRAINT operations_amount_in_range
        CHECK (amount > 0 AND amount <= 1000000000000000),
    DROP CONSTRAINT operations_balance_after_in_range,
    ADD CONSTRAINT operations_balance_after_in_range
        CHECK (balance_after >= 0 AND balance_after <= 9000000000000000000);
