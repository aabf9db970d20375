"""POST /api/v1/checkpoints through HTTP: auth, refusals as problem+json, storing once."""
import hashlib

import psycopg

from core.config import get_settings
from tests.archives import tar_archive, zip_archive
from tests.conftest import DATABASE_URL

URL = "/api/v1/checkpoints"
PARAMS = {"family": "causal-lm"}


def checkpoint_rows() -> list[tuple]:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT sha256, params FROM checkpoint").fetchall()


def store_entries() -> list[str]:
    root = get_settings().artifact_dir / "checkpoints"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def assert_refused(response, data: bytes, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and reason in problem["detail"]
    assert checkpoint_rows() == []
    assert hashlib.sha256(data).hexdigest() not in store_entries()
    assert not [name for name in store_entries() if name.startswith((".upload-", ".unpack-"))]


def test_upload_without_a_token_is_401(client, model_files):
    response = client.post(URL, params=PARAMS, content=tar_archive(model_files))
    assert response.status_code == 401
    assert "API token is required" in response.json()["detail"]
    assert checkpoint_rows() == []


def test_zip_slip_archive_is_422_and_nothing_is_kept(client, auth, model_files):
    data = zip_archive({**model_files, "../evil.txt": b"pwned"})
    response = client.post(URL, params=PARAMS, content=data, headers=auth)
    assert_refused(response, data, "escapes the target folder")
    assert "evil.txt" not in store_entries()


def test_pickle_weights_are_422_naming_pickle(client, auth, model_files):
    data = tar_archive({**model_files, "pytorch_model.bin": b"\x80\x04\x95fake pickle"})
    response = client.post(URL, params=PARAMS, content=data, headers=auth)
    assert_refused(response, data, "pickle")
    assert "pytorch_model.bin" in response.json()["detail"]


def test_corrupt_safetensors_is_422_not_500(client, auth, model_files):
    data = tar_archive({**model_files, "model.safetensors": b"abc"})
    response = client.post(URL, params=PARAMS, content=data, headers=auth)
    assert_refused(response, data, "model.safetensors")


def test_valid_upload_is_201_then_200_already_stored(client, auth, model_files, real_param_count):
    data = tar_archive(model_files)
    sha = hashlib.sha256(data).hexdigest()

    first = client.post(URL, params=PARAMS, content=data, headers=auth)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["sha256"] == sha and body["params"] == real_param_count
    assert body["family"] == "causal-lm" and body["format"] == "tar.gz" and body["size_bytes"] == len(data)
    assert body["already_stored"] is False

    again = client.post(URL, params=PARAMS, content=data, headers=auth)
    assert again.status_code == 200, again.text
    assert again.json() == {**body, "already_stored": True}

    assert checkpoint_rows() == [(sha, real_param_count)]
    assert sha in store_entries()
