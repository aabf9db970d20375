"""Model loaders by family (FlagAI AutoLoader style): family → function(path, precision, device).

Loading is the real code that also serves hub models: safetensors only, never remote code.
"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@loader("causal-lm")
def load_causal_lm(path: str | Path, *, precision: str = "float32", device: str = "cpu",
                   revision: str | None = None) -> LoadedCausalLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(path)
    if path.startswith("hf://"):  # a hub model pinned at submission: hf://org/name@commit
        path, _, revision = path.removeprefix("hf://").partition("@")
    common = {"trust_remote_code": False, "revision": revision or None}
    tokenizer = AutoTokenizer.from_pretrained(str(path), **common)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=_torch_dtype(precision), use_safetensors=True,
                                                 **common)
    model.to(device).eval()
    return LoadedCausalLM(model, tokenizer, str(path), device, precision)


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
