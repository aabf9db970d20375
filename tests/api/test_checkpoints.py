"""POST /api/v1/checkpoints through HTTP: auth, refusals as problem+json, storing once."""
import hashlib
import json
import struct
import tarfile

import psycopg
import pytest

from core.config import get_settings
from tests.archives import deep_json, hostile_causal_lm_cases, hostile_clip_cases, tar_archive, zip_archive
from tests.core.test_storage import deflate64_zip, encrypted_zip, write_tar_gz_with_metadata
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


# --- hostile checkpoints (issue 14) and hostile archives (issue 16 items 7, 8): 422 naming the problem -------------

@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> dict[str, bytes]:
    from evaluators.demo_models.clip import build_clip
    folder = build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("case", sorted(hostile_causal_lm_cases("m")))
def test_a_hostile_causal_lm_upload_is_422_naming_why(client, auth, model_files, tmp_path, case):
    marker = tmp_path / "code-ran"
    spoil, reason = hostile_causal_lm_cases(str(marker))[case]
    data = tar_archive(spoil(model_files))
    assert_refused(client.post(URL, params=PARAMS, content=data, headers=auth), data, reason)
    assert not marker.exists()


@pytest.mark.parametrize("case", sorted(hostile_clip_cases("m")))
def test_a_hostile_clip_upload_is_422_naming_why(client, auth, clip_files, tmp_path, case):
    marker = tmp_path / "code-ran"
    spoil, reason = hostile_clip_cases(str(marker))[case]
    data = tar_archive(spoil(clip_files), mode="w")  # plain tar: gzip of the 13 MB weights costs ~1 s a case
    assert_refused(client.post(URL, params={"family": "clip"}, content=data, headers=auth), data, reason)
    assert not marker.exists()


def test_the_tiny_clip_upload_is_accepted(client, auth, clip_files):
    response = client.post(URL, params={"family": "clip"}, content=tar_archive(clip_files, mode="w"), headers=auth)
    assert response.status_code == 201, response.text


def test_the_issues_8_byte_weights_claiming_28b_parameters_are_422(client, auth, model_files):
    header = json.dumps({"embed": {"dtype": "F32", "shape": [2**31, 13], "data_offsets": [0, 8]}}).encode()
    data = tar_archive({**model_files, "model.safetensors": struct.pack("<Q", len(header)) + header + bytes(8)})
    assert_refused(client.post(URL, params=PARAMS, content=data, headers=auth), data, "model.safetensors")


def safetensors_with_header(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize("build, reason", [
    (lambda f: encrypted_zip(f), "is encrypted"),
    (lambda f: deflate64_zip(f), "compressed with deflate64"),
    (lambda f: tar_archive({**f, "config.json": deep_json()}), "config.json: JSON nested 100000 levels deep"),
    (lambda f: tar_archive({**f, "model.safetensors": safetensors_with_header(b'{"w": ' + deep_json() + b"}")}),
     "model.safetensors: JSON nested"),
], ids=["encrypted-zip", "deflate64-zip", "deep-config", "deep-safetensors-header"])
def test_hostile_archives_are_422_not_500(client, auth, model_files, build, reason):
    data = build(model_files)
    assert_refused(client.post(URL, params=PARAMS, content=data, headers=auth), data, reason)


def test_a_huge_tar_long_name_is_422(client, auth, tmp_path):
    data = write_tar_gz_with_metadata(tmp_path / "long.tar.gz", tarfile.GNUTYPE_LONGNAME, 50 * 1024 * 1024).read_bytes()
    assert_refused(client.post(URL, params=PARAMS, content=data, headers=auth), data, "long-name or pax header")


def test_an_upload_past_the_users_storage_quota_is_413_and_bounds_what_it_unpacks(client, auth, tiny_lm_dir,
                                                                                 tmp_path, monkeypatch):
    import shutil

    from core.config import get_settings
    from tests.conftest import pack
    data = pack(tiny_lm_dir, tmp_path / "a.tar.gz")
    unpacked = sum(p.stat().st_size for p in tiny_lm_dir.rglob("*") if p.is_file())
    monkeypatch.setattr(get_settings(), "max_stored_bytes_per_user", unpacked + 1000)  # one model's worth
    first = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=data, headers=auth)
    assert first.status_code == 201, first.text
    other = tmp_path / "b"
    shutil.copytree(tiny_lm_dir, other)
    (other / "README.md").write_text("another model\nlicense: mit\n")
    second = client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                         content=pack(other, tmp_path / "b.tar.gz"), headers=auth)
    assert second.status_code == 413 and "quota" in second.json()["detail"]
    # Another user has their own quota.
    from tests.conftest import make_token
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    assert client.post("/api/v1/checkpoints", params={"family": "causal-lm"},
                       content=pack(other, tmp_path / "c.tar.gz"), headers=bob).status_code == 201


def test_unpacking_is_bounded_by_what_is_left_of_the_quota(tiny_lm_dir, tmp_path):
    import anyio
    import pytest as _pytest

    from core.config import get_settings
    from core.errors import QuotaExceededError
    from core.storage import store_upload
    from tests.conftest import pack
    data = pack(tiny_lm_dir, tmp_path / "a.tar.gz")

    async def chunks():
        yield data

    unpacked = sum(p.stat().st_size for p in tiny_lm_dir.rglob("*") if p.is_file())
    with _pytest.raises(QuotaExceededError, match="storage quota"):  # the archive fits what is left; its contents do not
        anyio.run(lambda: store_upload(chunks(), family="causal-lm", settings=get_settings(),
                                       quota_left=min(len(data) * 2, unpacked // 2)))
