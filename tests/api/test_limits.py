"""Sizes and credentials before parsing (api/limits.py), against a real API process on loopback:
refusals come before the body is read, and the process's memory shows it."""
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port, make_token

MiB = 1024**2


@pytest.fixture(scope="module")
def api_process():
    """`uvicorn api.main:app` in its own process, as deployed, with a 1 s body timeout to keep tests short."""
    port = free_port()
    env = {**os.environ, "REQUEST_BODY_TIMEOUT_S": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield proc, port
    proc.terminate()
    proc.wait(timeout=10)


def raw_request(port: int, head: str, body_chunks=(), read_timeout: float = 20) -> tuple[int, bytes, float]:
    """Send a request head and as much of a body as the server takes; (status, response, seconds to answer)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(head.encode("latin-1"))
        sock.settimeout(read_timeout)
        stop = threading.Event()

        def send_body():
            try:
                for chunk in body_chunks:
                    if stop.is_set():
                        return
                    sock.sendall(chunk)
            except OSError:
                pass  # the server answered and closed: the rest of the body is not wanted
        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        response = b""
        try:
            while not _complete(response):
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except (ConnectionResetError, TimeoutError):
            pass
        took = time.monotonic() - started
        stop.set()
        sender.join(timeout=5)
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, response, took


def _complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return len(body) >= length


def json_body(size: int, piece: int = MiB):
    """A syntactically valid JSON body of `size` bytes, made piece by piece (never whole in this process)."""
    yield b'{"model_name": "'
    left = size - len(b'{"model_name": "') - 2
    while left > 0:
        n = min(piece, left)
        yield b"a" * n
        left -= n
    yield b'"}'


class PeakRss:
    """The highest resident memory of a process while the block runs (sampled every 10 ms)."""

    def __init__(self, pid: int):
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()

    def __enter__(self):
        self.idle = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc):
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.idle) / MiB


def test_an_anonymous_150_mib_post_gets_401_without_the_body_being_read(api_process):
    proc, port = api_process
    size = 150 * MiB
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n")
    time.sleep(1)  # let the startup board build settle before measuring idle memory
    with PeakRss(proc.pid) as rss:
        status, response, took = raw_request(port, head, json_body(size))
    assert status == 401 and b"API token is required" in response
    assert rss.growth_mib < 50, f"the API grew by {rss.growth_mib:.0f} MiB answering"
    assert took < 2, f"took {took:.1f} s"


def test_a_bad_token_is_refused_before_the_body_too(api_process):
    _, port = api_process
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer evb_not-a-token\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10 * MiB}\r\n\r\n")
    status, response, _ = raw_request(port, head)  # no body sent at all: the answer cannot have waited for it
    assert status == 401 and b"not valid" in response


def test_json_over_1_mib_is_413_by_content_length_before_reading(api_process):
    proc, port = api_process
    token = make_token("alice")
    size = 100 * MiB
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n")
    with PeakRss(proc.pid) as rss:
        status, response, _ = raw_request(port, head, json_body(size))
    assert status == 413 and b"1048576 bytes" in response
    assert rss.growth_mib < 50, f"the API grew by {rss.growth_mib:.0f} MiB answering"


def test_chunked_json_over_1_mib_is_413_by_counting(api_process):
    proc, port = api_process
    token = make_token("alice")

    def chunked(size: int):
        for piece in json_body(size, piece=256 * 1024):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    with PeakRss(proc.pid) as rss:
        status, response, _ = raw_request(port, head, chunked(100 * MiB))
    assert status == 413 and b"over the limit of 1048576 bytes" in response
    assert rss.growth_mib < 50, f"the API grew by {rss.growth_mib:.0f} MiB answering"


def test_a_body_shorter_than_its_content_length_times_out_quickly(api_process):
    _, port = api_process
    token = make_token("alice")
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    status, response, took = raw_request(port, head, [b'{"model_name": "x"'], read_timeout=10)
    assert status == 408 and b"stopped arriving" in response
    assert took < 5, f"took {took:.1f} s"


def test_too_many_headers_are_refused(api_process):
    _, port = api_process
    extra = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(200))
    status, response, _ = raw_request(port, f"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{extra}\r\n")
    assert status == 431 and b"at most 64" in response


def test_checkpoint_uploads_keep_their_own_larger_limit(client, auth, model_files):
    """A 2 MiB archive is over the JSON limit but a checkpoint upload: it is read and judged on its content."""
    from tests.archives import tar_archive
    files = {**model_files, "padding.bin": os.urandom(2 * MiB)}
    response = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=tar_archive(files),
                           headers=auth)
    assert response.status_code != 413, response.text
    assert "padding.bin" in response.json()["detail"]  # refused for the stray file, not for its size


def test_within_limits_writes_work_as_before(client, auth):
    response = client.post("/api/v1/submissions", json={"model_name": "x", "suite": "language-core"}, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "checkpoint_sha256"
    assert client.post("/api/v1/submissions", json={}).status_code == 401
