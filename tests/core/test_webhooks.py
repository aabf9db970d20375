"""A submission's webhook: called once when it ends, signed with the submitter's secret."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import run_worker_burst

SECRET = "a-secret-of-sixteen+"


@pytest.fixture
def receiver():
    calls = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            calls.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", calls
    server.shutdown()


def test_the_webhook_is_called_once_when_the_submission_ends_and_is_signed(client, auth, uploaded_checkpoint,
                                                                          receiver):
    url, calls = receiver
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "tasks": ["world_facts", "arithmetic_mc"], "webhook_url": url, "webhook_secret": SECRET}
    submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
    assert run_worker_burst().returncode == 0

    assert len(calls) == 1  # once for the submission, not once per run
    headers, raw = calls[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Evalboard-Signature"], expected)
    payload = json.loads(raw)
    assert payload["submission_id"] == submission["id"] and payload["status"] == "finished"


def test_cancelling_also_calls_the_webhook(client, auth, uploaded_checkpoint, receiver):
    url, calls = receiver
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "webhook_url": url, "webhook_secret": SECRET}
    submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
    client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=auth)
    assert [json.loads(b)["status"] for _, b in calls] == ["cancelled"]


def test_a_webhook_without_a_secret_is_refused(client, auth, uploaded_checkpoint):
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "webhook_url": "http://127.0.0.1:9/hook"}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "webhook_secret"
