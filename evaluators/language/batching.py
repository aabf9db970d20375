"""Batch sizes for lm-eval runs: a fixed size or `auto`, and halving on out-of-memory.

`auto` is lm-eval's own mechanism (HFLM probes the longest request with accelerate's
find_executable_batch_size, halving from `max_batch_size`). Either way a batch can still run
out of memory mid-run (a longer generation, a fragmented allocator): the run is then retried
inside the same evaluation at half the batch size, and the request ledger
(evaluators/language/request_ledger.py) answers what the bigger batches already finished. Out of
memory at batch size 1 is the author's: the model does not fit, and the message says by how much.
"""
from collections.abc import Callable
from typing import Any

MAX_FIXED_BATCH_SIZE = 1024
DEFAULT_MAX_AUTO_BATCH_SIZE = 64

# What PyTorch and its allocators say when a tensor does not fit (accelerate's list, plus ROCm/MPS/XPU wording).
_OOM_PHRASES = ("out of memory", "can't allocate memory", "cudnn_status_not_supported", "cuda error: out of memory",
                "mps backend out of memory", "hip out of memory")


def parse_batch_size(value: Any) -> int | str:
    """A suite's batch_size: a positive integer or "auto"; anything else is a configuration error."""
    if value == "auto":
        return "auto"
    if type(value) is int and 1 <= value <= MAX_FIXED_BATCH_SIZE:
        return value
    raise ValueError(f"batch_size must be an integer from 1 to {MAX_FIXED_BATCH_SIZE} or \"auto\", not {value!r}")


def is_out_of_memory(exc: BaseException) -> bool:
    import torch
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(p in str(exc).lower() for p in _OOM_PHRASES)


def memory_figures(device: str) -> str:
    """What the device had, for the author: peak allocated and total (GPU) or the process's RSS (CPU)."""
    import torch
    if str(device).startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        total = torch.cuda.get_device_properties(index).total_memory
        peak = torch.cuda.max_memory_allocated(index)
        name = torch.cuda.get_device_name(index)
        return f"peak {peak / 2**30:.2f} GiB allocated of {total / 2**30:.2f} GiB on {name}"
    import psutil
    return f"process resident memory {psutil.Process().memory_info().rss / 2**30:.2f} GiB on {device}"


def _release(device: str) -> None:
    import gc

    import torch
    gc.collect()
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


class BatchOutOfMemory(Exception):
    """A run ran out of memory at `batch_size` (the size in use: a number even when it was `auto`)."""

    def __init__(self, batch_size: int, cause: BaseException):
        super().__init__(f"out of memory at batch size {batch_size}: {cause}")
        self.batch_size, self.cause = batch_size, cause


def run_halving(call: Callable[[int | str], Any], batch_size: int | str, *, device: str,
                on_retry: Callable[[int], None] | None = None) -> tuple[Any, list]:
    """`call(batch_size)` until it fits: each BatchOutOfMemory halves the size it reports.

    Returns the result and the sizes tried, in order ("auto" first, where asked).
    """
    tried: list = []
    size = batch_size
    while True:
        tried.append(size)
        try:
            return call(size), tried
        except BatchOutOfMemory as exc:
            _release(device)
            if exc.batch_size <= 1:
                raise MemoryError(f"the model ran out of memory at batch size 1 ({memory_figures(device)}): it "
                                  f"does not fit this hardware class at this precision; try a lower precision "
                                  f"or a larger class") from exc.cause
            size = exc.batch_size // 2
            if on_retry is not None:
                on_retry(size)
