# The two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run migrate test test-unit test-integration test-browser test-faults lint format clean

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: $(INSTALLED) ## create the database if missing, migrate and serve on :5000
	$(PY) -m wallet serve

migrate: $(INSTALLED)
	$(PY) -m wallet migrate

# The browser tests drive Debian's chromium (never a downloaded browser): installed here
# when missing, on a machine with apt.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null \
		|| { echo "the browser tests need chromium at $(CHROMIUM); install it" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

# The load driver (perf/wallet_load.py) runs wrk; the bench's own tests check for it too.
WRK := /usr/bin/wrk

$(WRK):
	@command -v apt-get >/dev/null \
		|| { echo "the benchmark needs wrk at $(WRK); install it" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

# The relay's tests (tests/integration/test_relay.py) start nats-servers of their own:
# Debian's, installed here when missing, on a machine with apt.
NATS_SERVER := /usr/sbin/nats-server

$(NATS_SERVER):
	@command -v apt-get >/dev/null \
		|| { echo "the relay tests need nats-server at $(NATS_SERVER); install it" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null

# Where a docker CLI exists, the compose test also runs compose's own parser on the file
# (no engine needed): Debian's docker-compose is installed when no compose answers.
.PHONY: compose-cli
compose-cli:
	@if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 \
		&& ! command -v docker-compose >/dev/null && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	fi

test: $(INSTALLED) $(CHROMIUM) $(WRK) $(NATS_SERVER) compose-cli ## every test: unit, integration (PostgreSQL, Redis, NATS), the page in chromium
	$(PY) -m pytest

test-unit: $(INSTALLED) $(WRK)
	$(PY) -m pytest tests/unit

test-integration: $(INSTALLED) $(NATS_SERVER)
	$(PY) -m pytest tests/integration

test-browser: $(INSTALLED) $(CHROMIUM) ## the page in headless Debian chromium; screenshots in artifacts/screenshots/
	$(PY) -m pytest tests/browser

test-faults: $(INSTALLED) $(NATS_SERVER)
	$(PY) -m pytest -m faults

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict wallet
	$(VENV)/bin/bandit -q -r wallet -s B101  # asserts state invariants and narrow types only

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# Side-by-side benchmark (perf/bench.py, load from perf/wallet_load.py and wrk): ours vs a
# bare aiohttp app and pgbench, plus the seed baseline where ../shared has it; a database and
# a redis-server of its own each run; results under artifacts/bench/. Fails only on a
# correctness error of ours.
.PHONY: bench bench-smoke

bench: $(INSTALLED) $(WRK) ## ours vs bare aiohttp vs pgbench (vs the seed, if ../shared has it), one table of ratios
	$(PY) perf/bench.py

bench-smoke: $(INSTALLED) $(WRK) ## ours only, 5 s each of hot, mixed, spread; fails on any non-2xx or lost update
	$(PY) perf/bench.py --smoke

# Locust against a service that is already running (perf/locustfile.py), headless. Writes
# artifacts/loadtest/: report.html, locust_*.csv (full history) and locust.png (throughput
# and latency over time). Fails when any request failed (locust exits 1); the report and
# plot are written anyway. E.g. `make loadtest LOADTEST_USERS=200 LOADTEST_CLASSES=HotWalletUser`.
LOADTEST_HOST ?= http://127.0.0.1:5000
LOADTEST_USERS ?= 50
LOADTEST_SPAWN_RATE ?= 10
LOADTEST_RUN_TIME ?= 60s
LOADTEST_CLASSES ?=
LOADTEST_ARGS ?=
LOADTEST_DIR ?= artifacts/loadtest

.PHONY: loadtest

loadtest: $(INSTALLED) ## locust against LOADTEST_HOST; HTML, CSVs and a PNG plot in artifacts/loadtest/
	@$(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
		'$(LOADTEST_HOST)/health/ready' 2>/dev/null \
		|| { echo 'loadtest: $(LOADTEST_HOST)/health/ready does not answer 200; start the service (make run)' >&2; exit 2; }
	mkdir -p $(LOADTEST_DIR)
	status=0; \
	$(VENV)/bin/locust -f perf/locustfile.py --headless --host '$(LOADTEST_HOST)' \
		--users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) --run-time $(LOADTEST_RUN_TIME) \
		--html $(LOADTEST_DIR)/report.html --csv $(LOADTEST_DIR)/locust --csv-full-history \
		--only-summary $(LOADTEST_ARGS) $(LOADTEST_CLASSES) || status=$$?; \
	$(PY) perf/plot_loadtest.py $(LOADTEST_DIR)/locust_stats_history.csv $(LOADTEST_DIR)/locust.png \
		--title '$(or $(LOADTEST_CLASSES),all user classes), $(LOADTEST_USERS) users, $(LOADTEST_RUN_TIME)' \
		|| [ $$status -ne 0 ] || status=1; \
	exit $$status
