"""One time budget per request for all it asks of the database, however many calls that takes.

Each database call is bounded by ``WALLET_DB_TIMEOUT`` on its own; a request that makes
several (an idempotency key looked up, then the operation applied) could otherwise wait
for each in turn. The HTTP layer opens a budget for every request; the adapters cut
their own bounds to it. The budget starts with the request's first wait for the
database, so a client slow to send its body spends none of it.

Only code on a request's own path reads the budget: a task that serves many requests
(the group-commit flusher) keeps its own bounds and starts in a context without one.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token


class Budget:
    """Seconds a request may wait for the database, counted from its first wait."""

    __slots__ = ("_deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline: float | None = None

    def deadline(self, now: float) -> float:
        if self._deadline is None:
            self._deadline = now + self.seconds
        return self._deadline


_current: ContextVar[Budget | None] = ContextVar("wallet_request_budget", default=None)


class request_budget:  # noqa: N801 - used as a function: ``with request_budget(2.0):``
    """Bound every database wait of the code run inside to ``seconds`` in all.

    A class rather than a generator-based context manager: it wraps every request.
    """

    __slots__ = ("_budget", "_token")

    def __init__(self, seconds: float) -> None:
        self._budget = Budget(seconds)
        self._token: Token[Budget | None] | None = None

    def __enter__(self) -> Budget:
        self._token = _current.set(self._budget)
        return self._budget

    def __exit__(self, *_: object) -> None:
        assert self._token is not None
        _current.reset(self._token)


def deadline_within(seconds: float) -> float:
    """The loop-clock deadline of a wait of at most ``seconds``, cut to the request's budget."""
    now = asyncio.get_running_loop().time()
    budget = _current.get()
    own = now + seconds
    return own if budget is None else min(own, budget.deadline(now))


def seconds_within(seconds: float) -> float:
    """As ``deadline_within``, as a number of seconds from now."""
    return deadline_within(seconds) - asyncio.get_running_loop().time()


def request_deadline() -> float | None:
    """The loop-clock time the current request's budget runs out, if it has one."""
    budget = _current.get()
    return None if budget is None else budget.deadline(asyncio.get_running_loop().time())
