"""The fault tests find PostgreSQL's server binaries whatever major version is installed."""

from __future__ import annotations

from pathlib import Path

from tests.integration.servers import postgres_bin_dir


def install(lib: Path, *majors: str) -> None:
    for major in majors:
        bin_dir = lib / major / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "initdb").write_text("")


def test_the_highest_installed_major_wins(tmp_path: Path) -> None:
    install(tmp_path, "9", "15", "17")
    (tmp_path / "18" / "bin").mkdir(parents=True)  # no initdb: the client package only
    assert postgres_bin_dir({}, tmp_path) == tmp_path / "17" / "bin"


def test_a_trixie_image_with_17_only(tmp_path: Path) -> None:
    install(tmp_path, "17")
    assert postgres_bin_dir({}, tmp_path) == tmp_path / "17" / "bin"


def test_the_environment_variable_wins(tmp_path: Path) -> None:
    install(tmp_path, "15", "17")
    chosen = postgres_bin_dir({"WALLET_TEST_PG_BIN": "/opt/pg/bin"}, tmp_path)
    assert chosen == Path("/opt/pg/bin")
