"""Family → loader (FlagAI AutoLoader style): `load(family, path, precision=…, device=…)`.

The families are those of core.models.Family; each loader checks its folder again with the upload's
policy before a library reads it (causal_lm.py, open_clip.py).
"""
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.loaders.causal_lm import load_causal_lm
from evaluators.loaders.open_clip import load_clip

LOADERS: dict[str, Callable[..., Any]] = {"causal-lm": load_causal_lm, "clip": load_clip}


def load(family: str, path: str | Path, **kwargs: Any) -> Any:
    if family not in LOADERS:
        raise KeyError(f"no loader for family {family!r}; known: {', '.join(sorted(LOADERS))}")
    return LOADERS[family](path, **kwargs)
