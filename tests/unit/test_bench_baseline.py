"""The benchmark's `--baseline-rev`: ours at another git revision, run from a worktree that
is removed whatever happens, alternating with ours at HEAD, and summarised as medians and
their ratio; its runs pass the same correctness gate as ours."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"


def load_bench() -> ModuleType:
    if "bench" in sys.modules:  # the gate's tests loaded it already
        return sys.modules["bench"]
    spec = importlib.util.spec_from_file_location("bench", PERF / "bench.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench()

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def git(repo: Path, *argv: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *argv],
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository of two commits, each with its own `wallet` package; bench's git commands
    are pointed at it."""
    path = tmp_path / "repo"
    (path / "wallet").mkdir(parents=True)
    git(path, "init", "-q")
    for version in ("old", "new"):
        (path / "wallet" / "__init__.py").write_text(f"VERSION = {version!r}\n")
        git(path, "add", "wallet")
        git(path, "commit", "-q", "-m", version)
    monkeypatch.setattr(bench, "REPO", path)
    return path


def worktrees(repo: Path) -> list[str]:
    return [
        line.removeprefix("worktree ")
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def run_in(tmp_path: Path) -> Any:
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    return bench.Run(out)


def test_the_baseline_is_parsed_as_a_short_hash_with_two_rounds() -> None:
    head = subprocess.run(
        ["git", "-C", str(bench.REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    args = bench.parse_args(["--only", "ours", "--baseline-rev", "HEAD"])
    assert (args.baseline, args.rounds) == (head, 2)
    assert bench.parse_args([]).baseline is None


@pytest.mark.parametrize(
    "argv", [["--baseline-rev", "no-such-revision"], ["--baseline-rev", "HEAD", "--rounds", "0"]]
)
def test_a_revision_that_is_not_there_or_no_rounds_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench.parse_args(argv)
    assert stopped.value.code == 2


def test_each_scenario_of_ours_alternates_baseline_and_head_round_by_round() -> None:
    argv = ["--only", "ours,bare", "--ours-scenarios", "hot,mixed", "--bare-scenarios", "hot"]
    args = bench.parse_args(argv)
    args.baseline, args.rounds = "dedf1ef", 2
    assert bench.plan(args) == [
        *[("baseline", "hot"), ("ours", "hot")] * 2,
        ("bare", "hot"),
        *[("baseline", "mixed"), ("ours", "mixed")] * 2,
    ]
    args.baseline = None
    assert bench.plan(args) == [("ours", "hot"), ("bare", "hot"), ("ours", "mixed")]


def row(label: str, scenario: str, rps: float, p99: float) -> dict[str, Any]:
    return {"label": label, "scenario": scenario, "rps": rps, "p99_ms": p99}


def test_the_summary_is_the_median_of_each_side_and_their_ratio() -> None:
    results = [
        row("ours@abc1234", "hot", 1000, 30.0),
        row("ours@HEAD", "hot", 900, 40.0),
        row("ours@abc1234", "hot", 1200, 20.0),
        row("ours@HEAD", "hot", 1300, 10.0),
        row("ours@abc1234", "hot", 800, 50.0),
        row("ours@HEAD", "hot", 1100, 35.0),
        {"label": "ours@HEAD", "scenario": "read", "error": "wallet_load.py timed out"},
        row("ours@abc1234", "read", 2000, 5.0),
        row("bare", "hot", 5000, 1.0),
    ]
    hot, read = bench.compare(results, "ours@HEAD", "ours@abc1234")
    assert (hot.scenario, hot.runs, hot.rps, hot.p99_ms) == ("hot", (3, 3), (1100, 1000), (35, 30))
    assert hot.ratio == pytest.approx(1.1)
    assert (read.runs, read.rps, read.ratio) == ((0, 1), (None, 2000), None)
    text = bench.render_comparison(results, "abc1234")
    assert "ratio = HEAD / REV" in text
    assert [line.split() for line in text.splitlines()[2:]] == [
        ["hot", "3+3", "1100", "1000", "1.10x", "35.0", "30.0"],
        ["read", "0+1", "n/a", "2000", "n/a", "n/a", "5.0"],
    ]
    assert bench.throughput(results, "ours", "hot") == 1100, "the ratios to bare use HEAD"


def test_the_baselines_runs_pass_the_same_gate_as_ours() -> None:
    failed = {**row("ours@abc1234", "hot", 1000, 30.0), "non_2xx": 3, "socket_errors": {}}
    failed["balance_ok"] = True
    assert bench.gate_failures([failed]) == ["ours@abc1234 hot: 3 non-2xx answers"]


def test_the_worktree_holds_the_revision_and_is_removed_with_the_stack(
    repo: Path, tmp_path: Path
) -> None:
    old = git(repo, "rev-parse", "--short", "HEAD~1")
    add, remove = bench.worktree_commands(tmp_path / "tree", old)
    assert add == [
        "git",
        "-C",
        str(repo),
        "worktree",
        "add",
        "--detach",
        str(tmp_path / "tree"),
        old,
    ]
    assert remove == [
        "git",
        "-C",
        str(repo),
        "worktree",
        "remove",
        "--force",
        str(tmp_path / "tree"),
    ]
    run = run_in(tmp_path)
    with contextlib.ExitStack() as stack:
        tree = bench.worktree(run, old, stack)
        assert (tree / "wallet" / "__init__.py").read_text() == "VERSION = 'old'\n"
        assert str(tree) in worktrees(repo)
    assert not tree.parent.exists()
    assert worktrees(repo) == [str(repo)]
    assert run.harness_errors == []


@pytest.mark.parametrize("problem", [RuntimeError("a server did not start"), KeyboardInterrupt()])
def test_the_worktree_is_removed_when_the_run_fails_or_is_interrupted(
    repo: Path, tmp_path: Path, problem: BaseException
) -> None:
    trees: list[Path] = []

    def fail_after_the_checkout() -> None:
        with contextlib.ExitStack() as stack:
            trees.append(bench.worktree(run_in(tmp_path), "HEAD~1", stack))
            raise problem

    with pytest.raises(type(problem)):
        fail_after_the_checkout()
    (tree,) = trees
    assert not tree.parent.exists()
    assert worktrees(repo) == [str(repo)]


def test_a_checkout_that_fails_leaves_no_directory(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    with pytest.raises(bench.HarnessError, match="worktree add"), contextlib.ExitStack() as stack:
        bench.worktree(run_in(tmp_path), "no-such-revision", stack)
    assert list((tmp_path / "temp").iterdir()) == []
    assert worktrees(repo) == [str(repo)]


def test_the_service_interpreter_imports_the_worktrees_package_not_this_checkouts(
    repo: Path, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        tree = bench.worktree(run_in(tmp_path), "HEAD~1", stack)
        source = bench.package_source(tree, {"PYTHONPATH": str(tree)})
        assert source == (tree / "wallet" / "__init__.py").resolve()
