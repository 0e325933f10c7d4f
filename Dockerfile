# syntax=docker/dockerfile:1
# The bridge as an image: `docker build -t channel-bridge .` then
# `docker run -p 8080:8080 -v bridge-data:/data channel-bridge` (SQLite under /data).
# docker-compose.yml runs it on PostgreSQL in the scaled layout.

# 1. The official widget's files for the demo page, from npm (Node stays in this stage).
FROM node:20-slim AS widget
WORKDIR /src
COPY scripts/install-widget.sh scripts/
RUN mkdir -p adapters/web/static/vendor && sh scripts/install-widget.sh

# 2. A virtual environment with the dependencies, then the bridge itself.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /src
# Dependencies first, at the exact versions of requirements.lock (`make lock` regenerates it from
# pyproject.toml): this layer is rebuilt only when the lock file changes, and every build is the same.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY README.md ./
COPY bridge ./bridge
COPY adapters ./adapters
COPY --from=widget /src/adapters/web/static/vendor ./adapters/web/static/vendor
RUN pip install --no-deps . && pip check && chatbridge --version

# 3. The runtime: Python and the virtual environment only; no compilers, no Node.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    PORT=8080 DATA_DIR=/data DATABASE_URL=sqlite+aiosqlite:////data/bridge.db
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin bridge \
    && mkdir -p /data \
    && chown bridge:bridge /data
COPY --from=build /venv /venv
# The SQLite default and the widget's uploads (DATA_DIR/uploads) live here; keep it on a volume.
# A named volume starts as this directory (owned by `bridge`, uid 10001); a host directory mounted
# here must be writable by uid 10001 (`sudo chown 10001:10001 ./data`).
VOLUME /data
WORKDIR /data
USER bridge
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"
CMD ["chatbridge", "serve"]
