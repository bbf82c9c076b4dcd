"""perf/plot_loadtest.py on small stats histories in locust's own format."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The header locust 2.x writes to <prefix>_stats_history.csv (default percentiles).
HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
    "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size"
)
ROWS = [
    "1700000000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
    "0,0,0,0.0,0,0,0",
    "1700000001,10,,Aggregated,0.000000,0.000000,0,0,0,0,0,0,0,0,0,0,0,150,0,7,11.8,1.8,94.2,242.5",
    # --csv-full-history: a row per endpoint too, which the plot leaves out
    "1700000002,20,POST,/api/v1/wallets/[id]/operation,90.000000,0.000000,9,12,14,16,24,40,55,"
    "70,74,74,74,200,0,9,13.1,1.8,94.2,277.2",
    "1700000002,20,,Aggregated,100.000000,0.000000,9,12,14,16,24,40,55,70,74,74,74,450,0,9,"
    "13.1,1.8,94.2,277.2",
    "1700000004,20,,Aggregated,300.000000,2.000000,11,13,16,18,25,42,61,80,95,95,95,1050,4,9,"
    "13.4,1.4,94.2,257.6",
]


@pytest.fixture(scope="module")
def plot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plot_loadtest", ROOT / "perf/plot_loadtest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def write_history(folder: Path, *lines: str) -> Path:
    path = folder / "locust_stats_history.csv"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_writes_a_png(plot: ModuleType, tmp_path: Path) -> None:
    history = write_history(tmp_path, HEADER, *ROWS)
    output = tmp_path / "out" / "locust.png"
    assert plot.main([str(history), str(output), "--title", "synthetic"]) == 0
    assert output.stat().st_size > 0
    assert output.read_bytes().startswith(PNG_SIGNATURE)


def test_reads_the_aggregated_rows_and_rates_from_the_totals(
    plot: ModuleType, tmp_path: Path
) -> None:
    history = plot.read_history(write_history(tmp_path, HEADER, *ROWS))
    assert history.seconds == [0, 1, 2, 4]
    assert history.users == [0, 10, 20, 20]
    assert history.requests_per_s == [0, 150, 300, 300]  # 600 requests over 2 s at the end
    assert history.failures_per_s == [0, 0, 0, 2]
    assert (history.total_requests, history.total_failures) == (1050, 4)
    p99 = history.latency_ms["99%"]
    assert math.isnan(p99[0])  # N/A: no request yet
    assert math.isnan(p99[1])  # all percentiles 0: no sample in locust's window
    assert p99[2:] == [70, 80]


def test_a_missing_file_is_a_clear_error(plot: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(plot.HistoryError, match="does not exist"):
        plot.read_history(tmp_path / "nothing.csv")


def test_an_empty_file_is_a_clear_error(plot: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(plot.HistoryError, match="is empty"):
        plot.read_history(write_history(tmp_path))


def test_a_header_without_rows_is_a_clear_error(plot: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(plot.HistoryError, match="no 'Aggregated' rows"):
        plot.read_history(write_history(tmp_path, HEADER))


def test_another_format_names_the_missing_columns(plot: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(plot.HistoryError, match=r"lacks the columns .*99%"):
        plot.read_history(write_history(tmp_path, "Timestamp,Name,50%", "1,Aggregated,3"))


def test_main_reports_the_error_and_exits_non_zero(
    plot: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "locust.png"
    assert plot.main([str(tmp_path / "nothing.csv"), str(output)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not output.exists()
