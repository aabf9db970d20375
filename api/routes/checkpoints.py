"""Checkpoint upload: the request body is streamed to disk, never held in memory."""
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import CurrentUser, SessionDep
from core.crud import get_checkpoint
from core.models import Checkpoint, Family
from core.storage import store_upload

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])


class CheckpointPublic(BaseModel):
    sha256: str
    family: Family
    format: str
    size_bytes: int
    params: int | None
    already_stored: bool = False


@router.post("", response_model=CheckpointPublic, status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
async def upload_checkpoint(request: Request, session: SessionDep, user: CurrentUser,
                            family: Family = Query(description="causal-lm or clip")) -> JSONResponse:
    """Upload a model folder as .tar, .tar.gz or .zip in the raw request body."""
    stored = await store_upload(request.stream(), family=family.value)
    row = get_checkpoint(session=session, sha256=stored.sha256)
    if row is None:
        row = Checkpoint(sha256=stored.sha256, family=family, format=stored.format, size_bytes=stored.size_bytes,
                         storage_uri=str(stored.path), params=stored.params, uploaded_by=user.id)
        session.add(row)
        session.commit()
    body = CheckpointPublic(sha256=row.sha256, family=row.family, format=row.format, size_bytes=row.size_bytes,
                            params=row.params, already_stored=stored.already_stored)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if stored.already_stored else 201)
