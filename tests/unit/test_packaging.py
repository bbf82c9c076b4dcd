"""The package builds without setuptools warnings, and the SQL migrations ship in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = Path("wallet/adapters/postgres/migrations")
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md")


def build_py(tmp_path: Path) -> tuple[Path, str]:
    """Run setuptools' build_py on a copy of the project; (build dir, its output)."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "wallet", source / "wallet", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    lib = tmp_path / "lib"
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "build_py", "-d", str(lib)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return lib, output


def test_build_has_no_package_data_warning_and_ships_the_migrations(tmp_path: Path) -> None:
    lib, output = build_py(tmp_path)
    assert "would be ignored" not in output
    assert "absent from the `packages` configuration" not in output
    wanted = sorted(p.name for p in (ROOT / MIGRATIONS).glob("*.sql"))
    assert wanted, "no migrations in the source tree"
    assert sorted(p.name for p in (lib / MIGRATIONS).glob("*.sql")) == wanted
