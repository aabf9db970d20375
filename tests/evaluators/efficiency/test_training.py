"""efficiency-training on the tiny model: throughput, MFU, the loss check, and the loaded model untouched."""
import pytest

from evaluators.base import EvalSpec
from evaluators.registry import get_evaluator


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_dir):
    from evaluators.loaders import load_causal_lm
    return load_causal_lm(tiny_lm_dir)


def test_training_figures_are_sane_and_the_loaded_model_is_untouched(tiny_lm):
    import torch
    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    args = {"steps": 6, "warmup_steps": 1, "batch_size": 4, "seq_len": 32, "threads": 1}
    spec = EvalSpec(task="training", evaluator="efficiency-training", args=args, primary_metric="train_tokens_per_s")
    outcome = get_evaluator("efficiency-training").evaluate(tiny_lm, spec, lambda s, f: None)
    by_name = {mv.name: mv for mv in outcome.metrics}
    assert [mv.name for mv in outcome.metrics if mv.primary] == ["train_tokens_per_s"]
    assert all(mv.unit for mv in outcome.metrics)
    tps, sps = by_name["train_tokens_per_s"].value, by_name["train_samples_per_s"].value
    assert tps == pytest.approx(sps * 32) and by_name["train_tokens_per_s"].n == 5  # warm-up step left out
    # Pure compute ≥ no-eval ≥ raw: each adds more of the wall time to the denominator.
    assert (by_name["throughput_pure_compute_samples_per_s"].value >= by_name["throughput_no_eval_samples_per_s"].value
            >= by_name["throughput_raw_samples_per_s"].value > 0)
    assert by_name["e2e_time_s"].unit == "s" and by_name["e2e_time_s"].value > 0
    params = sum(p.numel() for p in tiny_lm.model.parameters())
    peak = outcome.provenance["efficiency"]["peak"]["measured_tflops"]
    assert by_name["train_mfu"].value == pytest.approx(6 * params * tps / (peak * 1e12))
    assert by_name["loss_decreased"].value == 1.0  # an untrained model learns the unigram stats at once
    assert by_name["eval_loss_after"].value < by_name["eval_loss_before"].value
    assert by_name["train_loss_last"].value < by_name["train_loss_first"].value
    eff = outcome.provenance["efficiency"]
    assert eff["threads"] == 1 and eff["steps"] == 6 and len(eff["step_s"]) == 6 and eff["optimizer"] == "AdamW"
    assert eff["samples_per_s"]["min"] <= eff["samples_per_s"]["median"] <= eff["samples_per_s"]["max"]
    # The 5 timed steps in the default 4 consecutive blocks; the stderr is between their medians.
    assert eff["blocks"] == 4 and eff["samples_per_s"]["blocks"] == 4
    assert len(eff["host_probe"]["per_round_us"]) == 5  # 5 timed steps in 4 blocks: a probe every step
    assert eff["samples_per_s"]["stderr_method"].startswith("between block medians")
    after = tiny_lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and not tiny_lm.model.training


@pytest.mark.parametrize("args, message", [({"steps": 2, "warmup_steps": 2}, "steps > warmup_steps"),
                                           ({"steps": 4, "warmup_steps": 1, "blocks": 4}, "blocks"),
                                           ({"blocks": 0}, "blocks"), ({"trials": 3}, "unknown")])
def test_training_rejects_bad_args_in_words(tiny_lm, args, message):
    spec = EvalSpec(task="training", evaluator="efficiency-training", args=args)
    with pytest.raises(ValueError, match=message):
        get_evaluator("efficiency-training").evaluate(tiny_lm, spec, lambda s, f: None)


def test_timed_steps_are_cut_into_consecutive_blocks():
    from evaluators.efficiency.training import consecutive_blocks
    assert consecutive_blocks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert consecutive_blocks([1, 2], 2) == [[1], [2]] and consecutive_blocks([1, 2, 3], 1) == [[1, 2, 3]]
