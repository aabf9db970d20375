"""`make proof`: the service under load, faults and hostile input, with every figure measured now.

Runs against real services on this machine (the PostgreSQL/Redis of DATABASE_URL/REDIS_URL, else
embedded ones), in a fresh database, and writes benchmarks/REPORT.md with the date and machine.
Nothing in the report is typed by hand: each figure comes from the run that wrote it.

    make proof            # or: .venv/bin/python benchmarks/proof.py [--quick]
"""
import argparse
import csv
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._services import setup_services  # noqa: E402
from evaluators.demo_models.causal_lm import build_causal_lm  # noqa: E402

PY = sys.executable
TOOLS = ROOT / ".venv-proof" / "bin"  # schemathesis and locust live in their own venv (make proof makes it)
FAST = {"HEARTBEAT_S": "0.5", "HEARTBEAT_TIMEOUT_S": "3", "RECONCILE_EVERY_S": "1"}
API_WORKERS = max(2, os.cpu_count() or 1)
BENCH_SUITE = "bench-30"  # benchmarks/leaderboard_load.py's suite


class Report:
    def __init__(self):
        self.sections: list[str] = []

    def add(self, title: str, rows: list[tuple[str, str]], note: str = "", raw: str = "") -> None:
        text = [f"## {title}", ""]
        if note:
            text += [note, ""]
        text += ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
        if raw:
            text += ["<details><summary>output</summary>", "", "```", raw.strip()[-4000:], "```", "", "</details>", ""]
        self.sections.append("\n".join(text))
        print(f"== {title}\n" + "\n".join(f"  {k}: {v}" for k, v in rows), flush=True)

    def write(self, path: Path, started: float, quick: bool) -> None:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                   platform.processor())
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        head = ["# Evalboard proof report", "",
                f"Written by `benchmarks/proof.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} "
                f"in {time.monotonic() - started:.0f} s, at commit `{commit}`"
                + (" — a `--quick` run: smaller counts than the issue asks for." if quick else "."), "",
                f"Machine: {cpu}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
                f"{platform.system()} {platform.release()}, Python {platform.python_version()}.", ""]
        path.write_text("\n".join(head + self.sections))


# --- the service under test ------------------------------------------------------------------------------------

def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def admin_token() -> str:
    from core.crud import create_token, create_user
    from core.db import session_scope
    from core.models import Role
    with session_scope() as s:
        return create_token(session=s, user=create_user(session=s, name="proof", role=Role.admin))


class Api:
    def __init__(self, url: str, token: str):
        self.url, self.http = url, httpx.Client(base_url=f"{url}/api/v1", timeout=120,
                                                headers={"Authorization": f"Bearer {token}"})

    def upload_variant(self, base: Path, work: Path, i: int) -> str:
        from cli.client import pack_folder
        folder = work / f"variant-{i}"
        if not folder.exists():
            shutil.copytree(base, folder)
            (folder / "README.md").write_text(f"# variant {i}\n\nA proof-run variant of a tiny model.\n")
        data = pack_folder(folder, work / f"variant-{i}.tar.gz").read_bytes()
        return self.http.post("/checkpoints", params={"family": "causal-lm"}, content=data).json()["sha256"]

    def submit(self, sha: str, name: str, tasks: list[str]) -> dict:
        response = self.http.post("/submissions", json={"model_name": name, "checkpoint_sha256": sha,
                                                        "suite": "language-core", "tasks": tasks})
        response.raise_for_status()
        return response.json()


def run_states(run_ids: list[str]) -> dict[str, tuple[str, int]]:
    """run id → (status, number of score rows)."""
    import psycopg
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT r.id::text, r.status, count(s.id) FROM run r LEFT JOIN score s ON s.run_id = r.id "
                            "WHERE r.id::text = ANY(%s) GROUP BY r.id, r.status", (run_ids,)).fetchall()
    return {rid: (status, n) for rid, status, n in rows}


def wait_terminal(run_ids: list[str], timeout_s: float) -> dict[str, tuple[str, int]]:
    deadline = time.monotonic() + timeout_s
    while True:
        states = run_states(run_ids)
        if all(s in ("finished", "failed", "cancelled") for s, _ in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(1)


def fault_figures(states: dict[str, tuple[str, int]], submitted: int, metrics_per_run: int = 2) -> list:
    finished = sum(s == "finished" for s, _ in states.values())
    duplicates = sum(n > metrics_per_run for _, n in states.values())
    stuck = sum(s in ("running", "queued") for s, _ in states.values())
    return [("runs completed / submitted", f"{finished} / {submitted}"), ("runs with duplicate scores", duplicates),
            ("runs stuck (queued or running)", stuck)]


# --- sections ----------------------------------------------------------------------------------------------------

def fuzz(report: Report, url: str, token: str, examples: int) -> None:
    out = subprocess.run([str(TOOLS / "schemathesis"), "run", f"{url}/openapi.json", "--checks",
                          "not_a_server_error,response_schema_conformance,content_type_conformance",
                          "-H", f"Authorization: Bearer {token}", "--max-examples", str(examples),
                          "--phases", "examples,coverage,fuzzing", "--workers", "1"],
                         capture_output=True, text=True, timeout=1800)
    text = out.stdout + out.stderr
    generated = re.search(r"(\d+) generated", text)
    failures = re.search(r"(\d+) found (\d+) unique failures", text)
    operations = re.search(r"Tested: (\d+)", text)
    server_errors = re.search(r"Server error: (\d+)", text)
    schema = re.search(r"[Rr]esponse violates schema: (\d+)", text)
    report.add("API fuzzing (schemathesis)", [
        ("operations tested", operations[1] if operations else "?"),
        ("requests generated (authenticated)", generated[1] if generated else "?"),
        ("server errors (5xx)", server_errors[1] if server_errors else 0),
        ("responses violating the schema", schema[1] if schema else 0),
        ("unique failures", failures[2] if failures else 0),
        ("schemathesis exit code", out.returncode)], raw=text[text.find("SUMMARY") - 40:])


def locust(url: str, tags: str, seconds: int, users: int, prefix: Path) -> dict:
    # The readers read the seeded 30-task track (locustfile.py takes it from BOARD_TRACK).
    subprocess.run([str(TOOLS / "locust"), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
                    "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url, "--tags", *tags.split(),
                    "--csv", str(prefix), "--only-summary"], capture_output=True, text=True, timeout=seconds + 120,
                   env={**os.environ, "BOARD_TRACK": f"{BENCH_SUITE}@1.0"})
    with open(f"{prefix}_stats.csv") as f:
        total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {"rps": float(total["Requests/s"]), "p50": total["50%"], "p99": total["99%"],
            "requests": int(total["Request Count"]), "failures": int(total["Failure Count"])}


def board_datasets(work: Path) -> Path:
    """The project's datasets with the load benchmark's 30-task track beside its suites (every process the
    proof starts reads DATASETS_DIR): the seeded models are ranked on a real track, not left off the board."""
    from benchmarks.leaderboard_load import write_suite
    # A copy, not links: the evaluation child sees DATASETS_DIR alone (bubblewrap binds it), not where links lead.
    folder = work / "datasets"
    shutil.copytree(ROOT / "datasets", folder)
    bench = write_suite(30, default_for_family=False)
    for suite in (bench / "suites").iterdir():
        shutil.copy(suite, folder / "suites" / suite.name)
    return folder


def seed_board(models: int) -> int:
    """10,000 models × 30 tasks (20 per-item results each) by COPY with explicit ids, then the id sequences
    moved past them."""
    import psycopg

    from benchmarks.leaderboard_load import seed
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    seed(url, models, 30, 20)
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("user", "api_token", "model", "checkpoint", "score", "sample", "hardware_profile"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                         f"coalesce((SELECT max(id) FROM \"{table}\"), 0) + 1, false)")
    return models


def load(report: Report, api: Api, work: Path, base: Path, seconds: int, models: int) -> None:
    """Issue 18's figures in one run, the worker evaluating meanwhile, each beside its goal."""
    wait_board(api.url)
    builds_before = board_builds(api.url)
    worker = start([PY, "-m", "cli.main", "worker", "--hardware", "cpu"], work / "load-worker.log")
    busy = [api.submit(api.upload_variant(base, work, 900 + i), f"load-{i}", ["world_facts", "arithmetic_mc"])
            for i in range(3)]  # the worker evaluates while the readers read
    try:
        mixed = locust(api.url, "leaderboard reads", seconds, 20, work / "mixed")
        board = locust(api.url, "leaderboard", max(seconds // 4, 10), 20, work / "board")
        trivial = locust(api.url, "trivial", max(seconds // 4, 10), 20, work / "trivial")
    finally:
        stop(worker)
    evaluated = sum(s == "finished" for s, _ in run_states([r["id"] for b in busy for r in b["runs"]]).values())
    builds = board_builds(api.url) - builds_before
    ratio = board["rps"] / trivial["rps"]

    def goal(met: bool, text: str) -> str:
        return f"{text} — {'met' if met else 'NOT met'}"
    report.add("Load (locust on loopback)", [
        ("models seeded × tasks", f"{models:,} × 30"),
        ("API", f"{API_WORKERS} uvicorn processes sharing the board that one `evalboard board-builder` publishes"),
        (f"read mix for {seconds} s, 20 users: requests/s", goal(mixed["rps"] >= 200, f"{mixed['rps']:.1f} (goal ≥ 200)")),
        ("read mix: p50 / p99 latency (ms)", goal(float(mixed["p99"]) < 200,
                                                  f"{mixed['p50']} / {mixed['p99']} (goal: p99 < 200)")),
        ("read mix: requests / errors", goal(mixed["failures"] == 0,
                                             f"{mixed['requests']:,} / {mixed['failures']} (goal: 0 errors)")),
        ("runs the worker finished meanwhile", evaluated),
        ("board rebuilds published while the readers read (one builder; a slow board at most every 4 × its "
         "build time)", builds),
        ("leaderboard endpoint alone: requests/s", f"{board['rps']:.1f}"),
        ("trivial endpoint alone: requests/s", f"{trivial['rps']:.1f}"),
        ("leaderboard ÷ trivial throughput", goal(ratio >= 0.5, f"{ratio:.2f} (goal ≥ 0.5)"))],
        note="The locust clients send no If-None-Match: every request is answered whole (from the per-process "
             "cache of encoded answers, gzipped). Targets from issue 18.")


def board_builds(url: str) -> int:
    found = re.search(r"^evalboard_board_builds_total (\d+)", httpx.get(f"{url}/metrics", timeout=60).text, re.M)
    return int(found[1]) if found else 0


def wait_board(url: str, timeout_s: float = 900) -> None:
    """Until the board builder has published the seeded board (a 503 means it is still building)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/leaderboard?limit=1", timeout=60).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError("the board was never published")


def worker_kills(report: Report, api: Api, work: Path, slower: Path, kills: int) -> None:
    runs = []
    for i in range(kills):
        sub = api.submit(api.upload_variant(slower, work, 100 + i), f"kill-{i}", ["world_facts"])
        run_id = sub["runs"][0]["id"]
        runs.append(run_id)
        worker = start([PY, "-m", "cli.main", "worker", "--hardware", "cpu"], work / f"kill-{i}.log", FAST)
        deadline = time.monotonic() + 120
        while run_states([run_id])[run_id][0] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(worker, signal.SIGKILL)
    survivor = start([PY, "-m", "cli.main", "worker", "--hardware", "cpu"], work / "survivor.log", FAST)
    try:
        states = wait_terminal(runs, 900)
    finally:
        stop(survivor)
    report.add(f"Faults: worker SIGKILLed mid-run, {kills} times", fault_figures(states, kills))


def flushall(report: Report, api: Api, work: Path, base: Path, runs_wanted: int) -> None:
    from runners.dispatch import get_redis
    runs = []
    for i in range(runs_wanted // 2):
        runs += [r["id"] for r in api.submit(api.upload_variant(base, work, 300 + i), f"flush-{i}",
                                             ["world_facts", "arithmetic_mc"])["runs"]]
    get_redis().flushall()
    worker = start([PY, "-m", "cli.main", "worker", "--hardware", "cpu"], work / "flush.log", FAST)
    try:
        states = wait_terminal(runs, 1800)
    finally:
        stop(worker)
    report.add(f"Faults: Redis FLUSHALL with {len(runs)} runs queued", fault_figures(states, len(runs)))


def pytest_counts(report: Report, title: str, paths: list[str], repeat: int = 1, note: str = "") -> None:
    passed = failed = 0
    raw = ""
    for _ in range(repeat):
        out = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths], cwd=ROOT,
                             capture_output=True, text=True, timeout=1800)
        raw = out.stdout[-1500:]
        match = re.search(r"(\d+) passed", out.stdout)
        passed += int(match[1]) if match else 0
        failed_match = re.search(r"(\d+) failed", out.stdout)
        failed += int(failed_match[1]) if failed_match else 0
    report.add(title, [("checks passed", passed), ("checks failed", failed)], note=note, raw=raw)


def script(report: Report, title: str, args: list[str]) -> None:
    out = subprocess.run([PY, *args], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    report.add(title, [(f"line {i + 1}", line.replace("|", "/")) for i, line in enumerate(lines[-12:])]
               + [("exit code", out.returncode)])


def hostile(report: Report) -> None:
    """The hostile-input corpus: each file builds hostile archives, checkpoints or requests in code."""
    pytest_counts(report, "Hostile input: archives and malformed requests",
                  ["tests/core/test_storage.py", "tests/api/test_checkpoints.py", "tests/api/test_checkpoint_uploads.py",
                   "tests/api/test_submissions.py"],
                  note="Each check builds a hostile archive or request (zip-slip, links, devices, bombs, pickle "
                       "weights, remote code, a trillion parameters, bad fields) and asserts a 4xx with the reason "
                       "and nothing written outside the store or the database.")
    pytest_counts(report, "Hostile input: checkpoints that try to choose code, and the evaluation child",
                  ["tests/core/test_checkpoint_policy.py", "tests/evaluators/loaders/test_loaders.py",
                   "tests/runners/test_eval_isolation.py"],
                  note="Each check builds a checkpoint that tries to run code (auto_map in config.json, "
                       "tokenizer_config.json or open_clip_config.json, a shipped .py, open_clip tokenizer_kwargs "
                       "with trust_remote_code, a hub attention kernel, trust_remote_code nested in any JSON) and "
                       "asserts a 422 naming it at upload and, written straight into the store, a refusal by the "
                       "loader with no code run; then a real evaluation child reports from inside that it holds no "
                       "credentials, reaches no TCP or socket of the database, runs as a non-root uid and cannot "
                       "write outside its private folder or read another checkpoint.")
    pytest_counts(report, "Hostile users: ownership, privacy and bounded requests",
                  ["tests/api/test_ownership.py", "tests/api/test_visibility.py", "tests/api/test_limits.py",
                   "tests/core/test_webhooks.py"],
                  note="Another author's checkpoint by its sha256 (404), an owner undoing an admin's hide, a "
                       "private model's data read by id, paths and tracebacks in public errors, oversized or "
                       "unauthenticated bodies (413/401 before reading), stalled bodies, webhooks to addresses "
                       "that embed loopback.")


def store_benchmark(report: Report) -> None:
    script(report, "Performance: artifact store fetch and time to first token", ["benchmarks/artifact_fetch.py"])


def refresh_sections(report: Report, path: Path, started: float) -> None:
    """Replace only the sections this run measured in an existing REPORT.md, saying so in its header."""
    text = path.read_text()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    for section in report.sections:
        title = section.split("\n", 1)[0]
        pattern = re.compile(re.escape(title) + r"\n.*?(?=\n## |\Z)", re.S)
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n", text) if pattern.search(text) else \
            text.rstrip("\n") + "\n\n" + section
    named = f"Sections {', '.join(repr(s.split(chr(10), 1)[0][3:]) for s in report.sections)} refreshed by "
    note = (named +
            f"`benchmarks/proof.py --only` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} at commit "
            f"`{commit}` in {time.monotonic() - started:.0f} s; sections no such line names are from the full run named above.")
    lines = text.split("\n")
    lines = [line for line in lines if not line.startswith(named)]  # an earlier refresh of the same sections
    lines.insert(3, note + "\n")
    path.write_text("\n".join(lines))


@contextmanager
def serving(work: Path, port: int = 8765):
    """The API as compose runs it: `evalboard api` (one process per CPU) with BOARD_BUILDER=external, and
    one `evalboard board-builder`. The proof submits some 130 runs as one user: the daily limit is raised."""
    env = {"SUBMISSIONS_PER_DAY": "100000", "BOARD_BUILDER": "external", "BOARD_TRACK": f"{BENCH_SUITE}@1.0"}
    builder = start([PY, "-m", "cli.main", "board-builder"], work / "board-builder.log", env)
    api_proc = start([PY, "-m", "cli.main", "api", "--port", str(port), "--workers", str(API_WORKERS)],
                     work / "api.log", env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v1/health")
        yield url
    finally:
        stop(api_proc)
        stop(builder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for trying the script out")
    parser.add_argument("--only", choices=["hostile", "store", "load"],
                        help="run only these sections and refresh them in REPORT.md")
    args = parser.parse_args()
    started = time.monotonic()
    if args.only in ("hostile", "store"):
        report = Report()
        if args.only == "hostile":
            hostile(report)
        else:
            store_benchmark(report)
        refresh_sections(report, ROOT / "benchmarks" / "REPORT.md", started)
        return
    work = Path(tempfile.mkdtemp(prefix="evb-proof-"))
    setup_services(work, "evalboard_proof")
    os.environ["DATASETS_DIR"] = str(board_datasets(work))
    if args.only == "load":
        report = Report()
        models = seed_board(1000 if args.quick else 10_000)
        base = build_causal_lm(work / "tiny")
        with serving(work) as url:
            load(report, Api(url, admin_token()), work, base, 20 if args.quick else 60, models)
        script(report, "Leaderboard at scale: build, first render, filter change",
               ["benchmarks/leaderboard_load.py"] + (["--models", "1000"] if args.quick else []))
        refresh_sections(report, ROOT / "benchmarks" / "REPORT.md", started)
        return
    seed_board(1000 if args.quick else 10_000)  # first: it writes explicit ids into the empty tables
    base = build_causal_lm(work / "tiny")
    slower = build_causal_lm(work / "slower", n_layer=6, n_embd=384, seed=1)
    token = admin_token()
    report = Report()
    with serving(work) as url:
        api = Api(url, token)
        fuzz(report, url, token, 10 if args.quick else 40)
        load(report, api, work, base, 20 if args.quick else 60, 1000 if args.quick else 10_000)
        worker_kills(report, api, work, slower, 3 if args.quick else 20)
        flushall(report, api, work, base, 10 if args.quick else 100)
    script(report, "Leaderboard at scale: build, first render, filter change",
           ["benchmarks/leaderboard_load.py"] + (["--models", "1000"] if args.quick else []))
    pytest_counts(report, "Faults: PostgreSQL restarted mid-run", ["tests/runners/test_database_outage.py"],
                  repeat=1 if args.quick else 3,
                  note="Each check stops PostgreSQL during a run, asserts the API answers 503 meanwhile, restarts "
                       "it, and asserts the run finished with exactly one set of scores and nothing half-written.")
    hostile(report)
    store_benchmark(report)
    script(report, "Performance: service vs lm_eval CLI on language-core", ["benchmarks/language_service_vs_cli.py"])
    script(report, "Performance: submit→start latency and 1→2 worker speed-up",
           ["benchmarks/runners_latency.py", "--submissions", "5" if args.quick else "20"])
    report.write(ROOT / "benchmarks" / "REPORT.md", started, args.quick)
    print(f"wrote {ROOT / 'benchmarks' / 'REPORT.md'}")


if __name__ == "__main__":
    main()
