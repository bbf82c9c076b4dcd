"""The wallets on PostgreSQL: created, looked up and listed."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from wallet.adapters.json_metadata import metadata_to_json
from wallet.adapters.postgres.connections import bounded_connection, transaction_if
from wallet.adapters.postgres.idempotency_records import record_outcome
from wallet.adapters.postgres.rows import WALLET_COLUMNS, wallet_from_row
from wallet.deadlines import seconds_within
from wallet.domain.currency import USD, Currency
from wallet.domain.errors import WalletNotFound
from wallet.domain.idempotency import Idempotency, Outcome
from wallet.domain.model import Wallet
from wallet.domain.pagination import Position
from wallet.domain.references import NO_METADATA, Metadata

if TYPE_CHECKING:
    from wallet.adapters.postgres.pool import Connection

# Creating takes this lock shared and listing takes it exclusively, so a page is read
# only once every wallet stamped before it has committed: pages never skip a wallet.
WALLET_LIST_LOCK = 0x77616C6C6574_01

CREATE_WALLET = """
WITH locked AS (
    SELECT pg_advisory_xact_lock_shared($2)
), stamped AS (
    SELECT clock_timestamp() AS at FROM locked
), created AS (
    INSERT INTO wallets (id, currency, minor_digits, created_at, updated_at, metadata)
    SELECT $1, $3, $4, at, at, $5::text::jsonb FROM stamped
    RETURNING id, balance, currency, version, created_at, updated_at, metadata
), announced AS (
    INSERT INTO events (type, wallet_id, subject_id, created_at)
    SELECT 'wallet.created', id, id, created_at FROM created
)
SELECT * FROM created
"""

GET_WALLET = f"""
SELECT {WALLET_COLUMNS} FROM wallets
 WHERE id = $1
"""  # nosec B608
LOCK_WALLET_LIST = "SELECT pg_advisory_xact_lock($1)"

LIST_WALLETS_FIRST = f"""
SELECT {WALLET_COLUMNS} FROM wallets
ORDER BY created_at, id
LIMIT $1
"""  # nosec B608

LIST_WALLETS_AFTER = f"""
SELECT {WALLET_COLUMNS} FROM wallets
WHERE (created_at, id) > ($2, $3)
ORDER BY created_at, id
LIMIT $1
"""  # nosec B608

LOAD_SERVICE_KEY = "SELECT value FROM service_secrets WHERE name = $1"


class PostgresWallets:
    """Wallets on an asyncpg pool; waits at most ``timeout`` seconds per call."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    async def create(
        self,
        wallet_id: UUID,
        idempotency: Idempotency | None = None,
        *,
        currency: Currency = USD,
        metadata: Metadata = NO_METADATA,
    ) -> Wallet:
        async with (
            self._connection() as connection,
            transaction_if(connection, idempotency is not None),
        ):
            row = await connection.fetchrow(
                CREATE_WALLET,
                wallet_id,
                WALLET_LIST_LOCK,
                currency.code,
                currency.digits,
                metadata_to_json(metadata),
            )
            await record_outcome(connection, idempotency, Outcome.CREATED, wallet_id)
        assert row is not None, "INSERT … RETURNING returns its row"
        return wallet_from_row(row)

    async def get(self, wallet_id: UUID) -> Wallet:
        async with self._connection() as connection:
            row = await connection.fetchrow(GET_WALLET, wallet_id)
        if row is None:
            raise WalletNotFound(wallet_id)
        return wallet_from_row(row)

    async def list_wallets(self, limit: int, after: Position | None) -> list[Wallet]:
        async with self._connection() as connection, connection.transaction(readonly=True):
            await connection.execute(LOCK_WALLET_LIST, WALLET_LIST_LOCK)
            if after is None:
                rows = await connection.fetch(LIST_WALLETS_FIRST, limit)
            else:
                rows = await connection.fetch(LIST_WALLETS_AFTER, limit, after.created_at, after.id)
        return [wallet_from_row(row) for row in rows]

    async def load_secret(self, name: str) -> bytes:
        """A secret made by the migrations, shared by every process of the service."""
        async with self._connection() as connection:
            value = await connection.fetchval(LOAD_SERVICE_KEY, name)
        if value is None:
            raise LookupError(f"no service secret named {name!r}; run the migrations")
        return bytes(value)

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        return bounded_connection(self._pool, seconds_within(self._timeout))
