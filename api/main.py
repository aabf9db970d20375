"""The FastAPI app. It never imports torch: heavy libraries live in evaluators/ and runners/jobs."""
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from api import docs, errors
from api.board_snapshot import build_at_startup
from api.request_metrics import RequestTimer
from api.limits import RequestLimits
from api.routes import (admin, checkpoints, hardware, health, leaderboard, metrics, models, preflight, queue,
                        runs, submission_actions, submission_results, submissions, suites)

app = FastAPI(title="Evalboard", version="0.1.0",
              description="Submit checkpoints, follow their evaluation, read the leaderboard.",
              docs_url=None, redoc_url=None)  # /docs is served from local assets (api/docs.py)
errors.install(app)
# Header, credential and size checks before any body byte is read (api/limits.py).
app.add_middleware(RequestLimits)
# Answers over a kilobyte are gzipped for clients that accept it (the board's are gzipped once and cached).
app.add_middleware(GZipMiddleware, minimum_size=1024)
# Outermost: the latency of every request per route, the limits' refusals included (api/request_metrics.py).
app.add_middleware(RequestTimer)
docs.install(app)
for router in (health.router, suites.router, hardware.router, checkpoints.router, preflight.router,
               submissions.router,
               submission_actions.router, submission_results.router, runs.router,
               leaderboard.router, models.router, queue.router, admin.router):
    app.include_router(router, prefix="/api/v1", responses=errors.PROBLEM_RESPONSES)
# Load (or build) the published board in the background now, not in the first viewer's request.
build_at_startup(app)
# Prometheus scrapes /metrics at the root, as is customary.
app.include_router(metrics.router)
