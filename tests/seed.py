"""Seed scored models straight into Postgres, for tests of the read side (board, API)."""
from core.crud import create_user
from core.db import session_scope
from core.models import Checkpoint, Family, Model, Run, Score, Status, Submission, utcnow


def seed_scored_model(name: str, scores: dict[str, float], *, owner: str = "alice", params: int = 1000,
                      suite: str = "language-core") -> None:
    """A model with one finished submission whose tasks have these primary `acc` values."""
    capability = {"world_facts": "understanding", "arithmetic_mc": "cognition"}
    with session_scope() as s:
        user = create_user(session=s, name=owner)
        checkpoint = Checkpoint(sha256=f"{abs(hash(name)):064x}"[-64:], family=Family.causal_lm, format="tar.gz",
                                size_bytes=1, storage_uri="/nonexistent", params=params, uploaded_by=user.id)
        model = Model(owner_id=user.id, name=name, family=Family.causal_lm, params=params, license="MIT")
        s.add_all([checkpoint, model])
        s.flush()
        submission = Submission(model_id=model.id, checkpoint_id=checkpoint.id, submitted_by=user.id, suite=suite,
                                hardware_class="cpu", status=Status.finished, finished_at=utcnow())
        s.add(submission)
        s.flush()
        for task, value in scores.items():
            run = Run(submission_id=submission.id, task=task, capability=capability[task], status=Status.finished,
                      finished_at=utcnow(), progress=1.0)
            s.add(run)
            s.flush()
            s.add(Score(run_id=run.id, metric="acc", value=value, stderr=0.03, n=200, primary=True))
