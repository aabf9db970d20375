"""What the runner puts in an EvalSpec for the child: the worker's data folders, the checked chat
options and its own context, all as plain JSON (the child reads no settings)."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.config import get_settings
from core.errors import ErrorKind, EvalFailed
from evaluators.base import BUNDLED_DATASETS_DIR, EvalSpec
from runners.child_protocol import decode, encode, request_to_json, spec_from_json
from runners.eval_sandbox import EvalRequest, with_worker_folders
from runners.jobs import WorkerContext, current_context, local_context, serve_as

SPEC = EvalSpec(task="world_facts", evaluator="lm-eval", args={"task_yaml": "world_facts.yaml"},
                chat={"apply_chat_template": True, "fewshot_as_multiturn": False, "system_instruction": "Be brief."})


def test_the_worker_fills_the_folders_its_child_is_shown():
    settings = get_settings()
    spec = with_worker_folders(SPEC, settings)
    assert spec.datasets_dir == str(settings.datasets_dir)
    assert spec.dataset_mirror_dir == str(settings.mirror_folder)
    assert spec.clip_benchmark_dir == str(settings.data_dir / "clip_benchmark")
    assert spec.datasets_folder == settings.datasets_dir


def test_folders_a_spec_names_are_kept(tmp_path):
    own = replace(SPEC, datasets_dir=str(tmp_path / "sets"), dataset_mirror_dir=str(tmp_path / "mirror"),
                  clip_benchmark_dir=str(tmp_path / "clip"))
    assert with_worker_folders(own, get_settings()) == own


def test_outside_a_worker_a_spec_reads_the_bundled_sets_and_names_no_mirror():
    assert SPEC.datasets_folder == Path(BUNDLED_DATASETS_DIR) and (SPEC.datasets_folder / "lm_eval_tasks").is_dir()
    assert SPEC.dataset_mirror_dir is None and SPEC.clip_benchmark_dir is None


def test_the_spec_crosses_to_the_child_as_json_and_comes_back_equal(tmp_path):
    spec = with_worker_folders(replace(SPEC, datasets_dir=tmp_path), get_settings())  # a Path is kept as text
    assert spec.datasets_dir == str(tmp_path)
    request = EvalRequest("causal-lm", "/checkpoints/x", "float32", "cpu", spec)
    sent = decode(encode(["eval", request_to_json(request)]))[1]
    assert json.loads(json.dumps(sent)) == sent
    assert spec_from_json(sent["spec"]) == spec


def test_eval_failed_kinds_are_the_error_kind_enum():
    assert EvalFailed("user", "x").kind is ErrorKind.user and EvalFailed(ErrorKind.infra, "y").kind == "infra"
    with pytest.raises(ValueError):
        EvalFailed("somebody else's", "z")


def test_the_worker_context_is_set_once_and_read_by_every_job():
    assert current_context() == local_context()  # outside a worker: this host and process, on the CPU
    try:
        serve_as(WorkerContext(name="cpu@host:1", device="cuda:0", profile_id=7))
        assert current_context() == WorkerContext(name="cpu@host:1", device="cuda:0", profile_id=7)
    finally:
        serve_as(None)
    assert current_context().device == "cpu" and current_context().profile_id is None


def test_the_api_reads_the_gemm_figures_under_the_names_the_worker_writes_them():
    from core.precisions import MEASURED_KEYS
    from evaluators.precision import DTYPE_KEYS
    assert MEASURED_KEYS == {p: f"gemm_tflops_{key}" for p, key in DTYPE_KEYS.items()}
