"""The gunicorn factory refuses to guess a database (``serve`` looks for one; it does not)."""

from __future__ import annotations

import pytest

from wallet.config import SettingsError
from wallet.entrypoints.gunicorn import app


async def test_the_factory_needs_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match="WALLET_DATABASE_URL"):
        await app()
