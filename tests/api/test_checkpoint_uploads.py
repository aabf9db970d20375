"""Resumable chunked upload: initiate → PUT chunks at offsets → complete, verified by sha256."""
import hashlib

from tests.archives import tar_archive
from tests.conftest import make_token

URL = "/api/v1/checkpoints/uploads"


def start(client, auth, data: bytes, sha256: str | None = None) -> str:
    body = {"family": "causal-lm", "size": len(data), "sha256": sha256 or hashlib.sha256(data).hexdigest()}
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["upload_id"]


def put(client, auth, upload_id: str, offset: int, chunk: bytes):
    return client.put(f"{URL}/{upload_id}", params={"offset": offset}, content=chunk, headers=auth)


def test_an_interrupted_upload_resumes_from_its_offset_and_completes(client, auth, model_files):
    data = tar_archive(model_files)
    upload_id = start(client, auth, data)
    third = len(data) // 3
    assert put(client, auth, upload_id, 0, data[:third]).json()["offset"] == third
    # The connection dropped; the client asks where to resume, and a chunk sent at the wrong offset says where.
    assert client.get(f"{URL}/{upload_id}", headers=auth).json()["offset"] == third
    wrong = put(client, auth, upload_id, 0, data[third:])
    assert wrong.status_code == 409 and wrong.json()["offset"] == third
    assert put(client, auth, upload_id, third, data[third:2 * third]).status_code == 200
    assert put(client, auth, upload_id, 2 * third, data[2 * third:]).json()["offset"] == len(data)

    done = client.post(f"{URL}/{upload_id}/complete", headers=auth)
    assert done.status_code == 201, done.text
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest() and done.json()["params"] > 0
    assert client.get(f"{URL}/{upload_id}", headers=auth).status_code == 404  # the session is gone


def test_completion_checks_the_declared_sha256(client, auth, model_files):
    data = tar_archive(model_files)
    upload_id = start(client, auth, data, sha256="0" * 64)
    put(client, auth, upload_id, 0, data)
    response = client.post(f"{URL}/{upload_id}/complete", headers=auth)
    assert response.status_code == 422 and "not the declared" in response.json()["detail"]


def test_an_incomplete_upload_cannot_complete(client, auth, model_files):
    data = tar_archive(model_files)
    upload_id = start(client, auth, data)
    put(client, auth, upload_id, 0, data[:100])
    response = client.post(f"{URL}/{upload_id}/complete", headers=auth)
    assert response.status_code == 422 and f"100 of {len(data)} bytes" in response.json()["detail"]


def test_a_chunk_past_the_declared_size_is_refused_whole(client, auth, model_files):
    data = tar_archive(model_files)
    upload_id = start(client, auth, data)
    response = put(client, auth, upload_id, 0, data + b"extra")
    assert response.status_code == 422
    assert client.get(f"{URL}/{upload_id}", headers=auth).json()["offset"] == 0


def test_another_users_upload_is_404(client, auth, model_files):
    data = tar_archive(model_files)
    upload_id = start(client, auth, data)
    other = {"Authorization": f"Bearer {make_token('mallory')}"}
    assert client.get(f"{URL}/{upload_id}", headers=other).status_code == 404
    assert put(client, other, upload_id, 0, data).status_code == 404


def test_the_cli_client_uploads_in_resumable_chunks(auth, tiny_lm_dir, tmp_path):
    """The client's resumable path, driven against the app in-process (small chunks to force several)."""
    from fastapi.testclient import TestClient

    from api.main import app
    from cli.client import EvalboardClient, pack_folder
    archive = pack_folder(tiny_lm_dir, tmp_path / "m.tar.gz")
    api = EvalboardClient("http://testserver")
    api.http = TestClient(app, base_url="http://testserver/api/v1", headers=auth)  # same interface, in-process
    sent = []
    stored = api.upload_resumable(archive, "causal-lm", on_progress=sent.append, chunk_size=100_000)
    assert stored["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert len(sent) > 2 and sum(sent) == archive.stat().st_size


def test_completing_a_resumable_upload_of_known_bytes_proves_possession(client, auth, model_files):
    data = tar_archive(model_files)
    sha256 = hashlib.sha256(data).hexdigest()
    assert client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=data,
                       headers=auth).status_code == 201  # alice's
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    submission = {"model_name": "bobs", "checkpoint_sha256": sha256, "suite": "language-core",
                  "tasks": ["world_facts"]}
    assert client.post("/api/v1/submissions", json=submission, headers=bob).status_code == 404

    upload_id = start(client, bob, data)
    put(client, bob, upload_id, 0, data)
    assert client.post(f"{URL}/{upload_id}/complete", headers=bob).status_code == 200  # stored already
    accepted = client.post("/api/v1/submissions", json=submission, headers=bob)
    assert accepted.status_code == 201 and accepted.json()["model_name"] == "bobs"


def test_two_concurrent_chunks_at_the_same_offset_cannot_both_land(api_url, auth, model_files):
    """Two PUTs race for offset 0 over real connections, each body arriving slowly: one lands, the other
    answers 409 with the offset to resume from; the file never grows past its size and the upload completes."""
    import threading
    import time

    import httpx
    data = tar_archive(model_files)
    with httpx.Client(base_url=api_url, headers=auth, timeout=30) as http:
        upload_id = http.post(URL, json={"family": "causal-lm", "size": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}).json()["upload_id"]
        barrier, answers = threading.Barrier(2), []

        def slow_body():
            yield data[:1000]
            time.sleep(0.5)  # both requests are now inside the upload
            yield data[1000:]

        def racer():
            barrier.wait()
            with httpx.Client(base_url=api_url, headers=auth, timeout=30) as own:
                answers.append(own.put(f"{URL}/{upload_id}", params={"offset": 0}, content=slow_body()))
        threads = [threading.Thread(target=racer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        conflict = next(a for a in answers if a.status_code == 409).json()
        assert conflict["offset"] in (0, len(data))
        assert http.get(f"{URL}/{upload_id}").json()["offset"] == len(data)
        done = http.post(f"{URL}/{upload_id}/complete")
        assert done.status_code in (200, 201), done.text
