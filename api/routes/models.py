"""One model in full: its place on the board, every task's numbers with their provenance, and how
to reproduce each; and two to four models side by side."""
import hashlib
import shlex
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from sqlmodel import Session, select

from api import board_snapshot
from api.board import capability_sort_key, comparison, parse_compare_ids, private_rows
from api.board_view import fast_json
from api.deps import OptionalUser, SessionDep
from api.http_cache import Encoded, cached
from api.schemas import Comparison, ModelDetail
from core import crud, visibility
from core.aggregate import normalise
from core.catalog import load_suites
from core.errors import NotFoundError
from core.models import Checkpoint, Model, Run, Score, Status, Submission, User
from core.tracks import get_track

router = APIRouter(tags=["models"])

BOARD_FIELDS = ("rank", "rank_range", "band", "overall", "overall_ci", "capabilities", "capabilities_ci", "efficiency",
                "track", "precision", "coverage", "missing_tasks", "ranked", "submission_id")


def reproduce_command(model: Model, submission: Submission, checkpoint: Checkpoint, provenance: dict) -> str:
    """The submission that produced a number, with the pins that make it the same number.

    The comment carries what must match: the checkpoint's content, the task spec, evaluator and seed.
    """
    args = ["evalboard", "submit", f"./{model.name.split('/')[-1]}", "--name", model.name,
            "--suite", submission.suite, "--family", model.family.value,
            "--hardware", submission.hardware_class, "--precision", submission.precision.value]
    if model.license:
        args += ["--license", model.license]
    evaluator = provenance.get("evaluator") or {}
    pins = [f"checkpoint sha256 {checkpoint.sha256}"]
    if provenance.get("task_spec_hash"):
        pins.append(f"task spec {provenance['task_spec_hash'][:12]}")
    if evaluator:
        pins.append(f"evaluator {evaluator.get('name')} {evaluator.get('version')}")
    if "seed" in provenance or "spec" in provenance:
        pins.append(f"seed {provenance.get('seed', (provenance.get('spec') or {}).get('seed'))}")
    return f"{shlex.join(args)}  # {', '.join(pins)}"


def _board_row(model: Model) -> dict | None:
    """The model's row on its family's default track (else its first row on another track)."""
    rows = board_snapshot.current().board.model_rows(model.id, model.family.value, include_flagged=model.flagged)
    return {k: rows[0][k] for k in BOARD_FIELDS} if rows else None


def _shown_runs(session: Session, model_id: int, board_submission: str | None) -> list[tuple[Run, Submission]]:
    """Each task's run behind the number shown: for the tasks of the board row's submission, that submission's
    run (a board row never mixes submissions: api/board.py chooses one per row), so the page and the board
    agree; for any other task, its latest finished run."""
    pairs = session.exec(select(Run, Submission).join(Submission, Submission.id == Run.submission_id)
                         .where(Submission.model_id == model_id, Run.status == Status.finished)
                         .order_by(Run.finished_at)).all()
    shown = {run.task: (run, submission) for run, submission in pairs}
    shown.update({run.task: (run, submission) for run, submission in pairs if str(submission.id) == board_submission})
    return list(shown.values())


def visible_model(session: Session, model_id: int, viewer: User | None) -> Model:
    """The model if `viewer` may see it; a private model is "no model N" to anyone else, as a missing one is."""
    model = session.get(Model, model_id)
    if model is None or not visibility.can_see(model, viewer):
        raise NotFoundError(f"no model {model_id}")
    return model


def model_detail(session: Session, model_id: int, viewer: User | None = None) -> dict:
    """The model as `viewer` may read it: a hidden or withdrawn one is its owner's and admins' only, and
    they alone read failures whole; anyone else reads each failure as one line without host paths."""
    model = visible_model(session, model_id, viewer)
    privileged = visibility.is_privileged(model, viewer)
    owner = session.get(User, model.owner_id)
    board = _board_row(model)
    pairs = _shown_runs(session, model_id, board["submission_id"] if board else None)
    scores: dict = {}
    for score in session.exec(select(Score).where(Score.run_id.in_([r.id for r, _ in pairs]))):
        scores.setdefault(score.run_id, []).append(score)
    checkpoints = {s.checkpoint_id: session.get(Checkpoint, s.checkpoint_id) for _, s in pairs}
    baselines = {(s.name, t.name): t.random_baseline for s in load_suites().values() for t in s.tasks}
    tasks = []
    for run, submission in sorted(pairs, key=lambda p: (capability_sort_key(p[0].capability), p[0].task)):
        metrics = {s.metric: {"value": s.value, "stderr": s.stderr, "n": s.n, "unit": s.unit,
                              "higher_is_better": s.higher_is_better, "primary": s.primary}
                   for s in scores.get(run.id, [])}
        primary = next((s for s in scores.get(run.id, []) if s.primary), None)
        baseline = baselines.get((submission.suite, run.task), 0.0)
        tasks.append({
            "task": run.task, "capability": run.capability, "suite": submission.suite,
            "run_id": str(run.id), "submission_id": str(submission.id), "finished_at": run.finished_at,
            "on_board": board is not None and str(submission.id) == board["submission_id"],
            "hardware_class": submission.hardware_class, "precision": submission.precision.value,
            "primary_metric": primary.metric if primary else None,
            "raw": primary.value if primary else None, "stderr": primary.stderr if primary else None,
            "n": primary.n if primary else None, "random_baseline": baseline,
            "normalised": normalise(primary.value, baseline) if primary else None,
            "metrics": metrics,
            "provenance": run.provenance if privileged else visibility.public_provenance(run.provenance),
            "reproduce": reproduce_command(model, submission, checkpoints[submission.checkpoint_id], run.provenance),
            "samples_url": f"/api/v1/runs/{run.id}/samples.jsonl",
        })
    submissions = session.exec(select(Submission).where(Submission.model_id == model_id)
                               .order_by(Submission.submitted_at.desc())).all()
    return {
        "model": {"id": model.id, "name": model.name, "owner": owner.name, "family": model.family.value,
                  "params": model.params, "license": model.license, "license_link": model.license_link,
                  "flagged": model.flagged,
                  "flag_reason": model.flag_reason, "created_at": model.created_at,
                  "visibility": visibility.visibility(model),
                  "hidden_reason": model.hidden_reason if privileged else None},
        "board": board,
        "tasks": tasks,
        "submissions": [{"id": str(s.id), "suite": s.suite, "status": s.status.value, "precision": s.precision.value,
                         "hardware_class": s.hardware_class, "submitted_at": s.submitted_at,
                         "finished_at": s.finished_at,
                         "error": s.error if privileged else visibility.public_submission_error(
                             s.error, crud.runs_of(session=session, submission_id=s.id) if s.error else [])}
                        for s in submissions],
    }


@router.get("/models/{model_id}", response_model=ModelDetail)
def read_model(model_id: int, request: Request, session: SessionDep, viewer: OptionalUser):
    """Per-task scores with stderr, capabilities with intervals, the provenance of every run and a
    command that reproduces each number. The ETag is the answer's own digest (its submissions change
    while they run, without the board changing): a client holding it gets 304."""
    body = Encoded(fast_json(model_detail(session, model_id, viewer)), "application/json")
    etag = f'"m{hashlib.blake2b(body.body, digest_size=12).hexdigest()}"'
    return cached(request, etag, lambda: body, shared=False)


@router.get("/compare", response_model=Comparison)
def compare(request: Request, session: SessionDep, viewer: OptionalUser,
            ids: Annotated[str, Query(max_length=200, description=(
                "two to four rows: model ids, or `id:precision` for one precision of a model, comma-separated; "
                "the first is the reference"))],
            track: Annotated[str | None, Query(max_length=128, description=(
                "the track compared on (`suite@version`); default: the reference model's family's track"))] = None,
            ):
    """Rows of one track side by side: each delta is a row's score minus the first (reference) row's, and
    `paired` gives per task, capability and overall the paired difference with its 95% interval, a test
    (McNemar for 0/1 items, paired bootstrap otherwise) and a verdict in words."""
    wanted = parse_compare_ids(ids)
    family, private = None, []
    for model_id, _ in wanted:
        model = visible_model(session, model_id, viewer)
        family = family or model.family.value
        if model.hidden:  # off the board, but this viewer may see it (its owner, an admin)
            private.append(model_id)
    served = board_snapshot.current()
    on_track = get_track(track, family)
    board_track = served.board.track(on_track.id)

    def candidates_of(model_id: int) -> list[dict]:
        if board_track is None or model_id in served.hidden:
            return []
        views = [board_track.view()] + ([board_track.view(include_flagged=True)]
                                        if model_id in board_track.flagged_models else [])
        return [v.row(p) for v in views for p in np.flatnonzero(v.model_ids == model_id).tolist()]

    def make() -> Encoded:
        return Encoded(fast_json(comparison(
            on_track, wanted, board_track.capabilities if board_track else [], candidates_of,
            lambda row_ids: board_snapshot.compared_rows(served.board, on_track.id, row_ids),
            private_rows(session, private).get(on_track.id, []) if private else None)), "application/json")
    # A comparison of public rows is the same for everyone and for the board version: cached and shared.
    return cached(request, served.etag, make, shared=not private)
