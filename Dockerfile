# syntax=docker/dockerfile:1
# Production image: no embedded database (NPS_DATABASE_URL is required), non-root, health-checked.
# Build: docker build -t nps-service .
# Migrate (a separate, one-off command): docker run --rm -e NPS_DATABASE_URL=... nps-service nps migrate
# Serve: docker run -p 8000:8000 -e NPS_DATABASE_URL=... nps-service
#   (with one background worker in the same container; for several replicas set NPS_WORKER=off
#   and run workers as their own containers: docker run --no-healthcheck -e NPS_DATABASE_URL=...
#   nps-service nps worker; any number may run, each job is claimed by one of them)

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NPS_ENV=production \
    NPS_HOST=0.0.0.0 \
    NPS_PORT=8000
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin nps
COPY --from=build /opt/venv /opt/venv
USER nps
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('NPS_PORT', '8000')}/healthz\", timeout=2)"]
# With NPS_ENV=production `nps serve` does not migrate: `nps migrate` runs once, as its own step,
# before the workers roll; /readyz answers 503 until the schema is at the code's head.
CMD ["nps", "serve"]
