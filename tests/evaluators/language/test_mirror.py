"""Standard lm-eval tasks scored offline from the dataset mirror, exactly as lm-eval scores them.

The mirror here is written by the pull command's own code (evaluators/language/mirror.py) with a
local stand-in for the hub that hands back fabricated rows shaped like three real datasets
(MMLU-Pro, MuSR, C-Eval); the tasks are lm-eval's own configs (leaderboard_mmlu_pro,
leaderboard_musr_murder_mysteries, ceval-valid_law), unchanged.
"""
import json
import random
import time
from pathlib import Path

import pytest

from core.dataset_mirror import DatasetMirrorError, dataset_folder, sha256_file, verify_mirror
from evaluators.base import EvalSpec
from evaluators.language.mirror import pull_tasks
from runners.eval_sandbox import EvalFailed, EvalProcess, EvalRequest

TASKS = ("leaderboard_mmlu_pro", "leaderboard_musr_murder_mysteries", "ceval-valid_law")
STANDIN_COMMIT = "f" * 40
WORDS = "the a model river stone city number red blue seven tree winter paper light north".split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _mmlu_pro(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        options = [_sentence(rng, 2) for _ in range(rng.choice((4, 10)))]
        answer = rng.randrange(len(options))
        rows.append({"question_id": i, "question": _sentence(rng, 6) + "?", "options": options,
                     "answer": "ABCDEFGHIJ"[answer], "answer_index": answer, "cot_content": "",
                     "category": "other", "src": "fabricated"})
    return rows


def _musr(rng: random.Random, n: int, k: int) -> list[dict]:
    rows = []
    for _ in range(n):
        choices = [f"{_sentence(rng, 1)} {i}" for i in range(k)]
        answer = rng.randrange(k)
        rows.append({"narrative": _sentence(rng, 20), "question": "Who did it?", "choices": str(choices),
                     "answer_index": answer, "answer_choice": choices[answer]})
    return rows


def _ceval(rng: random.Random, n: int) -> list[dict]:
    return [{"id": i, "question": "下列说法正确的是" + _sentence(rng, 3), "A": "甲", "B": "乙", "C": "丙", "D": "丁",
             "answer": rng.choice("ABCD"), "explanation": ""} for i in range(n)]


# (dataset_path, dataset_name) → {split: rows}: what the hub would serve for these three datasets.
FABRICATED = {
    ("TIGER-Lab/MMLU-Pro", None): lambda rng: {"test": _mmlu_pro(rng, 12), "validation": _mmlu_pro(rng, 5)},
    ("TAUR-Lab/MuSR", None): lambda rng: {"murder_mysteries": _musr(rng, 10, 2), "object_placements": _musr(rng, 8, 5),
                                          "team_allocation": _musr(rng, 8, 3)},
    ("ceval/ceval-exam", "law"): lambda rng: {"val": _ceval(rng, 10), "dev": _ceval(rng, 5)},
}


def standin_hub(real, path, name, revision, kwargs):
    """A local stand-in for the hub: the pull's fetch step, answering with fabricated rows."""
    import datasets
    if (path, name) not in FABRICATED:
        raise DatasetMirrorError(f"the stand-in hub has no {path}:{name}")
    splits = FABRICATED[(path, name)](random.Random(f"{path}:{name}"))
    return STANDIN_COMMIT, datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s, rows in splits.items()})


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager
    return TaskManager()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, task_manager) -> Path:
    root = tmp_path_factory.mktemp("mirror") / "dataset-mirror"
    pulled = pull_tasks(list(TASKS), root, fetch=standin_hub, task_manager=task_manager)
    assert sorted(p.key for p in pulled) == ["TAUR-Lab/MuSR", "TIGER-Lab/MMLU-Pro", "ceval/ceval-exam:law"]
    assert {p.status for p in pulled} == {"fetched"}
    root.chmod(0o755)  # the test's temp folder is private; a worker's mirror is readable by the child uid
    return root


def test_pull_writes_parquet_per_split_and_a_manifest_with_revision_and_sha256s(mirror, task_manager):
    folder = dataset_folder(mirror, "ceval/ceval-exam", "law")
    assert folder == mirror / "ceval" / "ceval-exam" / "law"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["revision"] == STANDIN_COMMIT
    assert sorted(manifest["splits"]) == ["dev", "val"]
    for split, entry in manifest["splits"].items():
        [file] = entry["files"]
        assert file["path"] == f"{split}/0000.parquet"
        assert file["sha256"] == sha256_file(folder / file["path"])
    assert manifest["splits"]["val"]["num_rows"] == 10
    assert (mirror / "TIGER-Lab" / "MMLU-Pro" / "default" / "test" / "0000.parquet").is_file()
    assert verify_mirror(mirror) == [("TAUR-Lab/MuSR", None), ("TIGER-Lab/MMLU-Pro", None),
                                     ("ceval/ceval-exam:law", None)]
    # A second pull keeps what verifies: nothing is fetched again.
    again = pull_tasks(["ceval-valid_law"], mirror, fetch=standin_hub, task_manager=task_manager)
    assert [(p.key, p.status) for p in again] == [("ceval/ceval-exam:law", "kept")]


def _direct_config(task: str, mirror: Path, task_manager) -> dict:
    """lm-eval's own config for the task, pointed at the mirror's Parquet files by lm-eval's own means
    (dataset_path: parquet + data_files), not through our load hook."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from core.dataset_mirror import verify_dataset
    config = load_yaml(task_manager.task_index[task].yaml_path)
    verified = verify_dataset(mirror, config["dataset_path"], config.get("dataset_name"))
    return {**config, "dataset_path": "parquet", "dataset_name": None,
            "dataset_kwargs": {"data_files": verified.data_files()}}


def _spec(task: str) -> EvalSpec:
    return EvalSpec(task=task, evaluator="lm-eval", args={"lm_eval_task": task, "batch_size": 4},
                    primary_metric="acc_norm" if "musr" in task else "acc")


def _run(process: EvalProcess, checkpoint: Path, task: str | EvalSpec):
    spec = _spec(task) if isinstance(task, str) else task
    return process.run(EvalRequest("causal-lm", str(checkpoint), "float32", "cpu", spec),
                       memory_cap_bytes=8 * 2**30, timeout_s=600, on_progress=lambda *a: None,
                       is_cancelled=lambda: False)[0]


@pytest.fixture
def mirror_env(mirror, monkeypatch):
    from core.config import get_settings
    monkeypatch.setenv("DATASET_MIRROR_DIR", str(mirror))
    get_settings.cache_clear()
    yield mirror
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def child():
    process = EvalProcess()
    yield process
    process.kill()


def test_tasks_run_offline_in_the_evaluation_child_and_score_what_lm_eval_scores(
        mirror_env, child, tiny_lm_dir, task_manager):
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from evaluators.loaders import load_causal_lm

    outcomes = {task: _run(child, tiny_lm_dir, task) for task in TASKS}

    loaded = load_causal_lm(tiny_lm_dir)
    for task in TASKS:
        lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4, device="cpu")
        direct = lm_eval.simple_evaluate(model=lm, tasks=[_direct_config(task, mirror_env, task_manager)],
                                         log_samples=True, task_manager=task_manager, random_seed=0,
                                         numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
        reported = direct["results"][task]
        stored = {m.name: m for m in outcomes[task].metrics}
        keys = [k for k in reported if "," in k and "_stderr," not in k]
        assert keys
        for key in keys:
            assert stored[key.split(",")[0]].value == reported[key], (task, key)
        assert stored[key.split(",")[0]].n == direct["n-samples"][task]["effective"]
        assert len(outcomes[task].samples) == direct["n-samples"][task]["effective"]

    # Each score names the exact data it was made on: the manifest's sha256 and the pinned commit.
    served = outcomes["ceval-valid_law"].provenance["dataset_mirror"]
    manifest = mirror_env / "ceval" / "ceval-exam" / "law" / "manifest.json"
    assert served == {"ceval/ceval-exam:law": {"revision": STANDIN_COMMIT, "manifest_sha256": sha256_file(manifest)}}
    assert outcomes["leaderboard_mmlu_pro"].provenance["num_fewshot"] == 5  # lm-eval's config, unchanged


def test_the_open_llm_v2_musr_task_is_normalised_per_subtask_and_clipped_at_chance(
        mirror_env, child, tiny_lm_dir, task_manager):
    """language-open-v2's musr task as the suite declares it (lm-eval's leaderboard_musr group), in the child."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from core.catalog import get_suite
    from evaluators.language.mirror import serving
    from evaluators.loaders import load_causal_lm

    task = get_suite("language-open-v2").task("musr")
    spec = EvalSpec(task=task.name, evaluator=task.evaluator, args={**task.args, "batch_size": 4},
                    primary_metric=task.primary_metric)
    outcome = _run(child, tiny_lm_dir, spec)

    loaded = load_causal_lm(tiny_lm_dir)
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4, device="cpu")
    with serving(spec.args, mirror_env):
        direct = lm_eval.simple_evaluate(model=lm, tasks=["leaderboard_musr"], task_manager=task_manager,
                                         random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                         fewshot_random_seed=0)
    chance = task.args["subtask_scores"]["baselines"]
    raw = {t: direct["results"][t]["acc_norm,none"] for t in chance}
    expected = sum(max(0.0, (raw[t] - c) / (1 - c)) for t, c in chance.items()) / len(chance)
    [primary] = [m for m in outcome.metrics if m.primary]
    assert primary.name == "normalised_acc_norm"
    assert primary.value == pytest.approx(expected, abs=1e-12)
    assert primary.n == 26  # 10 + 8 + 8 items
    stored = {m.name: m.value for m in outcome.metrics}
    assert stored["acc_norm"] == direct["results"]["leaderboard_musr"]["acc_norm,none"]  # lm-eval's own group score
    assert set(outcome.provenance["dataset_mirror"]) == {"TAUR-Lab/MuSR"}


def test_a_dataset_missing_from_the_mirror_fails_at_once_as_an_infrastructure_error(
        mirror_env, child, tiny_lm_dir):
    started = time.monotonic()
    with pytest.raises(EvalFailed) as failed:
        _run(child, tiny_lm_dir, "leaderboard_gpqa_diamond")  # never pulled
    assert failed.value.kind == "infra"
    assert "Idavidrein/gpqa:gpqa_diamond is not in the dataset mirror" in failed.value.message
    assert "evalboard datasets pull --task leaderboard_gpqa_diamond" in failed.value.message
    assert time.monotonic() - started < 60  # no network wait, no inference


def test_a_corrupted_mirror_file_fails_as_an_infrastructure_error_naming_the_file(
        mirror_env, child, tiny_lm_dir, tmp_path):
    data = mirror_env / "TAUR-Lab" / "MuSR" / "default" / "murder_mysteries" / "0000.parquet"
    original = data.read_bytes()
    try:
        data.write_bytes(original[:-8] + b"tampered")
        with pytest.raises(EvalFailed) as failed:
            _run(child, tiny_lm_dir, "leaderboard_musr_murder_mysteries")
        assert failed.value.kind == "infra"
        assert "TAUR-Lab/MuSR: murder_mysteries/0000.parquet does not match its manifest" in failed.value.message
        [(key, problem)] = [row for row in verify_mirror(mirror_env) if row[0] == "TAUR-Lab/MuSR"]
        assert "does not match its manifest" in problem
    finally:
        data.write_bytes(original)


def test_without_a_mirror_a_named_task_fails_naming_the_dataset_and_the_pull(tiny_lm_dir, tmp_path, monkeypatch,
                                                                            task_manager):
    """In process (no child): the evaluator itself refuses before lm-eval reaches for the hub."""
    from dataclasses import replace

    from evaluators.language.lm_eval_evaluator import LmEvalEvaluator
    from evaluators.loaders import load_causal_lm

    evaluator = LmEvalEvaluator()
    evaluator._task_manager = task_manager  # the index a warm worker holds
    spec = _spec("leaderboard_musr_murder_mysteries")
    with pytest.raises(DatasetMirrorError, match=r"TAUR-Lab/MuSR is needed but there is no dataset mirror"):
        evaluator.evaluate(load_causal_lm(tiny_lm_dir), replace(spec, dataset_mirror_dir=str(tmp_path / "nowhere")),
                           lambda *a: None)
    # A spec that names no mirror at all (outside a worker) is refused the same way, naming the pull.
    with pytest.raises(DatasetMirrorError, match=r"was given none; .*evalboard datasets pull"):
        evaluator.evaluate(load_causal_lm(tiny_lm_dir), spec, lambda *a: None)


def test_pull_without_the_hub_fails_cleanly_and_writes_nothing(tmp_path, task_manager):
    """The real fetch, up to its network call: the test session runs with HF_HUB_OFFLINE=1."""
    root = tmp_path / "mirror"
    with pytest.raises(DatasetMirrorError, match=r"could not fetch dataset TAUR-Lab/MuSR from the Hugging Face hub"):
        pull_tasks(["leaderboard_musr_murder_mysteries"], root, task_manager=task_manager)
    assert not root.exists() or not any(root.rglob("*.parquet"))


def test_pull_refuses_an_unknown_task(tmp_path, task_manager):
    with pytest.raises(DatasetMirrorError, match="has no task no_such_task"):
        pull_tasks(["no_such_task"], tmp_path, fetch=standin_hub, task_manager=task_manager)


def standin_nltk(resources: list[str], target: Path) -> str:
    """A local stand-in for NLTK's index: the files nltk.download would unpack, in its layout."""
    for resource in resources:
        folder = target / "tokenizers" / resource / "english"
        folder.mkdir(parents=True)
        (folder / "sentence_starters.txt").write_text("however\n")
    return "nltk stand-in"


def test_ifeval_reads_its_nltk_data_from_the_mirror_too(tmp_path, task_manager):
    from evaluators.language.mirror import serving

    root = tmp_path / "mirror"
    ifeval = {"lm_eval_task": "leaderboard_ifeval"}
    # Offline, IFEval's module would call nltk.download at import: refused first, naming the pull.
    with pytest.raises(DatasetMirrorError, match=r"NLTK data punkt_tab is not in the dataset mirror .* "
                                                 r"`evalboard datasets pull --task leaderboard_ifeval`"):
        with serving(ifeval, root):
            pass
    # The pull writes it before building the task (building IFEval also needs lm-eval's ifeval extras
    # and the stand-in hub has no IFEval rows: either way the pull stops after the NLTK data).
    with pytest.raises(DatasetMirrorError, match="leaderboard_ifeval|instruction-following-eval"):
        pull_tasks(["leaderboard_ifeval"], root, fetch=standin_hub, fetch_nltk=standin_nltk,
                   task_manager=task_manager)
    assert ("nltk_data", None) in verify_mirror(root)
    with serving(ifeval, root) as served:
        assert served.served["nltk:punkt_tab"]["revision"] == "nltk stand-in"
    (root / "nltk_data" / "tokenizers" / "punkt_tab" / "english" / "sentence_starters.txt").write_text("tampered")
    with pytest.raises(DatasetMirrorError, match="sentence_starters.txt does not match its manifest"):
        with serving(ifeval, root):
            pass


def test_the_evaluation_child_reads_the_mirror_but_cannot_change_it(mirror_env, child, tiny_lm_dir):
    manifest = mirror_env / "ceval" / "ceval-exam" / "law" / "manifest.json"
    spec = EvalSpec(task="probe", evaluator="isolation-probe",
                    args={"read": [str(manifest)], "write": [str(manifest), str(mirror_env / "planted.parquet")]})
    seen = _run(child, tiny_lm_dir, spec).provenance["isolation"]
    assert seen["read"][str(manifest)] == "ok"
    assert all(result != "ok" for name, result in seen["write"].items() if name != "probe-in-cwd.txt"), seen["write"]
    assert not (mirror_env / "planted.parquet").exists()
    assert "DATASET_MIRROR_DIR" in seen["env_names"] and "NLTK_DATA" in seen["env_names"]
