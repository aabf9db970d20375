"""RQ job functions: the one place that joins the database, loaders and evaluators.

A job reads its run from Postgres, moves it to `running`, has the evaluation child
(runners/eval_sandbox.py) load the model and run the evaluator under a memory cap, a time
limit and a watch for cancellation, and writes scores, samples, provenance and the final
status in one transaction. Running a job twice writes once.
"""
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from importlib.metadata import version

from sqlalchemy.exc import OperationalError
from sqlmodel import delete, select

from core.catalog import get_suite
from core.config import get_settings
from core.crud import refresh_submission_status
from core.db import session_scope
from core.errors import ErrorKind, EvalFailed
from core.models import (
    Checkpoint,
    HardwareProfile,
    Run,
    Sample,
    Score,
    Status,
    Submission,
    utcnow,
)
from core.webhooks import notify_if_ended
from evaluators.base import EvalOutcome, EvalSpec
from evaluators.registry import get_evaluator
from core.submission_options import options_from_args
from runners.eval_sandbox import EvalCancelled, EvalProcess, EvalRequest

log = logging.getLogger("evalboard.jobs")

PROGRESS_MIN_INTERVAL_S = 1.0


@dataclass(frozen=True)
class WorkerContext:
    """Who runs this process's jobs: recorded on each run and in its provenance, and what the child
    loads onto. `evalboard worker` sets it once at start (runners/worker.py: serve_as); a job run
    outside a worker (tests, a script) gets `local_context()`."""
    name: str
    device: str = "cpu"
    profile_id: int | None = None
    """The HardwareProfile row this worker measured at start; its peaks travel to the evaluators."""


def local_context() -> WorkerContext:
    return WorkerContext(name=f"{socket.gethostname()}:{os.getpid()}")


_context: WorkerContext | None = None


def serve_as(context: WorkerContext | None) -> None:
    """The context of every job this process runs from now on (RQ calls jobs with their run id only);
    None goes back to `local_context()`."""
    global _context
    _context = context


def current_context() -> WorkerContext:
    return _context or local_context()


class _Heartbeat(threading.Thread):
    """Stamps run.heartbeat_at while the job runs, so the reconciler can tell a dead worker."""

    def __init__(self, run_id: uuid.UUID):
        super().__init__(daemon=True)
        self.run_id, self.stopped = run_id, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(get_settings().heartbeat_s):
            try:
                with session_scope() as s:
                    run = s.get(Run, self.run_id)
                    if run and run.status == Status.running:
                        run.heartbeat_at = utcnow()
            except OperationalError:
                log.warning("heartbeat: database unreachable")


class _Progress:
    """Writes stage and progress at most about once a second."""

    def __init__(self, run_id: uuid.UUID):
        self.run_id, self.last, self.finished_stages = run_id, 0.0, set()

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        # A stage's end is written at once, but once: the child decides what it sends, and must not be able
        # to turn its messages into a database write each.
        done = fraction >= 1.0 and stage not in self.finished_stages and len(self.finished_stages) < 32
        if now - self.last < PROGRESS_MIN_INTERVAL_S and not done:
            return
        if done:
            self.finished_stages.add(stage)
        self.last = now
        try:
            with session_scope() as s:
                run = s.get(Run, self.run_id)
                run.stage, run.progress = stage, round(min(max(fraction, 0.0), 1.0), 4)
        except OperationalError:
            # Progress is best effort: the evaluation goes on while the database is briefly away.
            log.warning("progress of run %s not recorded: database unreachable", self.run_id)


def _start(run_id: uuid.UUID, context: WorkerContext) -> dict | None:
    """Claim the run; None when there is nothing to do (already done, or cancelled)."""
    with session_scope() as s:
        run = s.get(Run, run_id, with_for_update=True)
        if run is None or run.status.is_terminal:
            return None
        submission = s.get(Submission, run.submission_id)
        checkpoint = s.get(Checkpoint, submission.checkpoint_id)
        base = submission.base_model  # an adapter's pinned base: hf://… as it is, an upload by its store location
        if base and not base.startswith("hf://"):
            base_row = s.exec(select(Checkpoint).where(Checkpoint.sha256 == base)).first()
            base = base_row.storage_uri if base_row else None
        run.status, run.worker, run.stage, run.progress = Status.running, context.name, "load", 0.0
        run.attempts += 1
        run.started_at = run.heartbeat_at = utcnow()
        refresh_submission_status(session=s, submission_id=submission.id)
        # The worker's measured profile travels with the spec: efficiency evaluators divide MFU by its peak.
        profile = s.get(HardwareProfile, context.profile_id) if context.profile_id else None
        return {"task": run.task, "suite": submission.suite, "precision": submission.precision.value,
                "family": checkpoint.family.value, "path": checkpoint.storage_uri, "sha256": checkpoint.sha256,
                "hardware_class": submission.hardware_class, "submission_id": submission.id,
                "chat_options": dict(submission.chat_options or {}), "base": base,
                "base_model": submission.base_model, "model_type": submission.model_type,
                "hardware": _profile_for_evaluators(profile)}


def _profile_for_evaluators(profile: HardwareProfile | None) -> dict | None:
    """What an evaluator may use of the worker's profile (its measured peaks), as plain data."""
    if profile is None:
        return None
    return {"id": profile.id, "device_name": profile.device_name, "versions": dict(profile.versions),
            "measured": dict(profile.measured)}


def _finish(run_id: uuid.UUID, outcome: EvalOutcome | None, provenance: dict, *, error: str | None = None,
            error_kind: ErrorKind | None = None) -> None:
    with session_scope() as s:
        run = s.get(Run, run_id, with_for_update=True)
        if run.status.is_terminal:
            return  # another attempt already finished it, or it was cancelled: write nothing
        s.exec(delete(Score).where(Score.run_id == run_id))
        s.exec(delete(Sample).where(Sample.run_id == run_id))
        if outcome is not None:
            s.add_all(Score(run_id=run_id, metric=m.name, value=m.value, stderr=m.stderr, n=m.n,
                            higher_is_better=m.higher_is_better, primary=m.primary, unit=m.unit)
                      for m in outcome.metrics)
            s.add_all(Sample(run_id=run_id, index=r.index, input=r.input, target=r.target, prediction=r.prediction,
                             metrics=r.metrics) for r in outcome.samples)
        run.status = Status.failed if error else Status.finished
        run.error, run.error_kind = error, error_kind
        run.stage, run.progress = ("failed", run.progress) if error else ("done", 1.0)
        run.finished_at = utcnow()
        run.provenance = provenance
        s.flush()
        submission_id = refresh_submission_status(session=s, submission_id=run.submission_id).id
    notify_if_ended(submission_id)


def execute_run(run_id: str, context: WorkerContext | None = None) -> str:
    """The RQ job. Infrastructure errors propagate (RQ retries them); user errors are recorded."""
    context = context or current_context()
    rid = uuid.UUID(run_id)
    claim = _start(rid, context)
    if claim is None:
        return "skipped"
    task = get_suite(claim["suite"]).task(claim["task"])
    # The submission's chat options (language tasks only): recorded with the task args, and handed to the
    # evaluator in their canonical form (checked here, and their shape again by the evaluator).
    language = task.evaluator == "lm-eval"
    args = {**task.args, **claim["chat_options"]} if language else task.args
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args=args, seed=0,
                    precision=claim["precision"], primary_metric=task.primary_metric, hardware=claim["hardware"],
                    chat=options_from_args(args) if language else None)
    evaluator = get_evaluator(task.evaluator)
    provenance = {
        "checkpoint_sha256": claim["sha256"], "suite": claim["suite"], "task": task.name,
        "task_spec_hash": task.config_hash(), "evaluator": {"name": evaluator.name, "version": evaluator.version},
        "spec": {"args": spec.args, "seed": spec.seed, "precision": spec.precision},
        "hardware_class": claim["hardware_class"], "worker": context.name,
        "hardware_profile_id": context.profile_id,
        # The evaluating service's version (rows before issue 15 hold it under "python").
        "evalboard_version": version("evalboard"),
        # What was evaluated beside the weights: an adapter names its base (scores name both), and the model type.
        "base_model": claim["base_model"], "model_type": claim["model_type"],
    }
    heartbeat = _Heartbeat(rid)
    heartbeat.start()
    settings = get_settings()
    request = EvalRequest(family=claim["family"], path=claim["path"], precision=claim["precision"],
                          device=context.device, spec=spec, base=claim["base"])
    started = time.monotonic()
    try:
        outcome, peak_rss = sandbox().run(request, memory_cap_bytes=settings.eval_memory_cap_bytes,
                                          timeout_s=settings.task_timeout_s, on_progress=_Progress(rid),
                                          is_cancelled=lambda: _is_cancelled(rid),
                                          # lm-eval runs keep finished requests for a retry (request ledger)
                                          run_key=(str(claim["submission_id"]), str(rid))
                                          if task.evaluator == "lm-eval" else None)
    except EvalCancelled:
        log.info("run %s cancelled while running; evaluation stopped", rid)
        return "cancelled"
    except EvalFailed as exc:
        if exc.kind == ErrorKind.infra:
            raise RuntimeError(exc.message) from exc  # RQ retries it, on any worker of the class
        log.info("run %s failed (user error): %s", rid, exc.message)
        if exc.log_tail:
            provenance["log_tail"] = exc.log_tail
        _finish(rid, None, provenance, error=exc.message, error_kind=ErrorKind.user)
        return "failed"
    finally:
        heartbeat.stopped.set()
    # The child's provenance first, the worker's own facts last: what the child says cannot replace the
    # checkpoint hash, the task, the evaluator or the hardware profile the worker recorded.
    provenance = {**outcome.provenance, **provenance, "eval_s": round(time.monotonic() - started, 3),
                  "peak_rss_bytes": peak_rss, "result_schema_version": outcome.schema_version}
    _finish(rid, outcome, provenance)
    return "finished"


def _is_cancelled(run_id: uuid.UUID) -> bool:
    try:
        with session_scope() as s:
            return s.get(Run, run_id).status == Status.cancelled
    except OperationalError:
        return False  # the database is away; the result is written (or retried) once it is back


_sandbox: EvalProcess | None = None


def sandbox() -> EvalProcess:
    global _sandbox
    if _sandbox is None:
        _sandbox = EvalProcess()
    return _sandbox


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ gave up (infra retries spent, or the job timed out): record it in words."""
    run_id = uuid.UUID(job.args[0])
    retries_left = getattr(job, "retries_left", None)
    if retries_left:
        # RQ will run it again: put the run back in the queue state.
        with session_scope() as s:
            run = s.get(Run, run_id, with_for_update=True)
            if run and run.status == Status.running:
                run.status, run.stage = Status.queued, "retry"
        return
    _finish(run_id, None, {"worker": current_context().name},
            error=f"infrastructure error after retries: {exc_type.__name__}: {exc_value}", error_kind=ErrorKind.infra)
    # No attempt will resume it: its request cache (runners/eval_sandbox.py) goes.
    for folder in (get_settings().data_dir / "request-cache").glob(f"*/{run_id}"):
        shutil.rmtree(folder, ignore_errors=True)
