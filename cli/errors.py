"""Expected failures of a CLI command as one line: what is wrong, and the command that fixes it.

A traceback is for a bug. A service that is not running, an API that refuses a request or an id
that is not an id are expected: the user gets one line on stderr and a non-zero exit code.
"""
EXIT_FAILED, EXIT_REJECTED = 1, 2
START_HINT = "start it with `make run` (or `evalboard up`) in this project folder"


class CliError(Exception):
    """An expected failure, already worded for the user."""

    def __init__(self, message: str, exit_code: int = EXIT_REJECTED):
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code for an expected failure; None for anything else (a bug)."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    from cli.client import ApiError
    if isinstance(exc, ApiError):
        return f"error: {exc.detail}", EXIT_REJECTED if 400 <= exc.status < 500 else EXIT_FAILED
    import httpx
    if isinstance(exc, httpx.TransportError):
        url = str(exc.request.url.copy_with(path="/", query=None)) if _has_request(exc) else "the API"
        return (f"cannot reach the Evalboard API at {url} ({type(exc).__name__}): {START_HINT}, "
                f"or point --api-url / EVALBOARD_API_URL at a running one", EXIT_FAILED)
    from core.errors import EvalboardError
    if isinstance(exc, EvalboardError):
        return f"error: {exc.message}", EXIT_REJECTED
    if _is_database_down(exc):
        return (f"cannot reach the database ({_first_line(exc)}): {START_HINT}, or set DATABASE_URL "
                f"to a running PostgreSQL", EXIT_FAILED)
    if _is_unmigrated(exc):
        return "the database has no Evalboard tables yet: run `evalboard migrate` (`evalboard up` does it)", EXIT_FAILED
    if _is_redis_down(exc):
        return (f"cannot reach Redis ({_first_line(exc)}): {START_HINT}, or set REDIS_URL to a running Redis",
                EXIT_FAILED)
    if isinstance(exc, RuntimeError) and str(exc).startswith(("DATABASE_URL is not set", "REDIS_URL is not set")):
        variable = str(exc).split()[0]
        return (f"no Evalboard is running for this project folder and {variable} is not set: {START_HINT} "
                f"in another terminal, or set {variable}", EXIT_FAILED)
    return None


def _has_request(exc) -> bool:
    try:
        exc.request  # noqa: B018 (raises when the error was made without a request)
        return True
    except RuntimeError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_database_down(exc: BaseException) -> bool:
    import psycopg
    from sqlalchemy.exc import OperationalError
    return isinstance(exc, OperationalError | psycopg.OperationalError)


def _is_unmigrated(exc: BaseException) -> bool:
    from psycopg.errors import UndefinedTable
    from sqlalchemy.exc import ProgrammingError
    return isinstance(exc, ProgrammingError) and isinstance(exc.orig, UndefinedTable)


def _is_redis_down(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)
