"""Plot a locust run over time: throughput and latency, from its ``*_stats_history.csv``.

    python perf/plot_loadtest.py artifacts/loadtest/locust_stats_history.csv \\
        artifacts/loadtest/locust.png

Top panel: requests/s and failures/s, with the number of users on a second axis.
Bottom panel: p50, p95 and p99 latency in ms. Only the "Aggregated" rows are used
(all requests together), one a second.

The rates are the change of "Total Request Count" and "Total Failure Count" between
rows, so a stall shows as a dip: locust's own "Requests/s" column is a 10 s moving
average. The percentiles are locust's: over its last 10 s with ``--csv-full-history``,
since the start of the run without it; a row where they are all 0 had no sample in
its window and is left out.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

AGGREGATED = "Aggregated"
TIMESTAMP = "Timestamp"
USERS = "User Count"
NAME = "Name"
TOTAL_REQUESTS = "Total Request Count"
TOTAL_FAILURES = "Total Failure Count"
LATENCY_PERCENTILES = ("50%", "95%", "99%")
LATENCY_COLORS = ("tab:green", "tab:orange", "tab:red")
REQUIRED_COLUMNS = (
    TIMESTAMP,
    USERS,
    NAME,
    *LATENCY_PERCENTILES,
    TOTAL_REQUESTS,
    TOTAL_FAILURES,
)


class HistoryError(Exception):
    """The stats history cannot be plotted: missing, empty or not locust's format."""


@dataclass(frozen=True, slots=True)
class History:
    """The aggregated series of one run; latencies are NaN where locust wrote N/A."""

    seconds: list[float]
    users: list[float]
    requests_per_s: list[float]
    failures_per_s: list[float]
    latency_ms: dict[str, list[float]]
    total_requests: int
    total_failures: int


def read_history(path: Path) -> History:
    """The "Aggregated" rows of a locust stats history CSV, time from the first row."""
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None:
                raise HistoryError(f"{path} is empty: did locust run with --csv?")
            missing = [column for column in REQUIRED_COLUMNS if column not in reader.fieldnames]
            if missing:
                raise HistoryError(f"{path} lacks the columns {', '.join(missing)}")
            rows = [row for row in reader if row[NAME] == AGGREGATED]
    except FileNotFoundError:
        raise HistoryError(f"{path} does not exist: did locust run with --csv?") from None
    if not rows:
        raise HistoryError(f"{path} has no {AGGREGATED!r} rows: the run recorded nothing")
    rows = _one_per_second(rows)
    start = float(rows[0][TIMESTAMP])
    seconds = [float(row[TIMESTAMP]) - start for row in rows]
    requests = [_number(row[TOTAL_REQUESTS]) for row in rows]
    failures = [_number(row[TOTAL_FAILURES]) for row in rows]
    return History(
        seconds=seconds,
        users=[_number(row[USERS]) for row in rows],
        requests_per_s=_rates(seconds, requests),
        failures_per_s=_rates(seconds, failures),
        latency_ms=_latencies(rows),
        total_requests=int(requests[-1]),
        total_failures=int(failures[-1]),
    )


def _one_per_second(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The last row of each timestamp (locust stamps whole seconds; two may share one)."""
    by_second = {row[TIMESTAMP]: row for row in rows}
    return sorted(by_second.values(), key=lambda row: float(row[TIMESTAMP]))


def _rates(seconds: list[float], totals: list[float]) -> list[float]:
    """Per-second rates from running totals; the first row has none to compare with."""
    rates = [0.0]
    for i in range(1, len(totals)):
        rates.append((totals[i] - totals[i - 1]) / (seconds[i] - seconds[i - 1]))
    return rates


def _latencies(rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """Each percentile's series; NaN (a gap in the line) where the window had no sample."""
    series: dict[str, list[float]] = {percentile: [] for percentile in LATENCY_PERCENTILES}
    for row in rows:
        values = [_number(row[percentile]) for percentile in LATENCY_PERCENTILES]
        empty = all(value == 0 for value in values)
        for percentile, value in zip(LATENCY_PERCENTILES, values, strict=True):
            series[percentile].append(math.nan if empty else value)
    return series


def _number(text: str) -> float:
    """A CSV cell as a number; locust's "N/A" (no request yet) becomes NaN."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def plot_history(history: History, output: Path, title: str) -> None:
    """Write a PNG with two panels sharing the time axis."""
    figure = Figure(figsize=(11, 7), layout="constrained")
    throughput, latency = figure.subplots(2, 1, sharex=True)
    figure.suptitle(
        f"{title}: {history.total_requests:,} requests, {history.total_failures:,} failures"
        " by the last sample"
    )

    throughput.plot(history.seconds, history.requests_per_s, label="requests/s", color="tab:blue")
    throughput.plot(history.seconds, history.failures_per_s, label="failures/s", color="tab:red")
    throughput.set_ylabel("per second")
    throughput.set_ylim(bottom=0)
    users = throughput.twinx()
    users.plot(history.seconds, history.users, label="users", color="tab:gray", linestyle="--")
    users.set_ylabel("users")
    users.set_ylim(0, max(1.0, *history.users) * 1.05)  # an axis even when no user ran
    lines, labels = throughput.get_legend_handles_labels()
    user_lines, user_labels = users.get_legend_handles_labels()
    throughput.legend(lines + user_lines, labels + user_labels, loc="upper left")
    throughput.grid(alpha=0.3)

    for percentile, color in zip(LATENCY_PERCENTILES, LATENCY_COLORS, strict=True):
        label = "p" + percentile.removesuffix("%")
        latency.plot(history.seconds, history.latency_ms[percentile], label=label, color=color)
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.set_xlabel("seconds since the first sample")
    latency.legend(loc="upper left")
    latency.grid(alpha=0.3)

    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("history", type=Path, help="locust's <prefix>_stats_history.csv")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--title", default="locust run", help="the plot's title")
    args = parser.parse_args(argv)
    try:
        history = read_history(args.history)
    except HistoryError as error:
        print(f"plot_loadtest: {error}", file=sys.stderr)
        return 1
    plot_history(history, args.output, args.title)
    print(f"plot_loadtest: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
