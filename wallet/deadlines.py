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

from asyncio import get_running_loop
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


class request_budget(Budget):  # noqa: N801 - used as a function: ``with request_budget(2.0):``
    """Bound every database wait of the code run inside to ``seconds`` in all.

    The budget is its own context manager, a slotted class rather than a generator:
    it wraps every request, so one object is made per request, not three.
    """

    __slots__ = ("_token",)
    _token: Token[Budget | None]

    def __enter__(self) -> Budget:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_: object) -> None:
        _current.reset(self._token)


def deadline_within(seconds: float) -> float:
    """The loop-clock deadline of a wait of at most ``seconds``, cut to the request's budget."""
    now = get_running_loop().time()
    budget = _current.get()
    own = now + seconds
    if budget is None:
        return own
    deadline = budget.deadline(now)
    return own if own < deadline else deadline


def seconds_within(seconds: float) -> float:
    """As ``deadline_within``, as a number of seconds from now."""
    budget = _current.get()
    if budget is None:  # no request's budget to cut it to: no clock to read
        return seconds
    now = get_running_loop().time()
    left = budget.deadline(now) - now
    return seconds if seconds < left else left


def request_deadline() -> float | None:
    """The loop-clock time the current request's budget runs out, if it has one."""
    budget = _current.get()
    return None if budget is None else budget.deadline(get_running_loop().time())
