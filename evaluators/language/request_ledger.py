"""Every request lm-eval sends the model, counted as it finishes and (optionally) kept.

lm-eval's models call `cache_hook.add_partial(kind, request args, result)` once per request as
each batch finishes — the hook its own CachingLM uses. The ledger wraps the model the same way
CachingLM does and counts those calls, so a run reports real progress per request batch instead
of "infer 0%" until the end; with a `cache_path` it also keeps each result in a SQLite file keyed
by lm-eval's own request hash (`hash_args`), so a run killed at 90% and started again answers
the first 90% from the file and sends only the rest to the model.

Why not CachingLM itself: it pickles results (the file is written by the evaluation child, which
runs an author's checkpoint, so a retried child would unpickle what its predecessor wrote) and it
reports nothing. Here results are JSON: floats, booleans, strings and lists of them.

Without a cache file the ledger keeps results in memory for the evaluation, so a retry at a
smaller batch size after running out of memory (evaluators/language/batching.py) still skips
what the larger batches finished.
"""
import functools
import json
from collections.abc import Callable
from typing import Any

METHODS = ("loglikelihood", "loglikelihood_rolling", "generate_until")
REPORT_STEP = 0.01  # at most ~100 progress messages per call: the worker throttles its writes anyway


def _encode(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _decode(text: str) -> Any:
    value = json.loads(text)
    # lm-eval's loglikelihood results are (logprob, is_greedy) tuples; JSON gives lists back.
    return tuple(value) if isinstance(value, list) else value


def _cacheable(kind: str, args: tuple) -> bool:
    # Sampled generations are meant to differ run to run (lm-eval's CachingLM skips them too).
    return not (kind == "generate_until" and isinstance(args[1], dict) and args[1].get("do_sample", False))


class _Hook:
    """lm-eval's CacheHook interface: called once per finished request, inside the model's batch loop."""

    def __init__(self, ledger: "RequestLedger"):
        self.ledger = ledger

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        self.ledger.finished(attr, req, res)


class RequestLedger:
    """What lm-eval's CachingLM does, in JSON and with progress: the three request methods answer from
    the ledger what it holds and send the rest to the model."""

    def __init__(self, *, cache_path: str | None = None):
        from lm_eval.api.model import hash_args

        self._hash = hash_args
        if cache_path:
            from sqlitedict import SqliteDict
            # autocommit: each result is on disk moments after its batch, so a kill loses at most the last few.
            self.store: Any = SqliteDict(cache_path, tablename="requests", autocommit=True,
                                         encode=_encode, decode=_decode)
        else:
            self.store = {}
        self.held_at_start = len(self.store)
        self.reused = self.computed = 0
        self._total = self._done = 0
        self._reported = -1.0
        self.on_progress: Callable[[float], None] | None = None

    def wrap(self, lm: Any, on_progress: Callable[[float], None] | None = None) -> Any:
        """`lm` itself (simple_evaluate wants an lm-eval LM), its three request methods answering through
        the ledger: a fresh model wrapper per attempt, the same ledger for the whole evaluation."""
        self.on_progress = on_progress
        for kind in METHODS:
            own = getattr(type(lm), kind).__get__(lm)
            setattr(lm, kind, functools.partial(self._answer, kind, own))
        lm.set_cache_hook(_Hook(self))
        return lm

    def _answer(self, kind: str, own: Callable[[list], list], requests: list) -> list:
        results: list[Any] = [None] * len(requests)
        todo = []
        for i, request in enumerate(requests):
            key = self._hash(kind, request.args)
            if _cacheable(kind, request.args) and key in self.store:
                results[i] = self.store[key]
            else:
                todo.append(i)
        self.reused += len(requests) - len(todo)
        self._total, self._done, self._reported = len(requests), len(requests) - len(todo), -1.0
        self._report()
        answers = own([requests[i] for i in todo]) if todo else []
        for i, answer in zip(todo, answers, strict=True):
            results[i] = answer
            if _cacheable(kind, requests[i].args):  # the hook stored most already; this covers any it missed
                self.store[self._hash(kind, requests[i].args)] = answer
        self._done = self._total
        self._report()
        return results

    def finished(self, kind: str, args: Any, result: Any) -> None:
        """One request answered by the model (called from within its batch loop)."""
        self.computed += 1
        if isinstance(args, tuple) and _cacheable(kind, args):
            self.store[self._hash(kind, args)] = result
        self._done = min(self._done + 1, self._total)
        self._report()

    def _report(self) -> None:
        if self.on_progress is None or not self._total:
            return
        fraction = self._done / self._total
        if fraction >= 1.0 or fraction - self._reported >= REPORT_STEP:
            self._reported = fraction
            self.on_progress(fraction)

    def close(self) -> None:
        if hasattr(self.store, "close"):
            self.store.close()
