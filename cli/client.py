"""HTTP client for model authors: pack a folder, stream it up, submit, follow the submission."""
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def pack_folder(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return out


def _chunks(path: Path, on_progress: Callable[[int], None] | None, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            if on_progress:
                on_progress(len(chunk))
            yield chunk


class EvalboardClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout)

    def _json(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.json()

    def upload_checkpoint(self, folder: Path, family: str, on_progress: Callable[[int], None] | None = None) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            archive = pack_folder(folder, Path(tmp) / "checkpoint.tar.gz")
            return self._json(self.http.post("/checkpoints", params={"family": family},
                                             content=_chunks(archive, on_progress),
                                             headers={"Content-Type": "application/octet-stream"}))

    def submit(self, *, model_name: str, checkpoint_sha256: str, suite: str, hardware_class: str = "cpu",
               precision: str = "float32", license: str | None = None, tasks: list[str] | None = None) -> dict:
        return self._json(self.http.post("/submissions", json={
            "model_name": model_name, "checkpoint_sha256": checkpoint_sha256, "suite": suite,
            "hardware_class": hardware_class, "precision": precision, "license": license, "tasks": tasks}))

    def submission(self, submission_id: str) -> dict:
        return self._json(self.http.get(f"/submissions/{submission_id}"))

    def cancel(self, submission_id: str) -> dict:
        return self._json(self.http.post(f"/submissions/{submission_id}/cancel"))

    def results(self, submission_id: str, fmt: str = "json") -> str:
        response = self.http.get(f"/submissions/{submission_id}/results", params={"format": fmt})
        if response.status_code >= 400:
            self._json(response)
        return response.text

    def wait(self, submission_id: str, timeout_s: float = 600, poll_s: float = 1.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            sub = self.submission(submission_id)
            if sub["status"] in ("finished", "failed", "cancelled") or time.monotonic() > deadline:
                return sub
            time.sleep(poll_s)
