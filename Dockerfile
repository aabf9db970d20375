# One image for every Evalboard process: api (default), migrate, worker, leaderboard.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Import our packages from /app, not site-packages: core.config.PROJECT_ROOT must be
    # /app so alembic.ini, migrations/ and datasets/ are found.
    PYTHONPATH=/app \
    DATA_DIR=/data \
    DATASETS_DIR=/app/datasets

WORKDIR /app

# bubblewrap confines each evaluation child (runners/isolation.py). A non-root worker needs user
# namespaces for it, which Docker's default seccomp profile refuses: without them the worker says
# so in its log and confines the child without the sandbox (README: Security model).
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

# The heavy, rarely changing layer first; these pins must match pyproject.toml.
RUN pip install torch==2.14.1 torchvision==0.29.1

# Only what the service needs (no .venv, tests or build outputs in the image).
COPY pyproject.toml alembic.ini ./
COPY api/ api/
COPY core/ core/
COPY runners/ runners/
COPY evaluators/ evaluators/
COPY leaderboard/ leaderboard/
COPY cli/ cli/
COPY migrations/ migrations/
COPY datasets/ datasets/

# Every process runs as an unprivileged user: a flaw in the API or in a checkpoint's loader
# gets no root in the container. /data belongs to it, so the named volume mounted there
# (initialised from this folder) is writable; the code under /app stays root-owned, read-only to it.
RUN pip install . \
    && useradd --create-home --uid 10001 --user-group evalboard \
    && mkdir -p /data && chown evalboard:evalboard /data
USER evalboard

EXPOSE 8000 8501

CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--http", "h11", "--h11-max-incomplete-event-size", "16384", "--timeout-keep-alive", "5"]
