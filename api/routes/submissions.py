"""Submissions: validated in full before anything is written; enqueued after the commit.

The checks themselves live in core/submission_checks.py (the pre-flight makes the same ones); this
module keeps the HTTP concerns: status codes, the commit, the enqueue, the answer's warnings."""
import uuid

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func
from sqlmodel import select

from api.deps import CurrentUser, OptionalUser, SessionDep
from api.presenters import submission_public
from api.schemas import SubmissionCreate, SubmissionPage, SubmissionPublic
from core import crud
from core import submission_checks as checks
from core.license_text import checkpoint_license
from core.models import Role, Status, Submission
from runners.dispatch import enqueue_committed_runs

router = APIRouter(prefix="/submissions", tags=["submissions"])


@router.post("", response_model=SubmissionPublic, status_code=201)
def create_submission(body: SubmissionCreate, session: SessionDep, user: CurrentUser) -> JSONResponse:
    precision = body.precision.value
    webhook_url = str(body.webhook_url) if body.webhook_url else None
    common = checks.check_common(session=session, suite=body.suite, tasks=body.tasks,
                                 hardware_class=body.hardware_class, precision=precision, license=body.license,
                                 license_link=body.license_link, webhook_url=webhook_url,
                                 webhook_secret=body.webhook_secret)
    suite = common.suite
    chat = checks.prompt_options(suite=suite, model_type=body.model_type, apply_chat_template=body.apply_chat_template,
                                 fewshot_as_multiturn=body.fewshot_as_multiturn,
                                 system_instruction=body.system_instruction)
    base_models = checks.declared_base_models(names=body.base_models, model_type=body.model_type)
    checks.check_base_model(session=session, user=user, suite=suite, base_model=body.base_model)
    checkpoint = checks.resolve_checkpoint(session=session, user=user, checkpoint_sha256=body.checkpoint_sha256,
                                           source=body.source)
    checks.check_family(suite=suite, family=checkpoint.family.value)
    checks.check_param_cap(params=checkpoint.params, precision=precision)
    duplicate = checks.find_duplicate(session=session, user=user, checkpoint=checkpoint, suite=suite,
                                      precision=precision, hardware_class=body.hardware_class, chat=chat,
                                      base_model=body.base_model, tasks=common.tasks)
    if duplicate is not None:
        return JSONResponse(submission_public(session, duplicate, user).model_dump(mode="json"), status_code=200)
    checks.check_rate_limit(session=session, user=user)
    model = crud.get_or_create_model(session=session, owner=user, name=body.model_name, family=checkpoint.family,
                                     license=body.license or checkpoint_license(checkpoint.storage_uri),
                                     license_link=common.license_link, params=checkpoint.params)
    submission, runs = crud.create_submission(session=session, model=model, checkpoint=checkpoint, suite=suite,
                                              tasks=common.tasks, user=user, hardware_class=body.hardware_class,
                                              precision=body.precision, revision=body.revision,
                                              webhook_url=webhook_url, webhook_secret=body.webhook_secret,
                                              model_type=body.model_type, chat_options=chat,
                                              base_model=body.base_model, base_models=base_models)
    session.commit()
    enqueue_committed_runs([run.id for run in runs], body.hardware_class)
    public = submission_public(session, submission, user)
    if not common.live_workers:
        public.warnings.append(checks.no_worker_warning(body.hardware_class))
    return JSONResponse(public.model_dump(mode="json"), status_code=201)


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
