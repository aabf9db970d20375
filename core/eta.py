"""When a run will be done: an estimate from the recent mean run time on its hardware class."""
from sqlmodel import Session, select

from core.models import Run, Status, Submission

RECENT_RUNS = 200  # finished runs per hardware class that the duration estimate averages over


def mean_run_seconds(session: Session, hardware_class: str) -> float | None:
    rows = session.exec(select(Run.started_at, Run.finished_at).join(Submission)
                        .where(Submission.hardware_class == hardware_class, Run.status == Status.finished,
                               Run.started_at.is_not(None))
                        .order_by(Run.finished_at.desc()).limit(RECENT_RUNS)).all()
    durations = [(end - start).total_seconds() for start, end in rows if end and start]
    return sum(durations) / len(durations) if durations else None


def eta_seconds(*, mean_s: float | None, workers: int, status: Status, queue_position: int | None,
                progress: float) -> float | None:
    """None until a run has finished on the class. Runs ahead are shared among the live workers."""
    if mean_s is None:
        return None
    if status == Status.queued and queue_position is not None:
        return mean_s * (queue_position // max(workers, 1) + 1)
    if status == Status.running:
        return mean_s * (1.0 - progress)
    return None
