"""Upload sessions and stored checkpoints are budgeted: idle sessions expire with their bytes, a user has
caps on open sessions and bytes in flight, and checkpoints no submission names are removed after a grace."""
import hashlib
import os
import time
from datetime import timedelta

import psycopg
import pytest

from core.config import get_settings
from tests.archives import tar_archive
from tests.conftest import DATABASE_URL, make_token

URL = "/api/v1/checkpoints/uploads"


def start(client, auth, size: int = 1000, sha256: str = "a" * 64):
    return client.post(URL, json={"family": "causal-lm", "size": size, "sha256": sha256}, headers=auth)


@pytest.fixture
def settings_env(monkeypatch):
    """Set settings through the environment, as an operator does."""
    def set_(**values):
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()
    yield set_
    get_settings.cache_clear()


def session_folder(upload_id: str):
    return get_settings().artifact_dir / "uploads" / upload_id


def age(upload_id: str, seconds: float) -> None:
    """Make a session look idle for `seconds` (its files' times are what says when it was last used)."""
    past = time.time() - seconds
    for path in (session_folder(upload_id), *session_folder(upload_id).iterdir()):
        os.utime(path, (past, past))


def test_an_idle_session_expires_and_its_bytes_are_removed(client, auth):
    upload_id = start(client, auth).json()["upload_id"]
    client.put(f"{URL}/{upload_id}", params={"offset": 0}, content=b"x" * 500, headers=auth)
    kept = start(client, auth).json()["upload_id"]
    age(upload_id, 25 * 3600)  # past the default 24 h

    assert start(client, auth).status_code == 201  # a new session sweeps the expired ones
    assert not session_folder(upload_id).exists()
    assert client.get(f"{URL}/{upload_id}", headers=auth).status_code == 404
    assert client.get(f"{URL}/{kept}", headers=auth).json()["offset"] == 0  # an active one stays


def test_an_expired_session_is_404_even_before_it_is_swept(client, auth, settings_env):
    settings_env(upload_idle_timeout_s=3600)
    upload_id = start(client, auth).json()["upload_id"]
    age(upload_id, 3601)
    response = client.put(f"{URL}/{upload_id}", params={"offset": 0}, content=b"x", headers=auth)
    assert response.status_code == 404 and "expired" in response.json()["detail"]
    assert not session_folder(upload_id).exists()


def test_the_reconciler_sweeps_expired_sessions(client, auth, redis_conn):
    from runners.reconciler import reconcile
    upload_id = start(client, auth).json()["upload_id"]
    age(upload_id, 25 * 3600)
    reconcile(redis_conn)
    assert not session_folder(upload_id).exists()


def test_open_sessions_per_user_are_capped_with_429_naming_the_cap(client, auth, settings_env):
    settings_env(max_open_uploads_per_user=2)
    first = start(client, auth).json()["upload_id"]
    assert start(client, auth).status_code == 201
    refused = start(client, auth)
    assert refused.status_code == 429 and "max_open_uploads_per_user=2" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    other = {"Authorization": f"Bearer {make_token('bob')}"}
    assert start(client, other).status_code == 201  # the cap is per user
    assert client.delete(f"{URL}/{first}", headers=auth).status_code == 204  # cancelling frees a place
    assert not session_folder(first).exists()
    assert start(client, auth).status_code == 201


def test_declared_bytes_in_flight_per_user_are_capped_with_413_naming_the_cap(client, auth, settings_env):
    settings_env(max_upload_bytes_in_flight_per_user=10_000)
    assert start(client, auth, size=6000).status_code == 201
    refused = start(client, auth, size=6000)
    assert refused.status_code == 413 and refused.json()["field"] == "size"
    assert "max_upload_bytes_in_flight_per_user=10000" in refused.json()["detail"]
    assert start(client, auth, size=4000).status_code == 201


def backdate_checkpoint(sha256: str, days: float) -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("UPDATE checkpoint SET created_at = now() - make_interval(secs => %s) WHERE sha256 = %s",
                     (days * 86400, sha256))
        conn.execute("UPDATE checkpoint_uploader SET first_uploaded_at = now() - make_interval(secs => %s) "
                     "WHERE checkpoint_id = (SELECT id FROM checkpoint WHERE sha256 = %s)", (days * 86400, sha256))


def test_unused_checkpoints_are_removed_after_the_grace_period_used_ones_stay(client, auth, model_files):
    from core.artifact_store import checkpoint_key, get_store
    from core.retention import remove_unused_checkpoints
    unpacked = get_settings().artifact_dir / "checkpoints"
    archive = tar_archive(model_files)
    unused = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=archive,
                         headers=auth).json()["sha256"]
    spare = {**model_files, "README.md": b"---\nlicense: mit\n---\nanother copy\n"}
    used = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=tar_archive(spare),
                       headers=auth).json()["sha256"]
    submitted = client.post("/api/v1/submissions", headers=auth, json={
        "model_name": "kept", "checkpoint_sha256": used, "suite": "language-core", "tasks": ["world_facts"]})
    assert submitted.status_code == 201, submitted.text
    assert remove_unused_checkpoints() == []  # within the grace period: kept
    assert get_store().exists(checkpoint_key(unused)) and (unpacked / unused).exists()

    for sha in (unused, used):
        backdate_checkpoint(sha, days=8)
    assert remove_unused_checkpoints() == [unused]
    assert not get_store().exists(checkpoint_key(unused)) and not (unpacked / unused).exists()  # bytes gone too
    assert get_store().exists(checkpoint_key(used)) and (unpacked / used).exists()
    response = client.post("/api/v1/submissions", headers=auth, json={
        "model_name": "late", "checkpoint_sha256": unused, "suite": "language-core"})
    assert response.status_code in (404, 422)  # gone, like any checkpoint never uploaded
    # Uploading the same bytes again stores them afresh.
    again = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=archive, headers=auth)
    assert again.status_code == 201 and again.json()["sha256"] == unused
    assert get_store().exists(checkpoint_key(unused))
