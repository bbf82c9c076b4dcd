"""The hexagon's rules, checked on the source: the domain imports no framework and no adapter,
the HTTP layer no adapter, and each module depends only in the direction the design allows."""

from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import pytest

from wallet.adapters.group_commit import GroupCommitLedger
from wallet.domain import money, pagination, ports
from wallet.domain.model import OperationType

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "wallet" / "domain"

FORBIDDEN_PACKAGES = frozenset(
    {"aiohttp", "asyncpg", "redis", "dependency_injector", "jinja2", "aiohttp_jinja2"}
)
FORBIDDEN_MODULES = ("wallet.adapters", "wallet.entrypoints", "wallet.container")


def module_name(path: Path) -> str:
    """``wallet/domain/money.py`` → ``wallet.domain.money`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(source: str, module: str, package: bool = False) -> list[str]:
    """Every module ``source`` imports, absolute, including each ``from x import y`` as ``x.y``.

    ``y`` may be a name rather than a module; listing it as ``x.y`` costs nothing, and it
    catches ``from wallet import container``. Relative imports are resolved against
    ``module`` (``package`` says whether ``module`` is a package's ``__init__``).
    """
    base = module.split(".") if package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(base):
                    raise ImportError(f"relative import beyond the top package in {module}")
                anchor = base[: len(base) - node.level + 1]
                origin = ".".join(anchor + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.append(origin)
            found += [f"{origin}.{alias.name}" for alias in node.names if alias.name != "*"]
    return found


def is_forbidden(imported: str) -> bool:
    top = imported.split(".")[0]
    return top in FORBIDDEN_PACKAGES or any(
        imported == prefix or imported.startswith(prefix + ".") for prefix in FORBIDDEN_MODULES
    )


def violations(source: str, module: str, package: bool = False) -> list[str]:
    return sorted({m for m in imported_modules(source, module, package) if is_forbidden(m)})


def domain_files() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_has_the_modules_the_architecture_names() -> None:
    names = {module_name(path) for path in domain_files()}
    expected = {"money", "model", "errors", "ports", "services", "pagination"}
    assert {f"wallet.domain.{name}" for name in expected} <= names
    assert "wallet.domain" in names


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_domain_module_imports_no_framework_and_no_outer_layer(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert violations(source, module_name(path), is_package(path)) == []


# --- the checker itself ---------------------------------------------------------------

SERVICES = "wallet.domain.services"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import asyncpg", ["asyncpg"]),
        ("import redis.asyncio as redis", ["redis.asyncio"]),
        ("import aiohttp, json", ["aiohttp"]),
        ("from aiohttp import web", ["aiohttp", "aiohttp.web"]),
        ("import aiohttp_jinja2", ["aiohttp_jinja2"]),
        ("from jinja2 import Environment", ["jinja2", "jinja2.Environment"]),
        (
            "from dependency_injector.wiring import Provide",
            ["dependency_injector.wiring", "dependency_injector.wiring.Provide"],
        ),
        (
            "from wallet.adapters.memory import InMemoryDatabase",
            ["wallet.adapters.memory", "wallet.adapters.memory.InMemoryDatabase"],
        ),
        ("import wallet.entrypoints.http.app", ["wallet.entrypoints.http.app"]),
        ("from wallet import container", ["wallet.container"]),
        (
            "from wallet.container import Container",
            ["wallet.container", "wallet.container.Container"],
        ),
        ("from .. import container", ["wallet.container"]),
        ("from ..adapters import memory", ["wallet.adapters", "wallet.adapters.memory"]),
        (
            "from ..entrypoints.http.app import create_app",
            ["wallet.entrypoints.http.app", "wallet.entrypoints.http.app.create_app"],
        ),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import asyncpg\n",
            ["asyncpg"],
        ),
        ("def load():\n    import redis\n", ["redis"]),
    ],
)
def test_the_checker_catches_a_violation(source: str, expected: list[str]) -> None:
    assert violations(source, SERVICES) == expected


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import json, re\nfrom decimal import Decimal",
        "from wallet.domain.money import Money",
        "from wallet.domain import errors",
        "from . import money",
        "from .model import Wallet",
        "import redisx",  # only the package itself, not a name that starts like it
        "import aiohttpx",
        "from wallet.adaptersx import y",
        "from wallet import domain",
        "asyncpg = 'just a name'",
    ],
)
def test_the_checker_lets_the_domain_import_itself_and_the_standard_library(source: str) -> None:
    assert violations(source, SERVICES) == []


def test_relative_imports_resolve_from_a_package_init() -> None:
    """In ``wallet/domain/__init__.py`` one dot is wallet.domain itself, two dots wallet."""
    assert violations("from . import container", "wallet.domain", package=True) == []
    assert violations("from .. import container", "wallet.domain", package=True) == [
        "wallet.container"
    ]
    assert violations("from ..adapters import memory", "wallet.domain", package=True) == [
        "wallet.adapters",
        "wallet.adapters.memory",
    ]
    assert violations("from . import container", "wallet.domain.money") == []


def test_a_relative_import_beyond_the_top_package_is_an_error() -> None:
    with pytest.raises(ImportError):
        imported_modules("from ... import x", SERVICES)


def test_a_violation_in_a_domain_file_would_be_reported() -> None:
    """The real walk, run over a copy of one domain file with one bad line added."""
    original = (DOMAIN / "money.py").read_text(encoding="utf-8")
    assert violations(original, "wallet.domain.money") == []
    tainted = original + "\nimport asyncpg  # a mistake\n"
    assert violations(tainted, "wallet.domain.money") == ["asyncpg"]


# --- dependency directions outside and inside the centre ------------------------------

HTTP = ROOT / "wallet" / "entrypoints" / "http"
ADAPTERS = "wallet.adapters"


def http_files() -> list[Path]:
    return sorted(HTTP.rglob("*.py"))


def is_within(imported: str, package: str) -> bool:
    return imported == package or imported.startswith(package + ".")


@pytest.mark.parametrize("path", http_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_an_http_module_imports_no_adapter(path: Path) -> None:
    """Handlers reach adapters only through the container, never by importing one."""
    source = path.read_text(encoding="utf-8")
    imported = imported_modules(source, module_name(path), is_package(path))
    assert sorted({m for m in imported if is_within(m, ADAPTERS)}) == []


def wallet_modules_loaded_by(module: str) -> set[str]:
    """The ``wallet`` modules a fresh interpreter has loaded once ``module`` is imported."""
    script = (
        f"import sys, {module}\n"
        "print('\\n'.join(m for m in sys.modules if m == 'wallet' or m.startswith('wallet.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_logging_module_loads_neither_the_container_nor_an_adapter() -> None:
    """Logging is set up before anything is wired; it must not drag the wiring in."""
    loaded = wallet_modules_loaded_by("wallet.entrypoints.logs")
    assert "wallet.entrypoints.logs" in loaded
    assert sorted(m for m in loaded if is_within(m, "wallet.container")) == []
    assert sorted(m for m in loaded if is_within(m, ADAPTERS)) == []


def test_idempotency_does_not_depend_on_group_commit() -> None:
    """Group commit records idempotent outcomes; idempotency knows nothing of batches."""
    loaded = wallet_modules_loaded_by("wallet.domain.idempotency")
    assert "wallet.domain.idempotency" in loaded
    assert "wallet.domain.batch" not in loaded
    assert "wallet.adapters.group_commit" not in loaded


def test_the_value_errors_live_with_their_values() -> None:
    """An error one value raises is defined beside it, not imported from ``errors``."""
    assert money.InvalidAmount.__module__ == "wallet.domain.money"
    assert pagination.InvalidCursor.__module__ == "wallet.domain.pagination"


def raised_names(source: str) -> set[str]:
    """The names ``raise`` statements in ``source`` raise (``raise X(...)``, ``raise X``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name):
                names.add(raised.id)
    return names


def defined_classes(source: str) -> set[str]:
    return {node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("name", ["money", "pagination"])
def test_a_value_module_raises_only_its_own_errors_and_builtins(name: str) -> None:
    """Money and pagination own the errors they raise; ``errors`` keeps the shared ones."""
    source = (DOMAIN / f"{name}.py").read_text(encoding="utf-8")
    foreign = raised_names(source) - defined_classes(source) - set(dir(builtins))
    assert sorted(foreign) == []


def test_the_raise_checker_sees_an_imported_error() -> None:
    source = (
        "from wallet.domain.errors import InvalidAmount\ndef f():\n    raise InvalidAmount('x')\n"
    )
    assert raised_names(source) - defined_classes(source) == {"InvalidAmount"}
    own = "class InvalidAmount(ValueError):\n    pass\ndef f():\n    raise InvalidAmount\n"
    assert raised_names(own) - defined_classes(own) == set()


# -- the shape of a command ------------------------------------------------------------------

WALLET = ROOT / "wallet"


def public_methods(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_") and callable(vars(cls)[name])}


def test_each_port_is_narrow_and_named_for_its_job() -> None:
    """A port has only what its callers use: a few methods, never a grab-bag."""
    declared = {
        name: cls
        for name, cls in vars(ports).items()
        if isinstance(cls, type)
        and getattr(cls, "_is_protocol", False)
        and cls.__module__ == ports.__name__
    }
    assert {"Wallets", "Ledger", "History", "IdempotencyRecords", "Health"} <= set(declared)
    assert {
        name: len(public_methods(cls))
        for name, cls in declared.items()
        if len(public_methods(cls)) > 3
    } == {}


def test_group_commit_wraps_only_the_write_port() -> None:
    """The decorator batches the write port's movements; it passes nothing else through."""
    ledger = public_methods(ports.Ledger)
    assert public_methods(GroupCommitLedger) == ledger == {"apply", "transfer"}


def forwarding_methods(source: str) -> list[str]:
    """Methods whose whole body hands its arguments, unchanged, to the same-named method of
    something else: a layer that only forwards."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        body = [
            s
            for s in node.body
            if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]
        if len(body) != 1 or not isinstance(body[0], ast.Return | ast.Expr):
            continue
        call = body[0].value
        if isinstance(call, ast.Await):
            call = call.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        params = [a.arg for a in node.args.args if a.arg != "self"]
        passed = [a.id for a in call.args if isinstance(a, ast.Name)]
        if call.func.attr == node.name and passed == params and not call.keywords:
            found.append(node.name)
    return found


@pytest.mark.parametrize(
    "path",
    sorted((WALLET / "adapters").rglob("*.py")) + sorted(DOMAIN.rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_adapter_or_use_case_only_forwards_a_call(path: Path) -> None:
    assert forwarding_methods(path.read_text(encoding="utf-8")) == []


def test_the_forwarding_checker_catches_a_pass_through() -> None:
    source = (
        "class Group:\n"
        "    async def get(self, wallet_id):\n"
        '        """The inner one\'s."""\n'
        "        return await self._inner.get(wallet_id)\n"
        "    async def apply(self, wallet_id, request):\n"
        "        return await self._queue_for(wallet_id, request)\n"
    )
    assert forwarding_methods(source) == ["get"]


@pytest.mark.parametrize(
    "path",
    [WALLET / "domain" / "services.py", WALLET / "entrypoints" / "http" / "api.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_idempotency_has_no_twin_use_cases(path: Path) -> None:
    """One use case per command: an Idempotency-Key goes through one wrapper, not a ``*_once``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [
        n.name for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)
    ]
    assert [name for name in names if name.endswith("_once")] == []


ENTRY_TYPE_NAMES = {member.value for member in OperationType}


def entry_type_branches(source: str) -> list[int]:
    """Lines comparing against an entry type by name (``x == "DEPOSIT"``, ``t is
    OperationType.WITHDRAW``) or writing the sign in SQL (``ELSE -amount``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            named = any(
                (isinstance(o, ast.Constant) and o.value in ENTRY_TYPE_NAMES)
                or (isinstance(o, ast.Attribute) and o.attr in ENTRY_TYPE_NAMES)
                for o in operands
            )
            if named:
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "ELSE -" in node.value
        ):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(WALLET.rglob("*.py")) if p != DOMAIN / "model.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_entry_type_knows_its_sign(path: Path) -> None:
    """The sign of a ledger entry lives with its type in the domain, nowhere else."""
    assert entry_type_branches(path.read_text(encoding="utf-8")) == []


def test_the_sign_checker_catches_a_branch_of_its_own() -> None:
    source = (
        "d = a if t is OperationType.DEPOSIT else -a\n"
        "ok = kind == 'WITHDRAW'\n"
        "SQL = \"sum(CASE t WHEN 'DEPOSIT' THEN amount ELSE -amount END)\"\n"
    )
    assert sorted(entry_type_branches(source)) == [1, 2, 3]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "static").glob("*.js")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_page_takes_signs_from_the_server(path: Path) -> None:
    """The page branches on no entry type by name: it reads each type's sign from the server."""
    source = path.read_text(encoding="utf-8")
    assert [name for name in sorted(ENTRY_TYPE_NAMES) if f'"{name}"' in source] == []
