"""Pre-flight: would this submission be accepted? Answered before a byte of the checkpoint is sent.

The body is a submission's without the checkpoint, plus the checkpoint's family. Every check the
submission makes that does not need the checkpoint is made here with the same functions, in the
same order, and refused with the same 4xx (tests/api/test_preflight.py holds the two together),
so a typo in a suite name costs a second, not a multi-GB upload. Nothing is written.
"""
from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep
from api.routes.submissions import SubmissionCreate, _check_rate_limit
from core.licenses import check_license_link
from core import crud, precisions, webhooks
from core.catalog import get_suite
from core.config import get_settings
from core.errors import InvalidRequestError
from core.models import Family

router = APIRouter(prefix="/submissions", tags=["submissions"])


class SubmissionCheck(SubmissionCreate):
    family: Family | None = Field(default=None, description="the checkpoint's family (causal-lm or clip), checked "
                                                            "against the suite's")

    model_config = {"json_schema_extra": {"examples": [{
        "model_name": "my-model", "suite": "language-core", "family": "causal-lm", "hardware_class": "cpu",
        "precision": "float32", "tasks": ["world_facts", "arithmetic_mc"], "license": "Apache-2.0"}]}}


class CheckResult(BaseModel):
    ok: bool = True
    suite: str
    tasks: list[str] = Field(description="the tasks the submission would run")
    warnings: list[str] = Field(default_factory=list, description="accepted, but worth knowing (e.g. no worker of "
                                                                  "the class is online)")


@router.post("/check", response_model=CheckResult)
def check_submission(body: SubmissionCheck, session: SessionDep, user: CurrentUser) -> CheckResult:
    """Check a submission before uploading its checkpoint: token, suite, tasks, hardware class, precision,
    family, licence (the submission's own field rules), webhook and the daily limit. 200 when it would be accepted; otherwise the 4xx the
    submission would get. The checkpoint's own checks (archive safety, parameter cap) come with its upload."""
    suite = get_suite(body.suite)
    tasks = [suite.task(name) for name in body.tasks] if body.tasks else list(suite.tasks)
    settings = get_settings()
    if body.hardware_class not in settings.hardware_classes:
        raise InvalidRequestError(f"unknown hardware class {body.hardware_class!r}; known: "
                                  f"{', '.join(settings.hardware_classes)}", field="hardware_class")
    if body.webhook_url and not body.webhook_secret:
        raise InvalidRequestError("a webhook needs a webhook_secret (16+ characters) to sign its calls",
                                  field="webhook_secret")
    if body.license or body.license_link:
        check_license_link(body.license_link, body.license)
    if body.webhook_url:
        why = webhooks.refusal(str(body.webhook_url), allow_private=settings.webhook_allow_private)
        if why:
            raise InvalidRequestError(f"webhook_url is refused: {why}", field="webhook_url")
    live_workers = crud.live_workers(session=session, hardware_class=body.hardware_class)
    if not live_workers and settings.refuse_without_live_worker:
        raise InvalidRequestError(f"no {body.hardware_class} worker is online; try another hardware class or later",
                                  field="hardware_class")
    supported = crud.supported_precisions(session=session, hardware_class=body.hardware_class)
    why = precisions.refusal(body.precision.value, body.hardware_class, supported)  # as POST /submissions says it
    if why:
        raise InvalidRequestError(why, field="precision")
    if body.family is not None and body.family.value != suite.family:
        raise InvalidRequestError(f"suite {suite.name!r} evaluates {suite.family} models, but the checkpoint is "
                                  f"{body.family.value}", field="suite")
    _check_rate_limit(session, user)  # the submission's own daily limit
    warnings = [] if live_workers else [f"no {body.hardware_class} worker has been seen in the last minutes: the "
                                        f"runs would wait in the queue until one starts"]
    return CheckResult(suite=suite.name, tasks=[t.name for t in tasks], warnings=warnings)
