"""The GPU path's choices, checked where a CPU can check them: device lists, 8/4-bit refused off CUDA,
the backend allow-list and its record in provenance."""
import pytest

from core.catalog import get_suite
from evaluators.base import EvalSpec
from evaluators.devices import parse_devices, spread_kwargs
from evaluators.language.backends import parse_backend
from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
from evaluators.loaders import load_causal_lm
from tests.evaluators.language.small_sets import small_datasets, worker_spec  # noqa: F401

TASK = get_suite("language-core").task("arithmetic_mc")


def _spec(**args) -> EvalSpec:
    return worker_spec(EvalSpec(task=TASK.name, evaluator=TASK.evaluator, args={**TASK.args, **args},
                                primary_metric=TASK.primary_metric))


def test_a_worker_device_is_one_device_or_a_list_of_gpus():
    assert parse_devices("cpu") == ["cpu"] and parse_devices("cuda:1") == ["cuda:1"]
    assert parse_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert spread_kwargs("cpu") == {} and spread_kwargs("cuda:0") == {}
    for bad in ("cuda:0;rm -rf /", "cpu,cuda:0", "cuda:0,cuda:0", "", "gpu", "cuda:0,,cuda:1", "/dev/nvidia0"):
        with pytest.raises(ValueError, match="device"):
            parse_devices(bad)


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_8_and_4_bit_weights_are_refused_off_cuda(tiny_lm_dir, precision):
    with pytest.raises(ValueError, match="need a CUDA device"):
        load_causal_lm(tiny_lm_dir, precision=precision, device="cpu")


def test_the_backend_is_an_allow_listed_name_recorded_in_provenance(tiny_lm_dir, small_datasets):
    evaluator = LmEvalEvaluator()
    model = load_causal_lm(tiny_lm_dir)
    for bad in ("tensorrt", "vllm --trust-remote-code", 1):
        with pytest.raises(ValueError, match="backend must be one of hf, vllm"):
            parse_backend(bad)
    with pytest.raises(ValueError, match="runs on GPU hardware classes"):
        evaluator.evaluate(model, _spec(backend="vllm"), lambda *a: None)
    outcome = evaluator.evaluate(model, _spec(backend="hf"), lambda *a: None)
    assert outcome.provenance["backend"] == "hf" and "vllm" not in outcome.provenance["libraries"]
