"""Seed models straight into Postgres, for tests of the read side (board, API, pages)."""
import hashlib
import itertools

from core.crud import create_user
from core.db import session_scope
from core.models import Checkpoint, ErrorKind, Family, Model, Precision, Run, Sample, Score, Status, Submission, utcnow

CAPABILITY = {"world_facts": "understanding", "arithmetic_mc": "cognition", "imagenet_zs": "multimodal",
              "retrieval": "multimodal", "latency": "efficiency"}
_unique = itertools.count()


def _model(s, name: str, owner: str, family: str, params: int, license: str | None, flagged: bool) -> tuple:
    user = create_user(session=s, name=owner)
    checkpoint = Checkpoint(sha256=hashlib.sha256(f"{owner}/{name}/{next(_unique)}".encode()).hexdigest(),
                            family=Family(family), format="tar.gz", size_bytes=1, storage_uri="/nonexistent",
                            params=params, uploaded_by=user.id)
    model = Model(owner_id=user.id, name=name, family=Family(family), params=params, license=license,
                  flagged=flagged, flag_reason="suspected contamination" if flagged else None)
    s.add_all([checkpoint, model])
    s.flush()
    return user, checkpoint, model


def seed_scored_model(name: str, scores: dict[str, float], *, owner: str = "alice", params: int = 1000,
                      suite: str = "language-core", family: str = "causal-lm", precision: str = "float32",
                      hardware_class: str = "cpu", license: str | None = "MIT", flagged: bool = False,
                      stderr: float | None = 0.03, samples: int = 0,
                      efficiency: dict[str, float | tuple[float, float]] | None = None,
                      hardware_profile_id: int | None = None) -> int:
    """A model with one finished submission whose tasks have these primary `acc` values; returns its id.

    `samples` adds that many per-sample records to each run (every third one wrong);
    `efficiency` adds a finished efficiency run with these metrics (e.g. {"tokens_per_s": 120}, or
    {"tokens_per_s": (120, 4.0)} with a stderr), measured on `hardware_profile_id` if given.
    """
    with session_scope() as s:
        user, checkpoint, model = _model(s, name, owner, family, params, license, flagged)
        submission = Submission(model_id=model.id, checkpoint_id=checkpoint.id, submitted_by=user.id, suite=suite,
                                hardware_class=hardware_class, precision=Precision(precision),
                                status=Status.finished, finished_at=utcnow())
        s.add(submission)
        s.flush()
        for task, value in scores.items():
            run = Run(submission_id=submission.id, task=task, capability=CAPABILITY.get(task, "understanding"),
                      status=Status.finished, finished_at=utcnow(), started_at=utcnow(), progress=1.0, stage="done",
                      provenance={"checkpoint_sha256": checkpoint.sha256, "suite": suite, "task": task,
                                  "task_spec_hash": "ab" * 32, "evaluator": {"name": "lm-eval", "version": "1"},
                                  "spec": {"seed": 0, "precision": precision}, "seed": 0,
                                  "dataset": {"name": task, "version": "1.0"}})
            s.add(run)
            s.flush()
            s.add(Score(run_id=run.id, metric="acc", value=value, stderr=stderr, n=200, primary=True))
            s.add(Score(run_id=run.id, metric="acc_norm", value=value, stderr=stderr, n=200))
            s.add_all(Sample(run_id=run.id, index=i, input=f"Question {i} of {task}?", target="A",
                             prediction="B" if i % 3 == 0 else "A", metrics={"acc": 0.0 if i % 3 == 0 else 1.0})
                      for i in range(samples))
        if efficiency:
            run = Run(submission_id=submission.id, task="latency", capability="efficiency", status=Status.finished,
                      finished_at=utcnow(), progress=1.0,
                      provenance={"hardware_profile_id": hardware_profile_id} if hardware_profile_id else {})
            s.add(run)
            s.flush()
            figures = {metric: v if isinstance(v, tuple) else (v, None) for metric, v in efficiency.items()}
            s.add_all(Score(run_id=run.id, metric=metric, value=value, stderr=err, n=40 if err else 1,
                            primary=i == 0, higher_is_better=not metric.endswith(("_ms", "_bytes")))
                      for i, (metric, (value, err)) in enumerate(figures.items()))
        return model.id


def seed_submission(name: str, runs: dict[str, Status], *, owner: str = "bob", hardware_class: str = "cpu",
                    error: str = "the checkpoint could not be loaded: no config.json") -> str:
    """A submission whose runs are in these states (queued/running/failed…); returns its id."""
    with session_scope() as s:
        user, checkpoint, model = _model(s, name, owner, "causal-lm", 1000, None, False)
        live = any(not status.is_terminal for status in runs.values())
        submission = Submission(model_id=model.id, checkpoint_id=checkpoint.id, submitted_by=user.id,
                                suite="language-core", hardware_class=hardware_class,
                                status=Status.running if live else Status.failed)
        s.add(submission)
        s.flush()
        for task, status in runs.items():
            failed = status == Status.failed
            s.add(Run(submission_id=submission.id, task=task, capability=CAPABILITY.get(task, "understanding"),
                      status=status, stage={Status.running: "infer", Status.failed: "failed"}.get(status),
                      progress=0.5 if status == Status.running else 0.0, worker="w1" if status != Status.queued else None,
                      started_at=utcnow() if status != Status.queued else None,
                      finished_at=utcnow() if failed else None, attempts=1 if status != Status.queued else 0,
                      error=error if failed else None, error_kind=ErrorKind.user if failed else None))
        return str(submission.id)
