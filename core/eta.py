"""When a run will be done: an estimate from the recent mean run time on its hardware class, and the
live queue (positions and estimates of every waiting or running run) built from it."""
from sqlmodel import Session, select

from core import visibility
from core.models import Model, Run, Status, Submission, User
from core.workers import live_workers_by_class

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


# ---- the live queue (GET /queue): positions and ETAs per run, built from the two functions above --------

LIVE = (Status.queued, Status.running)


def _error(error: str | None, model: Model, viewer: User | None) -> str | None:
    return error if visibility.is_privileged(model, viewer) else visibility.public_reason(error)


def live_queue(*, session: Session, viewer: User | None, failures: int) -> dict:
    """Live submissions with each run's stage, progress, queue position and ETA; recent failures.

    Queue position counts the runs of the same hardware class queued earlier (0 = next). The ETA
    assumes the recent mean run time on that hardware class and its live workers (core.workers).
    A hidden or withdrawn model's submissions are listed to its owner and admins only (positions still
    count them); failures read as their kind and one line, whole only to the model's owner and admins."""
    live = session.exec(select(Run, Submission, Model, User)
                        .join(Submission, Submission.id == Run.submission_id)
                        .join(Model, Model.id == Submission.model_id).join(User, User.id == Model.owner_id)
                        .where(Submission.status.in_(LIVE)).order_by(Run.queued_at)).all()
    workers = live_workers_by_class(session=session)
    classes = sorted({s.hardware_class for _, s, _, _ in live})
    mean_s = {hw: mean_run_seconds(session, hw) for hw in classes}
    position: dict[str, int] = {}
    submissions: dict = {}
    for run, submission, model, owner in live:
        hw = submission.hardware_class
        queue_position = None
        if run.status == Status.queued:
            queue_position = position[hw] = position.get(hw, -1) + 1
        if not visibility.can_see(model, viewer):
            continue
        entry = submissions.setdefault(submission.id, {
            "id": str(submission.id), "model_id": model.id, "model": model.name, "owner": owner.name,
            "suite": submission.suite, "hardware_class": hw, "precision": submission.precision.value,
            "status": submission.status.value, "submitted_at": submission.submitted_at,
            "started_at": submission.started_at, "runs": []})
        eta = eta_seconds(mean_s=mean_s[hw], workers=workers.get(hw, 1), status=run.status,
                          queue_position=queue_position, progress=run.progress)
        entry["runs"].append({"id": str(run.id), "task": run.task, "capability": run.capability,
                              "status": run.status.value, "stage": run.stage, "progress": run.progress,
                              "attempts": run.attempts, "worker": run.worker, "queue_position": queue_position,
                              "eta_s": eta, "error": _error(run.error, model, viewer)})
    for entry in submissions.values():
        runs = entry["runs"]
        entry["progress"] = sum(r["progress"] if r["status"] != "finished" else 1.0 for r in runs) / len(runs)
        etas = [r["eta_s"] for r in runs if r["status"] in ("queued", "running")]
        entry["eta_s"] = max(etas) if etas and None not in etas else None
    failed = session.exec(select(Run, Submission, Model)
                          .join(Submission, Submission.id == Run.submission_id)
                          .join(Model, Model.id == Submission.model_id)
                          .where(Run.status == Status.failed, Model.hidden == False)  # noqa: E712
                          .order_by(Run.finished_at.desc()).limit(failures)).all()
    return {
        "submissions": list(submissions.values()),
        "hardware": {hw: {"queued": position.get(hw, -1) + 1, "workers_alive": workers.get(hw, 0),
                          "mean_run_s": mean_s[hw]} for hw in classes},
        "failures": [{"run_id": str(r.id), "submission_id": str(s.id), "model_id": m.id, "model": m.name,
                      "task": r.task, "hardware_class": s.hardware_class, "error": _error(r.error, m, viewer),
                      "error_kind": r.error_kind.value if r.error_kind else None, "attempts": r.attempts,
                      "finished_at": r.finished_at} for r, s, m in failed],
    }
