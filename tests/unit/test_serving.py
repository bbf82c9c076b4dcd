"""The server that ``serve`` and gunicorn run: what it adds to the app."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.serving import app_runner


class Cycle:
    itself: Cycle | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_what_start_up_made_is_kept_out_of_full_collections(
    container: Container, unfrozen: None
) -> None:
    runner = app_runner(create_app(container), container.settings())
    assert gc.get_freeze_count() == 0
    await runner.setup()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules and the app, at least
        cycle = Cycle()
        cycle.itself = cycle
        del cycle
        assert gc.collect() >= 1  # garbage made later is collected as usual
        assert gc.get_freeze_count() == frozen
    finally:
        await runner.cleanup()
