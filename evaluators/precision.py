"""Precision names as submissions spell them, and what they mean to torch: one table for every loader
and evaluator."""

# 8/4-bit weights compute in bfloat16 (bitsandbytes dequantises per matmul).
_TORCH_NAMES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
                "int8": "bfloat16", "int4": "bfloat16"}
# The short names the worker's GEMM figures (gemm_tflops_<key>) and the nominal peak table use.
DTYPE_KEYS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def torch_dtype(precision: str, torch=None):
    """The torch dtype a model of this precision computes in; ValueError for an unknown precision."""
    if precision not in _TORCH_NAMES:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(_TORCH_NAMES)}")
    if torch is None:
        import torch
    return getattr(torch, _TORCH_NAMES[precision])


def dtype_key(precision: str) -> str:
    """fp32/bf16/fp16 for a float precision; anything else as it is."""
    return DTYPE_KEYS.get(precision, precision)
