# syntax=docker/dockerfile:1

# Wallet service image.
#   docker build --target runtime -t wallet-service .   # the service (default CMD: serve)
#   docker build --target test    -t wallet-tests .     # the test suite (needs PostgreSQL/Redis URLs)
#
# The service reads templates/ and static/ from the source tree at runtime, so the
# whole project is copied into /app and every command runs from there.

# ---- base: Python plus the runtime dependencies and the project source ----
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir .

# ---- runtime: the service, as an unprivileged user ----
FROM base AS runtime

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wallet
USER wallet

EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health/live', timeout=2)"]

CMD ["python", "-m", "wallet", "serve", "--host", "0.0.0.0", "--port", "5000"]

# ---- test: runtime dependencies + dev extras + redis-server and PostgreSQL binaries (fault
# tests) + Debian's chromium, which the browser tests drive through Playwright (never a
# downloaded browser) ----
FROM base AS test

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server postgresql chromium \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir '.[dev]'

CMD ["python", "-m", "pytest", "-q"]
