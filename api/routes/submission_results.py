"""A submission's results out: JSON, CSV, lm-eval's results layout, a model-index block."""
import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from api.deps import OptionalUser, SessionDep
from api.presenters import submission_public
from api.schemas import ResultFormat
from core import crud, results, visibility
from core.config import get_settings
from core.models import Status

router = APIRouter(prefix="/submissions", tags=["submissions"])


@router.get("/{submission_id}/results", responses={200: {"content": {
    "application/json": {}, "text/csv": {}, "application/yaml": {}}}})
def submission_results(submission_id: uuid.UUID, session: SessionDep, viewer: OptionalUser,
                       format: ResultFormat = ResultFormat.json) -> Response:
    """Finished tasks' metrics as JSON, CSV, lm-eval's results layout, or a model-index block.

    A hidden or withdrawn model's results are its owner's and admins' only."""
    submission, model = crud.visible_submission(session=session, submission_id=submission_id, viewer=viewer)
    runs = [r for r in crud.runs_of(session=session, submission_id=submission_id) if r.status == Status.finished]
    by_run: dict = {}
    for score in crud.scores_of(session=session, run_ids=[r.id for r in runs]):
        by_run.setdefault(score.run_id, []).append(
            {"metric": score.metric, "value": score.value, "stderr": score.stderr, "n": score.n,
             "primary": score.primary, "higher_is_better": score.higher_is_better, "unit": score.unit})
    privileged = visibility.is_privileged(model, viewer)
    tasks = [results.TaskResult(r.task, r.capability, r.status.value, by_run.get(r.id, []),
                                r.provenance if privileged else visibility.public_provenance(r.provenance))
             for r in runs]
    if format == ResultFormat.csv:
        return Response(results.as_csv(tasks), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{submission_id}.csv"'})
    if format == ResultFormat.lm_eval:
        return JSONResponse(results.as_lm_eval(model.name, tasks))
    if format == ResultFormat.model_index:
        # The configured public URL, never the request's Host header (the caller chooses that).
        source = get_settings().public_link(f"/api/v1/submissions/{submission_id}")
        return Response(results.as_model_index(model.name, source, tasks), media_type="application/yaml")
    public = submission_public(session, submission, viewer).model_dump(mode="json")
    return JSONResponse(results.as_json(public, tasks))
