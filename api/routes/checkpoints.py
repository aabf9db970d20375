"""Checkpoint upload: the request body is streamed to disk, never held in memory."""
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentUser, SessionDep
from api.schemas import CheckpointPublic, UploadCreate, UploadStatus
from core import uploads
from core.crud import get_checkpoint, record_uploader
from core.models import Checkpoint, Family
from core.artifact_store import checkpoint_key, store_uri
from core.storage import StoredCheckpoint, quota_left, store_upload

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])


@router.post("", response_model=CheckpointPublic, status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
async def upload_checkpoint(request: Request, session: SessionDep, user: CurrentUser,
                            family: Family = Query(description="causal-lm or clip")) -> JSONResponse:
    """Upload a model folder as .tar, .tar.gz or .zip in the raw request body."""
    left = quota_left(session, user_id=user.id)  # before a byte of the body is read
    stored = await store_upload(request.stream(), family=family.value, quota_left=left)
    return _register(session, user, family, stored)


def _register(session, user, family: Family, stored: StoredCheckpoint) -> JSONResponse:
    """One checkpoint row per content: the same bytes uploaded again answer 200 with the existing one.

    Either way the uploader is recorded: having sent the bytes is what lets a user submit them."""
    row = get_checkpoint(session=session, sha256=stored.sha256)
    known = row is not None  # the database, not the file store, says whether this checkpoint is new
    if not known:
        row = Checkpoint(sha256=stored.sha256, family=family, format=stored.format, size_bytes=stored.size_bytes,
                         storage_uri=store_uri(checkpoint_key(stored.sha256)), params=stored.params, uploaded_by=user.id)
        session.add(row)
        session.flush()
    record_uploader(session=session, checkpoint=row, user=user)
    session.commit()
    body = CheckpointPublic(sha256=row.sha256, family=row.family, format=row.format, size_bytes=row.size_bytes,
                            params=row.params, already_stored=known)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if known else 201)


def _conflict(exc: uploads.OffsetMismatchError) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": "Offset mismatch", "status": 409,
                         "detail": exc.message, "offset": exc.offset},
                        status_code=409, media_type="application/problem+json")


@router.post("/uploads", response_model=UploadStatus, status_code=201)
def initiate_upload(body: UploadCreate, user: CurrentUser) -> UploadStatus:
    """Start a resumable upload of a large archive. A user has a few open at most (429), declaring a
    bounded number of bytes together (413); an upload idle for a day expires with its bytes."""
    try:
        return UploadStatus(**uploads.initiate(user_id=user.id, family=body.family.value, size=body.size,
                                               sha256=body.sha256))
    except uploads.UploadBudgetError as exc:
        return JSONResponse({"type": "about:blank", "title": "Upload budget exceeded", "status": 413,
                             "detail": exc.message, "field": exc.field},
                            status_code=413, media_type="application/problem+json")


@router.get("/uploads/{upload_id}", response_model=UploadStatus)
def upload_status(upload_id: str, user: CurrentUser) -> UploadStatus:
    """Where an interrupted upload stands: resume from `offset`."""
    return UploadStatus(**uploads.status(upload_id, user_id=user.id))


@router.put("/uploads/{upload_id}", response_model=UploadStatus,
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def upload_chunk(upload_id: str, request: Request, user: CurrentUser,
                       offset: int = Query(ge=0, description="where this chunk starts")) -> UploadStatus:
    """Append a chunk; 409 with the current offset when it does not start there."""
    try:
        return UploadStatus(**await uploads.append(upload_id, offset, request.stream(), user_id=user.id))
    except uploads.OffsetMismatchError as exc:
        return _conflict(exc)


@router.delete("/uploads/{upload_id}", status_code=204)
def abort_upload(upload_id: str, user: CurrentUser) -> Response:
    """Give up an upload: its bytes are removed and it no longer counts against your open uploads."""
    uploads.abort(upload_id, user_id=user.id)
    return Response(status_code=204)


@router.post("/uploads/{upload_id}/complete", response_model=CheckpointPublic, status_code=201)
async def complete_upload(upload_id: str, session: SessionDep, user: CurrentUser) -> JSONResponse:
    """Check the whole archive against its sha256, unpack it safely and register the checkpoint."""
    try:
        stored, family = await uploads.complete(upload_id, user_id=user.id,
                                                quota_left=quota_left(session, user_id=user.id))
    except uploads.OffsetMismatchError as exc:
        return _conflict(exc)
    return _register(session, user, Family(family), stored)
