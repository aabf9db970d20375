"""The evaluation child: `python -m runners.eval_child FD`, started by runners/eval_sandbox.py.

It holds no credentials and, under bubblewrap, sees only its own checkpoint (runners/isolation.py).
It reads requests from the socket FD, loads the model once per child (a child serves one
checkpoint), runs the evaluator, and answers in JSON (runners/child_protocol.py).
"""
import socket
import sys
import time
import traceback
from typing import Any

from evaluators.loaders.errors import explain
from runners.child_protocol import (
    Channel,
    outcome_to_json,
    sample_chunks,
    spec_from_json,
)


def _tail(lines: int = 20) -> str:
    """The end of the traceback being handled: what an author needs to see why their model failed."""
    return "\n".join(traceback.format_exc().rstrip().splitlines()[-lines:])


def serve(channel: Channel) -> None:
    from evaluators import loaders
    from evaluators.registry import get_evaluator

    warm: dict[tuple, Any] = {}
    send = lambda *message: channel.send(list(message))  # noqa: E731
    while True:
        try:
            message = channel.receive()
        except OSError:
            return
        if message is None:
            return
        kind, request = message
        started = time.monotonic()
        base = request.get("base")  # a LoRA adapter's pinned base model folder (runners/eval_sandbox.py)
        key = (request["family"], request["path"], request["precision"], request["device"], base)
        try:
            if key not in warm:
                warm.clear()
                warm[key] = loaders.load(request["family"], request["path"], precision=request["precision"],
                                         device=request["device"], **({"base": base} if base else {}))
        except Exception as exc:  # noqa: BLE001 — whatever the checkpoint's content makes the loader raise
            # Everything about the checkpoint itself was checked by the worker before this child started
            # (the folder exists and is readable), so a load failure is the checkpoint's: an unknown attention
            # kernel, an optional package its config asks for, a shape mismatch. Never retried elsewhere.
            send("error", "user", explain(exc), _tail())
            continue
        loaded_s = time.monotonic() - started
        spec = spec_from_json(request["spec"])
        try:
            evaluator = get_evaluator(spec.evaluator)
            outcome = evaluator.evaluate(warm[key], spec, lambda stage, f: send("progress", stage, f))
        except (ValueError, KeyError, IndexError, RuntimeError, MemoryError) as exc:
            send("error", "user", f"the evaluation failed on this model: {type(exc).__name__}: {exc}", _tail())
            continue
        except Exception as exc:  # our bug or our environment: worth a retry elsewhere
            send("error", "infra", f"{type(exc).__name__}: {exc}", _tail())
            continue
        outcome.provenance.setdefault("load_s", round(loaded_s, 3))
        for chunk in sample_chunks(outcome.samples):
            send("samples", chunk)
        send("done", outcome_to_json(outcome))


def main() -> None:
    channel = Channel(socket.socket(fileno=int(sys.argv[1])))
    try:
        serve(channel)
    finally:
        channel.close()


if __name__ == "__main__":
    main()
