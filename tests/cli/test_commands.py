"""The `evalboard` CLI as a model author uses it, against the real API on loopback."""
import csv
import io
import json
import os
import subprocess
import sys
import threading

from tests.conftest import ROOT, make_token, run_worker_burst


def evalboard(*args: str, token: str | None = None, api_url: str) -> subprocess.CompletedProcess:
    env_token = {"EVALBOARD_TOKEN": token} if token else {}
    return subprocess.run([sys.executable, "-m", "cli.main", *args, "--api-url", api_url], cwd=ROOT,
                          env={**os.environ, **env_token, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=300)


def test_submit_a_folder_follow_it_and_print_its_results(api_url, tiny_lm_dir):
    token = make_token("dana")
    # --wait: the command follows the submission to its end and prints the tidy summary of `results`.
    waiting = subprocess.Popen([sys.executable, "-m", "cli.main", "submit", str(tiny_lm_dir), "--suite",
                                "language-core", "--name", "dana-tiny", "--task", "world_facts", "--task",
                                "arithmetic_mc", "--license", "Apache-2.0", "--wait", "--api-url", api_url],
                               cwd=ROOT, env={**os.environ, "EVALBOARD_TOKEN": token, "COLUMNS": "200"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    submission_id = _first_line(waiting).split()[1]  # "submission <id> queued", printed before it waits

    queued = evalboard("status", submission_id, api_url=api_url)
    assert "dana-tiny" in queued.stdout and "world_facts" in queued.stdout and "queued" in queued.stdout

    assert run_worker_burst().returncode == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "world_facts" in out and "finished" in out
    assert "overall " in out and "* primary metric" in out
    # Two tasks of the suite: ranked where every model is, else shown with what it lacks.
    assert "rank 1 of 1" in out or "not ranked on track language-core" in out
    assert "{" not in out and "'acc'" not in out  # a summary, not Python dicts

    done = evalboard("status", submission_id, "--watch", api_url=api_url)  # returns at once: it has ended
    assert done.returncode == 0 and "finished" in done.stdout and "acc=" in done.stdout

    table = evalboard("results", submission_id, api_url=api_url)
    assert "world_facts" in table.stdout and "acc *" in table.stdout
    as_csv = list(csv.DictReader(io.StringIO(evalboard("results", submission_id, "--format", "csv",
                                                       api_url=api_url).stdout)))
    assert {r["task"] for r in as_csv} == {"world_facts", "arithmetic_mc"}
    lm_eval_layout = json.loads(evalboard("results", submission_id, "--format", "lm-eval", api_url=api_url).stdout)
    assert "acc,none" in lm_eval_layout["results"]["evalboard_world_facts"]


def _first_line(process: subprocess.Popen, timeout_s: float = 120) -> str:
    """The first line a running command prints (it goes on running)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert lines and lines[0], process.stderr.read() if process.poll() is not None else "no output"
    return lines[0]


def test_a_rejected_submission_exits_2_with_the_reason(api_url, tiny_lm_dir):
    rejected = evalboard("submit", str(tiny_lm_dir), "--suite", "no-such-suite", token=make_token("erin"),
                         api_url=api_url)
    assert rejected.returncode == 2
    assert "unknown suite 'no-such-suite'" in rejected.stderr


def test_cancel_from_the_command_line(api_url, tiny_lm_dir):
    token = make_token("fred")
    submission_id = evalboard("submit", str(tiny_lm_dir), "--suite", "language-core", token=token,
                              api_url=api_url).stdout.split()[1]
    cancelled = evalboard("cancel", submission_id, token=token, api_url=api_url)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert evalboard("status", submission_id, api_url=api_url).returncode == 1  # cancelled is not a success
