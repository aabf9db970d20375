"""The causal-LM loader: a checked folder (or, connected, a hub repository) through transformers, with
LoRA adapters on a pinned base and bitsandbytes 8/4-bit weights.

Loading is the real code that also serves hub models: safetensors only, never remote code.
Every folder is checked again here with the upload's policy (core/checkpoint_policy.py) before
transformers or open_clip reads it, so a folder that reached the store without passing the upload
check is refused (UnsafeCheckpointError) and runs no code; every library call names
trust_remote_code=False and local_files_only=True, and nothing read from the checkpoint is spread
into its arguments. The policy module is pure standard library + core.errors: importing it here
keeps one policy for upload and load without pulling the database or settings into the evaluators.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.checkpoint_policy import ADAPTER_CONFIG, CAUSAL_LM_FILES, check_adapter_config, check_folder
from core.errors import UnsafeCheckpointError
from evaluators.devices import primary_device, spread_kwargs
from evaluators.loaders.hub import hub_snapshot
from evaluators.precision import torch_dtype

@dataclass
class LoadedCausalLM:
    model: Any
    tokenizer: Any
    path: str
    device: str
    dtype: str


def _quantization(precision: str, device: str) -> dict:
    """from_pretrained's arguments for 8/4-bit (bitsandbytes) weights; {} for the float precisions.

    Built here from the precision alone (never from the checkpoint): a CUDA device and bitsandbytes are
    needed, which the API checked against the class's workers (core/precisions.py) before accepting it."""
    if precision not in ("int8", "int4"):
        return {}
    if not device.startswith("cuda"):
        raise ValueError(f"{precision} weights need a CUDA device (bitsandbytes); this worker runs on {device}")
    import torch
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": config}


# What a causal-LM load reads of a hub repository: the policy's allow-listed names (no code, no pickles).
CAUSAL_LM_HUB_PATTERNS = [*sorted(CAUSAL_LM_FILES), "*.safetensors", "LICENSE*"]


def load_causal_lm(path: str | Path, *, precision: str = "float32", device: str = "cpu",
                   revision: str | None = None, base: str | Path | None = None) -> LoadedCausalLM:
    """A causal LM folder; or, where the folder is a LoRA adapter, the adapter on `base` (its pinned base model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    links_into = None
    if str(path).startswith("hf://"):  # a hub model pinned at submission: hf://org/name@commit
        repo, _, revision = str(path).removeprefix("hf://").partition("@")
        path, links_into = hub_snapshot(repo, revision, CAUSAL_LM_HUB_PATTERNS)
    root = Path(path)
    parsed = check_folder(root, "causal-lm", links_into=links_into)  # refuses before any library reads it
    if ADAPTER_CONFIG in parsed:
        if base is None:
            raise UnsafeCheckpointError(f"{root.name} is a LoRA adapter: it is evaluated on the base model pinned at "
                                        f"submission (base_model), and none was given")
        return _with_adapter(load_causal_lm(base, precision=precision, device=device), root, parsed)
    if base is not None:
        raise UnsafeCheckpointError(f"{root.name} is a full model, not a LoRA adapter: a base model is named only "
                                    f"for adapters")
    config = parsed.get("config.json")
    if not isinstance(config, dict):
        raise UnsafeCheckpointError(f"{root.name}: config.json is missing or not a JSON object")
    # Checked above to be a built-in kernel (or absent); named here so nothing else is chosen.
    attention = config.get("attn_implementation") or config.get("_attn_implementation")
    tokenizer = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False, local_files_only=True)
    quantized = _quantization(precision, primary_device(device))
    placement = spread_kwargs(device)  # a device list: the model spread over those GPUs
    if quantized and not placement:
        placement = {"device_map": {"": primary_device(device)}}  # bitsandbytes weights are placed as they load
    model = AutoModelForCausalLM.from_pretrained(str(root), dtype=torch_dtype(precision), use_safetensors=True,
                                                 trust_remote_code=False, local_files_only=True,
                                                 attn_implementation=attention if isinstance(attention, str) else None,
                                                 output_loading_info=True, **quantized, **placement)
    model, loading = model
    _refuse_missing_weights(root, loading)
    if not placement:
        model.to(device)
    model.eval()
    return LoadedCausalLM(model, tokenizer, str(root), primary_device(device), precision)


def _refuse_missing_weights(root: Path, loading: dict) -> None:
    """transformers fills tensors the weights lack with random values and only logs it: a model scored that
    way would be ranked on noise. Tied weights (an LM head sharing the embedding) are not reported missing."""
    missing = sorted(loading.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UnsafeCheckpointError(f"{root.name}: tensors config.json describes are missing from the checkpoint "
                                    f"({shown}): the weights must hold the whole configured model")


def _with_adapter(loaded: LoadedCausalLM, root: Path, parsed: dict) -> LoadedCausalLM:
    """LoRA weights on the loaded base, merged into it (plain weights again: same speed as the base). The
    LoraConfig is built from the checked keys alone; peft never reads the folder or a hub name."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = root / "adapter_model.safetensors"
    if not weights.is_file():
        raise UnsafeCheckpointError(f"{root.name}: a LoRA adapter's weights are adapter_model.safetensors")
    tokenizer = loaded.tokenizer
    if (root / "tokenizer_config.json").is_file() or (root / "tokenizer.json").is_file():
        tokenizer = _same_tokenizer(loaded.tokenizer, root)  # its own (a chat adapter's template), same tokens
    config = LoraConfig(**check_adapter_config(parsed[ADAPTER_CONFIG]))
    model = get_peft_model(loaded.model, config)
    result = set_peft_model_state_dict(model, load_file(str(weights), device="cpu"))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or getattr(result, "unexpected_keys", None):
        raise UnsafeCheckpointError(f"{root.name}: the adapter's weights do not fit its base "
                                    f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})")
    quantized = loaded.dtype in ("int8", "int4")  # bitsandbytes layers keep the adapter beside them, unmerged
    merged = (model if quantized else model.merge_and_unload()).eval()
    return LoadedCausalLM(merged, tokenizer, str(root), loaded.device, loaded.dtype)


def _same_tokenizer(base_tokenizer, root: Path):
    """An adapter trained with another tokenizer than its base's scores garbage: same vocabulary and specials."""
    from transformers import AutoTokenizer

    own = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False, local_files_only=True)
    if own.get_vocab() != base_tokenizer.get_vocab() or own.all_special_tokens != base_tokenizer.all_special_tokens:
        raise UnsafeCheckpointError(f"{root.name}: the adapter's tokenizer differs from its base model's (vocabulary "
                                    f"{len(own)} vs {len(base_tokenizer)} tokens); an adapter is evaluated with its "
                                    f"base's tokenizer")
    return own
