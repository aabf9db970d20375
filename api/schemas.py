"""Every request and response shape of the API, in one place (routes import them; nothing here queries).

The submission's request derives from `core.models.SubmissionBase`, the fields it shares with the
table (suite, hardware class, precision, revision), as the full-stack-fastapi-template's SQLModel
families do; the responses are plain pydantic models, so the OpenAPI document describes each route.
The board routes answer ready bytes from the published board; their shapes here document them.
"""
import uuid
from datetime import datetime
from enum import Enum

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StrictBool

from core.licenses import SpdxLicense
from core.models import Family, Precision, Role, Status, SubmissionBase
from core.submission_options import MAX_SYSTEM_INSTRUCTION_CHARS, MODEL_TYPES

# ---- submissions -------------------------------------------------------------------------------


class SubmissionCreate(SubmissionBase):
    """POST /submissions. suite, precision and revision (and their limits) are the table's own fields."""
    hardware_class: str = Field(default="cpu", max_length=64)
    model_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    checkpoint_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                          description="sha256 returned by POST /checkpoints")
    source: str | None = Field(default=None, description="instead of an upload: hf://org/name@revision (a causal "
                                                         "LM) or hf-hub:org/name@revision (an open_clip model); "
                                                         "connected deployments; pinned to its commit")
    tasks: list[str] | None = Field(default=None, description="run only these tasks of the suite")
    license: SpdxLicense | None = Field(default=None, description="an SPDX identifier (Apache-2.0, MIT, …), or `other`")
    license_link: str | None = Field(default=None, max_length=512,
                                     description="with license `other`: an https link to the licence text (shown as text)")
    webhook_url: AnyHttpUrl | None = Field(default=None, description="POSTed to once when the submission ends")
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=256,
                                       description="HMAC-SHA256 key for the X-Evalboard-Signature header")
    model_type: str = Field(default="pretrained", description=f"one of {', '.join(MODEL_TYPES)}; `chat` (chat and "
                                                              f"instruct models) turns the chat template on")
    apply_chat_template: StrictBool | None = Field(default=None, description="prompts through the tokenizer's chat "
                                                                             "template; default: model_type == chat")
    fewshot_as_multiturn: StrictBool | None = Field(default=None, description="few-shot examples as chat turns; "
                                                                              "default: as apply_chat_template")
    system_instruction: str | None = Field(default=None, max_length=MAX_SYSTEM_INSTRUCTION_CHARS,
                                           description="a system message before every prompt (plain text)")
    base_model: str | None = Field(default=None, pattern=r"^(hf://[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}@[0-9a-f]{40}"
                                                         r"|[0-9a-f]{64})$",
                                   description="an adapter's base, pinned: hf://org/name@<40-hex commit> or the "
                                               "sha256 of a checkpoint you uploaded")
    base_models: list[str] = Field(default_factory=list, max_length=16,
                                   description="a merge's source models as you name them (shown on the board)")


class SubmissionCheck(SubmissionCreate):
    """POST /submissions/check: a submission without its checkpoint, plus the checkpoint's family."""
    family: Family | None = Field(default=None, description="the checkpoint's family (causal-lm or clip), checked "
                                                            "against the suite's")

    model_config = {"json_schema_extra": {"examples": [{
        "model_name": "my-model", "suite": "language-core", "family": "causal-lm", "hardware_class": "cpu",
        "precision": "float32", "tasks": ["world_facts", "arithmetic_mc"], "license": "Apache-2.0"}]}}


class CheckResult(BaseModel):
    ok: bool = True
    suite: str
    tasks: list[str] = Field(description="the tasks the submission would run")
    warnings: list[str] = Field(default_factory=list, description="accepted, but worth knowing (e.g. no worker of "
                                                                  "the class is online)")


class RunPublic(BaseModel):
    id: uuid.UUID
    task: str
    capability: str
    status: Status
    stage: str | None
    progress: float
    attempts: int
    queue_position: int | None
    eta_s: float | None = Field(description="estimated seconds until done; None until a run has finished on the "
                                            "hardware class")
    error: str | None
    error_kind: str | None
    log_tail: str | None = Field(description="the end of the evaluation's log, for failures; its owner's and "
                                             "admins' only (the public reads `error`, one line without paths)")
    scores: dict[str, float]


class SubmissionPublic(BaseModel):
    id: uuid.UUID
    model_name: str
    suite: str
    hardware_class: str
    precision: Precision
    model_type: str = "pretrained"
    chat_options: dict = Field(default_factory=dict, description="apply_chat_template, fewshot_as_multiturn, "
                                                                 "system_instruction: how its prompts were built")
    base_model: str | None = None
    base_models: list[str] = Field(default_factory=list)
    status: Status
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    runs: list[RunPublic]
    visibility: str = Field(default="public", description="public, hidden (by an admin) or withdrawn (by its owner); "
                                                          "only the owner and admins see a submission that is not "
                                                          "public")
    hidden_reason: str | None = Field(default=None, description="why an admin hid the model, for its owner")
    warnings: list[str] = Field(default_factory=list, description="things the submitter should know, e.g. no "
                                                                  "worker of the class is online")


class SubmissionPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[SubmissionPublic]


class ResultFormat(str, Enum):
    json = "json"
    csv = "csv"
    lm_eval = "lm-eval"
    model_index = "model-index"


# ---- runs --------------------------------------------------------------------------------------


class RunDetail(BaseModel):
    """GET /runs/{id}: the run row whole, with its provenance (the public's failure in one line, and its
    provenance without host paths)."""
    id: uuid.UUID
    submission_id: uuid.UUID
    task: str
    capability: str
    status: Status
    attempts: int
    worker: str | None
    stage: str | None
    progress: float
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    error: str | None
    error_kind: str | None
    provenance: dict = Field(description="everything needed to rebuild the run's numbers: checkpoint, dataset and "
                                         "task-config hashes, library versions, seed, hardware profile")


# ---- the queue ---------------------------------------------------------------------------------


class QueueRun(BaseModel):
    id: str
    task: str
    capability: str
    status: str
    stage: str | None
    progress: float
    attempts: int
    worker: str | None
    queue_position: int | None = Field(description="runs of the same hardware class queued earlier (0 = next)")
    eta_s: float | None = Field(description="estimated seconds until done; None until a run has finished on the "
                                            "hardware class")
    error: str | None


class QueueSubmission(BaseModel):
    id: str
    model_id: int
    model: str
    owner: str
    suite: str
    hardware_class: str
    precision: str
    status: str
    submitted_at: datetime
    started_at: datetime | None
    runs: list[QueueRun]
    progress: float = Field(description="mean progress of its runs (a finished run counts 1)")
    eta_s: float | None = Field(description="the last of its runs' ETAs; None while any is unknown")


class QueueHardware(BaseModel):
    queued: int
    workers_alive: int
    mean_run_s: float | None


class QueueFailure(BaseModel):
    run_id: str
    submission_id: str
    model_id: int
    model: str
    task: str
    hardware_class: str
    error: str | None
    error_kind: str | None
    attempts: int
    finished_at: datetime | None


class QueuePublic(BaseModel):
    submissions: list[QueueSubmission]
    hardware: dict[str, QueueHardware] = Field(description="per hardware class with live submissions")
    failures: list[QueueFailure] = Field(description="recent failed runs, newest first")


# ---- hardware ----------------------------------------------------------------------------------


class WorkerPublic(BaseModel):
    id: int
    worker: str
    host: str
    device_name: str
    device_count: int
    memory_bytes: int
    versions: dict
    measured: dict = Field(description="what the worker measured at start (GEMM throughput, precisions, …)")
    measured_at: datetime
    last_seen_at: datetime
    alive: bool = Field(description="seen within the live-worker window (core.workers)")


class HardwareClassPublic(BaseModel):
    hardware_class: str
    workers_alive: int
    workers: list[WorkerPublic]


# ---- catalogue ---------------------------------------------------------------------------------


class TaskPublic(BaseModel):
    name: str
    capability: str
    primary_metric: str
    random_baseline: float
    evaluator: str
    dataset: dict | None = Field(description="the bundled dataset's manifest; None for remote data")


class SuitePublic(BaseModel):
    name: str
    version: str
    family: str
    description: str
    aggregation: dict
    tasks: list[TaskPublic]


class AggregationPublic(BaseModel):
    normalised: str
    capability: str
    overall: str
    track: str
    coverage: str
    interval: str
    rank_range: str
    band: str
    compare: str
    draws: int
    seed: int
    level: float


# ---- health -----------------------------------------------------------------------------------


class HealthPublic(BaseModel):
    status: str = Field(description="ok, or unavailable (answered with 503)")
    checks: dict[str, str] = Field(description="per dependency: ok, or down: <error type>")


# ---- checkpoints -------------------------------------------------------------------------------


class CheckpointPublic(BaseModel):
    sha256: str
    family: Family
    format: str
    size_bytes: int
    params: int | None
    already_stored: bool = False


class UploadCreate(BaseModel):
    family: Family
    size: int = Field(gt=0, description="total bytes of the archive")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the whole archive, checked at completion")


class UploadStatus(BaseModel):
    upload_id: str
    offset: int = Field(description="bytes received so far: the next chunk starts here")
    size: int


# ---- admin -------------------------------------------------------------------------------------


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    role: Role = Role.author


class UserPublic(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime
    active_tokens: int


class TokenIssued(BaseModel):
    user: str
    token: str = Field(description="shown this once: only its hash is stored")


class FlagRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=500, description="shown on the board beside the model")


class FlagState(BaseModel):
    model_id: int
    flagged: bool
    flag_reason: str | None = Field(default=None, description="present while flagged")


class HideRequest(BaseModel):
    reason: str | None = Field(default=None, min_length=3, max_length=500, description="shown to the model's owner")


class HiddenState(BaseModel):
    model_id: int
    hidden: bool


# ---- the board (answered as ready bytes from the published board: these describe them) --------


class _Open(BaseModel):
    """A shape that may grow fields: clients must ignore those they do not know."""
    model_config = ConfigDict(extra="allow")


class TaskCell(BaseModel):
    raw: float | None = Field(description="the primary metric's mean, in its own scale (`acc` 0–1, `chrf` 0–100)")
    normalised: float | None = Field(description="0 = the random baseline, 1 = perfect")
    stderr: float | None
    capability: str


class BoardRow(_Open):
    """One model × precision × chat-template use on a track; `rank` null when a required task is missing."""
    rank: int | None
    rank_range: list[int] | None = Field(description="[best, worst] rank within the 95% paired bootstrap")
    band: int | None = Field(description="rows in one band are not significantly different from its first")
    ranked: bool
    row_id: str = Field(examples=["7:bfloat16"])
    model_id: int
    model: str
    owner: str
    family: str
    params: int | None
    precision: str
    hardware_class: str
    chat_template: bool
    license: str | None
    flagged: bool
    flag_reason: str | None
    track: str
    coverage: str | None = Field(examples=["7/7 tasks"])
    missing_tasks: list[str]
    contamination_gap: float | None
    contamination_gap_stderr: float | None
    interval_method: str | None
    overall: float | None
    overall_ci: list[float] | None
    capabilities: dict[str, float]
    capabilities_ci: dict[str, list[float]]
    tasks: dict[str, TaskCell]
    efficiency: dict[str, float] = Field(description="the model's latest efficiency figures, by metric")


class LeaderboardPage(BaseModel):
    track: str = Field(examples=["language-core@1.2"])
    total: int = Field(description="rows matching the filters")
    ranked: int
    limit: int
    offset: int
    normalised: bool
    capabilities: list[str]
    tasks: list[str]
    rows: list[BoardRow]


class TrackSummary(_Open):
    """A track's rules as its suite file states them (see GET /aggregation), with its row counts."""
    id: str
    suite: str
    version: str
    family: str
    default_for_family: bool
    required_tasks: list[str]
    ranked: int
    unranked: int


class BoardFacets(_Open):
    track: str
    tracks: list[dict]
    total: int
    ranked: int
    families: list[str]
    precisions: list[str]
    hardware_classes: list[str]
    licenses: list[str]
    capabilities: list[str]
    tasks: list[str]
    efficiency_metrics: list[str]
    columns: list[str]
    params_min: int | None
    params_max: int | None
    flagged: int


class EfficiencyPoint(BaseModel):
    model_id: int
    model: str
    overall: float | None = Field(description="the model's overall on its family's default track, if ranked")
    hardware_class: str
    precision: str
    metric: str
    value: float
    stderr: float | None
    n: int | None
    unit: str | None
    higher_is_better: bool
    hardware_profile_id: int | None


class EfficiencyView(BaseModel):
    metrics: list[str]
    points: list[EfficiencyPoint]


class ModelDetail(_Open):
    """One model: who made it, its rows on the board, each task's numbers with provenance, its submissions."""
    model: dict
    board: dict | None
    tasks: list[dict]
    submissions: list[dict]


class Comparison(_Open):
    """Rows side by side: deltas against the first row, and paired tests per task, capability and overall."""
    track: str
    models: list[dict]
    aggregates: list[dict]
    tasks: list[dict]
    paired: list[dict]
