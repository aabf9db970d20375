"""Submissions: validated in full before anything is written; enqueued after the commit."""
import logging
import uuid
from datetime import datetime, timedelta
from enum import Enum

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import select

from api.deps import CurrentUser, SessionDep
from core import crud, results
from core.catalog import get_suite
from core.config import get_settings
from core.errors import InvalidRequestError, NotFoundError, RateLimitedError
from core.models import Model, Precision, Role, Status, Submission, utcnow
from runners.dispatch import cancel_job, enqueue_run

log = logging.getLogger("evalboard.api")
router = APIRouter(prefix="/submissions", tags=["submissions"])


class ResultFormat(str, Enum):
    json = "json"
    csv = "csv"
    lm_eval = "lm-eval"
    model_index = "model-index"


class SubmissionCreate(BaseModel):
    model_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    checkpoint_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 returned by POST /checkpoints")
    suite: str
    hardware_class: str = "cpu"
    precision: Precision = Precision.float32
    tasks: list[str] | None = Field(default=None, description="run only these tasks of the suite")
    license: str | None = None
    revision: str | None = None


class RunPublic(BaseModel):
    id: uuid.UUID
    task: str
    capability: str
    status: Status
    stage: str | None
    progress: float
    attempts: int
    queue_position: int | None
    error: str | None
    error_kind: str | None
    scores: dict[str, float]


class SubmissionPublic(BaseModel):
    id: uuid.UUID
    model_name: str
    suite: str
    hardware_class: str
    precision: Precision
    status: Status
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    runs: list[RunPublic]


def submission_public(session, submission: Submission) -> SubmissionPublic:
    model = session.get(Model, submission.model_id)
    runs = crud.runs_of(session=session, submission_id=submission.id)
    scores: dict = {}
    for score in crud.scores_of(session=session, run_ids=[r.id for r in runs]):
        scores.setdefault(score.run_id, {})[score.metric] = score.value
    return SubmissionPublic(
        id=submission.id, model_name=model.name, suite=submission.suite, hardware_class=submission.hardware_class,
        precision=submission.precision, status=submission.status, submitted_at=submission.submitted_at,
        started_at=submission.started_at, finished_at=submission.finished_at, error=submission.error,
        runs=[RunPublic(id=r.id, task=r.task, capability=r.capability, status=r.status, stage=r.stage,
                        progress=r.progress, attempts=r.attempts, queue_position=crud.queue_position(session=session, run=r),
                        error=r.error, error_kind=r.error_kind.value if r.error_kind else None,
                        scores=scores.get(r.id, {})) for r in runs])


@router.post("", response_model=SubmissionPublic, status_code=201)
def create_submission(body: SubmissionCreate, session: SessionDep, user: CurrentUser) -> JSONResponse:
    suite = get_suite(body.suite)
    tasks = [suite.task(name) for name in body.tasks] if body.tasks else list(suite.tasks)
    if body.hardware_class not in get_settings().hardware_classes:
        raise InvalidRequestError(f"unknown hardware class {body.hardware_class!r}; known: "
                                  f"{', '.join(get_settings().hardware_classes)}", field="hardware_class")
    supported = crud.supported_precisions(session=session, hardware_class=body.hardware_class)
    if supported is not None and body.precision.value not in supported:
        raise InvalidRequestError(f"hardware class {body.hardware_class!r} cannot run {body.precision.value}; its "
                                  f"workers support: {', '.join(sorted(supported))}", field="precision")
    checkpoint = crud.get_checkpoint(session=session, sha256=body.checkpoint_sha256)
    if checkpoint is None:
        raise InvalidRequestError("no uploaded checkpoint has this sha256; upload it first with POST /api/v1/checkpoints",
                                  field="checkpoint_sha256")
    if checkpoint.family.value != suite.family:
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, but the checkpoint is "
                                  f"{checkpoint.family.value}", field="suite")
    if checkpoint.params and checkpoint.params > get_settings().max_params(body.precision.value):
        raise InvalidRequestError(f"the checkpoint has {checkpoint.params:,} parameters, over the cap of "
                                  f"{get_settings().max_params(body.precision.value):,} for {body.precision.value}; "
                                  f"a lower precision may fit", field="precision")
    duplicate = session.exec(select(Submission).where(
        Submission.checkpoint_id == checkpoint.id, Submission.suite == suite.name,
        Submission.precision == body.precision, Submission.hardware_class == body.hardware_class,
        Submission.status != Status.cancelled)).first()
    if duplicate is not None:
        return JSONResponse(submission_public(session, duplicate).model_dump(mode="json"), status_code=200)
    _check_rate_limit(session, user)
    model = crud.get_or_create_model(session=session, owner=user, name=body.model_name, family=checkpoint.family,
                                     license=body.license, params=checkpoint.params)
    submission, runs = crud.create_submission(session=session, model=model, checkpoint=checkpoint, suite=suite,
                                              tasks=tasks, user=user, hardware_class=body.hardware_class,
                                              precision=body.precision, revision=body.revision)
    session.commit()
    # After the commit: if Redis is down now, the runs stay queued in Postgres and the reconciler enqueues them.
    for run in runs:
        try:
            enqueue_run(run.id, body.hardware_class)
        except Exception as exc:
            log.warning("enqueue of run %s deferred to the reconciler: %s", run.id, exc)
    return JSONResponse(submission_public(session, submission).model_dump(mode="json"), status_code=201)


def _check_rate_limit(session, user) -> None:
    """At most N new submissions per user in any rolling 24 hours (duplicates are free)."""
    limit = get_settings().submissions_per_day
    window_start = utcnow() - timedelta(days=1)
    recent = session.exec(select(Submission.submitted_at).where(
        Submission.submitted_by == user.id, Submission.submitted_at > window_start)
        .order_by(Submission.submitted_at)).all()
    if len(recent) >= limit:
        retry_after = int((recent[len(recent) - limit] - window_start).total_seconds()) + 1
        raise RateLimitedError(f"at most {limit} submissions per day; the next is accepted in {retry_after} s",
                               retry_after_s=retry_after)


@router.get("/{submission_id}", response_model=SubmissionPublic)
def read_submission(submission_id: uuid.UUID, session: SessionDep) -> SubmissionPublic:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFoundError(f"no submission {submission_id}")
    return submission_public(session, submission)


@router.post("/{submission_id}/cancel", response_model=SubmissionPublic)
def cancel_submission(submission_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SubmissionPublic:
    """Cancel the runs not yet done. Another author's submission is a 404, so ids do not leak."""
    submission = session.get(Submission, submission_id)
    if submission is None or (submission.submitted_by != user.id and user.role != Role.admin):
        raise NotFoundError(f"no submission {submission_id}")
    for run in crud.runs_of(session=session, submission_id=submission_id):
        if not run.status.is_terminal:
            run.status, run.stage, run.finished_at = Status.cancelled, "cancelled", utcnow()
            session.add(run)
    session.flush()
    crud.refresh_submission_status(session=session, submission_id=submission_id)
    session.commit()
    # After the commit: the job, if it still runs, finds its run cancelled and writes nothing.
    for run in crud.runs_of(session=session, submission_id=submission_id):
        try:
            cancel_job(run.id)
        except Exception as exc:
            log.warning("could not stop job of run %s: %s", run.id, exc)
    return submission_public(session, submission)


@router.get("/{submission_id}/results")
def submission_results(submission_id: uuid.UUID, session: SessionDep, request: Request,
                       format: ResultFormat = ResultFormat.json) -> Response:
    """Finished tasks' metrics as JSON, CSV, lm-eval's results layout, or a model-index block."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFoundError(f"no submission {submission_id}")
    model = session.get(Model, submission.model_id)
    runs = [r for r in crud.runs_of(session=session, submission_id=submission_id) if r.status == Status.finished]
    by_run: dict = {}
    for score in crud.scores_of(session=session, run_ids=[r.id for r in runs]):
        by_run.setdefault(score.run_id, []).append(
            {"metric": score.metric, "value": score.value, "stderr": score.stderr, "n": score.n,
             "primary": score.primary, "higher_is_better": score.higher_is_better, "unit": score.unit})
    tasks = [results.TaskResult(r.task, r.capability, r.status.value, by_run.get(r.id, []), r.provenance)
             for r in runs]
    if format == ResultFormat.csv:
        return Response(results.as_csv(tasks), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{submission_id}.csv"'})
    if format == ResultFormat.lm_eval:
        return JSONResponse(results.as_lm_eval(model.name, tasks))
    if format == ResultFormat.model_index:
        return Response(results.as_model_index(model.name, str(request.url_for("read_submission",
                                                                               submission_id=submission_id)), tasks),
                        media_type="application/yaml")
    public = submission_public(session, submission).model_dump(mode="json")
    return JSONResponse(results.as_json(public, tasks))
