"""What an owner (or an admin) can do to a submission: cancel, withdraw, re-run.

Another author's submission answers 404, not 403, so submission ids do not leak. None of these
touches moderation (an admin's hide and flag): core.visibility keeps the owner's withdrawal apart.
"""
import logging
import uuid

from fastapi import APIRouter
from sqlmodel import delete

from api.deps import CurrentUser, SessionDep
from api.presenters import submission_public
from api.schemas import SubmissionPublic
from core import crud, visibility
from core.errors import InvalidRequestError, NotFoundError
from core.models import Model, Rerun, Role, Sample, Score, Status, Submission, User, utcnow
from core.webhooks import notify_if_ended
from runners.dispatch import cancel_job, enqueue_committed_runs

log = logging.getLogger("evalboard.api")
router = APIRouter(prefix="/submissions", tags=["submissions"])


def owned_submission(session, submission_id: uuid.UUID, user: User) -> Submission:
    """The submission if `user` owns it (or is an admin); another author's answers as an unknown id."""
    submission = crud.get_or_404(session=session, table=Submission, key=submission_id)
    if submission.submitted_by != user.id and user.role != Role.admin:
        raise NotFoundError(f"no submission {submission_id}")
    return submission


@router.post("/{submission_id}/cancel", response_model=SubmissionPublic)
def cancel_submission(submission_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SubmissionPublic:
    """Cancel the runs not yet done; a running evaluation is stopped within seconds."""
    submission = owned_submission(session, submission_id, user)
    for run in crud.runs_of(session=session, submission_id=submission_id):
        if not run.status.is_terminal:
            run.status, run.stage, run.finished_at = Status.cancelled, "cancelled", utcnow()
            session.add(run)
    session.flush()
    crud.refresh_submission_status(session=session, submission_id=submission_id)
    session.commit()
    notify_if_ended(submission_id)
    # After the commit: the job, if it still runs, finds its run cancelled and writes nothing.
    for run in crud.runs_of(session=session, submission_id=submission_id):
        try:
            cancel_job(run.id)
        except Exception as exc:
            log.warning("could not stop job of run %s: %s", run.id, exc)
    return submission_public(session, submission, user)


@router.post("/{submission_id}/withdraw", response_model=SubmissionPublic)
def withdraw_submission(submission_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SubmissionPublic:
    """Take the model off the board (its scores stay stored); cancels what is still to run."""
    submission = owned_submission(session, submission_id, user)
    visibility.withdraw(session.get(Model, submission.model_id))
    session.commit()
    return cancel_submission(submission_id, session, user)


@router.post("/{submission_id}/rerun", response_model=SubmissionPublic)
def rerun_submission(submission_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SubmissionPublic:
    """Evaluate every task again (after an infrastructure failure, say); old results are replaced.

    It counts against the daily submission limit, and puts back on the board what its owner withdrew
    (never what an admin hid)."""
    submission = owned_submission(session, submission_id, user)
    runs = crud.runs_of(session=session, submission_id=submission_id)
    if any(not r.status.is_terminal for r in runs):
        raise InvalidRequestError("the submission is still queued or running; cancel it first", field="status")
    crud.check_daily_limit(session=session, user=user)
    session.add(Rerun(submission_id=submission.id, user_id=user.id))
    for run in runs:
        session.exec(delete(Score).where(Score.run_id == run.id))
        session.exec(delete(Sample).where(Sample.run_id == run.id))
        run.status, run.stage, run.progress, run.attempts = Status.queued, None, 0.0, 0
        run.error = run.error_kind = run.started_at = run.finished_at = run.heartbeat_at = None
        run.queued_at, run.provenance = utcnow(), {}
        session.add(run)
    submission.status, submission.error, submission.started_at, submission.finished_at = Status.queued, None, None, None
    submission.webhook_sent_at = None  # the re-run ends again, and says so again
    visibility.republish(session.get(Model, submission.model_id))
    session.commit()
    enqueue_committed_runs([run.id for run in runs], submission.hardware_class)
    return submission_public(session, submission, user)
