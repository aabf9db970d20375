"""Model loaders by family (FlagAI AutoLoader style): family → function(path, precision, device).

Loading is the real code that also serves hub models: safetensors only, never remote code.
Every folder is checked again here with the upload's policy (core/checkpoint_policy.py) before
transformers or open_clip reads it, so a folder that reached the store without passing the upload
check is refused (UnsafeCheckpointError) and runs no code; every library call names
trust_remote_code=False and local_files_only=True, and nothing read from the checkpoint is spread
into its arguments. The policy module is pure standard library + core.errors: importing it here
keeps one policy for upload and load without pulling the database or settings into the evaluators.
"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.checkpoint_policy import CAUSAL_LM_FILES, check_folder
from core.errors import UnsafeCheckpointError

LOADERS: dict[str, Callable[..., Any]] = {}


def loader(family: str):
    def wrap(fn):
        LOADERS[family] = fn
        return fn
    return wrap


@dataclass
class LoadedCausalLM:
    model: Any
    tokenizer: Any
    path: str
    device: str
    dtype: str


def _torch_dtype(precision: str):
    import torch
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]


# What a causal-LM load reads of a hub repository: the policy's allow-listed names (no code, no pickles).
CAUSAL_LM_HUB_PATTERNS = [*sorted(CAUSAL_LM_FILES), "*.safetensors", "LICENSE*"]


def _hub_snapshot(repo: str, revision: str | None, patterns: list[str]) -> tuple[Path, Path]:
    """(snapshot folder, the repo's blobs folder its links point into), through huggingface_hub's cache."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo, revision=revision or None, allow_patterns=patterns))
    return folder, folder.parent.parent / "blobs"


@loader("causal-lm")
def load_causal_lm(path: str | Path, *, precision: str = "float32", device: str = "cpu",
                   revision: str | None = None) -> LoadedCausalLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    links_into = None
    if str(path).startswith("hf://"):  # a hub model pinned at submission: hf://org/name@commit
        repo, _, revision = str(path).removeprefix("hf://").partition("@")
        path, links_into = _hub_snapshot(repo, revision, CAUSAL_LM_HUB_PATTERNS)
    root = Path(path)
    parsed = check_folder(root, "causal-lm", links_into=links_into)  # refuses before any library reads it
    config = parsed.get("config.json")
    if not isinstance(config, dict):
        raise UnsafeCheckpointError(f"{root.name}: config.json is missing or not a JSON object")
    # Checked above to be a built-in kernel (or absent); named here so nothing else is chosen.
    attention = config.get("attn_implementation") or config.get("_attn_implementation")
    tokenizer = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(root), dtype=_torch_dtype(precision), use_safetensors=True,
                                                 trust_remote_code=False, local_files_only=True,
                                                 attn_implementation=attention if isinstance(attention, str) else None)
    model.to(device).eval()
    return LoadedCausalLM(model, tokenizer, str(root), device, precision)


@loader("clip")
def load_clip(path: str | Path, *, precision: str = "float32", device: str = "cpu"):
    """An open_clip model: a checkpoint folder, or `hf-hub:org/repo` / `open_clip:<arch>/<tag>` when connected."""
    from evaluators.multimodal.open_clip_loader import (
        load_clip_by_name,
        load_clip_folder,
    )

    if str(path).startswith(("hf-hub:", "open_clip:")):
        return load_clip_by_name(str(path), precision=precision, device=device)
    return load_clip_folder(path, precision=precision, device=device)


def load(family: str, path: str | Path, **kwargs: Any) -> Any:
    if family not in LOADERS:
        raise KeyError(f"no loader for family {family!r}; known: {', '.join(sorted(LOADERS))}")
    return LOADERS[family](path, **kwargs)
