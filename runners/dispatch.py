"""Enqueueing: one RQ queue per hardware class, one job per run, job id = run id.

Redis carries only the run id; everything else is read from Postgres by the job.
"""
import logging
import uuid
from functools import lru_cache

from redis import Redis
from rq import Callback, Queue, Retry

from core.config import get_settings

JOB_FUNCTION = "runners.jobs.execute_run"
log = logging.getLogger("evalboard.dispatch")

# Where each worker publishes its checkpoint cache's figures (runners/worker_cache.py) for /metrics.
WORKER_CACHE_STATS_KEY = "evalboard:worker-cache:{worker}"


@lru_cache
def get_redis() -> Redis:
    return Redis.from_url(get_settings().require_redis_url(), socket_connect_timeout=5, socket_timeout=30)


def queue_name(hardware_class: str) -> str:
    return f"evalboard-{hardware_class}"


def get_queue(hardware_class: str, connection: Redis | None = None) -> Queue:
    return Queue(queue_name(hardware_class), connection=connection or get_redis())


def job_id(run_id: uuid.UUID | str) -> str:
    return f"run-{run_id}"


def enqueue_run(run_id: uuid.UUID | str, hardware_class: str, connection: Redis | None = None) -> None:
    settings = get_settings()
    get_queue(hardware_class, connection).enqueue_call(
        JOB_FUNCTION, args=(str(run_id),), job_id=job_id(run_id), timeout=settings.job_timeout_s,
        # Retry is for infrastructure errors only: user errors are recorded by the job and never raised.
        retry=Retry(max=settings.infra_retries, interval=[2, 10, 30]),
        on_failure=Callback("runners.jobs.on_job_failure"),
        result_ttl=3600, failure_ttl=7 * 24 * 3600,
    )


def cancel_job(run_id: uuid.UUID | str, connection: Redis | None = None) -> None:
    """Take the run's job out of its queue, or stop it where a worker is running it."""
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job, JobStatus

    connection = connection or get_redis()
    try:
        job = Job.fetch(job_id(run_id), connection=connection)
    except NoSuchJobError:
        return
    if job.get_status() == JobStatus.STARTED:
        try:
            send_stop_job_command(connection, job.id)
        except InvalidJobOperation:
            pass
    else:
        job.cancel()


def enqueue_committed_runs(run_ids, hardware_class: str) -> None:
    """Enqueue runs already committed as queued. If Redis is down now, they stay queued in
    Postgres and the reconciler enqueues them later: nothing is lost, so nothing is raised."""
    for run_id in run_ids:
        try:
            enqueue_run(run_id, hardware_class)
        except Exception as exc:
            log.warning("enqueue of run %s deferred to the reconciler: %s", run_id, exc)
