"""The arithmetic of every efficiency figure, on synthetic timings (no clocks, no torch)."""
import math

import pytest

from evaluators.efficiency import metrics as m


def test_percentiles_interpolate_linearly_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert m.percentile(values, 0) == 1.0 and m.percentile(values, 100) == 4.0
    assert m.percentile(values, 50) == 2.5 == m.median(values)
    # rank = 3 * 0.9 = 2.7 → 3 + 0.7 * (4 − 3)
    assert m.percentile(values, 90) == pytest.approx(3.7)
    assert m.percentile(values, 99) == pytest.approx(3.97)
    assert m.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    with pytest.raises(ValueError):
        m.percentile([], 50)
    with pytest.raises(ValueError):
        m.percentile([1.0], 101)


def test_summary_has_median_min_max_and_stderr():
    s = m.summarize([0.010, 0.012, 0.011, 0.013, 0.014])
    assert s["n"] == 5 and s["median"] == pytest.approx(0.012)
    assert (s["min"], s["max"]) == (0.010, 0.014)
    # sample sd of 10..14 ms is sqrt(2.5) ms; stderr = sd / sqrt(5)
    assert s["stderr"] == pytest.approx(math.sqrt(2.5e-6) / math.sqrt(5))
    assert m.summarize([1.0])["stderr"] is None


def test_rates_and_ttft_tpot_from_step_timings():
    assert m.rate(512, 0.25) == 2048.0
    with pytest.raises(ValueError):
        m.rate(1, 0)
    # prefill 30 ms, then three decode steps of 10, 12, 14 ms
    ttft, tpot = m.ttft_tpot([0.030, 0.010, 0.012, 0.014])
    assert ttft == 0.030 and tpot == pytest.approx(0.012)
    assert m.ttft_tpot([0.030]) == (0.030, None)
    with pytest.raises(ValueError):
        m.ttft_tpot([])


def test_flops_per_token_and_mfu():
    assert m.flops_per_token(1_000_000) == 2_000_000
    # + 2 · n_layer · context · d_model
    assert m.flops_per_token(1_000_000, n_layer=2, context=32, d_model=64) == 2_000_000 + 2 * 2 * 32 * 64
    # 1e6 params, 1e3 tokens/s → 2e9 FLOP/s on a 1 TFLOPS peak = 0.2 %
    assert m.mfu(m.flops_per_token(1_000_000) * 1_000, 1.0) == pytest.approx(0.002)
    assert m.mfu(1e12, None) is None and m.mfu(1e12, 0) is None
    # training: 6 · N · tokens/s; 7e9 params at 3000 tokens/s on 989 TFLOPS ≈ 12.7 %
    assert m.training_flops_per_s(7_000_000_000, 3000) == 1.26e14
    assert m.mfu(m.training_flops_per_s(7_000_000_000, 3000), 989.0) == pytest.approx(0.1274, abs=1e-4)


def test_nominal_peaks_match_device_names_and_skip_cpus():
    assert m.nominal_peak_tflops("NVIDIA H200", "bfloat16") == 989.0
    assert m.nominal_peak_tflops("NVIDIA H100 PCIe", "float16") == 756.0
    assert m.nominal_peak_tflops("NVIDIA H100 80GB HBM3", "float32") == 67.0
    assert m.nominal_peak_tflops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312.0
    assert m.nominal_peak_tflops("NVIDIA A10", "float32") == 31.2
    assert m.nominal_peak_tflops("Tesla V100-SXM2-16GB", "bfloat16") is None  # no bf16 on Volta
    assert m.nominal_peak_tflops("AMD EPYC 7B13", "float32") is None


def test_block_summaries_pool_the_trials_and_take_the_stderr_between_blocks():
    # Two blocks at two speeds: the trials' own scatter is tiny, the blocks' is not.
    blocks = [[1.00, 1.01, 0.99], [2.00, 2.01, 1.99]]
    s = m.summarize_blocks(blocks)
    assert s["n"] == 6 and s["blocks"] == 2 and s["block_medians"] == [1.00, 2.00]
    assert s["median"] == pytest.approx(1.5) and (s["min"], s["max"]) == (0.99, 2.01)
    assert s["stderr"] == pytest.approx(math.sqrt(0.5) / math.sqrt(2))  # sd of {1, 2} over √2 blocks
    assert s["stderr"] > 10 * m.stderr_of_mean([1.00, 1.01, 0.99])
    assert s["stderr_method"].startswith("between block medians")
    # One block: the trials' own standard error; empty blocks are no blocks.
    single = m.summarize_blocks([[1.0, 2.0, 3.0], []])
    assert single["blocks"] == 1 and single["stderr"] == m.stderr_of_mean([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        m.summarize_blocks([[], []])


def test_effective_sample_size_shrinks_for_spells_and_not_for_alternation():
    # Independent-looking (alternating) values count fully; a series in two long spells (the host
    # slow for the first half, fast for the second) is worth far fewer values than its length.
    alternating = [1.0, 2.0] * 8
    spells = [1.0] * 8 + [2.0] * 8
    assert m.effective_sample_size(alternating) == 16
    assert 1.0 <= m.effective_sample_size(spells) < 4
    assert m.effective_sample_size([3.0] * 5) == 5 and m.effective_sample_size([1.0, 2.0]) == 2
    # So the spells' standard error is wider than the same values' taken as independent.
    s = m.summarize_blocks([[v] for v in spells])
    sd = m.stderr_of_mean(spells) * math.sqrt(16)
    assert s["stderr"] == pytest.approx(sd / math.sqrt(s["effective_blocks"])) and s["stderr"] > 2 * sd / 4
