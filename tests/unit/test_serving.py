"""The server that ``serve`` and gunicorn run: what it adds to the app."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator

import pytest

from wallet.container import Container
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.serving import (
    YOUNG_COLLECTION_THRESHOLD,
    PortInUse,
    app_runner,
    ensure_port_free,
)


class Cycle:
    itself: Cycle | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
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
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD  # fewer young passes
        cycle = Cycle()
        cycle.itself = cycle
        del cycle
        assert gc.collect() >= 1  # garbage made later is collected as usual
        assert gc.get_freeze_count() == frozen
    finally:
        await runner.cleanup()


def test_a_port_is_free_unless_something_listens_on_it() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as our workers'
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # sockets have them
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        ensure_port_free("127.0.0.1", port)  # bound, not listening yet: free

        listener.listen()
        with pytest.raises(PortInUse, match=f"something listens on 127.0.0.1:{port} already"):
            ensure_port_free("127.0.0.1", port)
        with pytest.raises(PortInUse):
            ensure_port_free("0.0.0.0", port)  # every address includes the one taken

    ensure_port_free("127.0.0.1", port)  # closed: free again
