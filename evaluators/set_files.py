"""What the two bundled-set generators share (evaluators/language/generators.py, evaluators/multimodal/
generators.py): the registry of seeded generators, and splits written as JSON lines with their sha256,
byte for byte the same on every machine so a regenerated set matches its published manifest."""
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SetGenerator:
    name: str
    version: str
    description: str
    build: Callable[[int], Any]
    """seed → the set's rows (and, for image sets, its images and extra files)."""
    default_seed: int
    """The seed of the published set."""


def registrar(generators: dict[str, SetGenerator]):
    """A `@register(name, version, description, default_seed)` decorator filling `generators`."""
    def register(name: str, version: str, description: str, default_seed: int):
        def wrap(fn):
            generators[name] = SetGenerator(name, version, description, fn, default_seed)
            return fn
        return wrap
    return register


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode()


def write_splits(folder: Path, splits: dict[str, list[dict]]) -> dict[str, dict]:
    """Each split as `<split>.jsonl` under folder; returns the manifest's `splits` (file, rows, sha256)."""
    out = {}
    for split, rows in splits.items():
        data = jsonl(rows)
        (folder / f"{split}.jsonl").write_bytes(data)
        out[split] = {"file": f"{split}.jsonl", "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
    return out
