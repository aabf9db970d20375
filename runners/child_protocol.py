"""The messages between the worker and its evaluation child: JSON both ways, never pickle.

The child runs an author's checkpoint; if code ever runs there, it controls what it sends
back. Unpickling that in the worker (which holds the database and Redis credentials) would
hand it the worker, so the child speaks plain JSON, and the worker rebuilds each record
field by field with the types it expects.

Messages (a JSON list, first element the kind):
  worker → child  ["eval", request]
  child → worker  ["progress", stage, fraction] · ["done", outcome] · ["error", kind, message, log_tail]
"""
import json
import math
from dataclasses import asdict
from typing import Any

from evaluators.base import EvalOutcome, EvalSpec, MetricValue, SampleRecord

MAX_MESSAGE_BYTES = 1 << 30  # per-sample outputs of a large task; a bigger message is refused unread


class ProtocolError(ValueError):
    """The child sent something that is not a message of this protocol."""


def _plain(value: Any) -> Any:
    """numpy scalars and other number-likes the engines return become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def encode(message: list) -> bytes:
    return json.dumps(message, default=_plain, allow_nan=True).encode()


def decode(data: bytes) -> list:
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from exc
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ProtocolError("a message is a list starting with its kind")
    return message


def request_to_json(request) -> dict:
    return {"family": request.family, "path": request.path, "precision": request.precision,
            "device": request.device, "spec": asdict(request.spec), "base": getattr(request, "base", None)}


def spec_from_json(data: dict) -> EvalSpec:
    return EvalSpec(**data)


def outcome_to_json(outcome: EvalOutcome) -> dict:
    return asdict(outcome)


def _num(value: Any, name: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _int(value: Any, name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{name} must be an integer")
    return value


def _str(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string")
    return value


def _dict(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be an object")
    return value


def outcome_from_json(data: Any) -> EvalOutcome:
    """Rebuild an outcome from untrusted JSON: known fields only, each of its type."""
    data = _dict(data, "outcome")
    metrics = []
    for i, m in enumerate(data.get("metrics") or []):
        m = _dict(m, f"metrics[{i}]")
        metrics.append(MetricValue(
            name=_str(m.get("name"), "metric name"), value=_num(m.get("value"), "metric value"),
            stderr=_num(m.get("stderr"), "stderr", optional=True), n=_int(m.get("n"), "n", optional=True),
            higher_is_better=bool(m.get("higher_is_better", True)), primary=bool(m.get("primary", False)),
            unit=_str(m.get("unit"), "unit", optional=True)))
    samples = []
    for i, r in enumerate(data.get("samples") or []):
        r = _dict(r, f"samples[{i}]")
        samples.append(SampleRecord(index=_int(r.get("index"), "sample index"), input=_str(r.get("input"), "input"),
                                    target=_str(r.get("target"), "target"),
                                    prediction=_str(r.get("prediction"), "prediction"),
                                    metrics=_dict(r.get("metrics", {}), "sample metrics")))
    return EvalOutcome(metrics=metrics, samples=samples, provenance=_dict(data.get("provenance", {}), "provenance"),
                       schema_version=_int(data.get("schema_version", 1), "schema_version"))


def progress_from_json(message: list) -> tuple[str, float]:
    if len(message) != 3:
        raise ProtocolError("progress is [kind, stage, fraction]")
    fraction = _num(message[2], "progress fraction")
    return _str(message[1], "stage")[:64], (0.0 if math.isnan(fraction) else fraction)


def error_from_json(message: list) -> tuple[str, str, str | None]:
    if len(message) != 4 or message[1] not in ("user", "infra"):
        raise ProtocolError("error is [kind, user|infra, message, log_tail]")
    return message[1], _str(message[2], "error message"), _str(message[3], "log tail", optional=True)
