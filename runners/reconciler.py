"""Postgres is the truth, Redis only carries job ids: make Redis agree with Postgres.

- a run Postgres says is queued but whose job Redis does not hold is enqueued again;
- a running run whose heartbeat stopped (its worker died) goes back to the queue, or
  fails as an infrastructure error once its attempts are spent.
Enqueueing uses the run id as job id, so reconciling twice never makes two jobs.
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlmodel import select

from core.config import get_settings
from core.crud import refresh_submission_status
from core.db import session_scope
from core.models import ErrorKind, Run, Status, Submission, utcnow
from runners.dispatch import enqueue_run, job_id

log = logging.getLogger("evalboard.reconciler")

LIVE_JOB_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass
class ReconcileReport:
    requeued_missing: int = 0
    requeued_stale: int = 0
    failed_stale: int = 0


def _job_alive(redis: Redis, run_id) -> bool:
    try:
        return Job.fetch(job_id(run_id), connection=redis).get_status() in LIVE_JOB_STATES
    except NoSuchJobError:
        return False


def reconcile(redis: Redis, *, heartbeat_timeout: timedelta | None = None) -> ReconcileReport:
    report = ReconcileReport()
    heartbeat_timeout = heartbeat_timeout or timedelta(seconds=get_settings().heartbeat_timeout_s)
    max_attempts = get_settings().infra_retries + 1
    stale_before = utcnow() - heartbeat_timeout
    with session_scope() as s:
        rows = s.exec(select(Run, Submission.hardware_class).join(Submission)
                      .where(Run.status.in_([Status.queued, Status.running]))).all()
        for run, hardware_class in rows:
            if run.status == Status.running:
                if run.heartbeat_at and run.heartbeat_at >= stale_before:
                    continue
                if run.attempts >= max_attempts:
                    run.status, run.error_kind = Status.failed, ErrorKind.infra
                    run.error = f"the worker stopped responding {run.attempts} times; giving up"
                    run.finished_at = utcnow()
                    report.failed_stale += 1
                    refresh_submission_status(session=s, submission_id=run.submission_id)
                    continue
                run.status, run.stage = Status.queued, "requeued"
                # A dead worker's job may still sit in Redis as "started": replace it.
                if Job.exists(job_id(run.id), connection=redis):
                    Job.fetch(job_id(run.id), connection=redis).delete()
                enqueue_run(run.id, hardware_class, redis)
                report.requeued_stale += 1
            elif not _job_alive(redis, run.id):
                enqueue_run(run.id, hardware_class, redis)
                report.requeued_missing += 1
    if report != ReconcileReport():
        log.info("reconciled: %s", report)
    sweep_storage()
    return report


def sweep_storage() -> None:
    """Expired upload sessions and unused checkpoints go (core/retention.py states the rule); a failure
    here is logged and never stops the reconciliation of runs."""
    from core import retention, uploads
    for sweep in (uploads.remove_expired, retention.remove_unused_checkpoints):
        try:
            sweep()
        except Exception:
            log.exception("storage sweep %s failed; it runs again at the next reconciliation", sweep.__name__)
