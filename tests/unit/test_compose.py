"""Checks of docker-compose.yml and the Dockerfile (no Docker engine needed): static ones,
and compose's own parser where a compose CLI is installed."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NEEDED_IN_IMAGE = {"wallet", "templates", "static", "tests", "setup.cfg"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = (line.strip() for line in text.splitlines())
    pairs = (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    return [(p[0].upper(), p[1] if len(p) > 1 else "") for p in pairs]


def dockerfile_stages(path: Path = DOCKERFILE) -> set[str]:
    """Names given by `FROM image AS name`."""
    names = set()
    for op, args in dockerfile_instructions(path):
        match = re.search(r"\sAS\s+(\S+)\s*$", args, re.IGNORECASE)
        if op == "FROM" and match:
            names.add(match.group(1))
    return names


def copy_sources(args: str) -> list[str]:
    """The build-context sources of a COPY/ADD (none for COPY --from=stage)."""
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    if any(w.startswith("--from") for w in words):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1]


def in_build_context(source: str) -> bool:
    """Whether a COPY source (a path or a glob) names something on disk."""
    if any(char in source for char in "*?["):
        return any(ROOT.glob(source))
    return (ROOT / source).exists()


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def published_ports(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(host port, container port) pairs from short or long port syntax."""
    pairs = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.add((str(port.get("published")), str(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            pairs.add((host, container.split("/")[0]))
    return pairs


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's short-syntax volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = source
    return mounts


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_spec_file_without_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_the_services_exist(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "nats", "app", "tests", "locust"} <= services.keys()


@pytest.mark.parametrize(("name", "target"), [("app", "runtime"), ("tests", "test")])
def test_builds_a_stage_of_the_dockerfile_on_disk(
    services: dict[str, Any], name: str, target: str
) -> None:
    build = services[name]["build"]
    assert build["context"] == "."
    dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    assert build["target"] == target
    assert target in dockerfile_stages(dockerfile)


def test_app_publishes_5000_and_locust_8089(services: dict[str, Any]) -> None:
    assert ("5000", "5000") in published_ports(services["app"])
    assert ("8089", "8089") in published_ports(services["locust"])


@pytest.mark.parametrize("name", ["app", "tests"])
def test_waits_for_healthy_postgres_and_redis(services: dict[str, Any], name: str) -> None:
    depends_on = services[name]["depends_on"]
    assert isinstance(depends_on, dict), "conditions need the long depends_on syntax"
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["postgres", "redis", "nats", "app"])
def test_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name].get("healthcheck", {})
    assert healthcheck.get("test"), f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)


def test_app_healthcheck_asks_for_readiness(services: dict[str, Any]) -> None:
    assert "/health/ready" in " ".join(services["app"]["healthcheck"]["test"])


@pytest.mark.parametrize(
    ("name", "database_var", "redis_var"),
    [
        ("app", "WALLET_DATABASE_URL", "WALLET_REDIS_URL"),
        ("tests", "WALLET_TEST_DATABASE_URL", "WALLET_TEST_REDIS_URL"),
    ],
)
def test_environment_points_at_the_stack(
    services: dict[str, Any], name: str, database_var: str, redis_var: str
) -> None:
    env = environment(services[name])
    database, cache = urlsplit(env[database_var]), urlsplit(env[redis_var])
    assert database.scheme in {"postgres", "postgresql"}
    assert database.hostname == "postgres"
    assert cache.scheme == "redis"
    assert cache.hostname == "redis"


def test_the_app_relays_events_to_the_stacks_nats(services: dict[str, Any]) -> None:
    nats = urlsplit(environment(services["app"])["WALLET_NATS_URL"])
    assert (nats.scheme, nats.hostname, nats.port) == ("nats", "nats", 4222)
    # Started, not healthy: the app serves with NATS down, and its relay catches up later.
    assert services["app"]["depends_on"]["nats"]["condition"] == "service_started"


def test_nats_runs_jetstream_on_a_volume(compose: dict[str, Any]) -> None:
    """The stream WALLET_EVENTS outlives the container: its store is a named volume."""
    nats = compose["services"]["nats"]
    args = command_args(nats)
    assert "-js" in args
    volume = bind_mounts(nats).get(option(args, "-sd"))
    assert volume in compose["volumes"], f"{option(args, '-sd')} is not on a named volume"
    assert re.fullmatch(r"nats:2(\.\d+)*(-\w+)?", nats["image"]), nats["image"]
    assert "/healthz" in " ".join(nats["healthcheck"]["test"])


def test_locust_mounts_perf_and_its_locustfile_exists(services: dict[str, Any]) -> None:
    mounts = bind_mounts(services["locust"])
    assert "./perf" in mounts.values()
    args = command_args(services["locust"])
    locustfile = args[args.index("-f") + 1]
    targets = [t for t in mounts if locustfile.startswith(t.rstrip("/") + "/")]
    assert targets, f"{locustfile} is not under a mounted folder"
    host_path = ROOT / mounts[targets[0]] / Path(locustfile).relative_to(targets[0])
    assert host_path.is_file(), f"{host_path} does not exist"
    assert args[args.index("--host") + 1] == "http://app:5000"


def test_every_file_the_dockerfile_copies_exists() -> None:
    copies = [args for op, args in dockerfile_instructions() if op in {"COPY", "ADD"}]
    assert copies, "the Dockerfile copies nothing"
    for args in copies:
        for source in copy_sources(args):
            assert in_build_context(source), f"COPY source {source!r} does not exist"


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git"} <= ignored
    assert not ignored & NEEDED_IN_IMAGE


def image_tag(image: str) -> str:
    """The tag of ``name:tag`` (a registry's ``host:port/`` is not one); empty when untagged."""
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else ""


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("name", ["postgres", "redis", "nats", "locust"])
def test_every_image_is_pinned_to_a_tag(services: dict[str, Any], name: str) -> None:
    assert image_tag(services[name]["image"]) not in {"", "latest"}


def test_locust_runs_an_exact_release_the_dev_extra_allows(services: dict[str, Any]) -> None:
    """An exact release, so a rebuilt stack loads the service the same way; none too old."""
    tag = image_tag(services["locust"]["image"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"locust's image tag {tag!r} is not a release"
    minimum = re.search(r"^\s*locust>=([\d.]+)\s*$", (ROOT / "setup.cfg").read_text(), re.M)
    assert minimum is not None, "setup.cfg's dev extra names no locust>=…"
    assert version(tag) >= version(minimum.group(1))


# --- the image as a fresh machine builds it ------------------------------------------------

DEBIAN_RELEASES = {"bookworm", "trixie"}
HEALTH_ENDPOINT = "/health/ready"
DEPENDENCY_FILES = {"setup.cfg", "pyproject.toml"}


def stage_chain(target: str, path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The instructions that build stage `target`, its parent stages' first."""
    stages: dict[str, list[tuple[str, str]]] = {}
    parents: dict[str, str] = {}
    current = ""
    for op, args in dockerfile_instructions(path):
        if op == "FROM":
            image, _, current = re.sub(r"\s+AS\s+", " AS ", args, flags=re.I).partition(" AS ")
            current = current.strip() or image
            parents[current] = image.split()[-1]
            stages[current] = []
        elif current:
            stages[current].append((op, args))
    chain: list[tuple[str, str]] = []
    while target in stages:
        chain = stages[target] + chain
        target = parents[target]
    return chain


def external_images(path: Path = DOCKERFILE) -> list[str]:
    """The images the Dockerfile starts from that are not its own stages."""
    stages = dockerfile_stages(path)
    images = [args.split()[0] for op, args in dockerfile_instructions(path) if op == "FROM"]
    return [image for image in images if not image.startswith("--") and image not in stages]


def test_the_base_image_is_pinned_to_a_debian_release() -> None:
    """``python:3.11-slim`` follows Debian's newest release, and apt's packages (PostgreSQL's
    major version among them) with it; a release in the tag keeps them."""
    images = external_images()
    assert images, "the Dockerfile starts from no image"
    for image in images:
        tag = image_tag(image)
        assert tag.rsplit("-", 1)[-1] in DEBIAN_RELEASES, f"{image} names no Debian release"


@pytest.mark.parametrize("target", ["runtime", "test"])
def test_dependencies_are_installed_before_the_sources_are_copied(target: str) -> None:
    chain = stage_chain(target)
    copies_all = [
        i for i, (op, args) in enumerate(chain) if op == "COPY" and "." in copy_sources(args)
    ]
    assert copies_all, f"stage {target} never copies the project"
    before = chain[: copies_all[0]]
    copied = {
        source for op, args in before if op in {"COPY", "ADD"} for source in copy_sources(args)
    }
    assert copied <= DEPENDENCY_FILES, (
        f"copied before the dependencies: {copied - DEPENDENCY_FILES}"
    )
    installs = [args for op, args in before if op == "RUN" and "pip install" in args]
    assert any("setup.cfg" in args for args in installs), "no dependency layer read from setup.cfg"
    assert all(
        "pip install" not in args or "--no-deps" in args
        for op, args in chain[copies_all[0] :]
        if op == "RUN"
    ), "a pip install after the sources are copied pulls dependencies again"
    if target == "test":
        assert any("apt-get install" in args for op, args in before if op == "RUN")


def healthcheck_commands(services: dict[str, Any]) -> list[str]:
    """Every healthcheck command of the app: the image's and the stack's."""
    commands = [args for op, args in dockerfile_instructions() if op == "HEALTHCHECK"]
    test = services["app"]["healthcheck"]["test"]
    commands.append(test if isinstance(test, str) else " ".join(test))
    return commands


def test_one_health_endpoint_for_every_healthcheck(services: dict[str, Any]) -> None:
    for command in healthcheck_commands(services):
        endpoints = set(re.findall(r"/health/\w+", command))
        assert endpoints == {HEALTH_ENDPOINT}, f"{command!r} asks {endpoints or 'nothing'}"


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} is not set in {shlex.join(args)}"
    return args[args.index(name) + 1]


def postgres_setting(service: dict[str, Any], name: str) -> int | None:
    for value in command_args(service):
        key, _, setting = value.partition("=")
        if key == name:
            return int(setting)
    return None


# Connections per worker beyond its pool: one for LISTEN, one for the event relay's lease
# (held, or waited for), one migrating at start.
CONNECTIONS_OUTSIDE_THE_POOL = 3
# What the tests service and a psql or two may hold beside the app.
CONNECTIONS_LEFT_FOR_OTHERS = 20
SUPERUSER_RESERVED = 3  # PostgreSQL's default superuser_reserved_connections


def test_the_app_workers_and_their_pools_fit_postgres(services: dict[str, Any]) -> None:
    """``serve`` starts one worker per core by default, each with a pool of its own: on a
    16-core laptop 16 x 10 connections overflow PostgreSQL's default 100."""
    args = command_args(services["app"])
    assert args[args.index("serve") - 2 : args.index("serve")] == ["-m", "wallet"]
    workers = int(option(args, "--workers"))
    assert workers > 0, "--workers 0 means one per core of whatever machine runs it"
    pool = int(environment(services["app"])["WALLET_DB_POOL_MAX_SIZE"])
    max_connections = postgres_setting(services["postgres"], "max_connections")
    assert max_connections is not None, "postgres' max_connections is not set in its command"
    needed = workers * (pool + CONNECTIONS_OUTSIDE_THE_POOL) + CONNECTIONS_LEFT_FOR_OTHERS
    assert needed <= max_connections - SUPERUSER_RESERVED


def compose_cli() -> list[str] | None:
    """``docker compose`` (the plugin) or ``docker-compose``, whichever answers."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    for cli in candidates:
        if shutil.which(cli[0]) is None:
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            probe = subprocess.run([*cli, "version"], capture_output=True, timeout=30, check=False)
            if probe.returncode == 0:
                return cli
    return None


def test_docker_compose_accepts_the_file() -> None:
    """Compose's own parser (no engine needed), where a compose CLI is installed."""
    cli = compose_cli()
    if cli is None:
        if shutil.which("docker") is not None:
            pytest.fail(
                "a docker CLI is here but no compose: install the compose plugin or "
                "docker-compose (`make test` does, with apt)"
            )
        pytest.skip("not run: no docker CLI on this machine")
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
