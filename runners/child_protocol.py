"""The messages between the worker and its evaluation child: JSON both ways, never pickle.

The child runs an author's checkpoint; if code ever runs there, it controls what it sends
back. Unpickling that in the worker (which holds the database and Redis credentials) would
hand it the worker, so the child speaks plain JSON, and the worker rebuilds each record
field by field with the types it expects.

Messages (a JSON list, first element the kind), each in a frame (8-byte length, then the JSON):
  worker → child  ["eval", request]
  child → worker  ["progress", stage, fraction] · ["samples", [record, …]] (any number, before done)
                  · ["done", outcome without samples] · ["error", kind, message, log_tail]
The worker reads frames without ever blocking on a partial one, so a child that stops mid-frame
cannot stop the worker watching its memory, its time limit and cancellation.
"""
import json
import math
import select
import socket
import struct
import time
from dataclasses import asdict
from collections.abc import Iterator
from typing import Any

from evaluators.base import EvalOutcome, EvalSpec, MetricValue, SampleRecord

# Sizes the worker accepts from a child, whatever it sends. A frame's JSON costs the worker ~20× its size
# to parse, so frames are small; per-sample outputs come in many frames, each record's text capped.
MAX_FRAME_BYTES = 16 << 20
SAMPLES_CHUNK_BYTES = 4 << 20
MAX_TEXT_CHARS = 64 * 1024
MAX_SAMPLES = 1_000_000
MAX_SAMPLE_TEXT_BYTES = 512 << 20
MAX_PROVENANCE_BYTES = 1 << 20
TRUNCATED = " …[truncated]"


class ProtocolError(ValueError):
    """The child sent something that is not a message of this protocol."""


def _plain(value: Any) -> Any:
    """numpy scalars and other number-likes the engines return become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def encode(message: list) -> bytes:
    return json.dumps(message, default=_plain, allow_nan=True).encode()


def _no_constants(name: str) -> None:
    return None  # NaN and ±Infinity from the child become null: never a score, never JSON Postgres refuses


def decode(data: bytes) -> list:
    try:
        message = json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from exc
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ProtocolError("a message is a list starting with its kind")
    return message


class Channel:
    """Length-prefixed JSON frames over a stream socket."""
    HEADER = struct.Struct(">Q")

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.closed = sock, bytearray(), False

    def send(self, message: list) -> None:
        data = encode(message)
        if len(data) > MAX_FRAME_BYTES:
            raise ProtocolError(f"a message of {len(data)} bytes is over the {MAX_FRAME_BYTES}-byte frame limit")
        self.sock.sendall(self.HEADER.pack(len(data)) + data)

    def _read_exactly(self, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(min(n - len(data), 1 << 20))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def receive(self) -> list | None:
        """The next message, waiting as long as it takes (the child's side: it trusts the worker). None at EOF."""
        header = self._read_exactly(self.HEADER.size)
        if header is None:
            return None
        (size,) = self.HEADER.unpack(header)
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(f"frame of {size} bytes")
        body = self._read_exactly(size)
        return None if body is None else decode(body)

    def poll(self, timeout_s: float) -> list[list]:
        """Messages complete so far, waiting at most `timeout_s` for bytes (the worker's side). A frame that
        declares more than MAX_FRAME_BYTES is refused before its body is read; a partial one waits."""
        if self.closed:
            time.sleep(timeout_s)  # nothing more will come; the caller watches the process
        elif select.select([self.sock], [], [], timeout_s)[0]:
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:  # the child went away mid-message
                chunk = b""
            if chunk:
                self.buffer += chunk
            else:
                self.closed = True
        messages = []
        while len(self.buffer) >= self.HEADER.size:
            (size,) = self.HEADER.unpack_from(self.buffer)
            if size > MAX_FRAME_BYTES:
                raise ProtocolError(f"the child declared a frame of {size} bytes (limit {MAX_FRAME_BYTES})")
            if len(self.buffer) < self.HEADER.size + size:
                break
            body = bytes(self.buffer[self.HEADER.size:self.HEADER.size + size])
            del self.buffer[:self.HEADER.size + size]
            messages.append(decode(body))
        return messages

    def close(self) -> None:
        self.sock.close()


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + TRUNCATED


def sample_chunks(samples) -> Iterator[list[dict]]:
    """The child's per-sample records in frames of about SAMPLES_CHUNK_BYTES, long texts clipped."""
    chunk, size = [], 0
    for record in samples:
        data = asdict(record)
        for name in ("input", "target", "prediction"):
            if isinstance(data.get(name), str):
                data[name] = _clip(data[name])
        chunk.append(data)
        size += len(encode([data]))
        if size >= SAMPLES_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def request_to_json(request) -> dict:
    return {"family": request.family, "path": request.path, "precision": request.precision,
            "device": request.device, "spec": asdict(request.spec), "base": getattr(request, "base", None)}


def spec_from_json(data: dict) -> EvalSpec:
    return EvalSpec(**data)


def outcome_to_json(outcome: EvalOutcome) -> dict:
    """The outcome without its samples, which travel in their own frames (sample_chunks)."""
    return {"metrics": [asdict(m) for m in outcome.metrics], "provenance": outcome.provenance,
            "schema_version": outcome.schema_version}


def _num(value: Any, name: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):  # 1e999 parses as infinity
        if optional:
            return None
        raise ProtocolError(f"{name} must be a finite number")
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


class SampleCollector:
    """The samples a child sent, rebuilt and counted against the worker's limits as they arrive."""

    def __init__(self) -> None:
        self.samples: list[SampleRecord] = []
        self.text_bytes = 0

    def add(self, message: list) -> None:
        if len(message) != 2 or not isinstance(message[1], list):
            raise ProtocolError("samples is [kind, [record, …]]")
        if len(self.samples) + len(message[1]) > MAX_SAMPLES:
            raise ProtocolError(f"more than {MAX_SAMPLES} samples")
        for i, r in enumerate(message[1]):
            r = _dict(r, f"samples[{i}]")
            texts = [_str(r.get(name), name) for name in ("input", "target", "prediction")]
            if any(len(t) > MAX_TEXT_CHARS + len(TRUNCATED) for t in texts):
                raise ProtocolError(f"a sample text over {MAX_TEXT_CHARS} characters")
            metrics = _dict(r.get("metrics", {}), "sample metrics")
            self.text_bytes += sum(len(t) for t in texts) + len(encode([metrics]))
            if self.text_bytes > MAX_SAMPLE_TEXT_BYTES:
                raise ProtocolError(f"samples over {MAX_SAMPLE_TEXT_BYTES} bytes in all")
            self.samples.append(SampleRecord(index=_int(r.get("index"), "sample index"), input=texts[0],
                                             target=texts[1], prediction=texts[2], metrics=metrics))


def outcome_from_json(data: Any, samples: list[SampleRecord] | None = None) -> EvalOutcome:
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
    if data.get("samples"):  # an old-style outcome with samples inline: counted by the same rules
        collector = SampleCollector()
        collector.add(["samples", data["samples"]])
        samples = (samples or []) + collector.samples
    provenance = _dict(data.get("provenance", {}), "provenance")
    if len(encode([provenance])) > MAX_PROVENANCE_BYTES:
        raise ProtocolError(f"provenance over {MAX_PROVENANCE_BYTES} bytes")
    return EvalOutcome(metrics=metrics, samples=samples or [], provenance=provenance,
                       schema_version=_int(data.get("schema_version", 1), "schema_version"))


def progress_from_json(message: list) -> tuple[str, float]:
    if len(message) != 3:
        raise ProtocolError("progress is [kind, stage, fraction]")
    fraction = _num(message[2], "progress fraction", optional=True)
    return _str(message[1], "stage")[:64], min(max(fraction or 0.0, 0.0), 1.0)


def error_from_json(message: list) -> tuple[str, str, str | None]:
    if len(message) != 4 or message[1] not in ("user", "infra"):
        raise ProtocolError("error is [kind, user|infra, message, log_tail]")
    return message[1], _str(message[2], "error message"), _str(message[3], "log tail", optional=True)
