-- PostgreSQL's own ceiling for the transfer-hot scenario (perf/bench.py sets the tables up):
-- one transfer per transaction, one statement, one round trip: wallet :payer, drawn among
-- 1..:payers (pgbench -D payers=N), pays 100 cents to wallet 0, the one payee, and each of
-- the two rows moved gets its ledger row with the balance after. The table's CHECK
-- (balance >= 0) refuses an overdraft, so the statement moves both balances or neither.
\set payer random(1, :payers)
WITH moved AS (
    UPDATE wallet
       SET balance = wallet.balance + leg.amount
      FROM (VALUES (:payer, -100), (0, 100)) AS leg (wallet_id, amount)
     WHERE wallet.id = leg.wallet_id
 RETURNING wallet.id, leg.amount, wallet.balance
)
INSERT INTO ledger (wallet_id, amount, balance_after) SELECT id, amount, balance FROM moved;
