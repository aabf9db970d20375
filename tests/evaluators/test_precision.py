"""One table from a precision's name to torch's dtype and the short key of the GEMM figures."""
import pytest
import torch

from evaluators.efficiency.host import cpu_name, gemm_size, measure_gemm_tflops
from evaluators.precision import dtype_key, torch_dtype


def test_every_precision_has_its_torch_dtype_and_quantized_weights_compute_in_bfloat16():
    assert [torch_dtype(p) for p in ("float32", "bfloat16", "float16", "int8", "int4")] == \
        [torch.float32, torch.bfloat16, torch.float16, torch.bfloat16, torch.bfloat16]


@pytest.mark.parametrize("name", ["float64", "fp32", "__class__", ""])
def test_an_unknown_precision_is_refused_by_name_never_looked_up_on_torch(name):
    with pytest.raises(ValueError, match="unknown precision"):
        torch_dtype(name)


def test_the_short_keys_are_those_of_the_worker_profile():
    assert [dtype_key(p) for p in ("float32", "bfloat16", "float16", "int8")] == ["fp32", "bf16", "fp16", "int8"]


def test_the_host_helpers_measure_here():
    assert cpu_name() and gemm_size("cpu") == 512 and gemm_size("cuda:0") == 4096
    assert measure_gemm_tflops(torch, "cpu", torch_dtype("float32"), n=64, repeats=2) > 0
