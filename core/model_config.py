"""What a causal-LM config.json claims, checked without importing transformers or torch.

The API must stay light, so the installed transformers is consulted as files on disk: a
model type is supported when transformers has a `models/<type>/` package, and an
architecture when its modeling file defines that class.
"""
import importlib.util
from functools import lru_cache
from pathlib import Path

from core.checkpoint_policy import read_json
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
    config = read_json(path)  # size- and depth-bounded: a config nested 100k deep is a 422, not a RecursionError
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
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise InvalidCheckpointError("config.json: architectures must be a list of class names")
    for architecture in architectures:
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


# Weights may differ from the config's bracket by this much before they are refused as not the model's own.
PARAMS_TOLERANCE = 0.10


def param_bounds(config: dict) -> tuple[int, int] | None:
    """The smallest and largest parameter count a decoder with this config's sizes can have, or None.

    Computed from the sizes every causal-LM config names, over the variants transformers implements:
    the low end is tied embeddings, no biases or norms, a two-matrix MLP and grouped-query attention as
    configured; the high end an untied head, learned positions, a gated three-matrix MLP per expert,
    biases and norms everywhere. A weights count outside [low, high] (± PARAMS_TOLERANCE) is not this
    config's model: weights the config does not use, or a config claiming weights that are not there
    (they would be initialised at load time, so the model shown would not be the model run).
    """
    hidden = _first_int(config, "hidden_size", "n_embd", "d_model") or 0
    layers = _first_int(config, "num_hidden_layers", "n_layer", "num_layers") or 0
    vocab = _first_int(config, "vocab_size") or 0
    if not (hidden and layers and vocab):
        return None
    inner = _first_int(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    expert_inner = max(inner, _first_int(config, "moe_intermediate_size") or 0)
    heads = _first_int(config, "num_attention_heads", "n_head") or 1
    kv_heads = min(_first_int(config, "num_key_value_heads") or heads, heads)
    kv_dim = hidden * kv_heads // heads
    experts = (_first_int(config, "num_local_experts", "num_experts", "n_routed_experts") or 1) \
        + (_first_int(config, "n_shared_experts", "num_shared_experts") or 0)
    positions = _first_int(config, "n_positions", "max_position_embeddings") or 0
    low = vocab * hidden + layers * (2 * hidden * hidden + 2 * hidden * kv_dim + 2 * hidden * inner)
    per_layer = (4 * hidden * hidden + 4 * hidden + 4 * hidden
                 + experts * (3 * hidden * expert_inner + expert_inner + hidden) + experts * hidden + 3 * hidden * inner)
    high = 2 * vocab * hidden + positions * hidden + layers * per_layer + 2 * hidden
    return low, high


def check_params_agree(config: dict, weights: int, max_params: int, name: str = "config.json") -> None:
    """Refuse a config that claims past the cap, and weights that are not the model the config describes."""
    bounds = param_bounds(config)
    if bounds is None:
        return
    low, high = bounds
    if low > max_params:
        raise InvalidCheckpointError(f"{name} implies at least {low:,} parameters, over this service's cap of "
                                     f"{max_params:,}")
    if not low * (1 - PARAMS_TOLERANCE) <= weights <= high * (1 + PARAMS_TOLERANCE):
        raise InvalidCheckpointError(f"the weights hold {weights:,} parameters but {name} describes a model of "
                                     f"{low:,} to {high:,}: the weights must be the configured model's own")
