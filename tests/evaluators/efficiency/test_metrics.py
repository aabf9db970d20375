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
