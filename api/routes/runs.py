"""One run: its row with provenance, and its per-sample records."""
import json
import uuid

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlmodel import select

from api.deps import OptionalUser, SessionDep
from api.presenters import run_detail
from api.schemas import RunDetail
from core import crud, visibility
from core.errors import ForbiddenError
from core.models import Sample, Submission

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunDetail)
def read_run(run_id: uuid.UUID, session: SessionDep, viewer: OptionalUser) -> RunDetail:
    """One run with its full provenance: everything needed to rebuild its numbers. A hidden or withdrawn
    model's runs are its owner's and admins' only; the public reads a failure as its kind and one line."""
    run, model = crud.visible_run(session=session, run_id=run_id, viewer=viewer)
    return run_detail(run, model, viewer)


@router.get("/{run_id}/samples.jsonl", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def run_samples(run_id: uuid.UUID, session: SessionDep, viewer: OptionalUser) -> StreamingResponse:
    """Per-sample records (input, target, prediction, per-sample metrics), one JSON object a line.
    A gated task's records (its data's terms forbid publishing examples) are its owner's and admins' only."""
    run, model = crud.visible_run(session=session, run_id=run_id, viewer=viewer)
    submission = session.get(Submission, run.submission_id)
    if not visibility.can_read_samples(model, viewer, suite=submission.suite, task=run.task):
        raise ForbiddenError(f"per-sample records of {run.task} are shown to the model's owner only: its data is "
                             f"gated upstream and its examples may not be published")
    samples = session.exec(select(Sample).where(Sample.run_id == run_id).order_by(Sample.index)).all()
    lines = (json.dumps({"index": s.index, "input": s.input, "target": s.target, "prediction": s.prediction,
                         "metrics": s.metrics}, ensure_ascii=False) + "\n" for s in samples)
    return StreamingResponse(lines, media_type="application/x-ndjson")
