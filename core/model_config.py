"""What a causal-LM config.json claims, checked without importing transformers or torch.

The API must stay light, so the installed transformers is consulted as files on disk: a
model type is supported when transformers has a `models/<type>/` package, and an
architecture when its modeling file defines that class.
"""
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from core.errors import InvalidCheckpointError

CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@lru_cache
def _transformers_models_dir() -> Path | None:
    spec = importlib.util.find_spec("transformers")
    return Path(spec.origin).parent / "models" if spec and spec.origin else None


def read_config(root: Path) -> dict:
    path = root / "config.json"
    if not path.is_file():
        raise InvalidCheckpointError("config.json is missing: a causal-lm checkpoint is a Hugging Face model folder")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidCheckpointError(f"config.json does not parse: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidCheckpointError("config.json must hold a JSON object")
    return config


def check_causal_lm_config(config: dict) -> None:
    if "auto_map" in config:
        raise InvalidCheckpointError("config.json needs trust_remote_code (it has auto_map); remote code is never run")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise InvalidCheckpointError("config.json has no model_type, so the architecture cannot be known")
    models_dir = _transformers_models_dir()
    package = models_dir / model_type.replace("-", "_") if models_dir else None
    if package is None or not package.is_dir():
        raise InvalidCheckpointError(f"model_type {model_type!r} is not supported by the installed transformers")
    for architecture in config.get("architectures") or []:
        if not architecture.endswith(CAUSAL_LM_SUFFIXES):
            raise InvalidCheckpointError(f"architecture {architecture!r} is not a causal language model "
                                         f"(expected a *ForCausalLM or *LMHeadModel class)")
        defined = any(f"class {architecture}(" in f.read_text(errors="replace")
                      for f in package.glob("modeling_*.py"))
        if not defined:
            raise InvalidCheckpointError(f"architecture {architecture!r} is not in transformers' {model_type} models")


def _first_int(config: dict, *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and value >= 0:
            return value
    return None


def estimate_params(config: dict) -> int:
    """A transformer's parameter count from its config: embeddings plus per-layer attention and MLP.

    An estimate, not an exact count; it exists so that a config claiming far more than its weight
    files hold (missing weights are initialised at load time) is caught before anything is allocated.
    """
    hidden = _first_int(config, "hidden_size", "n_embd", "d_model") or 0
    layers = _first_int(config, "num_hidden_layers", "n_layer", "num_layers") or 0
    vocab = _first_int(config, "vocab_size") or 0
    inner = _first_int(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    return vocab * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner)
