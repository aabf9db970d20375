"""efficiency-inference on the tiny model: sane figures, each with its unit and dispersion."""
import pytest

from evaluators.base import EvalSpec
from evaluators.registry import get_evaluator

SMALL = {"batch_sizes": [1, 2], "prompt_lengths": [8, 16], "new_tokens": 4, "warmup": 1, "min_warmup_s": 0.0,
         "rounds": 3, "min_block_s": 0.0, "min_trials": 2, "threads": 1}


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_dir):
    from evaluators.loaders import load_causal_lm
    return load_causal_lm(tiny_lm_dir)


def run(tiny_lm, args):
    stages = []
    spec = EvalSpec(task="inference", evaluator="efficiency-inference", args=args, primary_metric="tokens_per_s")
    outcome = get_evaluator("efficiency-inference").evaluate(tiny_lm, spec, lambda s, f: stages.append(f))
    return outcome, stages


def test_inference_figures_are_sane_and_carry_units(tiny_lm):
    import torch
    threads_before = torch.get_num_threads()
    outcome, stages = run(tiny_lm, SMALL)
    by_name = {mv.name: mv for mv in outcome.metrics}
    assert [mv.name for mv in outcome.metrics if mv.primary] == ["tokens_per_s"]
    assert all(mv.unit for mv in outcome.metrics)
    assert by_name["tokens_per_s"].unit == "tokens/s" and by_name["tokens_per_s"].value > 0
    assert by_name["tokens_per_s"].stderr is not None and by_name["tokens_per_s"].n == 6  # 3 rounds × 2 trials
    lat = [by_name[f"latency_p{q}_ms"].value for q in (50, 90, 99)]
    assert 0 < lat[0] <= lat[1] <= lat[2] < 10_000 and by_name["latency_p50_ms"].higher_is_better is False
    assert by_name["ttft_ms"].value > 0 and by_name["tpot_ms"].value > 0
    params = sum(p.numel() for p in tiny_lm.model.parameters())
    assert by_name["params"].value == params
    assert by_name["flops_per_token"].value >= 2 * params
    assert 0 < by_name["mfu"].value < 1.5 and by_name["mfu"].unit == "fraction"
    assert "mfu_nominal" not in by_name and "energy_per_token_j" not in by_name  # CPU: no nominal peak, no NVML
    assert by_name["peak_memory_bytes"].value > 10 * 2**20
    eff = outcome.provenance["efficiency"]
    assert eff["threads"] == 1 and torch.get_num_threads() == threads_before  # pinned, then restored
    assert eff["device"] == "cpu" and eff["timer"] == "perf_counter" and eff["dtype"] == "float32"
    assert eff["batch_sizes"] == [1, 2] and eff["rounds"] == 3 and eff["min_trials"] == 2 and eff["kernels"] == "torch"
    assert eff["peak"]["measured_tflops"] > 0 and eff["peak"]["nominal_tflops"] is None
    assert len(eff["grid"]) == 4 and eff["reference"] == {"interactive": [1, 8], "batched": [2, 16]}
    point = eff["grid"][0]["latency_s"]
    assert point["min"] <= point["median"] <= point["max"] and point["n"] == 6 and point["blocks"] == 3
    assert point["stderr_method"].startswith("between block medians")
    # The host's own speed, timed once per round, beside the figures.
    probe = eff["host_probe"]
    assert len(probe["per_round_us"]) == 3 and 0 < probe["min_us"] <= probe["median_us"] <= probe["max_us"]
    assert stages == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])  # before each of the 3 rounds, then done


def test_inference_generation_matches_greedy_generate(tiny_lm):
    """The timed KV-cache loop decodes what `generate` decodes: we time real generation, not a stand-in."""
    import torch

    from evaluators.efficiency.inference import _generate_steps
    from evaluators.efficiency.runtime import WallTimer
    ids = torch.randint(0, tiny_lm.model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    tokens = []

    class Recording(WallTimer):
        def time(self, fn):
            result, seconds = super().time(fn)
            tokens.append(result[1])
            return result, seconds
    with torch.inference_mode():
        steps = _generate_steps(torch, tiny_lm.model, ids, 5, Recording())
        expected = tiny_lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5,
                                          do_sample=False, pad_token_id=0)[:, 8:]
    assert len(steps) == 5 and all(s > 0 for s in steps)
    assert torch.equal(torch.cat(tokens, dim=1), expected)


@pytest.mark.parametrize("args, message", [({"trials": 3}, "unknown"), ({"rounds": 0}, "rounds"),
                                           ({"min_trials": 0}, "min_trials"),
                                           ({"prompt_lengths": [200]}, "positions")])
def test_inference_rejects_bad_args_in_words(tiny_lm, args, message):
    with pytest.raises(ValueError, match=message):
        run(tiny_lm, {**SMALL, **args})


def test_energy_per_token_divides_the_metered_joules_by_every_token_generated_meanwhile(tiny_lm, monkeypatch):
    """NVML stands in here (CPU has none): the meter starts after the warm-ups, and the joules it reads
    are divided by every token generated while it ran — timed trials and each block's settling trial."""
    from evaluators.efficiency import inference
    events = []

    class FakeMeter:
        def __init__(self, device, torch):
            pass

        def start(self):
            events.append("start")

        def joules(self):
            events.append("read")
            return 12.0
    monkeypatch.setattr(inference.rt, "EnergyMeter", FakeMeter)
    outcome, _ = run(tiny_lm, SMALL)
    by_name = {mv.name: mv for mv in outcome.metrics}
    grid, eff = outcome.provenance["efficiency"]["grid"], outcome.provenance["efficiency"]
    tokens = sum(p["batch"] * eff["new_tokens"] * (p["tokens_per_s"]["n"] + eff["rounds"]) for p in grid)
    assert events == ["start", "read"]
    assert by_name["energy_per_token_j"].value == pytest.approx(12.0 / tokens)
    assert by_name["energy_per_token_j"].unit == "J/token" and not by_name["energy_per_token_j"].higher_is_better
