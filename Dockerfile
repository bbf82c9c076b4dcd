# syntax=docker/dockerfile:1

# Wallet service image.
#   docker build --target runtime -t wallet-service .   # the service (default CMD: serve)
#   docker build --target test    -t wallet-tests .     # the test suite (needs PostgreSQL/Redis URLs)
#
# The page's templates and static files ship inside the package, so the runtime image
# installs it from a copy of the sources that it then removes, and runs it from /app with
# no source tree in it. The test image keeps the project in /app (the tests live there),
# installed editable so that the tests run that very code. The dependencies are installed
# from setup.cfg alone, before the sources are copied: a change to the code rebuilds only
# the last layers.

# ---- python: the base image, pinned to a Debian release (apt packages keep their versions) ----
FROM python:3.11-slim-bookworm AS python

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# ---- deps: the runtime dependencies, read from setup.cfg ----
FROM python AS deps

COPY setup.cfg pyproject.toml /app/
RUN python -c "import configparser; c = configparser.ConfigParser(interpolation=None); c.read('setup.cfg'); \
print(c['options']['install_requires'])" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# ---- runtime: the service, as an unprivileged user ----
FROM deps AS runtime

COPY . /tmp/wallet-source
RUN pip install --no-cache-dir --no-deps /tmp/wallet-source && rm -rf /tmp/wallet-source

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wallet
USER wallet

EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health/ready', timeout=2)"]

CMD ["python", "-m", "wallet", "serve", "--host", "0.0.0.0", "--port", "5000"]

# ---- test: runtime dependencies + dev extras + redis-server and PostgreSQL binaries (fault
# tests find them under /usr/lib/postgresql/<major>/bin) + Debian's chromium, which the
# browser tests drive through Playwright (never a downloaded browser) ----
FROM deps AS test

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server postgresql chromium nats-server \
    && rm -rf /var/lib/apt/lists/*
RUN python -c "import configparser; c = configparser.ConfigParser(interpolation=None); c.read('setup.cfg'); \
print(c['options.extras_require']['dev'])" > /tmp/requirements-dev.txt \
    && pip install --no-cache-dir -r /tmp/requirements-dev.txt

COPY . /app
RUN pip install --no-cache-dir --no-deps -e .

CMD ["python", "-m", "pytest", "-q"]
