from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import SessionDep
from core.aggregate import ModelRow, TaskScore, rank
from core.catalog import load_suites
from core.models import Model, Run, Score, Status, Submission, User

router = APIRouter(prefix="/leaderboard", tags=["leaderboard"])


def _baselines() -> dict[tuple[str, str], float]:
    return {(s.name, t.name): t.random_baseline for s in load_suites().values() for t in s.tasks}


@router.get("")
def leaderboard(session: SessionDep, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                family: str | None = None) -> dict:
    """Ranked models: each task's latest finished primary score, normalised and aggregated."""
    query = (select(Model, User.name, Submission, Run, Score)
             .join(User, User.id == Model.owner_id)
             .join(Submission, Submission.model_id == Model.id)
             .join(Run, Run.submission_id == Submission.id)
             .join(Score, Score.run_id == Run.id)
             .where(Score.primary == True, Run.status == Status.finished, Model.hidden == False)  # noqa: E712
             .order_by(Run.finished_at))
    if family:
        query = query.where(Model.family == family)
    baselines = _baselines()
    rows: dict[int, ModelRow] = {}
    for model, owner, submission, run, score in session.exec(query):
        row = rows.get(model.id)
        if row is None:
            row = rows[model.id] = ModelRow(model.id, model.name, owner, model.family.value, model.params,
                                            submission.precision.value, submission.hardware_class, model.license,
                                            model.flagged, model.flag_reason)
        # Later runs overwrite earlier ones: the board shows each task's latest finished score.
        row.tasks[run.task] = TaskScore(run.task, run.capability, score.value, score.stderr,
                                        baselines.get((submission.suite, run.task), 0.0))
        row.precision, row.hardware_class = submission.precision.value, submission.hardware_class
    ranked = rank(list(rows.values()))
    return {"total": len(ranked), "limit": limit, "offset": offset, "rows": ranked[offset:offset + limit]}
