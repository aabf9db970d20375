"""A submission's webhook: called once when it ends, signed with the submitter's secret."""
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import httpx
import pytest

from core import webhooks

from tests.conftest import run_worker_burst

SECRET = "a-secret-of-sixteen+"


@pytest.fixture
def private_webhooks_allowed(monkeypatch):
    """The receivers here listen on 127.0.0.1, which a deployment only allows when told to; the
    worker processes started meanwhile inherit the setting through the environment."""
    from core.config import get_settings
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE")
    get_settings.cache_clear()


@pytest.fixture
def receiver(private_webhooks_allowed):
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
    assert webhooks.wait_idle(15)  # sent in the background, not inside the request
    assert [json.loads(b)["status"] for _, b in calls] == ["cancelled"]


def test_a_webhook_without_a_secret_is_refused(client, auth, uploaded_checkpoint):
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "webhook_url": "http://127.0.0.1:9/hook"}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "webhook_secret"


@pytest.mark.parametrize("url, words", [("http://127.0.0.1:9/hook", "127.0.0.1, a loopback address"),
                                        ("http://localhost/hook", "a loopback address"),
                                        ("http://10.0.0.7/hook", "10.0.0.7, a private address"),
                                        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
                                        ("http://[::1]:8000/", "::1, a loopback address"),
                                        ("http://no-such-host.invalid/hook", "does not resolve")])
def test_a_webhook_into_our_own_network_is_refused_and_nothing_is_queued(client, auth, uploaded_checkpoint,
                                                                         redis_conn, url, words):
    from rq import Queue
    queued = Queue("evalboard-cpu", connection=redis_conn).count
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "webhook_url": url, "webhook_secret": SECRET}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "webhook_url"
    assert words in response.json()["detail"]
    assert client.get("/api/v1/submissions", headers=auth).json()["items"] == []
    assert Queue("evalboard-cpu", connection=redis_conn).count == queued


def test_the_address_is_checked_again_before_sending(client, auth, uploaded_checkpoint, receiver, monkeypatch):
    """Accepted while allowed (or while DNS said public), refused at sending time once it is not."""
    from core.config import get_settings
    url, calls = receiver
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "webhook_url": url, "webhook_secret": SECRET}
    submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "0")
    get_settings.cache_clear()
    response = client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=auth)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert webhooks.wait_idle(15)
    assert calls == []


def test_a_slow_receiver_does_not_hold_the_cancel_request(client, auth, uploaded_checkpoint, private_webhooks_allowed):
    """The receiver takes 3 s to answer; cancel answers at once and the webhook still arrives."""
    calls, release = [], threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):
            release.wait(3)
            calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
                "webhook_url": f"http://127.0.0.1:{server.server_port}/hook", "webhook_secret": SECRET}
        submission = client.post("/api/v1/submissions", json=body, headers=auth).json()
        started = time.monotonic()
        response = client.post(f"/api/v1/submissions/{submission['id']}/cancel", headers=auth)
        took = time.monotonic() - started
        assert response.status_code == 200 and took < 1.5, f"cancel took {took:.1f} s"
        release.set()
        assert webhooks.wait_idle(15)
        assert [c["status"] for c in calls] == ["cancelled"]
    finally:
        release.set()
        server.shutdown()


def test_the_address_checked_is_the_address_connected_to(receiver, monkeypatch):
    """DNS rebinding: the name answers the receiver's address when checked, another address after that.
    The POST goes to the checked address, carrying the name in its Host header."""
    url, calls = receiver
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    answers = iter(["127.0.0.1"])  # one answer; a second lookup would get 127.0.0.2, where nothing listens
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_dns(host, *args, **kwargs):
        if host != "hooks.rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        ip = next(answers, "127.0.0.2")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    assert webhooks.deliver(f"http://hooks.rebind.test:{port}/hook", SECRET, {"event": "test"}, attempts=1)
    assert lookups == ["hooks.rebind.test"]  # resolved once: the check and the connection agree
    headers, _ = calls[0]
    assert headers["Host"] == f"hooks.rebind.test:{port}"


@pytest.mark.parametrize("address, inner", [("::127.0.0.1", "127.0.0.1"), ("::ffff:127.0.0.1", None),
                                            ("64:ff9b::7f00:1", "127.0.0.1"),
                                            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
                                            ("2002:7f00:1::1", "127.0.0.1"), ("2002:a00:7::", "10.0.0.7"),
                                            ("::ffff:0:a00:7", "10.0.0.7")])
def test_ipv6_forms_embedding_ipv4_are_judged_by_the_ipv4_inside(address, inner):
    why = webhooks.refusal(f"http://[{address}]:8080/hook", allow_private=False)
    assert why is not None and "webhooks go only to public addresses" in why
    if inner:
        assert f"embeds {inner}" in why or f"{inner}" in why


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808"])
def test_public_ipv6_and_public_embedded_ipv4_are_allowed(address):
    assert webhooks.refusal(f"http://[{address}]/hook", allow_private=False) is None


def _self_signed(name: str, folder) -> tuple[str, str]:
    """A certificate for `name` (and its key), as a receiver's TLS would present."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_to_the_pinned_ip_carries_the_name_in_sni_and_checks_the_certificate_against_it(tmp_path):
    import ssl
    cert, key = _self_signed("hooks.tls.test", tmp_path)
    server_names, calls = [], []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            calls.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trust = ssl.create_default_context(cafile=cert)
    try:
        port = server.server_port
        target = webhooks.Target(url=f"https://hooks.tls.test:{port}/hook", hostname="hooks.tls.test", ip="127.0.0.1")
        response = webhooks.post_pinned(target, b"{}", {"Content-Type": "application/json"}, verify=trust)
        assert response.status_code == 204
        assert server_names == ["hooks.tls.test"] and calls == [f"hooks.tls.test:{port}"]
        # A certificate for another name fails, although the IP is the same: the name is what is checked.
        other = webhooks.Target(url=f"https://other.tls.test:{port}/hook", hostname="other.tls.test", ip="127.0.0.1")
        with pytest.raises(httpx.ConnectError):
            webhooks.post_pinned(other, b"{}", {}, verify=trust)
    finally:
        server.shutdown()
