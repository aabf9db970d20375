"""The worker's side of the evaluation child: start it confined, feed it, watch it, kill it.

A hostile or broken checkpoint can exhaust memory, hang, crash the interpreter or (if a
loader is ever fooled) run code. It does so in a child process that:

- holds nothing worth stealing: its environment is an allow-list (no DATABASE_URL, REDIS_URL,
  tokens or webhook secrets) and it only speaks JSON over one socket (runners/child_protocol.py),
  so the worker never unpickles what the child sends;
- runs confined (runners/isolation.py): under bubblewrap it has no network, sees its own
  checkpoint read-only, its private working folder and the code it needs, and nothing else;
  it runs as an unprivileged uid when the worker is root, with rlimits and no_new_privs;
- serves one checkpoint: a request for another checkpoint starts a fresh child, so no child
  ever holds two authors' models;
- is watched from here: its memory (RSS of its whole tree) against a cap, the wall clock
  against the task's limit, and the run's status in Postgres for cancellation; any of them kills it.

Checkpoints are fetched here, in the worker, before the child starts: from the artifact store by
content hash into this machine's cache (runners/worker_cache.py), or from the hub (runners/hub_fetch.py).
"""
import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.artifact_store import key_of
from core.config import Settings, get_settings
from core.errors import ErrorKind, EvalFailed
from evaluators.base import EvalOutcome, EvalSpec
from runners import hub_fetch
from runners.child_protocol import (
    Channel,
    ProtocolError,
    SampleCollector,
    error_from_json,
    outcome_from_json,
    progress_from_json,
    request_to_json,
)
from runners.isolation import (
    Isolation,
    child_command,
    child_environment,
    choose_isolation,
    make_request_cache,
    make_workdir,
    protect_worker,
)
from runners.worker_cache import CacheFetchError, worker_cache

log = logging.getLogger("evalboard.eval_sandbox")

POLL_S = 0.1


class EvalCancelled(Exception):
    pass


@dataclass(frozen=True)
class EvalRequest:
    family: str
    path: str
    precision: str
    device: str
    spec: EvalSpec
    base: str | None = None
    """A LoRA adapter's pinned base model (store key, hf://org/name@commit or folder), fetched like the checkpoint."""


def with_worker_folders(spec: EvalSpec, settings: Settings) -> EvalSpec:
    """The spec with this worker's data folders where it names none of its own: the bundled sets, the
    dataset mirror and the standard CLIP sets, the folders the child is shown (runners/isolation.py).
    The evaluators read no settings: what they may read comes in the spec."""
    return dataclasses.replace(
        spec, datasets_dir=spec.datasets_dir or str(settings.datasets_dir),
        dataset_mirror_dir=spec.dataset_mirror_dir or str(settings.mirror_folder),
        clip_benchmark_dir=spec.clip_benchmark_dir or str(settings.data_dir / "clip_benchmark"))


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return 0


def local_checkpoint(path: str, family: str, pins: dict | None = None) -> Path:
    """The folder the child will read: from the artifact store through this worker's cache, or fetched
    from the hub. Failures are the service's (retried, on any worker of the class). A cached folder is
    pinned in `pins` (a shared lock: no eviction while a child reads it) until the caller closes it."""
    settings = get_settings()
    key = key_of(path)
    if key is not None:
        try:
            folder, pin = worker_cache(settings).acquire(key, family)
        except CacheFetchError as exc:
            raise EvalFailed(ErrorKind.infra, str(exc)) from exc
        if pins is None or str(folder) in pins:
            pin.close()
        else:
            pins[str(folder)] = pin
        return folder
    if hub_fetch.is_hub_source(path):
        try:
            return hub_fetch.fetch(path, settings.data_dir / "worker-cache")
        except hub_fetch.HubFetchError as exc:
            raise EvalFailed(ErrorKind.infra, str(exc)) from exc
    folder = Path(path)
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        raise EvalFailed(ErrorKind.infra, f"the checkpoint is not available on this worker ({folder.name})")
    return folder


def _readable_by_child(folder: Path, gid: int) -> None:
    """A child running as another uid must read its checkpoint, and never change it: the files stay the
    worker's, readable by the children's group only (some savers write 0600). Under bubblewrap nothing
    else of the cache is mounted; without it, other users of the host still cannot read it."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        info = path.lstat()
        if info.st_gid != gid:
            os.chown(path, -1, gid, follow_symlinks=False)
        mode = info.st_mode & 0o7777
        wanted = (mode | (0o050 if path.is_dir() else 0o040)) & ~0o027  # group r(x), nothing for others
        if wanted != mode:
            path.chmod(wanted)


def _drop(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


class EvalProcess:
    """The worker's handle on its evaluation child; started on first use, restarted after a kill."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.conn: Channel | None = None
        self.workdir: Path | None = None
        self.serving: tuple | None = None  # (checkpoint folder, device, request-cache folder) of the live child
        self.pins: dict = {}  # cached checkpoint folders in use: worker_cache pins, closed at kill
        self._isolation: Isolation | None = None

    @property
    def isolation(self) -> Isolation:
        if self._isolation is None:
            protect_worker()
            self._isolation = choose_isolation(get_settings())
            (log.warning if self._isolation.missing else log.info)(self._isolation.describe())
        return self._isolation

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _ensure(self, checkpoint: Path, device: str, request_cache: Path | None = None,
                base: Path | None = None) -> None:
        # A child sees one submission's request cache (bound at its start): another submission's
        # runs get a fresh child even on the same checkpoint. An adapter's child sees its base too.
        wanted = (str(checkpoint), device, str(request_cache) if request_cache else None, str(base) if base else None)
        if self._alive() and self.serving == wanted:
            return
        self.kill()
        settings = get_settings()
        isolation = self.isolation
        if isolation.drop_to_uid is not None:
            for folder in (checkpoint, base):
                if folder is not None:
                    _readable_by_child(folder, isolation.drop_to_gid)
        self.workdir = make_workdir(settings.data_dir / "eval-children", isolation)
        parent_end, child_end = socket.socketpair()
        try:
            command = child_command(isolation, checkpoint=checkpoint, workdir=self.workdir, device=device,
                                    settings=settings, fd=child_end.fileno(), request_cache=request_cache,
                                    base=base)
            self.proc = subprocess.Popen(command, env=child_environment(self.workdir, settings), cwd=self.workdir,
                                         pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            child_end.close()
        self.conn = Channel(parent_end)
        self.serving = wanted

    def kill(self) -> None:
        if self.proc is not None:
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            for child in children:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
            self.proc.kill()
            self.proc.wait(10)
        if self.conn is not None:
            self.conn.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        for pin in self.pins.values():
            pin.close()
        self.pins = {}
        self.proc = self.conn = self.workdir = self.serving = None

    def run(self, request: EvalRequest, *, memory_cap_bytes: int, timeout_s: float,
            on_progress: Callable[[str, float], None], is_cancelled: Callable[[], bool],
            cancel_check_every_s: float = 1.0, run_key: tuple[str, str] | None = None) -> tuple[EvalOutcome, int]:
        """Return the outcome and the child's peak RSS, or raise EvalFailed / EvalCancelled.

        `run_key` (submission id, run id): the run gets a request-cache folder that outlives the child
        (runners/isolation.py: make_request_cache), named to the evaluator as `request_cache` in the spec's
        args; an attempt that dies (infra: retried) leaves it for the next; one that ends removes it.
        """
        fresh: dict = {}  # pinned now; held by this process once the child that reads them is the live one
        checkpoint = local_checkpoint(request.path, request.family, fresh)
        spec, submission_cache, run_cache = with_worker_folders(request.spec, get_settings()), None, None
        if run_key is not None:
            submission_cache, run_cache = make_request_cache(get_settings().data_dir / "request-cache", *run_key,
                                                             self.isolation)
            spec = dataclasses.replace(spec, args={**spec.args, "request_cache": str(run_cache)})
        base = local_checkpoint(request.base, request.family, fresh) if request.base else None
        self._ensure(checkpoint, request.device, submission_cache, base)
        for folder, pin in fresh.items():  # after _ensure: a kill there closes only the previous child's pins
            if folder in self.pins:
                pin.close()
            else:
                self.pins[folder] = pin
        local = EvalRequest(request.family, str(checkpoint), request.precision, request.device, spec,
                            str(base) if base else None)
        try:
            self.conn.send(["eval", request_to_json(local)])
            outcome = self._await(memory_cap_bytes, timeout_s, on_progress, is_cancelled, cancel_check_every_s)
            _drop(run_cache)
            return outcome
        except EvalFailed as exc:
            if exc.kind == ErrorKind.user:  # final: nothing will resume it
                _drop(run_cache)
            raise
        except EvalCancelled:
            _drop(run_cache)
            raise
        except BaseException:
            # Anything else (the database down while reporting progress, a signal) leaves the child busy
            # with this request: kill it, so the next request never reads this one's answer.
            self.kill()
            raise

    def _await(self, memory_cap_bytes, timeout_s, on_progress, is_cancelled,
               cancel_check_every_s) -> tuple[EvalOutcome, int]:
        deadline = time.monotonic() + timeout_s
        next_cancel_check = time.monotonic() + cancel_check_every_s
        peak, samples = 0, SampleCollector()
        while True:
            try:
                for message in self.conn.poll(POLL_S):
                    if message[0] == "progress":
                        on_progress(*progress_from_json(message))
                    elif message[0] == "samples":
                        samples.add(message)
                    elif message[0] == "done":
                        return outcome_from_json(message[1] if len(message) == 2 else None, samples.samples), peak
                    elif message[0] == "error":
                        raise EvalFailed(*error_from_json(message))
                    else:
                        raise ProtocolError(f"unknown message kind {message[0][:40]!r}")
            except ProtocolError as exc:
                # Our own child never sends this: whatever does is the checkpoint's doing.
                self.kill()
                raise EvalFailed(ErrorKind.user, f"the evaluation child sent a malformed answer ({exc})") from exc
            if not self._alive():
                code = self.proc.returncode
                self.kill()
                raise EvalFailed(ErrorKind.infra, f"the evaluation process died unexpectedly (exit code {code})")
            rss = _tree_rss(self.proc.pid)
            peak = max(peak, rss)
            if rss > memory_cap_bytes:
                self.kill()
                raise EvalFailed(ErrorKind.user, f"the evaluation used {rss / 2**30:.2f} GiB, over this worker's memory cap "
                                         f"of {memory_cap_bytes / 2**30:.2f} GiB: try a smaller model or precision")
            now = time.monotonic()
            if now > deadline:
                self.kill()
                raise EvalFailed(ErrorKind.user, f"the evaluation did not finish within the task's limit of {timeout_s:.0f} s")
            if now >= next_cancel_check:
                next_cancel_check = now + cancel_check_every_s
                if is_cancelled():
                    self.kill()
                    raise EvalCancelled()
