"""Child processes of `evalboard up`: started with logs to files, restarted if they die, stopped together."""
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx


class Launcher:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, tuple[list[str], subprocess.Popen, bool]] = {}

    def start(self, name: str, cmd: list[str], restart: bool = True, env: dict | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **env} if env else None)
        self.procs[name] = (cmd, proc, restart)

    def wait_http(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        from cli.errors import EXIT_FAILED, CliError
        raise CliError(f"{url} did not answer within {timeout_s:g} s: see the logs in {self.log_dir}", EXIT_FAILED)

    def supervise(self, poll_s: float = 2.0) -> None:
        while True:
            time.sleep(poll_s)
            for name, (cmd, proc, restart) in list(self.procs.items()):
                if proc.poll() is not None and restart:
                    print(f"{name} exited with {proc.returncode}; restarting (log: {self.log_dir / name}.log)")
                    self.start(name, cmd)

    def wait_all(self) -> None:
        for _, proc, _ in self.procs.values():
            proc.wait()

    def stop_all(self, grace_s: float = 10.0) -> None:
        for _, proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _, proc, _ in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
