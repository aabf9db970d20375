"""An operator's diagnostic evaluator: it reports what an evaluation child can reach.

Run inside the real evaluation child (runners/eval_sandbox.py) on any loaded checkpoint, it
tries what a hostile checkpoint would try — read the environment, connect to services, write
outside its folder, read other folders — and reports each attempt's result in its provenance,
so a test (tests/runners/test_eval_isolation.py) or an operator can see the confinement from
inside. It reports names and outcomes only, never values of the environment.
"""
import os
import socket
from pathlib import Path

from evaluators.base import EvalOutcome, EvalSpec, Evaluator, MetricValue, ProgressFn


def _try(action) -> str:
    try:
        action()
        return "ok"
    except Exception as exc:  # noqa: BLE001 — every refusal is a finding, not a failure
        return f"{type(exc).__name__}: {exc}"[:200]


def _tcp(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=2):
        pass


def _unix(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)


def _write(path: str) -> None:
    with open(path, "x") as f:
        f.write("probe")
    os.unlink(path)


def _read(path: str) -> None:
    target = Path(path)
    os.listdir(target) if target.is_dir() else target.read_bytes()


class IsolationProbe(Evaluator):
    name = "isolation-probe"
    family = "any"

    def evaluate(self, model, spec: EvalSpec, progress: ProgressFn) -> EvalOutcome:
        args = spec.args
        findings = {
            "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "cwd": os.getcwd(),
            "env_names": sorted(os.environ),
            "tcp": {f"{h}:{p}": _try(lambda h=h, p=p: _tcp(h, int(p))) for h, p in args.get("tcp", [])},
            "unix": {p: _try(lambda p=p: _unix(p)) for p in args.get("unix", [])},
            "write": {p: _try(lambda p=p: _write(p)) for p in [*args.get("write", []), "probe-in-cwd.txt"]},
            "read": {p: _try(lambda p=p: _read(p)) for p in args.get("read", [])},
        }
        with open("/proc/self/status") as f:
            findings["no_new_privs"] = next((line.split()[1] for line in f if line.startswith("NoNewPrivs")), None)
        progress("probe", 1.0)
        return EvalOutcome(metrics=[MetricValue("probed", 1.0, primary=True)], samples=[],
                           provenance={"isolation": findings})
