"""One Settings singleton, read from the environment (prefix-free names, as in compose)."""
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # None means "start an embedded one" (only `evalboard up` and the tests do that).
    database_url: str | None = None
    redis_url: str | None = None

    # Where checkpoints, unpacked models and embedded services keep their files.
    data_dir: Path = PROJECT_ROOT / ".evalboard"
    datasets_dir: Path = PROJECT_ROOT / "datasets"
    # Standard benchmark data for named lm-eval tasks (core/dataset_mirror.py), written by
    # `evalboard datasets pull`; workers read it offline. Unset: <data_dir>/dataset-mirror.
    dataset_mirror_dir: Path | None = None

    api_url: str = "http://127.0.0.1:8000"
    # Where visitors reach the API, for links the service prints (results, model-index blocks); never
    # taken from a request's Host header, which the caller chooses. Unset: api_url.
    public_url: str | None = None
    hardware_classes: list[str] = ["cpu", "gpu-h100", "gpu-a100"]

    # Archive safety caps (DESIGN §6).
    max_upload_bytes: int = 8 * 1024**3
    max_unpacked_bytes: int = 16 * 1024**3
    max_archive_files: int = 2000
    max_compression_ratio: float = 200.0
    # What one user's uploads may hold in all (archive bytes of the checkpoints they first uploaded);
    # an upload also unpacks to no more than what is left of it.
    max_stored_bytes_per_user: int = 64 * 1024**3

    # Largest model accepted, by precision (parameters); uploads are checked against the largest.
    max_params_float32: int = 15_000_000_000
    max_params_bfloat16: int = 30_000_000_000
    max_params_float16: int = 30_000_000_000
    submissions_per_day: int = 50
    # With no live worker of the requested class: refuse the submission (True) or accept it with a warning.
    refuse_without_live_worker: bool = False
    # Webhooks go only to public addresses: a submitter's URL naming localhost, a private network or
    # the cloud metadata address would make the workers call into our own network. A one-machine
    # or test deployment whose receivers are local turns this on.
    webhook_allow_private: bool = False

    # Request limits, checked before a body byte is read (api/limits.py). Checkpoint uploads
    # (octet-stream) have max_upload_bytes instead of the JSON limit.
    max_json_body_bytes: int = 1024**2
    max_request_headers: int = 64
    max_request_header_bytes: int = 16 * 1024
    # A body that stops arriving (Content-Length promising more than is sent) is answered 408 after this.
    request_body_timeout_s: float = 15.0

    # Resumable uploads (core/uploads.py): a session idle this long is removed with its bytes; each user
    # has at most this many open sessions and this many declared bytes in them.
    upload_idle_timeout_s: float = 24 * 3600
    max_open_uploads_per_user: int = 4
    max_upload_bytes_in_flight_per_user: int = 16 * 1024**3
    # A stored checkpoint no submission uses is removed this long after it was uploaded.
    unused_checkpoint_grace_s: float = 7 * 24 * 3600

    job_timeout_s: int = 3600
    infra_retries: int = 3

    # Worker safety and liveness (runners/eval_sandbox.py, runners/reconciler.py).
    eval_memory_cap_bytes: int = 16 * 1024**3
    task_timeout_s: float = 1800.0
    heartbeat_s: float = 5.0
    heartbeat_timeout_s: float = 60.0
    reconcile_every_s: float = 30.0

    # The evaluation child's confinement (runners/isolation.py). "auto": bubblewrap when it works here,
    # else a plain process with a loud warning; "bwrap": refuse to start without it; "process": never use it.
    eval_isolation: str = "auto"
    # A root worker runs its children as this uid/gid (no passwd entry needed; pick one no file belongs to).
    eval_child_uid: int = 64000
    eval_child_gid: int = 64000
    eval_child_max_open_files: int = 4096
    eval_child_max_processes: int = 4096  # threads count too
    eval_child_max_file_bytes: int = 8 * 1024**3
    eval_child_address_space_headroom_bytes: int = 16 * 1024**3  # CPU only: torch maps far more than it touches

    @property
    def mirror_folder(self) -> Path:
        """The dataset mirror's folder (core/dataset_mirror.py): DATASET_MIRROR_DIR, else <data_dir>/dataset-mirror."""
        return self.dataset_mirror_dir or self.data_dir / "dataset-mirror"

    def max_params(self, precision: str | None = None) -> int:
        if precision:
            return getattr(self, f"max_params_{precision}")
        return max(self.max_params_float32, self.max_params_bfloat16, self.max_params_float16)

    def public_link(self, path: str) -> str:
        """An absolute link to `path` (starting with /) under the configured public URL."""
        return (self.public_url or self.api_url).rstrip("/") + path

    # Where checkpoints live for every machine (core/artifact_store.py): file:///path or s3://bucket/prefix.
    # Unset: file://<data_dir>/artifacts/store. S3 credentials come from the standard AWS variables.
    # Who builds the shared leaderboard (api/board_snapshot.py): "api" — the API process that first sees
    # the data change; "external" — only `evalboard board-builder` (compose and `evalboard up` run one),
    # so API processes spend their CPU on requests. api_workers: API processes (0: one per CPU core).
    board_builder: Literal["api", "external"] = "api"
    api_workers: int = 0

    artifact_store_url: str | None = None
    artifact_store_endpoint_url: str | None = None  # a non-AWS S3 endpoint (MinIO, SeaweedFS …); else AWS_ENDPOINT_URL
    # A worker's local copies of checkpoints (runners/worker_cache.py); unset: <data_dir>/worker-cache.
    worker_cache_dir: Path | None = None
    worker_cache_max_bytes: int = 200 * 1024**3

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (evalboard up starts an embedded PostgreSQL when it is absent)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (evalboard up starts an embedded Redis when it is absent)")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
