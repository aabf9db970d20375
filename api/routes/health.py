"""Liveness and the health of the dependencies (PostgreSQL, Redis)."""
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.schemas import HealthPublic
from core.db import get_engine
from runners.dispatch import get_redis

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health() -> JSONResponse:
    checks = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)
