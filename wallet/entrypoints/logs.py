"""Log records as one JSON object per line (for collectors) or as readable text (for people).

Every request gets one ``wallet.access`` line after its response is sent, written by
aiohttp's access-log hook, so logging never delays an answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from datetime import UTC, datetime
from itertools import islice
from time import time as wall_clock
from typing import Any, Final, TextIO

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from wallet.entrypoints.http.request_keys import ANSWERED_IN, REQUEST_ID

ACCESS_LOGGER: Final = "wallet.access"

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_STANDARD_ATTRIBUTES: Final = frozenset(_RECORD_ATTRIBUTES) | {"message", "asctime", "taskName"}


# The process id, asked of the kernel once per process (a system call each time otherwise)
# and again in a forked child.
_process_id = functools.cache(os.getpid)
os.register_at_fork(after_in_child=_process_id.cache_clear)


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Send every record to stderr in the chosen format; "auto" is JSON unless a terminal."""
    # Neither format shows thread or process names; not looking them up saves time per record.
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = BufferedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if _wants_json(log_format) else HumanFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in bulk: one system call per ``interval`` instead of one per request.

    A line logged on a thread that runs an event loop waits at most ``interval``
    seconds, written by a timer of that loop (a crash can lose that much of the INFO
    lines). WARNING and above, a full buffer, shutdown, and lines logged where no
    loop runs are written at once.
    """

    def __init__(self, stream: TextIO, interval: float = 0.05, capacity: int = 512) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._interval = interval
        self._capacity = capacity
        self._timer_loop: asyncio.AbstractEventLoop | None = None  # where a flush is due

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._queue(line, at_once=record.levelno >= logging.WARNING)

    def emit_line(self, line: str) -> None:
        """Queue an INFO line formatted already (the access log's way around a LogRecord)."""
        with self.lock:  # type: ignore[union-attr]
            self._queue(line, at_once=False)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def close(self) -> None:
        self.flush()
        super().close()

    def _queue(self, line: str, at_once: bool) -> None:
        self._pending.append(line + self.terminator)
        if at_once or len(self._pending) >= self._capacity:
            self._write_pending()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop here to write it later
            self._write_pending()
            return
        if self._timer_loop is not loop:  # no flush due yet, or one due on another loop
            self._timer_loop = loop
            loop.call_later(self._interval, self._flush_due, loop)

    def _flush_due(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._timer_loop is loop:
                self._timer_loop = None
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            lines, self._pending = "".join(self._pending), []
            self.stream.write(lines)
            self.stream.flush()


def _wants_json(log_format: str) -> bool:
    if log_format == "auto":
        return not sys.stderr.isatty()
    return log_format == "json"


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with ``extra=``.

    A record's own attributes come first in its ``__dict__`` (its constructor sets
    them before ``extra`` is applied), so only what follows them is looked at.
    """
    attributes = islice(record.__dict__.items(), len(_RECORD_ATTRIBUTES), None)
    return {key: value for key, value in attributes if key not in _STANDARD_ATTRIBUTES}


def utc_timestamp(created: float) -> str:
    """``created`` as RFC 3339 in UTC to the millisecond; the second's text is reused."""
    second = int(created)
    microseconds = round((created - second) * 1_000_000)  # as datetime rounds them
    if microseconds == 1_000_000:
        second, microseconds = second + 1, 0
    return f"{_second_text(second)}.{microseconds // 1000:03d}+00:00"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        traceback = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            record.process,
            extras(record),
            traceback,
        )


def json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    pid: int | None,
    fields: dict[str, Any],
    traceback: str | None = None,
) -> str:
    """The JSON object of one record, on one line."""
    entry: dict[str, Any] = {
        "time": utc_timestamp(created),
        "level": level,
        "logger": logger,
        "message": message,
        "pid": pid,
    }
    entry.update(fields)
    if traceback is not None:
        entry["traceback"] = traceback
    return orjson.dumps(entry, default=str).decode()


class HumanFormatter(logging.Formatter):
    """The message, then its extras as ``key=value``, then any traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        fields = " ".join(f"{key}={value}" for key, value in extras(record).items())
        line = super().formatMessage(record)
        return f"{line} {fields}" if fields else line


class RequestLogger(AbstractAccessLogger):
    """One line per request: id, method, route template, path, status and duration.

    The duration is the app's, to the microsecond, from the first middleware to the
    answer; aiohttp's own, to the millisecond, for requests it refused itself.

    Server errors log at ERROR so an alert on the level catches them; the traceback
    was logged by the error middleware under the same request id.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        status = response.status
        level = logging.ERROR if status >= 500 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        fields = {
            "request_id": request.get(REQUEST_ID),
            "method": request.method,
            "route": route_of(request),
            "path": request.path,
            "status": status,
            "duration_ms": round(request.get(ANSWERED_IN, time) * 1000, 3),
            "remote": request.remote,
        }
        message = f"{request.method} {request.path} {status}"
        sink = json_sink(self.logger, level)
        if sink is not None:  # the usual case: no LogRecord, one JSON line straight out
            sink.emit_line(
                json_line(
                    wall_clock(),
                    logging.getLevelName(level),
                    self.logger.name,
                    message,
                    _process_id(),
                    fields,
                )
            )
            return
        # Made and handled directly: Logger.log would also walk the stack for a caller
        # that is always this line, on every request.
        record = self.logger.makeRecord(
            self.logger.name,
            level,
            __file__,
            0,
            "%s",
            (message,),
            None,
            extra=fields,
        )
        self.logger.handle(record)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.ERROR)


def json_sink(logger: logging.Logger, level: int) -> BufferedStreamHandler | None:
    """The handler that alone would take ``logger``'s record at ``level`` and write it as
    JSON with no filter in the way; None when any other handler or filter is involved."""
    if logger.filters or not logger.isEnabledFor(level):
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        type(handler) is BufferedStreamHandler
        and type(handler.formatter) is JsonFormatter
        and not handler.filters
        and handler.level <= level < logging.WARNING
    ):
        return handler
    return None


def route_of(request: BaseRequest) -> str:
    """The route's template (``/api/v1/wallets/{wallet_id}``), never the raw path's ids.

    "unmatched" for a path no route serves; "unparsed" for a request aiohttp refused
    before routing it (its ``match_info`` asserts there is one).
    """
    try:
        resource = request.match_info.route.resource  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):
        return "unparsed"
    return resource.canonical if resource is not None else "unmatched"
