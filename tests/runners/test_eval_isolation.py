"""The evaluation child, seen from inside: it holds nothing worth stealing and reaches nothing.

These run the real child (bubblewrap, uid drop, rlimits, allow-listed environment) with the
`isolation-probe` evaluator, which tries what hostile checkpoint code would try and reports
each attempt. bubblewrap is installed by `make system-tools` (Debian's `bubblewrap`).
"""
import json
import os
import pickle
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.config import Settings, get_settings
from evaluators.base import EvalSpec
from runners.child_protocol import ProtocolError, decode, outcome_from_json
from runners.eval_sandbox import EvalFailed, EvalProcess, EvalRequest
from runners.isolation import INHERITED_ENV, choose_isolation
from tests.conftest import DATA_DIR, ROOT, SERVER_URL

SERVICE = urlsplit(SERVER_URL)
# What the child may know: the allow-list of runners/isolation.py, and nothing that names a service.
ALLOWED_ENV = set(INHERITED_ENV) | {
    "PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "PWD", "XDG_CACHE_HOME", "HF_HOME", "HF_DATASETS_CACHE",
    "TORCHINDUCTOR_CACHE_DIR", "MPLCONFIGDIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY", "TOKENIZERS_PARALLELISM", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
    "PYTHONNOUSERSITE", "DATASETS_DIR", "DATA_DIR", "DATASET_MIRROR_DIR", "NLTK_DATA"}


@pytest.fixture(scope="module")
def store_checkpoints(tiny_lm_dir) -> tuple[Path, Path]:
    """Two checkpoints side by side in the store, as two authors' would be."""
    root = DATA_DIR / "artifacts" / "checkpoints"
    mine, theirs = root / ("a" * 64), root / ("b" * 64)
    for folder in (mine, theirs):
        if not folder.exists():
            shutil.copytree(tiny_lm_dir, folder)
    return mine, theirs


def probe(process: EvalProcess, checkpoint: Path, **args) -> dict:
    spec = EvalSpec(task="probe", evaluator="isolation-probe", args=args)
    outcome, _ = process.run(EvalRequest("causal-lm", str(checkpoint), "float32", "cpu", spec),
                             memory_cap_bytes=8 * 2**30, timeout_s=300, on_progress=lambda *a: None,
                             is_cancelled=lambda: False)
    return outcome.provenance["isolation"]


def test_the_evaluation_child_holds_no_credentials_and_reaches_nothing(store_checkpoints, monkeypatch):
    assert shutil.which("bwrap"), "bubblewrap is missing: run `make system-tools` (apt-get install bubblewrap)"
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret-webhook-value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-aws-value")
    mine, theirs = store_checkpoints
    process = EvalProcess()
    assert not process.isolation.missing, process.isolation.describe()
    try:
        seen = probe(process, mine,
                     tcp=[[SERVICE.hostname, SERVICE.port or 5432], ["127.0.0.1", 6379], ["1.1.1.1", 443]],
                     unix=["/var/run/postgresql/.s.PGSQL.5432", "/run/postgresql/.s.PGSQL.5432"],
                     write=[str(DATA_DIR / "child-was-here"), str(ROOT / "child-was-here"), str(mine / "x"),
                            "/etc/child-was-here"],
                     read=[str(theirs), str(ROOT / ".git"), str(ROOT / "tests"), str(ROOT / ".evalboard")])
    finally:
        process.kill()

    assert set(seen["env_names"]) <= ALLOWED_ENV, set(seen["env_names"]) - ALLOWED_ENV
    assert "DATABASE_URL" not in seen["env_names"] and "REDIS_URL" not in seen["env_names"]
    assert all(result != "ok" for result in seen["tcp"].values()), seen["tcp"]  # no network at all
    assert all(result != "ok" for result in seen["unix"].values()), seen["unix"]  # nor the database's socket
    if os.geteuid() == 0:
        assert seen["uid"] != 0 and seen["euid"] != 0 and seen["gid"] != 0
    assert seen["no_new_privs"] == "1"
    assert seen["write"].pop("probe-in-cwd.txt") == "ok"  # its own private folder is writable …
    assert all(result != "ok" for result in seen["write"].values()), seen["write"]  # … nothing else is
    assert seen["read"][str(theirs)].startswith("FileNotFoundError"), seen["read"]  # another author's model
    assert all(result != "ok" for result in seen["read"].values()), seen["read"]
    assert not Path(seen["cwd"]).exists()  # the private folder went with the child
    assert not (DATA_DIR / "child-was-here").exists() and not (ROOT / "child-was-here").exists()


def test_without_bubblewrap_the_child_still_has_no_credentials_and_the_worker_says_what_is_missing(
        store_checkpoints, monkeypatch):
    mine, _ = store_checkpoints
    isolation = choose_isolation(Settings(eval_isolation="process"))
    assert isolation.bwrap is None
    assert "network namespace" in isolation.describe() and "MISSING" in isolation.describe()
    process = EvalProcess()
    process._isolation = isolation
    try:
        seen = probe(process, mine)
    finally:
        process.kill()
    assert "DATABASE_URL" not in seen["env_names"] and "REDIS_URL" not in seen["env_names"]
    assert set(seen["env_names"]) <= ALLOWED_ENV
    assert seen["no_new_privs"] == "1"


def test_a_required_sandbox_that_cannot_run_stops_the_worker(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap on the PATH
    with pytest.raises(RuntimeError, match="EVAL_ISOLATION=bwrap"):
        choose_isolation(Settings(eval_isolation="bwrap"))


def test_code_a_checkpoint_ships_never_runs_in_the_child(tiny_lm_dir, tmp_path):
    """auto_map + a modeling .py, written straight into the store (no upload check): the loader runs none of it.

    Without bubblewrap and as the worker's own uid, the child could write the marker if the code ran."""
    folder = DATA_DIR / "artifacts" / "checkpoints" / ("c" * 64)
    shutil.copytree(tiny_lm_dir, folder, dirs_exist_ok=True)
    marker = tmp_path / "code-ran"
    payload = f"open({str(marker)!r}, 'w').write('pwned')\n"
    (folder / "modeling_evil.py").write_text(payload + "from transformers import GPT2LMHeadModel as EvilModel\n")
    (folder / "configuration_evil.py").write_text(payload + "from transformers import GPT2Config as EvilConfig\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                          "AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    process = EvalProcess()
    process._isolation = choose_isolation(Settings(eval_isolation="process", eval_child_uid=os.geteuid(),
                                                   eval_child_gid=os.getegid()))
    spec = EvalSpec(task="probe", evaluator="isolation-probe")
    try:
        with pytest.raises(EvalFailed) as failed:
            process.run(EvalRequest("causal-lm", str(folder), "float32", "cpu", spec), memory_cap_bytes=8 * 2**30,
                        timeout_s=300, on_progress=lambda *a: None, is_cancelled=lambda: False)
    finally:
        process.kill()
    assert failed.value.kind == "user"  # the author's, never retried elsewhere
    assert "refused" in failed.value.message and (".py" in failed.value.message or "auto_map" in failed.value.message)
    assert not marker.exists()


def test_a_checkpoint_missing_on_the_worker_is_the_services_error_not_the_authors():
    process = EvalProcess()
    spec = EvalSpec(task="probe", evaluator="isolation-probe")
    with pytest.raises(EvalFailed) as failed:
        process.run(EvalRequest("causal-lm", str(DATA_DIR / "no-such-checkpoint"), "float32", "cpu", spec),
                    memory_cap_bytes=2**30, timeout_s=10, on_progress=lambda *a: None, is_cancelled=lambda: False)
    assert failed.value.kind == "infra"


@pytest.mark.parametrize("data", [
    pickle.dumps(["done", {"metrics": []}]),  # the worker never unpickles what a child sends
    b"[" * 100_000 + b"]" * 100_000,  # nesting past the parser's depth
    b'{"kind": "done"}',
    b"[]",
])
def test_a_child_message_outside_the_protocol_is_refused(data):
    with pytest.raises(ProtocolError):
        decode(data)


@pytest.mark.parametrize("outcome", [
    {"metrics": [{"name": "acc", "value": "0.9"}]},
    {"metrics": [{"name": "acc", "value": float("nan")}]},
    {"metrics": [{"name": "acc", "value": 1e308 * 10}]},
    {"metrics": [], "provenance": {"x": "y" * (2 << 20)}},
    {"metrics": [{"name": {"__class__": "x"}, "value": 1.0}]},
    {"metrics": [], "samples": [{"index": 0, "input": 1, "target": "", "prediction": ""}]},
    {"metrics": [], "provenance": ["not", "a", "dict"]},
    "not an object",
])
def test_an_outcome_of_the_wrong_shape_is_refused_field_by_field(outcome):
    with pytest.raises(ProtocolError):
        outcome_from_json(outcome)


def test_the_worker_confines_children_by_default():
    assert get_settings().eval_isolation == "auto"


def test_a_link_left_in_the_request_cache_never_hands_a_host_folder_to_the_child(tmp_path):
    """A child owns its run's cache folder; if it replaced it with a link to a host folder, the retry's
    set-up must not follow it (a chown through it would give that folder to the child's uid)."""
    from runners.isolation import Isolation, make_request_cache
    victim = tmp_path / "victim"
    victim.mkdir()
    before = victim.stat()
    isolation = Isolation(bwrap=None, drop_to_uid=64000, drop_to_gid=64000)
    root = tmp_path / "request-cache"
    folder, run_folder = make_request_cache(root, "aaaa", "bbbb", isolation)
    if os.geteuid() == 0:
        assert (folder.stat().st_uid, run_folder.stat().st_uid) == (0, 64000)  # the child cannot rename in folder
    run_folder.rmdir()
    run_folder.symlink_to(victim)
    folder, run_folder = make_request_cache(root, "aaaa", "bbbb", isolation)
    assert not run_folder.is_symlink() and run_folder.is_dir()
    assert (victim.stat().st_uid, victim.stat().st_gid) == (before.st_uid, before.st_gid)


def test_nan_and_infinity_from_a_child_never_become_numbers():
    message = decode(b'["done", {"metrics": [{"name": "acc", "value": 0.5, "stderr": NaN}], '
                     b'"provenance": {"a": Infinity, "b": -Infinity}}]')
    outcome = outcome_from_json(message[1])
    assert outcome.metrics[0].stderr is None and outcome.provenance == {"a": None, "b": None}


def test_a_frame_larger_than_the_limit_is_refused_before_its_body_is_read():
    import socket
    import struct

    from runners.child_protocol import MAX_FRAME_BYTES, Channel
    worker_end, child_end = socket.socketpair()
    with worker_end, child_end:
        child_end.sendall(struct.pack(">Q", 1 << 30))  # "a gigabyte follows"
        with pytest.raises(ProtocolError, match="frame"):
            Channel(worker_end).poll(1.0)
        assert MAX_FRAME_BYTES < 1 << 30


def test_a_child_that_stops_mid_message_never_blocks_the_worker():
    import socket
    import struct
    import time

    from runners.child_protocol import Channel
    worker_end, child_end = socket.socketpair()
    with worker_end, child_end:
        child_end.sendall(struct.pack(">Q", 1000) + b"[" + b" " * 9)  # a header and a hundredth of the body
        channel, started = Channel(worker_end), time.monotonic()
        assert channel.poll(0.1) == [] and channel.poll(0.1) == []
        assert time.monotonic() - started < 1  # back at once: the worker goes on watching time and memory
        child_end.sendall(b" " * 979 + b'"progress"]')
        assert channel.poll(0.5) == [["progress"]]


def test_samples_arrive_in_frames_and_are_counted_against_the_workers_limits():
    from evaluators.base import SampleRecord
    from runners.child_protocol import MAX_TEXT_CHARS, SampleCollector, sample_chunks
    records = [SampleRecord(index=i, input="x" * (MAX_TEXT_CHARS * 2), target="t", prediction="p") for i in range(200)]
    chunks = list(sample_chunks(records))
    assert len(chunks) > 1  # never one message with everything
    collector = SampleCollector()
    for chunk in chunks:
        collector.add(["samples", chunk])
    assert len(collector.samples) == 200 and collector.samples[0].input.endswith("…[truncated]")
    with pytest.raises(ProtocolError):
        SampleCollector().add(["samples", [{"index": 0, "input": "x" * (MAX_TEXT_CHARS * 2), "target": "",
                                            "prediction": ""}]])  # a child that skipped the clipping
