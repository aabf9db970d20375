"""Which engine answers lm-eval's requests: lm-eval's `hf` model (transformers, the default) or its
`vllm` model (GPU hardware classes, an optional install: `pip install .[vllm]` in its own worker image,
so vLLM's torch pin never constrains the CPU stack).

A suite chooses per task (`backend` in its args); the choice is recorded in provenance. vLLM reads the
checkpoint folder itself — the same folder the loader already checked against the upload policy
(core/checkpoint_policy.py) — with trust_remote_code off; every argument it gets is built here from
the precision, the device list and the suite, never from the checkpoint or the author.
"""
import contextlib
from pathlib import Path
from typing import Any

BACKENDS = ("hf", "vllm")
VLLM_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def parse_backend(value: Any) -> str:
    if value is None:
        return "hf"
    if value not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {value!r}")
    return value


def vllm_model(loaded, *, batch_size: int | str, max_batch_size: int, seed: int) -> Any:
    """lm-eval's VLLM on the loaded checkpoint's folder, over the worker's GPUs (tensor parallel)."""
    if not str(loaded.device).startswith("cuda"):
        raise ValueError(f"the vllm backend runs on GPU hardware classes; this worker runs on {loaded.device}")
    if loaded.dtype not in VLLM_DTYPES:
        raise ValueError(f"the vllm backend evaluates float32, bfloat16 or float16 weights, not {loaded.dtype}; "
                         f"the suite's hf backend runs 8/4-bit")
    if (Path(loaded.path) / "adapter_config.json").exists():
        raise ValueError("the vllm backend evaluates full checkpoints; adapters run on the hf backend")
    from lm_eval.models.vllm_causallms import VLLM  # ModuleNotFoundError: this worker has no vLLM (ours, retried)

    # As many GPUs as the loader spread the model over (a --device list); vLLM numbers the visible ones from 0.
    device_map = getattr(loaded.model, "hf_device_map", None) or {}
    gpus = {d for d in device_map.values() if isinstance(d, int) or str(d).startswith("cuda")}
    return VLLM(pretrained=str(loaded.path), tokenizer=str(loaded.path), dtype=VLLM_DTYPES[loaded.dtype],
                trust_remote_code=False, batch_size=batch_size, max_batch_size=max_batch_size, seed=seed,
                tensor_parallel_size=max(1, len(gpus)), gpu_memory_utilization=0.85)


@contextlib.contextmanager
def hf_weights_off_the_gpu(loaded):
    """vLLM allocates its own copy of the weights: the warm transformers copy waits in host memory meanwhile
    (and goes back after, for the next hf task of the same child)."""
    import torch
    device = loaded.model.device if hasattr(loaded.model, "device") else None
    # Spread (device_map) and 8/4-bit models cannot move; vllm_model refuses the latter in words.
    on_gpu = (device is not None and device.type == "cuda" and not getattr(loaded.model, "hf_device_map", None)
              and loaded.dtype in VLLM_DTYPES)
    if on_gpu:
        loaded.model.to("cpu")
        torch.cuda.empty_cache()
    try:
        yield
    finally:
        if on_gpu:
            loaded.model.to(device)
