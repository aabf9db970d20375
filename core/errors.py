"""Flat domain exceptions shared by api, runners and evaluators. The API maps them to HTTP codes.

Standard library only: the evaluation child imports this module too.
"""
from enum import Enum


class ErrorKind(str, Enum):
    """Whose fault a failure was: the submitter's (act on it) or ours (we retry)."""
    user = "user"
    infra = "infra"


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


class UnsafeCheckpointError(InvalidCheckpointError, ValueError):
    """A checkpoint the checkpoint policy refuses (core/checkpoint_policy.py): something that could
    choose code (a file outside its family's allow-list: *.py, pickles, links; `auto_map`,
    `trust_remote_code`, a hub attention kernel, a kwargs field with keys beyond the allow-list),
    or JSON it will not parse (too large, too deep, invalid). Raised at upload (422) and again by
    the loaders, so a folder that reached the store another way still runs no code. A ValueError as
    well, so a worker classes it as the author's error, never retried."""


class StoreUnavailableError(EvalboardError):
    """The artifact store (file or S3) could not be written or read: the service's problem (503)."""


class QuotaExceededError(EvalboardError):
    """The user's storage quota would be exceeded (413)."""


class OffsetMismatchError(InvalidRequestError):
    """A resumable upload's chunk does not start where the upload stands; `offset` says where it does."""

    def __init__(self, offset: int, message: str | None = None):
        super().__init__(message or f"this chunk must start at offset {offset}", field="offset")
        self.offset = offset


class UploadBudgetError(InvalidRequestError):
    """The new upload session would put the user's declared bytes in flight over their cap (413)."""


class HubUnreachableError(EvalboardError):
    """The hub could not be asked (offline deployment, network down): 503."""


class DatasetUnavailableError(RuntimeError):
    """An evaluation's data set is not on this worker. A RuntimeError so the runner records it as the
    submission's task failing, at once, not retried."""


class EvalFailed(Exception):
    """An evaluation ended without an outcome; `kind` says whose fault it was (ErrorKind: the submission's,
    recorded at once, or ours, retried)."""

    def __init__(self, kind: ErrorKind | str, message: str, log_tail: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.log_tail = ErrorKind(kind), message, log_tail
