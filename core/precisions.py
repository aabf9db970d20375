"""Precisions a submission may ask for: what each costs per parameter and what hardware runs it.

The parameter cap of a precision scales with its bytes per parameter: a deployment sets the float32
cap (and may set bfloat16/float16 caps, as before); 8- and 4-bit caps follow from the float32 one,
so an 8-bit model may be four times as large as a float32 one in the same memory. 8- and 4-bit
weights are bitsandbytes kernels: a hardware class runs them only when one of its workers has
shown a CUDA device with bitsandbytes installed (runners/hardware.py records both).
"""
from core.config import Settings

BYTES_PER_PARAMETER = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}
QUANTIZED = ("int8", "int4")
# The GEMM a worker measured in each unquantized precision: runners/hardware.py writes its profile with the
# evaluators' short names (evaluators/precision.py DTYPE_KEYS, which the evaluators may read and core may
# not import); tests/runners/test_eval_spec.py checks the two agree.
MEASURED_KEYS = {"float32": "gemm_tflops_fp32", "bfloat16": "gemm_tflops_bf16", "float16": "gemm_tflops_fp16"}


def param_cap(settings: Settings, precision: str) -> int:
    """The largest parameter count accepted at this precision."""
    configured = getattr(settings, f"max_params_{precision}", None)
    if configured is not None:
        return int(configured)
    return int(settings.max_params_float32 * BYTES_PER_PARAMETER["float32"] / BYTES_PER_PARAMETER[precision])


def runs_quantized(versions: dict) -> bool:
    """Whether a worker with these library versions runs bitsandbytes 8/4-bit weights: a CUDA device and the package."""
    return bool(versions.get("cuda")) and bool(versions.get("bitsandbytes"))


def supported_by(profiles: list[tuple[dict, dict]]) -> set[str]:
    """The precisions some worker of a class can run, from its (measured, versions) profiles."""
    supported = {p for p, key in MEASURED_KEYS.items() if any(key in measured for measured, _ in profiles)}
    if any(runs_quantized(versions) for _, versions in profiles):
        supported.update(QUANTIZED)
    return supported


def refusal(precision: str, hardware_class: str, supported: set[str] | None) -> str | None:
    """Why a class cannot run this precision, or None. A class none of whose workers has reported yet runs
    the unquantized precisions (as before); 8/4-bit waits until a worker has shown it can."""
    if supported is None:
        if precision in QUANTIZED:
            return (f"no {hardware_class} worker has shown a CUDA device with bitsandbytes yet; {precision} weights "
                    f"run only on GPU hardware classes")
        return None
    if precision not in supported:
        hint = "; 8/4-bit weights run only on GPU hardware classes" if precision in QUANTIZED else ""
        return f"hardware class {hardware_class!r} cannot run {precision}; its workers support: " \
               f"{', '.join(sorted(supported))}{hint}"
    return None
