# The two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run migrate test test-unit test-integration test-faults lint format clean

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

test: $(INSTALLED) ## every test: unit, then integration against PostgreSQL and Redis
	$(PY) -m pytest

test-unit: $(INSTALLED)
	$(PY) -m pytest tests/unit

test-integration: $(INSTALLED)
	$(PY) -m pytest tests/integration

test-faults: $(INSTALLED)
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

# Side-by-side benchmark (perf/bench.py): ours vs the seed baseline, a bare aiohttp app and
# pgbench; results under artifacts/bench/. Fails only on a correctness error of ours.
.PHONY: bench bench-smoke

bench: $(INSTALLED) ## ours vs seed vs bare aiohttp vs pgbench, one table of ratios
	$(PY) perf/bench.py

bench-smoke: $(INSTALLED) ## ours only, 5 s each of hot, mixed, spread; fails on any non-2xx or lost update
	$(PY) perf/bench.py --smoke
