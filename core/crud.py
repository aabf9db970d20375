"""Database operations shared by api and runners; keyword-only arguments throughout."""
import uuid
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from core import precisions, visibility
from core.catalog import Suite, TaskSpec
from core.config import get_settings
from core.errors import NotFoundError, RateLimitedError
from core.models import (
    ApiToken,
    Checkpoint,
    CheckpointUploader,
    Family,
    HardwareProfile,
    Model,
    Rerun,
    Role,
    Run,
    Score,
    Status,
    Submission,
    User,
    utcnow,
)
from core.security import hash_token, new_token

T = TypeVar("T")


def create_user(*, session: Session, name: str, role: Role = Role.author) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        user = User(name=name, role=role)
        session.add(user)
        session.flush()
    return user


def create_token(*, session: Session, user: User) -> str:
    """Return a new token; only its hash is stored, so this is the one time it is seen."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str) -> User | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                              ApiToken.revoked == False)).first()  # noqa: E712
    return session.get(User, row.user_id) if row else None


def get_or_create_model(*, session: Session, owner: User, name: str, family: Family, license: str | None,
                        params: int | None, license_link: str | None = None) -> Model:
    model = session.exec(select(Model).where(Model.owner_id == owner.id, Model.name == name)).first()
    if model is None:
        model = Model(owner_id=owner.id, name=name, family=family, license=license, params=params,
                      license_link=license_link)
        session.add(model)
        session.flush()
    return model


def get_checkpoint(*, session: Session, sha256: str) -> Checkpoint | None:
    return session.exec(select(Checkpoint).where(Checkpoint.sha256 == sha256)).first()


def record_uploader(*, session: Session, checkpoint: Checkpoint, user: User) -> None:
    """The user has these bytes (uploaded them, again or first): they may submit the checkpoint."""
    session.exec(insert(CheckpointUploader).values(checkpoint_id=checkpoint.id, user_id=user.id,
                                                   first_uploaded_at=utcnow())
                 .on_conflict_do_nothing(index_elements=["checkpoint_id", "user_id"]))


def checkpoint_of_uploader(*, session: Session, sha256: str, user: User) -> Checkpoint | None:
    """The checkpoint with this content if the user uploaded it; None alike for "never uploaded by
    you" and "does not exist", so a sha256 seen elsewhere (every reproduce command prints one) is no key."""
    return session.exec(select(Checkpoint).join(CheckpointUploader, CheckpointUploader.checkpoint_id == Checkpoint.id)
                        .where(Checkpoint.sha256 == sha256, CheckpointUploader.user_id == user.id)).first()


def check_daily_limit(*, session: Session, user: User) -> None:
    """At most N new submissions and re-runs together per user in any rolling 24 hours (duplicates are free)."""
    limit = get_settings().submissions_per_day
    window_start = utcnow() - timedelta(days=1)
    submitted = session.exec(select(Submission.submitted_at).where(
        Submission.submitted_by == user.id, Submission.submitted_at > window_start)).all()
    reran = session.exec(select(Rerun.requested_at).where(
        Rerun.user_id == user.id, Rerun.requested_at > window_start)).all()
    recent = sorted([*submitted, *reran])
    if len(recent) >= limit:
        retry_after = int((recent[len(recent) - limit] - window_start).total_seconds()) + 1
        raise RateLimitedError(f"at most {limit} submissions per day (re-runs count as submissions); the next is "
                               f"accepted in {retry_after} s", retry_after_s=retry_after)


def create_submission(*, session: Session, model: Model, checkpoint: Checkpoint, suite: Suite,
                      tasks: list[TaskSpec], user: User, hardware_class: str, precision: str, revision: str | None,
                      webhook_url: str | None = None, webhook_secret: str | None = None,
                      model_type: str = "pretrained", chat_options: dict | None = None,
                      base_model: str | None = None, base_models: list[str] | None = None,
                      ) -> tuple[Submission, list[Run]]:
    submission = Submission(model_id=model.id, checkpoint_id=checkpoint.id, submitted_by=user.id, suite=suite.name,
                            suite_version=suite.version,
                            hardware_class=hardware_class, precision=precision, revision=revision,
                            webhook_url=webhook_url, webhook_secret=webhook_secret, model_type=model_type,
                            base_model=base_model, base_models=list(base_models or []))
    if chat_options is not None:
        submission.chat_options = chat_options
    session.add(submission)
    session.flush()
    runs = [Run(submission_id=submission.id, task=t.name, capability=t.capability) for t in tasks]
    session.add_all(runs)
    session.flush()
    return submission, runs


def get_or_404(*, session: Session, table: type[T], key: Any) -> T:
    """The row of `table` with this primary key, or NotFoundError ("no model 7"): the API answers 404."""
    row = session.get(table, key)
    if row is None:
        raise NotFoundError(f"no {table.__tablename__} {key}")
    return row


def visible_submission(*, session: Session, submission_id: uuid.UUID, viewer: User | None
                       ) -> tuple[Submission, Model]:
    """The submission and its model, if the viewer may see them; a private one is as absent as an unknown id."""
    submission = session.get(Submission, submission_id)
    model = session.get(Model, submission.model_id) if submission else None
    if model is None or not visibility.can_see(model, viewer):
        raise NotFoundError(f"no submission {submission_id}")
    return submission, model


def visible_run(*, session: Session, run_id: uuid.UUID, viewer: User | None) -> tuple[Run, Model]:
    run = session.get(Run, run_id)
    submission = session.get(Submission, run.submission_id) if run else None
    model = session.get(Model, submission.model_id) if submission else None
    if model is None or not visibility.can_see(model, viewer):
        raise NotFoundError(f"no run {run_id}")
    return run, model


def runs_of(*, session: Session, submission_id: uuid.UUID) -> list[Run]:
    return list(session.exec(select(Run).where(Run.submission_id == submission_id).order_by(Run.task)))


def scores_of(*, session: Session, run_ids: list[uuid.UUID]) -> list[Score]:
    if not run_ids:
        return []
    return list(session.exec(select(Score).where(Score.run_id.in_(run_ids)).order_by(Score.metric)))


def refresh_submission_status(*, session: Session, submission_id: uuid.UUID) -> Submission:
    """A submission's status derives from its runs (DESIGN §4)."""
    submission = session.get(Submission, submission_id, with_for_update=True)
    statuses = {r.status for r in runs_of(session=session, submission_id=submission_id)}
    if statuses <= {Status.finished}:
        status = Status.finished
    elif Status.running in statuses or (Status.queued in statuses and statuses & {Status.finished, Status.failed}):
        status = Status.running
    elif Status.queued in statuses:
        status = Status.queued
    elif Status.failed in statuses:
        status = Status.failed
    else:
        status = Status.cancelled
    if status == Status.running and submission.started_at is None:
        submission.started_at = utcnow()
    if status.is_terminal and submission.finished_at is None:
        submission.finished_at = utcnow()
        failed = [r for r in runs_of(session=session, submission_id=submission_id) if r.status == Status.failed]
        submission.error = "; ".join(f"{r.task}: {r.error}" for r in failed) or None
    submission.status = status
    session.add(submission)
    return submission


def queue_position(*, session: Session, run: Run) -> int | None:
    """How many runs of the same hardware class were queued before this one."""
    if run.status != Status.queued:
        return None
    submission = session.get(Submission, run.submission_id)
    return session.exec(
        select(func.count()).select_from(Run).join(Submission)
        .where(Run.status == Status.queued, Submission.hardware_class == submission.hardware_class,
               Run.queued_at < run.queued_at)).one()



def supported_precisions(*, session: Session, hardware_class: str) -> set[str] | None:
    """Precisions some worker of the class can run (core/precisions.py); None when no worker has reported yet."""
    profiles = session.exec(select(HardwareProfile.measured, HardwareProfile.versions)
                            .where(HardwareProfile.hardware_class == hardware_class)).all()
    if not profiles:
        return None
    return precisions.supported_by([(measured, versions) for measured, versions in profiles])
