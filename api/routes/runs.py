import json
import uuid

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlmodel import select

from api.deps import SessionDep
from core.errors import NotFoundError
from core.models import Run, Sample

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}")
def read_run(run_id: uuid.UUID, session: SessionDep) -> dict:
    """One run with its full provenance: everything needed to rebuild its numbers."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run.model_dump(mode="json")


@router.get("/{run_id}/samples.jsonl", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def run_samples(run_id: uuid.UUID, session: SessionDep) -> StreamingResponse:
    """Per-sample records (input, target, prediction, per-sample metrics), one JSON object a line."""
    if session.get(Run, run_id) is None:
        raise NotFoundError(f"no run {run_id}")
    samples = session.exec(select(Sample).where(Sample.run_id == run_id).order_by(Sample.index)).all()
    lines = (json.dumps({"index": s.index, "input": s.input, "target": s.target, "prediction": s.prediction,
                         "metrics": s.metrics}, ensure_ascii=False) + "\n" for s in samples)
    return StreamingResponse(lines, media_type="application/x-ndjson")
