FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# npm fetches the official widget for the demo page at build time (the page falls back to the CDN).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md alembic.ini ./
COPY bridge ./bridge
COPY adapters ./adapters
COPY alembic ./alembic
COPY scripts ./scripts
RUN sh scripts/install-widget.sh && pip install .

RUN useradd --create-home --uid 10001 bridge && mkdir -p /data && chown bridge /data
USER bridge
ENV DATABASE_URL=sqlite+aiosqlite:////data/bridge.db PORT=8080
EXPOSE 8080
CMD ["bridge", "serve"]
