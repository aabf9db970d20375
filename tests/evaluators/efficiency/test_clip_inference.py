"""efficiency-clip on the tiny CLIP: sane figures with units and dispersion, a complete grid, FLOPs
that match the architecture's arithmetic, and MFU against the peak the provenance names."""
import types

import pytest

from evaluators.base import EvalSpec
from evaluators.efficiency import clip_inference as ci
from evaluators.efficiency import runtime as rt
from evaluators.demo_models.clip import TINY_CONFIG
from evaluators.registry import get_evaluator

SMALL = {"batch_sizes": [1, 4, 8], "warmup": 1, "min_warmup_s": 0.0, "rounds": 2, "min_block_s": 0.0, "min_trials": 2,
         "threads": 1}


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir):
    from evaluators.loaders import load
    return load("clip", tiny_clip_dir)


def run(tiny_clip, args, hardware=None):
    stages = []
    spec = EvalSpec(task="inference", evaluator="efficiency-clip", args=args, primary_metric="images_per_s",
                    hardware=hardware)
    outcome = get_evaluator("efficiency-clip").evaluate(tiny_clip, spec, lambda s, f: stages.append(f))
    return outcome, {mv.name: mv for mv in outcome.metrics}, stages


def tower_flops(tokens: int, width: int, layers: int, mlp_ratio: float) -> int:
    """A transformer tower's forward FLOPs: 2 per multiply-add of the QKV, output and MLP projections,
    and of the attention scores and weighted sum (2 · tokens² · width per layer)."""
    hidden = int(width * mlp_ratio)
    per_token = 3 * width * width + width * width + 2 * width * hidden
    return 2 * layers * (tokens * per_token + 2 * tokens * tokens * width)


def tiny_flops() -> tuple[int, int]:
    v, t, embed = TINY_CONFIG["vision_cfg"], TINY_CONFIG["text_cfg"], TINY_CONFIG["embed_dim"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    image = (2 * patches * 3 * v["patch_size"] ** 2 * v["width"]  # patch embedding convolution
             + tower_flops(patches + 1, v["width"], v["layers"], v["mlp_ratio"])  # + the class token
             + 2 * v["width"] * embed)  # projection into the joint space
    text = tower_flops(t["context_length"], t["width"], t["layers"], t["mlp_ratio"]) + 2 * t["width"] * embed
    return image, text


def test_clip_figures_are_sane_complete_and_carry_units(tiny_clip):
    import torch
    threads_before = torch.get_num_threads()
    outcome, by_name, stages = run(tiny_clip, SMALL)
    assert [mv.name for mv in outcome.metrics if mv.primary] == ["images_per_s"]
    assert all(mv.unit for mv in outcome.metrics)
    units = {"images_per_s": "images/s", "texts_per_s": "texts/s", "image_latency_p50_ms": "ms",
             "text_latency_p99_ms": "ms", "peak_memory_bytes": "bytes", "params": "params",
             "flops_per_image": "FLOP/image", "flops_per_text": "FLOP/text", "mfu": "fraction"}
    assert {name: by_name[name].unit for name in units} == units
    for name in ("images_per_s", "texts_per_s"):
        assert by_name[name].value > 0 and by_name[name].stderr is not None and by_name[name].n == 4  # 2 rounds × 2
        assert by_name[name].higher_is_better
    for side in ("image", "text"):
        lat = [by_name[f"{side}_latency_p{q}_ms"].value for q in (50, 90, 99)]
        assert 0 < lat[0] <= lat[1] <= lat[2] < 10_000
        assert not by_name[f"{side}_latency_p50_ms"].higher_is_better
    assert by_name["params"].value == sum(p.numel() for p in tiny_clip.model.parameters())
    assert by_name["peak_memory_bytes"].value > 10 * 2**20
    assert "mfu_nominal" not in by_name  # a CPU has no nominal peak
    eff = outcome.provenance["efficiency"]
    assert eff["threads"] == 1 and torch.get_num_threads() == threads_before  # pinned, then restored
    assert eff["device"] == "cpu" and eff["timer"] == "perf_counter" and eff["dtype"] == "float32"
    assert eff["device_name"] and eff["memory"]["method"] == "rss_sampled_peak" and eff["kernels"] == "torch"
    assert eff["image_size"] == [32, 32] and eff["context_length"] == TINY_CONFIG["text_cfg"]["context_length"]
    assert [p["batch"] for p in eff["grid"]] == [1, 4, 8] and eff["reference"] == {"interactive": 1, "batched": 8}
    for point in eff["grid"]:
        for key in ("image_latency_s", "text_latency_s", "images_per_s", "texts_per_s"):
            s = point[key]
            assert s["n"] == 4 and s["blocks"] == 2 and 0 < s["min"] <= s["median"] <= s["max"]
    # The headline figures are the reference points' medians.
    assert by_name["images_per_s"].value == eff["grid"][-1]["images_per_s"]["median"]
    assert by_name["image_latency_p50_ms"].value == pytest.approx(eff["grid"][0]["image_latency_s"]["p50"] * 1000)
    assert len(eff["host_probe"]["per_round_us"]) == 2  # the host's speed, once per round
    assert stages == [0.0, 0.5, 1.0]  # progress: before each of the 2 rounds, then done


def test_flops_are_the_architectures_arithmetic_and_mfu_divides_by_the_recorded_peak(tiny_clip):
    outcome, by_name, _ = run(tiny_clip, SMALL)
    image, text = tiny_flops()
    assert (by_name["flops_per_image"].value, by_name["flops_per_text"].value) == (image, text)
    peak = outcome.provenance["efficiency"]["peak"]
    assert peak["measured_source"] == "evaluator_gemm" and peak["measured_tflops"] > 0
    assert "no worker hardware profile" in peak["why"]
    assert by_name["mfu"].value == pytest.approx(image * by_name["images_per_s"].value / (peak["measured_tflops"] * 1e12))


def test_mfu_takes_the_workers_profile_peak_when_it_applies(tiny_clip):
    import torch
    profile = {"id": 7, "device_name": rt.device_name("cpu", torch), "versions": {"threads": 1},
               "measured": {"gemm_tflops_fp32": 0.5, "gemm_n": 512}}
    outcome, by_name, _ = run(tiny_clip, SMALL, hardware=profile)
    peak = outcome.provenance["efficiency"]["peak"]
    assert peak["measured_source"] == "worker_profile" and peak["profile_id"] == 7 and peak["measured_tflops"] == 0.5
    image, _ = tiny_flops()
    assert by_name["mfu"].value == pytest.approx(image * by_name["images_per_s"].value / 0.5e12)
    # Measured on all cores, it is no peak for a run pinned to one thread: the evaluator times its own.
    outcome, _, _ = run(tiny_clip, SMALL, hardware={**profile, "versions": {"threads": 2}})
    peak = outcome.provenance["efficiency"]["peak"]
    assert peak["measured_source"] == "evaluator_gemm" and "2 threads" in peak["why"]


def test_rates_and_latencies_come_from_the_timed_calls_in_interleaved_blocks():
    """The grid's arithmetic on scripted timings: a stand-in model and a timer that says how long."""
    import torch
    # Per side: each block starts with an untimed settling call (0.999 s, which must not count),
    # then two timed trials.
    durations = {"image": iter([0.999, 0.010, 0.020, 0.999, 0.040, 0.030]),
                 "text": iter([0.999, 0.005, 0.005, 0.999, 0.010, 0.010])}
    calls = []

    class ScriptedTimer:
        kind = "scripted"

        def time(self, fn):
            side = fn()
            return side, next(durations[side])

    def encoder(side):
        return lambda batch: calls.append((side, len(batch))) or side
    model = types.SimpleNamespace(encode_image=encoder("image"), encode_text=encoder("text"))
    cfg = {"warmup": 2, "min_warmup_s": 0.0, "rounds": 2, "min_block_s": 0.0, "min_trials": 2}
    (point,) = ci.measure_grid(torch, model, torch.zeros(8, 3, 2, 2), torch.zeros(8, 5), [4], cfg, ScriptedTimer(),
                               "cpu")
    # Warm-ups, then round 0 visits image then text, round 1 text then image: 1 settling + 2 timed each.
    assert calls == ([("image", 4)] * 2 + [("text", 4)] * 2 + [("image", 4)] * 3 + [("text", 4)] * 6
                     + [("image", 4)] * 3)
    assert point["image_latency_s"]["median"] == pytest.approx(0.025) and point["image_latency_s"]["max"] == 0.040
    assert point["image_latency_s"]["block_medians"] == [pytest.approx(0.015), pytest.approx(0.035)]
    assert point["images_per_s"]["median"] == pytest.approx((4 / 0.020 + 4 / 0.030) / 2)
    assert (point["images_per_s"]["min"], point["images_per_s"]["max"]) == (100.0, 400.0)
    assert point["texts_per_s"]["median"] == pytest.approx(600.0) and point["texts_per_s"]["n"] == 4
    # The standard error is between the two blocks' medians (800 and 400 texts/s), not the four trials.
    assert point["texts_per_s"]["stderr"] == pytest.approx(200.0)


def test_synthetic_inputs_are_seeded_and_what_the_models_preprocess_yields(tiny_clip):
    import torch
    images = ci.synthetic_images(torch, tiny_clip.preprocess, (32, 32), 3, seed=0)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert -1.0 <= images.min() < images.max() <= 1.0  # normalised with the model's mean/std of 0.5
    assert torch.equal(images, ci.synthetic_images(torch, tiny_clip.preprocess, (32, 32), 3, seed=0))
    assert not torch.equal(images, ci.synthetic_images(torch, tiny_clip.preprocess, (32, 32), 3, seed=1))
    assert ci.synthetic_texts(4, seed=0) == ci.synthetic_texts(4, seed=0) != ci.synthetic_texts(4, seed=1)


@pytest.mark.parametrize("args, message", [({"trials": 3}, "unknown"), ({"rounds": 0}, "rounds"),
                                           ({"batch_sizes": []}, "batch sizes"), ({"batch_sizes": [0]}, "batch sizes")])
def test_clip_rejects_bad_args_in_words(tiny_clip, args, message):
    with pytest.raises(ValueError, match=message):
        run(tiny_clip, {**SMALL, **args})
