"""`evalboard datasets pull|verify` as an operator runs them: one line per dataset or task, exit 1 naming
what is wrong, never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def evalboard(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # The test session runs with HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1: the hub is out of reach.
    return subprocess.run([sys.executable, "-m", "cli.main", "datasets", *args], cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def test_pull_without_the_hub_fails_in_one_line_naming_the_dataset_and_writes_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    pulled = evalboard("pull", "--task", "leaderboard_musr_murder_mysteries", "--mirror", str(mirror))
    assert pulled.returncode == 1, pulled.stderr
    assert "could not fetch dataset TAUR-Lab/MuSR from the Hugging Face hub" in pulled.stderr
    assert "Traceback" not in pulled.stderr
    assert not any(mirror.rglob("*.parquet"))


def test_pull_names_what_it_cannot_pull(tmp_path):
    bundled = evalboard("pull", "language-core", "--mirror", str(tmp_path))
    assert bundled.returncode == 2 and "names no lm-eval task" in bundled.stderr
    unknown = evalboard("pull", "no-such-suite", "--mirror", str(tmp_path))
    assert unknown.returncode == 2 and "unknown suite 'no-such-suite'" in unknown.stderr


@pytest.fixture(scope="module")
def pulled_mirror(tmp_path_factory) -> Path:
    """ceval-valid_law's data, written by the pull's own code from the tests' stand-in hub."""
    from evaluators.language.mirror import pull_tasks
    from tests.evaluators.language.test_mirror import standin_hub
    root = tmp_path_factory.mktemp("cli-mirror")
    pull_tasks(["ceval-valid_law"], root, fetch=standin_hub)
    return root


def test_verify_checks_files_and_which_tasks_the_mirror_serves(pulled_mirror):
    verified = evalboard("verify", "--mirror", str(pulled_mirror))
    assert verified.returncode == 0, verified.stderr
    assert "ok       ceval/ceval-exam:law" in verified.stdout and "1 datasets verified" in verified.stdout

    tasks = evalboard("verify", "--task", "ceval-valid_law", "--task", "leaderboard_mmlu_pro", "--mirror",
                      str(pulled_mirror))
    assert tasks.returncode == 1
    assert "served   task ceval-valid_law" in tasks.stdout
    assert "MISSING  task leaderboard_mmlu_pro: dataset TIGER-Lab/MMLU-Pro is not in the dataset mirror" in tasks.stdout
    assert "evalboard datasets pull --task leaderboard_mmlu_pro" in tasks.stdout
    assert "fails for leaderboard_mmlu_pro" in tasks.stderr and "Traceback" not in tasks.stderr


def test_verify_fails_on_a_tampered_file(pulled_mirror):
    data = pulled_mirror / "ceval" / "ceval-exam" / "law" / "val" / "0000.parquet"
    original = data.read_bytes()
    try:
        data.write_bytes(original + b"\0")
        verified = evalboard("verify", "--mirror", str(pulled_mirror))
        assert verified.returncode == 1
        assert "BAD      ceval/ceval-exam:law: dataset ceval/ceval-exam:law: val/0000.parquet does not match" \
            in verified.stdout
    finally:
        data.write_bytes(original)


def test_verify_of_an_empty_mirror_fails(tmp_path):
    verified = evalboard("verify", "--mirror", str(tmp_path / "none"))
    assert verified.returncode == 1 and "no datasets in" in verified.stdout


def test_publish_to_the_artifact_store_then_fetch_on_a_worker_host(pulled_mirror, tmp_path):
    store = {"ARTIFACT_STORE_URL": f"file://{tmp_path / 'store'}"}
    published = evalboard("publish", "--mirror", str(pulled_mirror), env=store)
    assert published.returncode == 0, published.stderr
    index = published.stdout.split("mirror index ")[1].split()[0]
    assert f"evalboard datasets fetch {index}" in published.stdout

    worker = tmp_path / "worker-mirror"
    fetched = evalboard("fetch", index, "--mirror", str(worker), env=store)
    assert fetched.returncode == 0, fetched.stderr
    assert "fetched  ceval/ceval-exam/law" in fetched.stdout
    manifest = Path("ceval/ceval-exam/law/manifest.json")
    assert (worker / manifest).read_bytes() == (pulled_mirror / manifest).read_bytes()

    unknown = evalboard("fetch", "0" * 64, "--mirror", str(tmp_path / "other"), env=store)
    assert unknown.returncode == 1 and "is not in the store" in unknown.stderr and "Traceback" not in unknown.stderr
