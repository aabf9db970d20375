"""Sizes and credentials before parsing: a pure ASGI middleware in front of every route.

Before a body byte is read:
- too many or too large request headers answer 431;
- a write (POST/PUT/PATCH/DELETE) under /api/v1 without a valid API token answers 401 (every write
  route needs one), so an anonymous 150 MiB POST costs a header parse, not 150 MiB of memory;
- a Content-Length over the route's limit answers 413: 1 MiB for JSON routes, max_upload_bytes for
  the checkpoint upload routes, which stream their octet-stream body to disk.
While the body is read, bytes are counted (a chunked body has no Content-Length to check), and a
body that stops arriving (Content-Length promising more than is sent) answers 408 after
request_body_timeout_s instead of holding the connection and its worker.
"""
import asyncio
import re

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from core.config import get_settings

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
API_PREFIX = "/api/v1/"
# Routes whose body is a checkpoint archive streamed to disk (core.storage caps it again while unpacking).
UPLOAD_ROUTES = (("POST", re.compile(r"^/api/v1/checkpoints/?$")),
                 ("PUT", re.compile(r"^/api/v1/checkpoints/uploads/[^/]+/?$")))


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over the limit of {limit} bytes for this route")


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float):
        super().__init__(408, f"the request body stopped arriving for {seconds:g} s (it is shorter than its "
                              f"Content-Length, or the connection stalled)")


def body_limit(method: str, path: str) -> int:
    settings = get_settings()
    if any(method == m and pattern.match(path) for m, pattern in UPLOAD_ROUTES):
        return settings.max_upload_bytes
    return settings.max_json_body_bytes


def _authorized(authorization: str | None) -> str | None:
    """Why the request is not authenticated, in the words api.deps uses, or None when its token is valid."""
    from sqlmodel import Session

    from core.crud import user_for_token
    from core.db import get_engine
    if not authorization or not authorization.lower().startswith("bearer "):
        return ("an API token is required: send 'Authorization: Bearer <token>' "
                "(create one with `evalboard token create --user NAME`)")
    # A read: no commit (a commit would tell the board its data may have changed; see api/board_snapshot.py).
    with Session(get_engine()) as session:
        if user_for_token(session=session, token=authorization.split(" ", 1)[1].strip()) is None:
            return "the API token is not valid (unknown or revoked)"
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = get_settings()
        method, path, headers = scope["method"], scope["path"], scope["headers"]

        async def refuse(status: int, title: str, detail: str) -> None:
            await problem(status, title, detail)(scope, receive, send)

        if len(headers) > settings.max_request_headers:
            return await refuse(431, "Request Header Fields Too Large",
                                f"{len(headers)} headers; at most {settings.max_request_headers} are accepted")
        if sum(len(name) + len(value) for name, value in headers) > settings.max_request_header_bytes:
            return await refuse(431, "Request Header Fields Too Large",
                                f"the headers are over {settings.max_request_header_bytes} bytes")
        if method in WRITES and path.startswith(API_PREFIX):
            authorization = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), None)
            try:
                why = await run_in_threadpool(_authorized, authorization)
            except OperationalError:
                return await refuse(503, "Database unavailable", "the database cannot be reached; try again shortly")
            if why:
                return await refuse(401, "AuthError", why)

        limit = body_limit(method, path)
        lengths = [v for k, v in headers if k == b"content-length"]
        if lengths:
            try:
                declared = int(lengths[0])
            except ValueError:
                return await refuse(400, "Bad Request", "Content-Length is not a number")
            if declared > limit:
                return await refuse(413, "Content Too Large",
                                    f"the request body ({declared} bytes) is over the limit of {limit} bytes "
                                    f"for this route")
        await self.app(scope, _counted(receive, limit, settings.request_body_timeout_s), send)


def _counted(receive: Receive, limit: int, timeout_s: float) -> Receive:
    """`receive` that refuses a body past `limit` bytes and one that stalls for `timeout_s`."""
    received, done = 0, False

    async def wrapped() -> Message:
        nonlocal received, done
        if done:  # after the body, receive() waits for a disconnect: no deadline there
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), timeout_s)
        except TimeoutError:
            raise BodyTimeout(timeout_s) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            done = not message.get("more_body", False)
        else:
            done = True
        return message
    return wrapped
