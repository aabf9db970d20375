"""Hub checkpoints reach the evaluation child as plain folders fetched by the worker.

The child has no network (runners/isolation.py), so a submission pinned to
`hf://org/name@commit` (causal LM) or `hf-hub:org/repo@commit` (open_clip) is downloaded
here, in the worker, into its cache as real files (no symlinks into a shared blob store),
and the child reads that folder like an uploaded one. A fetch failure is the service's
problem (retried), never the author's: the API pinned the revision and checked its files.
"""
import re
import shutil
from pathlib import Path

from evaluators.loaders.hub import hub_snapshot

# What a loader reads of a hub repository; weights only as safetensors (never pickles, never code).
CAUSAL_LM_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "merges.txt", "vocab.txt", "*.jinja",
                      "README.md", "LICENSE*"]
CLIP_PATTERNS = ["*.json", "*.txt", "*.model", "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors"]

_PINNED = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)@(?P<revision>[0-9a-f]{40})$")


class HubFetchError(RuntimeError):
    """The worker could not fetch a pinned hub checkpoint (network, hub, disk): an infrastructure error."""


def is_hub_source(path: str) -> bool:
    return path.startswith(("hf://", "hf-hub:"))


def fetch(path: str, cache_dir: Path) -> Path:
    """The local folder holding the pinned revision of `hf://…@sha` or `hf-hub:…@sha`."""
    prefix = "hf://" if path.startswith("hf://") else "hf-hub:"
    match = _PINNED.match(path.removeprefix(prefix))
    if not match:
        raise HubFetchError(f"{path!r} is not a pinned hub reference (org/name@<40-hex commit>)")
    repo, revision = match["repo"], match["revision"]
    target = cache_dir / "hub" / f"{repo.replace('/', '--')}@{revision}"
    done = target.parent / f"{target.name}.complete"  # beside, not inside: the folder holds the model's files only
    if done.is_file():
        return target
    try:
        hub_snapshot(repo, revision, CAUSAL_LM_PATTERNS if prefix == "hf://" else CLIP_PATTERNS, local_dir=target)
    except Exception as exc:  # noqa: BLE001 — offline, hub down, disk full: all the service's side
        raise HubFetchError(f"could not fetch {repo}@{revision[:12]} from the hub: {type(exc).__name__}: {exc}") from exc
    shutil.rmtree(target / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
    done.write_text(revision)
    return target
