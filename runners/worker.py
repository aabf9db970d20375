"""`evalboard worker --hardware CLASS`: measure the hardware, reconcile, then serve the class's queue."""
import logging
import os
import socket
import threading

from rq import SimpleWorker

from core.config import get_settings
from core.db import session_scope
from core.models import HardwareProfile, utcnow
from runners.dispatch import get_queue, get_redis
from runners.hardware import measure_profile
from runners.jobs import WorkerContext, serve_as
from runners.reconciler import reconcile
from runners.worker_cache import publish_stats

log = logging.getLogger("evalboard.worker")

RECONCILE_LOCK = "evalboard:reconcile-lock"


def record_profile(hardware_class: str, device: str, worker_name: str) -> int:
    profile = measure_profile(device)
    with session_scope() as s:
        row = HardwareProfile(hardware_class=hardware_class, host=socket.gethostname(), worker=worker_name, **profile)
        s.add(row)
        s.flush()
        return row.id


def reconcile_locked() -> None:
    """Every worker reconciles, but only one at a time (a Redis lock)."""
    redis = get_redis()
    lock = redis.lock(RECONCILE_LOCK, timeout=60, blocking=False)
    if lock.acquire():
        try:
            reconcile(redis)
        finally:
            lock.release()


def _housekeeping(profile_id: int, worker_name: str, stop: threading.Event) -> None:
    every = get_settings().reconcile_every_s
    while not stop.wait(every):
        try:
            with session_scope() as s:
                s.get(HardwareProfile, profile_id).last_seen_at = utcnow()
            reconcile_locked()
            publish_stats(get_redis(), worker_name, int(3 * every) + 5)
        except Exception:  # the worker must outlive a database or Redis outage
            log.exception("housekeeping failed; retrying in %ss", every)


def run_worker(hardware_class: str, *, device: str = "cpu", burst: bool = False, name: str | None = None) -> None:
    name = name or f"{hardware_class}@{socket.gethostname()}:{os.getpid()}"
    profile_id = record_profile(hardware_class, device, name)
    serve_as(WorkerContext(name=name, device=device, profile_id=profile_id))
    reconcile_locked()
    stop = threading.Event()
    threading.Thread(target=_housekeeping, args=(profile_id, name, stop), daemon=True).start()
    # SimpleWorker runs jobs in this process, so the loaded model stays warm between runs.
    worker = SimpleWorker([get_queue(hardware_class)], connection=get_redis(), name=name)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
