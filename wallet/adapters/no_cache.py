"""The cache that is turned off: every read goes to the system of record."""

from __future__ import annotations

from uuid import UUID

from wallet.domain.model import Wallet
from wallet.domain.ports import CacheState, WalletLoader


class NoCache:
    """BalanceCache that remembers nothing."""

    async def read_through(self, wallet_id: UUID, load: WalletLoader) -> Wallet:
        return await load(wallet_id)

    async def put(self, wallet: Wallet) -> None:
        return None

    async def state(self) -> CacheState:
        return "disabled"
