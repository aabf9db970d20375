"""Rows as a viewer may read them: the one place a submission becomes its public shape.

Every route that answers with a submission (create, read, list, cancel, withdraw, rerun, results)
calls `submission_public`, so what an owner, an admin and the public each see is decided once.
"""
from sqlmodel import Session

from api.schemas import RunDetail, RunPublic, SubmissionPublic
from core import crud, visibility
from core.eta import eta_seconds, mean_run_seconds
from core.models import Model, Run, Submission, User
from core.workers import live_worker_count


def submission_public(session: Session, submission: Submission, viewer: User | None = None) -> SubmissionPublic:
    """The submission as `viewer` may read it: its owner and admins get failures whole, with the log
    tail; anyone else the error kind and one line without host paths."""
    model = session.get(Model, submission.model_id)
    privileged = visibility.is_privileged(model, viewer)
    runs = crud.runs_of(session=session, submission_id=submission.id)
    live = any(not r.status.is_terminal for r in runs)
    mean_s = mean_run_seconds(session, submission.hardware_class) if live else None
    workers = live_worker_count(session=session, hardware_class=submission.hardware_class) if live else 0
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
        runs=[run_public(session, r, scores.get(r.id, {}), mean_s=mean_s, workers=workers, privileged=privileged)
              for r in runs],
        visibility=visibility.visibility(model), hidden_reason=model.hidden_reason if privileged else None)


def run_public(session: Session, run: Run, scores: dict, *, mean_s: float | None, workers: int,
               privileged: bool) -> RunPublic:
    position = crud.queue_position(session=session, run=run)
    return RunPublic(id=run.id, task=run.task, capability=run.capability, status=run.status, stage=run.stage,
                     progress=run.progress, attempts=run.attempts, queue_position=position,
                     eta_s=eta_seconds(mean_s=mean_s, workers=workers, status=run.status, queue_position=position,
                                       progress=run.progress),
                     error=run.error if privileged else visibility.public_reason(run.error),
                     error_kind=run.error_kind.value if run.error_kind else None,
                     log_tail=run.provenance.get("log_tail") if privileged else None, scores=scores)


def run_detail(run: Run, model: Model, viewer: User | None) -> RunDetail:
    """GET /runs/{id}: the row whole to its owner and admins; the public reads a failure as one line and
    the provenance without host paths."""
    public = run.model_dump(mode="json")
    if not visibility.is_privileged(model, viewer):
        public["error"] = visibility.public_reason(run.error)
        public["provenance"] = visibility.public_provenance(run.provenance)
    return RunDetail.model_validate(public)
