"""SQLModel tables, one family per entity (Base → table → Public), as in DESIGN §4.

The schema itself is made only by Alembic (`migrations/`); these classes describe it.
"""
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from core.errors import ErrorKind


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(**kw: Any) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), **kw))


def _now() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def _enum(enum: type[Enum], default: Any = ..., **kw: Any) -> Any:
    """Stored as VARCHAR holding the enum's value ("causal-lm"), not a native Postgres enum."""
    sa_type = SAEnum(enum, native_enum=False, create_constraint=False, length=16,
                     values_callable=lambda e: [m.value for m in e])
    return Field(default=default, sa_type=sa_type, **kw)


def _json(default: Any = dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSONB, nullable=False))


class Role(str, Enum):
    author = "author"
    admin = "admin"


class Family(str, Enum):
    causal_lm = "causal-lm"
    clip = "clip"


class Precision(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    int8 = "int8"  # bitsandbytes LLM.int8 weights, GPU hardware classes only
    int4 = "int4"  # bitsandbytes NF4 weights (bfloat16 compute), GPU hardware classes only


class Status(str, Enum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.finished, Status.failed, Status.cancelled)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    role: Role = _enum(Role, Role.author)
    created_at: datetime = _now()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(unique=True, max_length=64, description="sha256 of the token; the token itself is never stored")
    created_at: datetime = _now()
    revoked: bool = False


class ModelBase(SQLModel):
    name: str = Field(max_length=128, description="name shown on the board, unique per owner")
    family: Family = _enum(Family)
    license: str | None = Field(default=None, max_length=64)
    license_link: str | None = Field(default=None, max_length=512,
                                     description="https link to the licence text, for licence `other` (shown as text)")
    params: int | None = Field(default=None, sa_type=BigInteger, description="parameter count, from config and safetensors headers")


class Model(ModelBase, table=True):
    """`hidden` is what the board and the public read: off the board and private, because an admin hid
    the model (`hidden_by_admin`, moderation: only admins change it) or its owner withdrew it
    (`withdrawn`, the owner's). core.visibility keeps the three consistent."""
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    hidden: bool = False
    hidden_by_admin: bool = False
    hidden_reason: str | None = Field(default=None, max_length=500, description="the admin's words, shown to the owner")
    withdrawn: bool = False
    flagged: bool = False
    flag_reason: str | None = None
    created_at: datetime = _now()


class Checkpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, index=True, max_length=64, description="sha256 of the uploaded archive's content")
    family: Family = _enum(Family)
    format: str = Field(max_length=16, description="archive format it came in: tar, tar.gz or zip")
    size_bytes: int = Field(sa_type=BigInteger)
    storage_uri: str = Field(description="folder holding the unpacked model")
    params: int | None = Field(default=None, sa_type=BigInteger)
    uploaded_by: int = Field(foreign_key="user.id")
    created_at: datetime = _now()


class CheckpointUploader(SQLModel, table=True):
    """Who has uploaded a checkpoint's bytes: only they may submit it (uploading the same bytes again
    proves possession). `Checkpoint.uploaded_by` is only the first of them."""
    __tablename__ = "checkpoint_uploader"
    checkpoint_id: int = Field(foreign_key="checkpoint.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)
    first_uploaded_at: datetime = _now()


class SubmissionBase(SQLModel):
    suite: str = Field(max_length=64)
    hardware_class: str = Field(max_length=64)
    precision: Precision = _enum(Precision, Precision.float32)
    revision: str | None = Field(default=None, max_length=128)


class Submission(SubmissionBase, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", index=True)
    suite_version: str | None = Field(default=None, max_length=32,
                                      description="the suite's version when submitted: with the suite, its track")
    submitted_by: int = Field(foreign_key="user.id", index=True)
    status: Status = _enum(Status, Status.queued, index=True)
    submitted_at: datetime = _now()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    error: str | None = None
    webhook_url: str | None = Field(default=None, max_length=2048, description="called once when the submission ends")
    webhook_secret: str | None = Field(default=None, max_length=256, description="HMAC key signing the webhook body")
    webhook_sent_at: datetime | None = _ts()
    # How its prompts were built and what it is (core/submission_options.py): part of the duplicate key.
    model_type: str = Field(default="pretrained", max_length=24)
    chat_options: dict = Field(default_factory=lambda: {"apply_chat_template": False, "fewshot_as_multiturn": False,
                                                        "system_instruction": None},
                               sa_column=Column(JSONB, nullable=False))
    base_model: str | None = Field(default=None, max_length=300,
                                   description="an adapter's pinned base: hf://org/name@commit or an uploaded "
                                               "checkpoint's sha256")
    base_models: list = Field(default_factory=list, sa_column=Column(JSONB, nullable=False),
                              description="a merge's declared source models, as the author named them")


class Rerun(SQLModel, table=True):
    """One owner's re-run of a submission: it counts against the daily submission limit like a new one."""
    id: int | None = Field(default=None, primary_key=True)
    submission_id: uuid.UUID = Field(foreign_key="submission.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    requested_at: datetime = _now()


class Run(SQLModel, table=True):
    """One job: one task of one submission."""
    # The partial index serves the board's change check (migration 0008).
    __table_args__ = (UniqueConstraint("submission_id", "task"),
                      Index("ix_run_finished_at_finished", "finished_at", postgresql_where=text("status = 'finished'")))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    submission_id: uuid.UUID = Field(foreign_key="submission.id", index=True)
    task: str = Field(max_length=128)
    capability: str = Field(max_length=32)
    status: Status = _enum(Status, Status.queued, index=True)
    attempts: int = 0
    worker: str | None = None
    stage: str | None = Field(default=None, description="validate/load/infer/score/persist")
    progress: float = 0.0
    queued_at: datetime = _now()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    error: str | None = None
    error_kind: ErrorKind | None = _enum(ErrorKind, None)
    provenance: dict = _json()


class Score(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("run_id", "metric"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="run.id", index=True)
    metric: str = Field(max_length=64)
    value: float
    stderr: float | None = None
    n: int | None = None
    higher_is_better: bool = True
    primary: bool = False
    unit: str | None = Field(default=None, max_length=32)


class Sample(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("run_id", "index"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="run.id", index=True)
    index: int
    input: str
    target: str
    prediction: str
    metrics: dict = _json()


class HardwareProfile(SQLModel, table=True):
    __tablename__ = "hardware_profile"
    id: int | None = Field(default=None, primary_key=True)
    hardware_class: str = Field(index=True, max_length=64)
    host: str = Field(max_length=255)
    worker: str = Field(max_length=255)
    device_name: str
    device_count: int
    memory_bytes: int = Field(sa_type=BigInteger)
    versions: dict = _json()
    measured: dict = _json()
    measured_at: datetime = _now()
    last_seen_at: datetime = _now()
