"""Prometheus text exposition: queue depth per class, runs by status, retries, workers, durations, and
request latency per route."""
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import func
from sqlmodel import select

from api.board_snapshot import metric_lines as board_lines
from api.deps import SessionDep
from api.request_metrics import histogram_lines
from core.config import get_settings
from core.models import Run, Status
from core.workers import live_workers_by_class
from runners.dispatch import WORKER_CACHE_STATS_KEY as STATS_KEY
from runners.dispatch import get_queue, get_redis

router = APIRouter(tags=["metrics"])


def _line(name: str, value: float, **labels: str) -> str:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{label_text}}} {value}" if labels else f"{name} {value}"


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(session: SessionDep) -> str:
    lines = ["# HELP evalboard_queue_depth Jobs waiting in the RQ queue of a hardware class.",
             "# TYPE evalboard_queue_depth gauge"]
    classes = get_settings().hardware_classes
    for hw in classes:
        lines.append(_line("evalboard_queue_depth", get_queue(hw).count, hardware_class=hw))

    lines += ["# HELP evalboard_runs Runs by status.", "# TYPE evalboard_runs gauge"]
    counts = dict(session.exec(select(Run.status, func.count()).group_by(Run.status)).all())
    for status in Status:
        lines.append(_line("evalboard_runs", counts.get(status, 0), status=status.value))

    lines += ["# HELP evalboard_run_retries_total Attempts beyond the first, over all runs.",
              "# TYPE evalboard_run_retries_total counter",
              _line("evalboard_run_retries_total",
                    session.exec(select(func.coalesce(func.sum(func.greatest(Run.attempts - 1, 0)), 0))).one())]

    lines += ["# HELP evalboard_workers Workers seen in the last two minutes.", "# TYPE evalboard_workers gauge"]
    alive = live_workers_by_class(session=session)
    for hw in classes:
        lines.append(_line("evalboard_workers", alive.get(hw, 0), hardware_class=hw))

    lines += ["# HELP evalboard_run_duration_seconds Wall time of finished runs.",
              "# TYPE evalboard_run_duration_seconds summary"]
    duration = func.extract("epoch", Run.finished_at - Run.started_at)
    count, total = session.exec(select(func.count(), func.coalesce(func.sum(duration), 0))
                                .where(Run.status == Status.finished)).one()
    lines += [_line("evalboard_run_duration_seconds_count", count),
              _line("evalboard_run_duration_seconds_sum", round(float(total), 3))]
    lines += _worker_cache_lines()
    lines += board_lines()
    lines += histogram_lines()
    return "\n".join(lines) + "\n"


CACHE_METRICS = (("hits", "counter", "Checkpoint requests served from the worker's cache."),
                 ("misses", "counter", "Checkpoints the worker fetched from the artifact store."),
                 ("fetched_bytes", "counter", "Bytes fetched from the artifact store."),
                 ("fetch_seconds", "counter", "Seconds spent fetching and unpacking checkpoints."),
                 ("evictions", "counter", "Checkpoints evicted to stay under the cache's size cap."),
                 ("used_bytes", "gauge", "Bytes the worker's checkpoint cache holds."),
                 ("max_bytes", "gauge", "The worker's cache size cap."))


def _worker_cache_lines() -> list[str]:
    """Each live worker's cache figures, as it last published them to Redis (runners/worker_cache.py)."""
    redis = get_redis()
    workers = {}
    for key in redis.scan_iter(match=STATS_KEY.format(worker="*"), count=100):
        key = key.decode()
        workers[key.removeprefix(STATS_KEY.format(worker=""))] = {k.decode(): v.decode()
                                                                  for k, v in redis.hgetall(key).items()}
    lines = []
    for name, kind, text in CACHE_METRICS:
        metric = f"evalboard_worker_cache_{name}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines += [_line(metric, float(stats.get(name, 0)), worker=worker) for worker, stats in sorted(workers.items())]
    return lines
