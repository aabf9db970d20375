"""compose.yaml and the Dockerfile: valid Compose, the services DESIGN §3 names, and commands that exist."""
import importlib
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import typer.main
import yaml

import cli.main

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SPEC = Path(__file__).resolve().parent / "data" / "compose_spec.json"

SERVICES = {"postgres", "redis", "migrate", "api", "worker", "worker-gpu", "leaderboard"}
BUILT = {"migrate", "api", "worker", "worker-gpu", "leaderboard"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def _commands(compose: dict) -> dict[str, list[str]]:
    return {name: _argv(svc["command"]) for name, svc in compose["services"].items() if "command" in svc}


def test_compose_matches_the_compose_spec_schema(compose):
    schema = json.loads(SPEC.read_text())
    # The stored spec declares an old draft and uses draft-04 `id` keys; validate it as draft-07,
    # where `id` is just an unknown (ignored) keyword and `$ref`s are local "#/definitions/…".
    schema.pop("$schema", None)
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)


def test_compose_has_the_expected_services(compose):
    services = compose["services"]
    assert SERVICES <= set(services)
    assert services["worker-gpu"].get("profiles") == ["gpu"]
    assert all("profiles" not in services[name] for name in SERVICES - {"worker-gpu"})
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def test_built_services_share_one_image_and_the_environment(compose):
    services = compose["services"]
    for name in BUILT:
        assert services[name]["build"] == "."
        assert services[name]["image"] == "evalboard:latest"
    for name in BUILT - {"leaderboard"}:
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql://postgres:postgres@postgres:5432/evalboard"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert services["leaderboard"]["environment"]["EVALBOARD_API_URL"] == "http://api:8000"
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The API writes artifacts that workers read: same volume at DATA_DIR.
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["environment"]["DATA_DIR"] == "/data"
        assert "artifacts:/data" in services[name]["volumes"]


def _check_evalboard(argv: list[str]) -> None:
    group = typer.main.get_command(cli.main.app)
    path = ["evalboard"]
    for word in argv[1:]:
        if word.startswith("-"):
            break
        commands = getattr(group, "commands", None)
        if commands is None:  # reached a leaf command: the rest are its arguments
            break
        assert word in commands, f"`{' '.join(path)}` has no subcommand {word!r} (has {sorted(commands)})"
        group, path = commands[word], path + [word]
    assert not hasattr(group, "commands"), f"`{' '.join(path)}` is a group, not a command"
    params = {opt for p in group.params for opt in (*p.opts, *p.secondary_opts)}
    for word in argv[len(path):]:
        if word.startswith("--"):
            assert word.split("=")[0] in params, f"`{' '.join(path)}` has no option {word!r}"


def _check_uvicorn(argv: list[str]) -> None:
    target = next(word for word in argv[1:] if not word.startswith("-") and ":" in word)
    module, attr = target.split(":")
    assert hasattr(importlib.import_module(module), attr), f"{module} has no attribute {attr}"


def _check_streamlit(argv: list[str]) -> None:
    assert argv[1] == "run"
    assert (ROOT / argv[2]).is_file(), f"{argv[2]} does not exist"


def _check(argv: list[str]) -> None:
    checks = {"evalboard": _check_evalboard, "uvicorn": _check_uvicorn, "streamlit": _check_streamlit}
    assert argv[0] in checks, f"unknown program {argv[0]!r}"
    checks[argv[0]](argv)


def test_every_service_command_exists(compose):
    commands = _commands(compose)
    assert set(commands) == BUILT
    for name, argv in commands.items():
        _check(argv)


def test_command_checks_reject_what_does_not_exist():
    _check(["evalboard", "token", "create", "--user", "x"])
    for bad in (["evalboard", "nope"], ["evalboard", "token", "delete"], ["evalboard", "token"],
                ["evalboard", "worker", "--gpus", "1"], ["uvicorn", "api.main:nope"],
                ["streamlit", "run", "leaderboard/nope.py"]):
        with pytest.raises(AssertionError):
            _check(bad)


def test_dockerfile_runs_the_api():
    assert DOCKERFILE.is_file()
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    runs = [line for line in lines if line.startswith(("CMD", "ENTRYPOINT"))]
    assert runs and any("api.main:app" in line and "uvicorn" in line for line in runs)


def test_docker_compose_accepts_the_file():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not on PATH; install it (Debian/Ubuntu: `apt-get install docker-compose`) "
                    "so compose.yaml can be checked with `docker-compose config -q`")
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
