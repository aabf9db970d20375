"""Submissions: validated in full before anything is written; enqueued after the commit."""
import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, Field, StrictBool
from sqlalchemy import func
from sqlmodel import select

from api.deps import CurrentUser, OptionalUser, SessionDep
from core import crud, hub, precisions, visibility, webhooks
from core.catalog import get_suite
from core.config import get_settings
from core.errors import InvalidRequestError, NotFoundError
from core.eta import eta_seconds, mean_run_seconds
from core.license_text import checkpoint_license
from core.licenses import SpdxLicense, check_license_link
from core.submission_options import MAX_SYSTEM_INSTRUCTION_CHARS, MODEL_TYPES, chat_options
from core.models import (
    Checkpoint,
    Family,
    Model,
    Precision,
    Role,
    Status,
    Submission,
    User,
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
    license: SpdxLicense | None = Field(default=None, description="an SPDX identifier (Apache-2.0, MIT, …), or `other`")
    license_link: str | None = Field(default=None, max_length=512,
                                     description="with license `other`: an https link to the licence text (shown as text)")
    revision: str | None = None
    webhook_url: AnyHttpUrl | None = Field(default=None, description="POSTed to once when the submission ends")
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=256,
                                       description="HMAC-SHA256 key for the X-Evalboard-Signature header")
    model_type: str = Field(default="pretrained", description=f"one of {', '.join(MODEL_TYPES)}; `chat` (chat and "
                                                              f"instruct models) turns the chat template on")
    apply_chat_template: StrictBool | None = Field(default=None, description="prompts through the tokenizer's chat "
                                                                             "template; default: model_type == chat")
    fewshot_as_multiturn: StrictBool | None = Field(default=None, description="few-shot examples as chat turns; "
                                                                              "default: as apply_chat_template")
    system_instruction: str | None = Field(default=None, max_length=MAX_SYSTEM_INSTRUCTION_CHARS,
                                           description="a system message before every prompt (plain text)")
    base_model: str | None = Field(default=None, pattern=r"^(hf://[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}@[0-9a-f]{40}"
                                                         r"|[0-9a-f]{64})$",
                                   description="an adapter's base, pinned: hf://org/name@<40-hex commit> or the "
                                               "sha256 of a checkpoint you uploaded")
    base_models: list[str] = Field(default_factory=list, max_length=16,
                                   description="a merge's source models as you name them (shown on the board)")


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
    log_tail: str | None = Field(description="the end of the evaluation's log, for failures; its owner's and "
                                             "admins' only (the public reads `error`, one line without paths)")
    scores: dict[str, float]


class SubmissionPublic(BaseModel):
    id: uuid.UUID
    model_name: str
    suite: str
    hardware_class: str
    precision: Precision
    model_type: str = "pretrained"
    chat_options: dict = Field(default_factory=dict, description="apply_chat_template, fewshot_as_multiturn, "
                                                                 "system_instruction: how its prompts were built")
    base_model: str | None = None
    base_models: list[str] = Field(default_factory=list)
    status: Status
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    runs: list[RunPublic]
    visibility: str = Field(default="public", description="public, hidden (by an admin) or withdrawn (by its owner); "
                                                          "only the owner and admins see a submission that is not "
                                                          "public")
    hidden_reason: str | None = Field(default=None, description="why an admin hid the model, for its owner")
    warnings: list[str] = Field(default_factory=list, description="things the submitter should know, e.g. no "
                                                                  "worker of the class is online")


def submission_public(session, submission: Submission, viewer: User | None = None) -> SubmissionPublic:
    """The submission as `viewer` may read it: its owner and admins get failures whole, with the log
    tail; anyone else the error kind and one line without host paths."""
    model = session.get(Model, submission.model_id)
    privileged = visibility.is_privileged(model, viewer)
    runs = crud.runs_of(session=session, submission_id=submission.id)
    live = any(not r.status.is_terminal for r in runs)
    mean_s = mean_run_seconds(session, submission.hardware_class) if live else None
    workers = crud.live_workers(session=session, hardware_class=submission.hardware_class) if live else 0
    scores: dict = {}
    for score in crud.scores_of(session=session, run_ids=[r.id for r in runs]):
        scores.setdefault(score.run_id, {})[score.metric] = score.value
    return SubmissionPublic(
        id=submission.id, model_name=model.name, suite=submission.suite, hardware_class=submission.hardware_class,
        precision=submission.precision, model_type=submission.model_type, chat_options=submission.chat_options,
        base_model=submission.base_model, base_models=submission.base_models,
        status=submission.status, submitted_at=submission.submitted_at,
        started_at=submission.started_at, finished_at=submission.finished_at,
        error=submission.error if privileged else visibility.public_submission_error(submission.error, runs),
        runs=[_run_public(session, r, submission, scores.get(r.id, {}), mean_s, workers, privileged) for r in runs],
        visibility=visibility.visibility(model), hidden_reason=model.hidden_reason if privileged else None)


def _run_public(session, run, submission: Submission, scores: dict, mean_s: float | None, workers: int,
                privileged: bool) -> RunPublic:
    position = crud.queue_position(session=session, run=run)
    return RunPublic(id=run.id, task=run.task, capability=run.capability, status=run.status, stage=run.stage,
                     progress=run.progress, attempts=run.attempts, queue_position=position,
                     eta_s=eta_seconds(mean_s=mean_s, workers=workers, status=run.status, queue_position=position,
                                       progress=run.progress),
                     error=run.error if privileged else visibility.public_reason(run.error),
                     error_kind=run.error_kind.value if run.error_kind else None,
                     log_tail=run.provenance.get("log_tail") if privileged else None, scores=scores)


def resolve_tasks(suite, names: list[str] | None) -> list:
    """The suite's tasks a submission runs: all, or those named, each once (a name twice is a 422 naming it)."""
    if not names:
        return list(suite.tasks)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidRequestError(f"task {name!r} is listed twice in tasks; name each task once", field="tasks")
        seen.add(name)
    return [suite.task(name) for name in names]


@router.post("", response_model=SubmissionPublic, status_code=201)
def create_submission(body: SubmissionCreate, session: SessionDep, user: CurrentUser) -> JSONResponse:
    suite = get_suite(body.suite)
    tasks = resolve_tasks(suite, body.tasks)
    if body.hardware_class not in get_settings().hardware_classes:
        raise InvalidRequestError(f"unknown hardware class {body.hardware_class!r}; known: "
                                  f"{', '.join(get_settings().hardware_classes)}", field="hardware_class")
    if body.webhook_url and not body.webhook_secret:
        raise InvalidRequestError("a webhook needs a webhook_secret (16+ characters) to sign its calls",
                                  field="webhook_secret")
    license_link = check_license_link(body.license_link, body.license) if body.license or body.license_link \
        else None
    if body.webhook_url:
        why = webhooks.refusal(str(body.webhook_url), allow_private=get_settings().webhook_allow_private)
        if why:
            raise InvalidRequestError(f"webhook_url is refused: {why}", field="webhook_url")
    live_workers = crud.live_workers(session=session, hardware_class=body.hardware_class)
    if not live_workers and get_settings().refuse_without_live_worker:
        raise InvalidRequestError(f"no {body.hardware_class} worker is online; try another hardware class or later",
                                  field="hardware_class")
    supported = crud.supported_precisions(session=session, hardware_class=body.hardware_class)
    why = precisions.refusal(body.precision.value, body.hardware_class, supported)
    if why:
        raise InvalidRequestError(why, field="precision")
    chat = chat_options(body.model_type, apply_chat_template=body.apply_chat_template,
                        fewshot_as_multiturn=body.fewshot_as_multiturn, system_instruction=body.system_instruction)
    if chat["apply_chat_template"] and suite.family != "causal-lm":
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, which have no chat "
                                  f"template", field="apply_chat_template")
    base_models = _base_models(body.base_models, body.model_type)
    if body.base_model and suite.family != "causal-lm":
        raise InvalidRequestError("base_model names an adapter's base: only causal-lm suites take adapters",
                                  field="base_model")
    if body.base_model and not body.base_model.startswith("hf://") and crud.checkpoint_of_uploader(
            session=session, sha256=body.base_model, user=user) is None:
        raise NotFoundError("none of your uploaded checkpoints has the base_model's sha256; upload the base "
                            "first, or name it on the hub as hf://org/name@commit", field="base_model")
    if (body.checkpoint_sha256 is None) == (body.source is None):
        raise InvalidRequestError("give either checkpoint_sha256 (an upload) or source (hf://… or hf-hub:…), "
                                  "not both or neither",
                                  field="checkpoint_sha256")
    if body.source:
        checkpoint = _hub_checkpoint(session, body.source, user)
    else:
        # Only the user's own uploads: another author's sha256 answers exactly as an unknown one.
        checkpoint = crud.checkpoint_of_uploader(session=session, sha256=body.checkpoint_sha256, user=user)
    if checkpoint is None:
        raise NotFoundError("none of your uploaded checkpoints has this sha256; "
                            "upload it first with POST /api/v1/checkpoints",
                            field="checkpoint_sha256")
    if checkpoint.family.value != suite.family:
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, but the checkpoint is "
                                  f"{checkpoint.family.value}", field="suite")
    cap = precisions.param_cap(get_settings(), body.precision.value)
    if checkpoint.params and checkpoint.params > cap:
        raise InvalidRequestError(f"the checkpoint has {checkpoint.params:,} parameters, over the cap of "
                                  f"{cap:,} for {body.precision.value}; a lower precision may fit", field="precision")
    # Per owner: the same configuration submitted by someone else is theirs, never handed over. The
    # prompts (chat template or not) are part of the configuration: the same weights with and
    # without the template are two submissions.
    duplicate = session.exec(select(Submission).where(
        Submission.submitted_by == user.id, Submission.checkpoint_id == checkpoint.id, Submission.suite == suite.name,
        Submission.precision == body.precision, Submission.hardware_class == body.hardware_class,
        Submission.chat_options == chat,  # the model type is a label: the same prompts on the same weights are one run
        Submission.base_model.is_not_distinct_from(body.base_model),
        Submission.status != Status.cancelled)).first()
    if duplicate is not None:
        return JSONResponse(submission_public(session, duplicate, user).model_dump(mode="json"), status_code=200)
    _check_rate_limit(session, user)
    model = crud.get_or_create_model(session=session, owner=user, name=body.model_name, family=checkpoint.family,
                                     license=body.license or checkpoint_license(checkpoint.storage_uri),
                                     license_link=license_link, params=checkpoint.params)
    submission, runs = crud.create_submission(session=session, model=model, checkpoint=checkpoint, suite=suite,
                                              tasks=tasks, user=user, hardware_class=body.hardware_class,
                                              precision=body.precision, revision=body.revision,
                                              webhook_url=str(body.webhook_url) if body.webhook_url else None,
                                              webhook_secret=body.webhook_secret, model_type=body.model_type,
                                              chat_options=chat, base_model=body.base_model,
                                              base_models=base_models)
    session.commit()
    enqueue_committed_runs([run.id for run in runs], body.hardware_class)
    public = submission_public(session, submission, user)
    if not live_workers:
        public.warnings.append(f"no {body.hardware_class} worker has been seen in the last minutes: the runs wait "
                               f"in the queue until one starts")
    return JSONResponse(public.model_dump(mode="json"), status_code=201)


def _base_models(names: list[str], model_type: str) -> list[str]:
    """A merge's declared sources: short plain names (hub ids, with or without a revision), shown as text."""
    if names and model_type != "merge":
        raise InvalidRequestError("base_models is for merges: set model_type to merge", field="base_models")
    for name in names:
        if not (0 < len(name) <= 200) or not all(c.isalnum() or c in "._-/@:" for c in name) or not name[0].isalnum():
            raise InvalidRequestError(f"base_models: {name[:60]!r} is not a model name (letters, digits and ._-/@: "
                                      f"only, up to 200 characters)", field="base_models")
    if len(set(names)) != len(names):
        raise InvalidRequestError("base_models names a model twice", field="base_models")
    return list(names)


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
    crud.record_uploader(session=session, checkpoint=checkpoint, user=user)  # hub weights are anyone's to name
    return checkpoint


def _check_rate_limit(session, user) -> None:
    """At most N new submissions (re-runs included) per user in any rolling 24 hours (duplicates are free)."""
    crud.check_daily_limit(session=session, user=user)


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
                          items=[submission_public(session, sub, user) for sub in page])


@router.get("/{submission_id}", response_model=SubmissionPublic)
def read_submission(submission_id: uuid.UUID, session: SessionDep, viewer: OptionalUser) -> SubmissionPublic:
    """Anyone may read a public model's submission; a hidden or withdrawn one is its owner's and admins' only."""
    submission, _ = crud.visible_submission(session=session, submission_id=submission_id, viewer=viewer)
    return submission_public(session, submission, viewer)
