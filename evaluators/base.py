"""The evaluator contract (DESIGN §2): a loaded model and a task spec in, an EvalOutcome out.

Evaluators know nothing of the database or the queue. The outcome is a versioned,
plain-data record the runner persists as it is.
"""
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_SCHEMA_VERSION = 1
BUNDLED_DATASETS_DIR = str(Path(__file__).resolve().parent.parent / "datasets")
"""The sets that ship with the repository: where a spec built outside a worker reads them."""


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate, frozen so it can be stored with the result and rebuilt from it."""
    task: str
    """Task name within its suite."""
    evaluator: str
    """Registry name of the evaluator."""
    args: dict = field(default_factory=dict)
    """Evaluator arguments from the suite YAML (data set, few-shot count, batch size …)."""
    seed: int = 0
    """Seed for every random draw the evaluation makes."""
    precision: str = "float32"
    """Precision the model was loaded in."""
    primary_metric: str | None = None
    """The metric that enters the aggregates."""
    hardware: dict | None = None
    """The worker's hardware profile as it measured it at start (device_name, versions, measured
    GEMM TFLOPS per dtype), passed by the runner: efficiency evaluators take their measured peak
    from it. None outside a worker."""
    datasets_dir: str | None = None
    """The bundled sets and lm-eval task YAMLs (the worker's settings.datasets_dir); None: the sets
    bundled with the repository."""
    dataset_mirror_dir: str | None = None
    """The offline mirror named lm-eval tasks read their data from (core/dataset_mirror.py); None: no
    mirror, so a named task fails before any request, naming the pull command."""
    clip_benchmark_dir: str | None = None
    """Where standard CLIP benchmark sets lie when a task gives no `dataset_root` (the worker's
    <data_dir>/clip_benchmark); None: such a task fails naming the argument."""
    chat: dict | None = None
    """The submission's chat options in their canonical form (core/submission_options.py), checked by
    the runner; None: plain prompts. The evaluator checks their shape again (a spec is data)."""

    @property
    def datasets_folder(self) -> Path:
        return Path(self.datasets_dir or BUNDLED_DATASETS_DIR)

    def __post_init__(self):
        # Every field crosses to the evaluation child as JSON (runners/child_protocol.py): folders as text.
        for name in ("datasets_dir", "dataset_mirror_dir", "clip_benchmark_dir"):
            if isinstance(getattr(self, name), Path):
                object.__setattr__(self, name, str(getattr(self, name)))


@dataclass
class MetricValue:
    name: str
    """Metric name as the engine reports it (acc, acc_norm, exact_match …)."""
    value: float
    stderr: float | None = None
    """Standard error of the value, where the engine gives one."""
    n: int | None = None
    """Number of items the value is averaged over."""
    higher_is_better: bool = True
    primary: bool = False
    """The one metric of the task that enters the aggregates."""
    unit: str | None = None


@dataclass
class SampleRecord:
    index: int
    input: str
    target: str
    prediction: str
    metrics: dict = field(default_factory=dict)
    """Per-sample metrics and extras (choice loglikelihoods …)."""


@dataclass
class EvalOutcome:
    metrics: list[MetricValue]
    samples: list[SampleRecord]
    provenance: dict
    """Dataset sha256, task config hash, library versions, seed, batch size …"""
    schema_version: int = RESULT_SCHEMA_VERSION


ProgressFn = Callable[[str, float], None]
"""Called with (stage, fraction done); the runner throttles and persists it."""


class Evaluator(ABC):
    """One kind of evaluation. `family` says which loaded model kind it accepts."""
    name: str = ""
    version: str = "1"
    family: str = "causal-lm"

    @abstractmethod
    def evaluate(self, model: Any, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        ...
