"""A long-running `evalboard worker` process for tests that kill, starve or cancel it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.db import session_scope
from core.models import Run
from tests.conftest import ROOT

# Fast liveness so the tests need seconds, not minutes.
FAST = {"HEARTBEAT_S": "0.5", "HEARTBEAT_TIMEOUT_S": "3", "RECONCILE_EVERY_S": "1"}


class WorkerProcess:
    def __init__(self, log: Path, env: dict | None = None, burst: bool = False):
        self.log = log
        args = [sys.executable, "-m", "cli.main", "worker", "--hardware", "cpu"] + (["--burst"] if burst else [])
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **FAST, **(env or {})},
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_text(self, text: str, timeout_s: float) -> float:
        """Seconds until `text` appears in the worker's log."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if text in self.output():
                return time.monotonic() - start
            assert self.proc.poll() is None, self.output()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in worker log after {timeout_s}s:\n{self.output()[-3000:]}")

    def sigkill(self) -> None:
        """As the OOM killer or a pulled plug: the worker and its evaluation child die at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def wait_for_run(run_id: str, predicate, timeout_s: float = 120) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope() as s:
            run = s.get(Run, run_id)
            if predicate(run):
                return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached the awaited state; last: {run.status} {run.stage}")
