"""The FastAPI app. It never imports torch: heavy libraries live in evaluators/ and runners/jobs."""
from fastapi import FastAPI

from api import errors
from api.routes import checkpoints, hardware, health, leaderboard, metrics, runs, submissions, suites

app = FastAPI(title="Evalboard", version="0.1.0",
              description="Submit checkpoints, follow their evaluation, read the leaderboard.")
errors.install(app)
for router in (health.router, suites.router, hardware.router, checkpoints.router, submissions.router, runs.router,
               leaderboard.router):
    app.include_router(router, prefix="/api/v1")
# Prometheus scrapes /metrics at the root, as is customary.
app.include_router(metrics.router)
