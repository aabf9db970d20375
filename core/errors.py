"""Flat domain exceptions shared by api and runners. The API maps them to HTTP codes."""


class EvalboardError(Exception):
    """Base of every domain error; `field` names the request field at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(EvalboardError):
    pass


class InvalidRequestError(EvalboardError):
    """The request names something that does not exist or is not allowed (422)."""


class UnsafeArchiveError(EvalboardError):
    """An uploaded archive breaks a safety rule (DESIGN §6); nothing of it is kept."""


class InvalidCheckpointError(EvalboardError):
    """The checkpoint's content does not fit its declared family."""


class AuthError(EvalboardError):
    pass


class RateLimitedError(EvalboardError):
    """Too many requests; `retry_after_s` says when the next one will be accepted."""

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ForbiddenError(EvalboardError):
    """Authenticated, but not allowed (admin actions)."""
