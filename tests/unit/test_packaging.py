"""The package builds without setuptools warnings and ships its SQL migrations and the page's
templates and static files; in the development install they are the checkout's own."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jinja2
import pytest
from setuptools import find_namespace_packages

from wallet.entrypoints.http.app import STATIC_PACKAGE, TEMPLATES_PACKAGE, package_folder

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = Path("wallet/adapters/postgres/migrations")
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md")
PAGE_FOLDERS = {"templates": "wallet/templates", "static": "wallet/static"}
WARNING_SIGNS = ("would be ignored", "absent from the `packages` configuration", "!!")


def build_py(tmp_path: Path) -> tuple[Path, str]:
    """Run setuptools' build_py on a copy of the project; (build dir, its output)."""
    source = tmp_path / "src"
    for folder in ("wallet", *PAGE_FOLDERS):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
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


def files_under(folder: Path) -> list[str]:
    """The files of a folder and its subfolders, relative to it, leaving out byte code."""
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def test_build_has_no_package_data_warning_and_ships_the_data_files(tmp_path: Path) -> None:
    lib, output = build_py(tmp_path)
    for sign in WARNING_SIGNS:
        assert sign not in output, output
    wanted = sorted(p.name for p in (ROOT / MIGRATIONS).glob("*.sql"))
    assert wanted, "no migrations in the source tree"
    assert sorted(p.name for p in (lib / MIGRATIONS).glob("*.sql")) == wanted
    for source, installed in PAGE_FOLDERS.items():
        assert files_under(lib / installed) == files_under(ROOT / source), source
    assert "index.html" in files_under(lib / "wallet/templates")
    assert {"app.js", "app.css", "favicon.svg"} <= set(files_under(lib / "wallet/static"))


def test_setup_cfg_lists_every_folder_of_the_package() -> None:
    """The packages are listed (templates/ and static/ cannot be found under wallet/), so a
    new subpackage that is not listed would be left out of the wheel."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = set(find_namespace_packages(str(ROOT), include=["wallet*"], exclude=["*.__pycache__"]))
    assert listed == found | {TEMPLATES_PACKAGE, STATIC_PACKAGE}


def test_the_development_install_serves_the_checkouts_own_files() -> None:
    """Editable: a template or asset edited in the checkout is what the app and tests see."""
    assert package_folder(STATIC_PACKAGE) == ROOT / "static"
    loader = jinja2.PackageLoader(TEMPLATES_PACKAGE, ".")
    _, filename, _ = loader.get_source(jinja2.Environment(), "index.html")
    assert Path(filename) == ROOT / "templates" / "index.html"


def test_a_package_that_is_no_folder_on_disk_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_page_assets/__init__.py", "")
        zipped.writestr("zipped_page_assets/app.css", "body {}")
    monkeypatch.syspath_prepend(str(archive))
    try:
        with pytest.raises(RuntimeError, match="not a folder on disk"):
            package_folder("zipped_page_assets")
    finally:
        sys.modules.pop("zipped_page_assets", None)
