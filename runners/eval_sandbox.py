"""Evaluations run in a child process that the worker can watch and kill.

A hostile or broken checkpoint can exhaust memory, hang or crash the interpreter; in a
child it takes only the child down. The worker watches the child's memory (RSS, its own
children included) against a cap, the wall clock against the task's limit, and the run's
status in Postgres for cancellation, and kills the child on any of them. The child keeps
the last loaded model warm, so the tasks of one submission load it once.
"""
import logging
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from evaluators.base import EvalOutcome, EvalSpec

log = logging.getLogger("evalboard.sandbox")

POLL_S = 0.1


class EvalFailed(Exception):
    """The evaluation ended without an outcome. `kind` is "user" (the submission's fault) or "infra"."""

    def __init__(self, kind: str, message: str, log_tail: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.log_tail = kind, message, log_tail


class EvalCancelled(Exception):
    pass


@dataclass(frozen=True)
class EvalRequest:
    family: str
    path: str
    precision: str
    device: str
    spec: EvalSpec


def _child_main(conn) -> None:
    """The child's loop: one request in, progress messages and one result out."""
    from evaluators import loaders
    from evaluators.registry import get_evaluator

    warm: dict[tuple, Any] = {}
    while True:
        try:
            request: EvalRequest = conn.recv()
        except EOFError:
            return
        started = time.monotonic()
        key = (request.family, request.path, request.precision, request.device)
        try:
            if key not in warm:
                warm.clear()
                warm[key] = loaders.load(request.family, request.path, precision=request.precision,
                                         device=request.device)
        except (OSError, ValueError, KeyError, RuntimeError, MemoryError) as exc:
            conn.send(("error", "user", f"the checkpoint could not be loaded: {type(exc).__name__}: {exc}", _tail()))
            continue
        loaded_s = time.monotonic() - started
        try:
            evaluator = get_evaluator(request.spec.evaluator)
            outcome = evaluator.evaluate(warm[key], request.spec, lambda stage, f: conn.send(("progress", stage, f)))
        except (ValueError, KeyError, IndexError, RuntimeError, MemoryError) as exc:
            conn.send(("error", "user", f"the evaluation failed on this model: {type(exc).__name__}: {exc}", _tail()))
            continue
        except Exception as exc:  # our bug or our environment: worth a retry elsewhere
            conn.send(("error", "infra", f"{type(exc).__name__}: {exc}", _tail()))
            continue
        outcome.provenance.setdefault("load_s", round(loaded_s, 3))
        conn.send(("done", outcome))


def _tail(lines: int = 20) -> str:
    """The end of the traceback being handled: what an author needs to see why their model failed."""
    return "\n".join(traceback.format_exc().rstrip().splitlines()[-lines:])


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return 0


class EvalProcess:
    """The worker's handle on its evaluation child; started on first use, restarted after a kill."""

    def __init__(self) -> None:
        self.proc: mp.Process | None = None
        self.conn = None

    def _ensure(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            return
        # spawn, not fork: the worker has imported torch and runs threads, which fork does not survive safely.
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_child_main, args=(child_conn,), daemon=True, name="evalboard-eval")
        self.proc.start()
        child_conn.close()

    def kill(self) -> None:
        if self.proc is not None:
            for child in psutil.Process(self.proc.pid).children(recursive=True) if self.proc.is_alive() else []:
                child.kill()
            self.proc.kill()
            self.proc.join(5)
        self.proc = self.conn = None

    def run(self, request: EvalRequest, *, memory_cap_bytes: int, timeout_s: float,
            on_progress: Callable[[str, float], None], is_cancelled: Callable[[], bool],
            cancel_check_every_s: float = 1.0) -> tuple[EvalOutcome, int]:
        """Return the outcome and the child's peak RSS, or raise EvalFailed / EvalCancelled."""
        self._ensure()
        self.conn.send(request)
        try:
            return self._await(request, memory_cap_bytes, timeout_s, on_progress, is_cancelled, cancel_check_every_s)
        except (EvalFailed, EvalCancelled):
            raise
        except BaseException:
            # Anything else (the database down while reporting progress, a signal) leaves the child busy
            # with this request: kill it, so the next request never reads this one's answer.
            self.kill()
            raise

    def _await(self, request, memory_cap_bytes, timeout_s, on_progress, is_cancelled,
               cancel_check_every_s) -> tuple[EvalOutcome, int]:
        deadline = time.monotonic() + timeout_s
        next_cancel_check = time.monotonic() + cancel_check_every_s
        peak = 0
        while True:
            if self.conn.poll(POLL_S):
                try:
                    message = self.conn.recv()
                except EOFError:
                    message = None
                if message and message[0] == "progress":
                    on_progress(message[1], message[2])
                    continue
                if message and message[0] == "done":
                    return message[1], peak
                if message and message[0] == "error":
                    raise EvalFailed(*message[1:])
            if not self.proc.is_alive():
                code = self.proc.exitcode
                self.proc = self.conn = None
                raise EvalFailed("infra", f"the evaluation process died unexpectedly (exit code {code})")
            rss = _tree_rss(self.proc.pid)
            peak = max(peak, rss)
            if rss > memory_cap_bytes:
                self.kill()
                raise EvalFailed("user", f"the evaluation used {rss / 2**30:.2f} GiB, over this worker's memory cap "
                                         f"of {memory_cap_bytes / 2**30:.2f} GiB: try a smaller model or precision")
            now = time.monotonic()
            if now > deadline:
                self.kill()
                raise EvalFailed("user", f"the evaluation did not finish within the task's limit of {timeout_s:.0f} s")
            if now >= next_cancel_check:
                next_cancel_check = now + cancel_check_every_s
                if is_cancelled():
                    self.kill()
                    raise EvalCancelled()
