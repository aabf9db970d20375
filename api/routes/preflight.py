"""Pre-flight: would this submission be accepted? Answered before a byte of the checkpoint is sent.

The body is a submission's without the checkpoint, plus the checkpoint's family. Every check the
submission makes that does not need the checkpoint is made here with the same functions
(core/submission_checks.py), in the same order, and refused with the same 4xx
(tests/api/test_preflight.py holds the two together), so a typo in a suite name costs a second,
not a multi-GB upload. Nothing is written.
"""
from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.schemas import CheckResult, SubmissionCheck
from core import submission_checks as checks

router = APIRouter(prefix="/submissions", tags=["submissions"])


@router.post("/check", response_model=CheckResult)
def check_submission(body: SubmissionCheck, session: SessionDep, user: CurrentUser) -> CheckResult:
    """Check a submission before uploading its checkpoint: token, suite, tasks, hardware class, precision,
    family, licence (the submission's own field rules), webhook and the daily limit. 200 when it would be
    accepted; otherwise the 4xx the submission would get. The checkpoint's own checks (archive safety,
    parameter cap) come with its upload."""
    common = checks.check_common(session=session, suite=body.suite, tasks=body.tasks,
                                 hardware_class=body.hardware_class, precision=body.precision.value,
                                 license=body.license, license_link=body.license_link,
                                 webhook_url=str(body.webhook_url) if body.webhook_url else None,
                                 webhook_secret=body.webhook_secret)
    if body.family is not None:
        checks.check_family(suite=common.suite, family=body.family.value)
    checks.check_rate_limit(session=session, user=user)  # the submission's own daily limit
    warnings = [] if common.live_workers else [checks.no_worker_warning(body.hardware_class, would=True)]
    return CheckResult(suite=common.suite.name, tasks=[t.name for t in common.tasks], warnings=warnings)
