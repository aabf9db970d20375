"""Domain errors → RFC 9457 problem+json responses. A database outage is a 503, never a 500."""
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.board_snapshot import BoardNotReadyError
from core.errors import (
    AuthError,
    EvalboardError,
    ForbiddenError,
    InvalidCheckpointError,
    InvalidRequestError,
    NotFoundError,
    QuotaExceededError,
    RateLimitedError,
    StoreUnavailableError,
    UnsafeArchiveError,
)
from core.hub import HubUnreachableError

class Problem(BaseModel):
    """RFC 9457 problem details: every error this API returns has this shape."""
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None


PROBLEM = {"model": Problem, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
# Documented on every operation, so clients (and schemathesis) know errors are problem+json.
PROBLEM_RESPONSES: dict = {"4XX": {"description": "The request was refused; `detail` says why.", **PROBLEM},
                           "5XX": {"description": "A service the API needs is unavailable.", **PROBLEM}}

STATUS = {BoardNotReadyError: 503, AuthError: 401, ForbiddenError: 403, NotFoundError: 404, InvalidRequestError: 422,
          UnsafeArchiveError: 422, InvalidCheckpointError: 422, RateLimitedError: 429, HubUnreachableError: 503,
          StoreUnavailableError: 503, QuotaExceededError: 413}


def problem(status: int, title: str, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(EvalboardError)
    async def domain_error(_: Request, exc: EvalboardError):
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        extra = {"field": exc.field} if exc.field else {}
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimitedError) else None
        return problem(status, type(exc).__name__, exc.message, headers=headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        # Framework errors (unparseable body, unknown path, wrong method) in the same problem shape.
        return problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def out_of_range(_: Request, exc: DataError):
        # A well-formed value the database cannot hold (an id past its integer range, say): the caller's error.
        return problem(422, "Invalid value", "a value in the request is out of range for this field")

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, exc: OperationalError):
        return problem(503, "Database unavailable", "the database cannot be reached; try again shortly")

    @app.exception_handler(RedisConnectionError)
    async def redis_down(_: Request, exc: RedisConnectionError):
        return problem(503, "Queue unavailable", "the queue (Redis) cannot be reached; try again shortly")
