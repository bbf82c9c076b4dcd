"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web

from wallet.config import Settings
from wallet.container import Container
from wallet.domain.services import WalletService

CONTAINER = web.AppKey("container", Container)
SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", WalletService)
REQUEST_ID = web.RequestKey("request_id", str)
ANSWERED_IN = web.RequestKey("answered_in", float)  # seconds from the middleware to the answer
