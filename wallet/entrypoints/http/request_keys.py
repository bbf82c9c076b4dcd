"""Typed keys for what each request carries, apart from the app's keys.

Access logging reads these; keeping them out of ``keys`` keeps the logging module
from loading the container and, with it, every adapter.
"""

from __future__ import annotations

from aiohttp import web

REQUEST_ID = web.RequestKey("request_id", str)
ANSWERED_IN = web.RequestKey("answered_in", float)  # seconds from the middleware to the answer
