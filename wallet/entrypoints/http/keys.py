"""Typed keys for what the app carries (a request's own keys are in ``request_keys``)."""

from __future__ import annotations

from aiohttp import web

from wallet.config import Settings
from wallet.container import Container
from wallet.domain.services import WalletService

CONTAINER = web.AppKey("container", Container)
SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", WalletService)
