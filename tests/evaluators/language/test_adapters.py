"""PEFT LoRA adapters on a pinned base: the adapter on its base scores exactly as the merged weights do,
and adapter_config.json is read through an allow-list (peft never reads the folder or a hub name)."""
import json
import shutil

import pytest

from core.catalog import get_suite
from core.errors import UnsafeCheckpointError
from evaluators.base import EvalSpec
from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
from evaluators.loaders import load_causal_lm
from tests.conftest import DATA_DIR
from tests.evaluators.language.small_sets import small_datasets, worker_spec  # noqa: F401

TASK = get_suite("language-core").task("arithmetic_mc")
SPEC = EvalSpec(task=TASK.name, evaluator=TASK.evaluator, args=dict(TASK.args), primary_metric=TASK.primary_metric)


@pytest.fixture(scope="module")
def adapter_and_merged(tiny_lm_dir):
    """A LoRA adapter with non-zero weights (saved by peft itself) and the same adapter merged into the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    adapter, merged = DATA_DIR / "models" / "tiny-lora", DATA_DIR / "models" / "tiny-lora-merged"
    for folder in (adapter, merged):
        shutil.rmtree(folder, ignore_errors=True)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir))
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"],
                                                 fan_in_fan_out=True, init_lora_weights=False,
                                                 task_type="CAUSAL_LM"))
    peft_model.save_pretrained(str(adapter))
    peft_model.merge_and_unload().save_pretrained(str(merged))
    AutoTokenizer.from_pretrained(str(tiny_lm_dir)).save_pretrained(str(merged))
    return adapter, merged


def _choice_lls(outcome) -> list:
    return [ll for s in outcome.samples for ll in s.metrics["choice_loglikelihoods"]]


def test_an_adapter_on_its_base_scores_as_the_merged_weights(tiny_lm_dir, adapter_and_merged, small_datasets):
    adapter, merged = adapter_and_merged
    evaluator = LmEvalEvaluator()
    spec = worker_spec(SPEC)
    on_base = evaluator.evaluate(load_causal_lm(adapter, base=tiny_lm_dir), spec, lambda *a: None)
    as_merged = evaluator.evaluate(load_causal_lm(merged), spec, lambda *a: None)
    plain_base = evaluator.evaluate(load_causal_lm(tiny_lm_dir), spec, lambda *a: None)

    assert {m.name: m.value for m in on_base.metrics} == {m.name: m.value for m in as_merged.metrics}
    assert _choice_lls(on_base) == pytest.approx(_choice_lls(as_merged), abs=1e-4)
    assert _choice_lls(on_base) != pytest.approx(_choice_lls(plain_base), abs=1e-3)  # the adapter does something


def _hostile(adapter, tmp_path, **changes):
    folder = tmp_path / "adapter"
    shutil.copytree(adapter, folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config.update(changes)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("changes, words", [
    ({"auto_mapping": {"base_model_class": "evil.Backdoor", "parent_library": "evil"}}, "auto_mapping"),
    ({"peft_type": "PROMPT_TUNING"}, "LoRA adapters only"),
    ({"target_modules": ".*(c_attn|(a+)+$)"}, "target_modules"),
    ({"megatron_config": {"tensor_model_parallel_size": 2}}, "megatron_config"),
    ({"layers_to_transform": "0; import os"}, "layers_to_transform"),
    ({"custom_forward": "module.path"}, "'custom_forward' is not a LoRA field"),
])
def test_a_hostile_adapter_config_is_refused_before_peft_reads_it(tiny_lm_dir, adapter_and_merged, tmp_path,
                                                                  changes, words):
    folder = _hostile(adapter_and_merged[0], tmp_path, **changes)
    with pytest.raises(UnsafeCheckpointError, match="adapter_config.json") as caught:
        load_causal_lm(folder, base=tiny_lm_dir)
    assert words in str(caught.value)


def test_an_adapter_needs_its_pinned_base_and_only_its_base(tiny_lm_dir, adapter_and_merged, tmp_path):
    adapter = adapter_and_merged[0]
    with pytest.raises(UnsafeCheckpointError, match="none was given"):
        load_causal_lm(adapter)
    both = tmp_path / "both"
    shutil.copytree(adapter, both)
    shutil.copy(tiny_lm_dir / "config.json", both / "config.json")
    with pytest.raises(UnsafeCheckpointError, match="either a model"):
        load_causal_lm(both, base=tiny_lm_dir)


def test_an_adapter_with_another_tokenizer_than_its_base_is_refused(tiny_lm_dir, adapter_and_merged, tmp_path):
    from evaluators.demo_models.causal_lm import build_tokenizer

    folder = tmp_path / "adapter"
    shutil.copytree(adapter_and_merged[0], folder)
    build_tokenizer(["entirely different words for another vocabulary"] * 50, vocab_size=300).save_pretrained(folder)
    with pytest.raises(UnsafeCheckpointError, match="tokenizer differs from its base"):
        load_causal_lm(folder, base=tiny_lm_dir)


def test_an_adapter_runs_in_the_evaluation_child_with_its_base_bound_read_only(tiny_lm_dir, adapter_and_merged,
                                                                              small_datasets):
    """The worker's path: the child (bubblewrap where available) sees the adapter and its base, and nothing else."""
    from runners.eval_sandbox import EvalProcess, EvalRequest

    adapter, merged = adapter_and_merged
    process = EvalProcess()
    try:
        outcome, _ = process.run(EvalRequest("causal-lm", str(adapter), "float32", "cpu", SPEC, base=str(tiny_lm_dir)),
                                 memory_cap_bytes=8 * 2**30, timeout_s=600, on_progress=lambda *a: None,
                                 is_cancelled=lambda: False)
    finally:
        process.kill()
    as_merged = LmEvalEvaluator().evaluate(load_causal_lm(merged), worker_spec(SPEC), lambda *a: None)
    assert {m.name: m.value for m in outcome.metrics} == {m.name: m.value for m in as_merged.metrics}


def test_a_base_named_for_a_full_model_is_refused(tiny_lm_dir, adapter_and_merged):
    with pytest.raises(UnsafeCheckpointError, match="not a LoRA adapter"):
        load_causal_lm(adapter_and_merged[1], base=tiny_lm_dir)
