"""A write is acknowledged only once readers are sure to see it, a replay included."""

from __future__ import annotations

import pytest

from wallet.adapters.memory import InMemoryBalanceCache
from wallet.domain.errors import StorageUnavailable
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import OperationCommand, OperationType
from wallet.domain.money import Money, parse_amount
from wallet.domain.services import WalletService

DEPOSIT = OperationCommand(OperationType.DEPOSIT, parse_amount("5.00"))


async def test_a_write_readers_may_not_see_answers_unavailable_and_its_replay_refreshes_them(
    service: WalletService, cache: InMemoryBalanceCache
) -> None:
    wallet = (await service.create_wallet()).value
    assert (await service.get_wallet(wallet.id)).balance == Money(0)  # cached
    key = Idempotency.of("k-1", "POST", f"/api/v1/wallets/{wallet.id}/operation", "5", "r-1")

    cache.unfenced = True
    with pytest.raises(StorageUnavailable):
        await service.apply_operation(wallet.id, DEPOSIT, key)
    cache.unfenced = False

    replay = await service.apply_operation(wallet.id, DEPOSIT, key)
    assert replay.replayed
    assert (await service.get_wallet(wallet.id)).balance == Money(500)
