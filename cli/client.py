"""HTTP client for model authors: pack a folder, stream it up, submit, follow the submission."""
import hashlib
import io
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

RESUMABLE_ABOVE = 64 << 20  # archives larger than this go up in resumable chunks


class ApiError(Exception):
    """The API refused a request: its status and problem+json `detail`, printed by cli/errors.py as one line.

    Not shared with leaderboard/client.py on purpose: the board imports nothing of ours (it knows the
    service only through HTTP, tests/test_architecture.py), and the two want different things from an
    error: an author needs the status (4xx: rejected, exit 2) and the API's words to fix a submission,
    the board needs only "unavailable" or "not found" to draw a page. Both read the same problem+json
    `detail` field (api/errors.py): that field, not shared code, is the contract between them."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def pack_folder(folder: Path, out: Path, license: str | None = None) -> Path:
    """A .tar.gz of the folder's files. `license` (an SPDX id) adds a LICENSE file naming it when the
    folder states no licence itself: the author's --license is then part of the checkpoint."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        if license is not None:
            from core.license_text import folder_license, spdx_license_file
            if folder_license(folder) is None:
                text = spdx_license_file(license).encode()
                info = tarfile.TarInfo("LICENSE")
                info.size, info.mode, info.mtime = len(text), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(text))
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
        try:
            return response.json()
        except ValueError:  # another server at this address (a 200 HTML page, say)
            raise ApiError(response.status_code, f"{response.url} did not answer as the Evalboard API does (no "
                                                 f"JSON); check --api-url / EVALBOARD_API_URL") from None

    def upload_checkpoint(self, folder: Path, family: str, on_progress: Callable[[int], None] | None = None,
                          license: str | None = None) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            archive = pack_folder(folder, Path(tmp) / "checkpoint.tar.gz", license=license)
            if archive.stat().st_size > RESUMABLE_ABOVE:
                return self.upload_resumable(archive, family, on_progress)
            return self._json(self.http.post("/checkpoints", params={"family": family},
                                             content=_chunks(archive, on_progress),
                                             headers={"Content-Type": "application/octet-stream"}))

    def upload_resumable(self, archive: Path, family: str, on_progress: Callable[[int], None] | None = None,
                         chunk_size: int = 16 << 20, retries: int = 5) -> dict:
        """Upload in chunks; after a dropped connection, ask the server where to resume."""
        size = archive.stat().st_size
        sha = hashlib.sha256()
        with open(archive, "rb") as f:
            while block := f.read(1 << 20):
                sha.update(block)
        session = self._json(self.http.post("/checkpoints/uploads", json={
            "family": family, "size": size, "sha256": sha.hexdigest()}))
        upload_url, offset, failures = f"/checkpoints/uploads/{session['upload_id']}", 0, 0
        with open(archive, "rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(chunk_size)
                try:
                    response = self.http.put(upload_url, params={"offset": offset}, content=chunk,
                                             headers={"Content-Type": "application/octet-stream"})
                    offset = response.json()["offset"] if response.status_code in (200, 409) else \
                        self._json(response)["offset"]
                    if on_progress and response.status_code == 200:
                        on_progress(len(chunk))
                except httpx.TransportError:
                    failures += 1
                    if failures > retries:
                        raise
                    time.sleep(min(2 ** failures, 30))
                    offset = self._json(self.http.get(upload_url))["offset"]
        return self._json(self.http.post(f"{upload_url}/complete"))

    def submit(self, *, model_name: str, checkpoint_sha256: str, suite: str, hardware_class: str = "cpu",
               precision: str = "float32", license: str | None = None, tasks: list[str] | None = None) -> dict:
        return self._json(self.http.post("/submissions", json={
            "model_name": model_name, "checkpoint_sha256": checkpoint_sha256, "suite": suite,
            "hardware_class": hardware_class, "precision": precision, "license": license, "tasks": tasks}))

    def check(self, *, model_name: str, suite: str, family: str, hardware_class: str = "cpu",
              precision: str = "float32", license: str | None = None, tasks: list[str] | None = None) -> dict:
        """Pre-flight: would this submission be accepted? Raises ApiError as the submission itself would."""
        return self._json(self.http.post("/submissions/check", json={
            "model_name": model_name, "suite": suite, "family": family, "hardware_class": hardware_class,
            "precision": precision, "license": license, "tasks": tasks}))

    def submissions(self, limit: int = 20, offset: int = 0) -> dict:
        return self._json(self.http.get("/submissions", params={"limit": limit, "offset": offset}))

    def standing(self, submission: dict) -> dict | None:
        """The board's row of the submission's model on its suite's track at its precision (rank, band,
        overall, capabilities, coverage), with `of`: the rows on that track. None when it has no row.

        The row is found by name; where two owners use the name, the model that lists this
        submission is the one."""
        name, track = submission["model_name"], submission["suite"]
        try:
            board = self._json(self.http.get("/leaderboard", params={"q": f"model:{name}", "track": track,
                                                                     "limit": 200}))
            rows = [r for r in board.get("rows", []) if r.get("model") == name
                    and r.get("precision", submission["precision"]) == submission["precision"]]
            candidates = list(dict.fromkeys(r["model_id"] for r in rows))
            if len(candidates) > 1:
                candidates = [i for i in candidates if any(
                    s.get("id") == submission["id"] for s in self._json(self.http.get(f"/models/{i}"))["submissions"])]
            if len(candidates) != 1:
                return None
            row = next(r for r in rows if r["model_id"] == candidates[0])
            everyone = self._json(self.http.get("/leaderboard", params={"track": track, "limit": 1}))
            return {**row, "of": everyone.get("total")}
        except (ApiError, KeyError, TypeError, ValueError):
            return None  # the summary is printed without a rank rather than not at all

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
