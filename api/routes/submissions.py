"""Submissions: validated in full before anything is written; enqueued after the commit."""
import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, Field
from sqlalchemy import func
from sqlmodel import select

from api.deps import CurrentUser, SessionDep
from core import crud, hub, webhooks
from core.catalog import get_suite
from core.config import get_settings
from core.errors import InvalidRequestError, NotFoundError, RateLimitedError
from core.eta import eta_seconds, mean_run_seconds
from core.license_text import checkpoint_license
from core.licenses import SpdxLicense
from core.models import (
    Checkpoint,
    Family,
    Model,
    Precision,
    Role,
    Status,
    Submission,
    utcnow,
)
from runners.dispatch import enqueue_committed_runs

router = APIRouter(prefix="/submissions", tags=["submissions"])


class SubmissionCreate(BaseModel):
    model_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    checkpoint_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                          description="sha256 returned by POST /checkpoints")
    source: str | None = Field(default=None, description="instead of an upload: hf://org/name@revision (a causal "
                                                         "LM) or hf-hub:org/name@revision (an open_clip model); "
                                                         "connected deployments; pinned to its commit")
    suite: str
    hardware_class: str = "cpu"
    precision: Precision = Precision.float32
    tasks: list[str] | None = Field(default=None, description="run only these tasks of the suite")
    license: SpdxLicense | None = Field(default=None, description="an SPDX identifier (Apache-2.0, MIT, …)")
    revision: str | None = None
    webhook_url: AnyHttpUrl | None = Field(default=None, description="POSTed to once when the submission ends")
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=256,
                                       description="HMAC-SHA256 key for the X-Evalboard-Signature header")


class RunPublic(BaseModel):
    id: uuid.UUID
    task: str
    capability: str
    status: Status
    stage: str | None
    progress: float
    attempts: int
    queue_position: int | None
    eta_s: float | None = Field(description="estimated seconds until done; None until a run has finished on the "
                                            "hardware class")
    error: str | None
    error_kind: str | None
    log_tail: str | None = Field(description="the end of the evaluation's log, for failures")
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
    warnings: list[str] = Field(default_factory=list, description="things the submitter should know, e.g. no "
                                                                  "worker of the class is online")


def submission_public(session, submission: Submission) -> SubmissionPublic:
    model = session.get(Model, submission.model_id)
    runs = crud.runs_of(session=session, submission_id=submission.id)
    live = any(not r.status.is_terminal for r in runs)
    mean_s = mean_run_seconds(session, submission.hardware_class) if live else None
    workers = crud.live_workers(session=session, hardware_class=submission.hardware_class) if live else 0
    scores: dict = {}
    for score in crud.scores_of(session=session, run_ids=[r.id for r in runs]):
        scores.setdefault(score.run_id, {})[score.metric] = score.value
    return SubmissionPublic(
        id=submission.id, model_name=model.name, suite=submission.suite, hardware_class=submission.hardware_class,
        precision=submission.precision, status=submission.status, submitted_at=submission.submitted_at,
        started_at=submission.started_at, finished_at=submission.finished_at, error=submission.error,
        runs=[_run_public(session, r, submission, scores.get(r.id, {}), mean_s, workers) for r in runs])


def _run_public(session, run, submission: Submission, scores: dict, mean_s: float | None, workers: int) -> RunPublic:
    position = crud.queue_position(session=session, run=run)
    return RunPublic(id=run.id, task=run.task, capability=run.capability, status=run.status, stage=run.stage,
                     progress=run.progress, attempts=run.attempts, queue_position=position,
                     eta_s=eta_seconds(mean_s=mean_s, workers=workers, status=run.status, queue_position=position,
                                       progress=run.progress),
                     error=run.error, error_kind=run.error_kind.value if run.error_kind else None,
                     log_tail=run.provenance.get("log_tail"), scores=scores)


@router.post("", response_model=SubmissionPublic, status_code=201)
def create_submission(body: SubmissionCreate, session: SessionDep, user: CurrentUser) -> JSONResponse:
    suite = get_suite(body.suite)
    tasks = [suite.task(name) for name in body.tasks] if body.tasks else list(suite.tasks)
    if body.hardware_class not in get_settings().hardware_classes:
        raise InvalidRequestError(f"unknown hardware class {body.hardware_class!r}; known: "
                                  f"{', '.join(get_settings().hardware_classes)}", field="hardware_class")
    if body.webhook_url and not body.webhook_secret:
        raise InvalidRequestError("a webhook needs a webhook_secret (16+ characters) to sign its calls",
                                  field="webhook_secret")
    if body.webhook_url:
        why = webhooks.refusal(str(body.webhook_url), allow_private=get_settings().webhook_allow_private)
        if why:
            raise InvalidRequestError(f"webhook_url is refused: {why}", field="webhook_url")
    live_workers = crud.live_workers(session=session, hardware_class=body.hardware_class)
    if not live_workers and get_settings().refuse_without_live_worker:
        raise InvalidRequestError(f"no {body.hardware_class} worker is online; try another hardware class or later",
                                  field="hardware_class")
    supported = crud.supported_precisions(session=session, hardware_class=body.hardware_class)
    if supported is not None and body.precision.value not in supported:
        raise InvalidRequestError(f"hardware class {body.hardware_class!r} cannot run {body.precision.value}; its "
                                  f"workers support: {', '.join(sorted(supported))}", field="precision")
    if (body.checkpoint_sha256 is None) == (body.source is None):
        raise InvalidRequestError("give either checkpoint_sha256 (an upload) or source (hf://… or hf-hub:…), "
                                  "not both or neither",
                                  field="checkpoint_sha256")
    if body.source:
        checkpoint = _hub_checkpoint(session, body.source, user)
    else:
        checkpoint = crud.get_checkpoint(session=session, sha256=body.checkpoint_sha256)
    if checkpoint is None:
        raise InvalidRequestError("no uploaded checkpoint has this sha256; "
                                  "upload it first with POST /api/v1/checkpoints",
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
                                     license=body.license or checkpoint_license(checkpoint.storage_uri),
                                     params=checkpoint.params)
    submission, runs = crud.create_submission(session=session, model=model, checkpoint=checkpoint, suite=suite,
                                              tasks=tasks, user=user, hardware_class=body.hardware_class,
                                              precision=body.precision, revision=body.revision,
                                              webhook_url=str(body.webhook_url) if body.webhook_url else None,
                                              webhook_secret=body.webhook_secret)
    session.commit()
    enqueue_committed_runs([run.id for run in runs], body.hardware_class)
    public = submission_public(session, submission)
    if not live_workers:
        public.warnings.append(f"no {body.hardware_class} worker has been seen in the last minutes: the runs wait "
                               f"in the queue until one starts")
    return JSONResponse(public.model_dump(mode="json"), status_code=201)


def _hub_checkpoint(session, source: str, user) -> Checkpoint:
    clip = hub.is_clip_source(source)
    pinned = (hub.pin_clip if clip else hub.pin)(source, get_settings().max_params())
    checkpoint = crud.get_checkpoint(session=session, sha256=pinned.sha256)
    if checkpoint is None:
        family = Family.clip if clip else Family.causal_lm
        checkpoint = Checkpoint(sha256=pinned.sha256, family=family, format="hub", size_bytes=0,
                                storage_uri=pinned.uri, params=pinned.params, uploaded_by=user.id)
        session.add(checkpoint)
        session.flush()
    return checkpoint


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


class SubmissionPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[SubmissionPublic]


@router.get("", response_model=SubmissionPage)
def list_submissions(session: SessionDep, user: CurrentUser, status: Status | None = None,
                     limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0)) -> SubmissionPage:
    """The caller's submissions, newest first (an admin sees everyone's)."""
    query = select(Submission)
    if user.role != Role.admin:
        query = query.where(Submission.submitted_by == user.id)
    if status:
        query = query.where(Submission.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(query.order_by(Submission.submitted_at.desc()).limit(limit).offset(offset)).all()
    return SubmissionPage(total=total, limit=limit, offset=offset,
                          items=[submission_public(session, sub) for sub in page])


@router.get("/{submission_id}", response_model=SubmissionPublic)
def read_submission(submission_id: uuid.UUID, session: SessionDep) -> SubmissionPublic:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFoundError(f"no submission {submission_id}")
    return submission_public(session, submission)
