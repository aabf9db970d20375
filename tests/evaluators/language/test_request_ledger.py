"""A GPU path that holds up, shown on the CPU: real progress per request batch, batch size `auto`,
out-of-memory halving inside the run, and a killed run that resumes from its request cache.

Out of memory is simulated the only way a CPU allows: a forward hook on the real model raises
PyTorch's own OutOfMemoryError (the CUDA allocator's words) when a batch is larger than a limit."""
import os
import signal

import pytest
import torch

from core.catalog import get_suite
from core.config import get_settings
from evaluators.base import EvalSpec
from evaluators.language.lm_eval_evaluator import LmEvalEvaluator, resolve_task_config, run_simple_evaluate
from evaluators.loaders import load_causal_lm
from runners.eval_sandbox import EvalFailed, EvalProcess, EvalRequest
from tests.conftest import DATA_DIR
from tests.evaluators.language.small_sets import ITEMS, small_datasets, worker_spec  # noqa: F401

TASK = get_suite("language-core").task("arithmetic_mc")
REQUESTS = ITEMS * 4  # one loglikelihood per choice
EVALUATOR = LmEvalEvaluator()


def _spec(**args) -> EvalSpec:
    return worker_spec(EvalSpec(task=TASK.name, evaluator=TASK.evaluator, args={**TASK.args, **args},
                                primary_metric=TASK.primary_metric))


@pytest.fixture
def model(tiny_lm_dir):
    return load_causal_lm(tiny_lm_dir)


def memory_limit(model, largest_batch: int) -> list[int]:
    """Batches above `largest_batch` rows raise CUDA's out-of-memory error; returns the batch sizes seen."""
    seen: list[int] = []

    def hook(module, args, kwargs):
        ids = args[0] if args else kwargs["input_ids"]
        seen.append(ids.shape[0])
        if ids.shape[0] > largest_batch:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (batch {ids.shape[0]})")
    model.model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def scores(outcome) -> dict:
    return {m.name: m.value for m in outcome.metrics}


def test_progress_moves_per_request_batch(model, small_datasets):
    steps = []
    outcome = EVALUATOR.evaluate(model, _spec(batch_size=4), lambda stage, f: steps.append((stage, f)))
    infer = [f for stage, f in steps if stage == "infer"]
    assert len(set(infer)) > 3, steps  # not "infer 0%" until the end
    assert infer == sorted(infer) and infer[0] == 0.0 and infer[-1] == pytest.approx(0.9)
    assert outcome.provenance["requests"] == {"computed": REQUESTS, "reused": 0, "resumed": 0}


def test_out_of_memory_halves_the_batch_and_completes(model, small_datasets):
    config, _ = resolve_task_config(TASK.args, datasets_dir=get_settings().datasets_dir)
    expected = run_simple_evaluate(model, config, batch_size=4, seed=0)["results"][config["task"]]

    seen = memory_limit(model, 4)
    outcome = EVALUATOR.evaluate(model, _spec(batch_size=16), lambda *a: None)

    assert outcome.provenance["batch_sizes_tried"] == [16, 8, 4]
    assert max(seen) == 16 and seen[-1] <= 4
    assert scores(outcome) == {"acc": expected["acc,none"], "acc_norm": expected["acc_norm,none"]}


def test_batch_size_auto_finds_what_fits(model, small_datasets):
    seen = memory_limit(model, 8)
    outcome = EVALUATOR.evaluate(model, _spec(batch_size="auto", max_batch_size=32), lambda *a: None)
    assert outcome.provenance["batch_sizes_tried"] == ["auto"]
    assert 32 in seen and max(s for s in seen[seen.index(8):]) <= 8  # probed 32, 16, then ran at 8
    assert outcome.provenance["requests"]["computed"] == REQUESTS


def test_out_of_memory_at_batch_1_is_the_authors_error_with_the_memory_figures(model, small_datasets):
    memory_limit(model, 0)
    with pytest.raises(MemoryError, match=r"batch size 1 \(process resident memory \d+\.\d\d GiB on cpu\)"):
        EVALUATOR.evaluate(model, _spec(batch_size=2), lambda *a: None)


@pytest.mark.parametrize("batch_size", [0, -1, 10**6, "16", "auto; rm -rf /", 2.5, True])
def test_a_batch_size_that_is_neither_a_count_nor_auto_is_refused(model, small_datasets, batch_size):
    with pytest.raises(ValueError, match="batch_size must be"):
        EVALUATOR.evaluate(model, _spec(batch_size=batch_size), lambda *a: None)


def test_a_killed_run_resumes_from_its_request_cache(tiny_lm_dir, small_datasets):
    """The real evaluation child (bubblewrap where available), SIGKILLed halfway as a crashed worker would be:
    the retry answers what the first attempt finished from the run's cache and computes only the rest."""
    process = EvalProcess()
    request = EvalRequest("causal-lm", str(tiny_lm_dir), "float32", "cpu", _spec(batch_size=4))
    run_key = ("0b1c2d3e-0000-4000-8000-000000000001", "0b1c2d3e-0000-4000-8000-000000000002")
    killed_at = []

    def kill_halfway(stage: str, fraction: float) -> None:
        if stage == "infer" and fraction >= 0.45 and not killed_at:
            killed_at.append(fraction)
            os.kill(process.proc.pid, signal.SIGKILL)

    run = dict(memory_cap_bytes=8 * 2**30, timeout_s=600, is_cancelled=lambda: False, run_key=run_key)
    try:
        with pytest.raises(EvalFailed) as died:
            process.run(request, on_progress=kill_halfway, **run)
        assert died.value.kind == "infra"  # retried by RQ, on this worker or another
        cache = DATA_DIR / "request-cache" / run_key[0] / run_key[1]
        assert (cache / "lm-eval-requests.sqlite").is_file()

        resumed_steps = []
        outcome, _ = process.run(request, on_progress=lambda s, f: resumed_steps.append((s, f)), **run)
    finally:
        process.kill()

    done = outcome.provenance["requests"]
    assert done["resumed"] >= 0.4 * REQUESTS and done["computed"] == REQUESTS - done["reused"] < 0.6 * REQUESTS
    first_infer = next(f for s, f in resumed_steps if s == "infer" and f > 0)
    assert first_infer >= 0.4 * 0.9  # it starts near where the killed attempt stopped, not at 0
    fresh = EVALUATOR.evaluate(load_causal_lm(tiny_lm_dir), _spec(batch_size=4), lambda *a: None)
    assert scores(outcome) == pytest.approx(scores(fresh), abs=1e-9)
    assert not cache.exists()  # a finished run leaves no cache behind
