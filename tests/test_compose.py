"""compose.yaml and the Dockerfile: valid Compose, the services DESIGN §3 names, and commands that exist."""
import importlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
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

SERVICES = {"postgres", "redis", "objectstore", "migrate", "api", "board-builder", "worker", "worker-gpu", "leaderboard"}
BUILT = {"migrate", "api", "board-builder", "worker", "worker-gpu", "leaderboard"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def _commands(compose: dict) -> dict[str, list[str]]:
    """Our own services' commands (redis has one too: its password option)."""
    return {name: _argv(svc["command"]) for name, svc in compose["services"].items()
            if "command" in svc and name in BUILT}


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
        assert env["DATABASE_URL"].startswith("postgresql://evalboard:${POSTGRES_PASSWORD:?")
        assert env["DATABASE_URL"].endswith("@postgres:5432/evalboard")
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert services["leaderboard"]["environment"]["EVALBOARD_API_URL"] == "http://api:8000"
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Checkpoints travel through the object store: the API and the workers share no volume, so a
    # worker on another host works the same as one beside the API.
    for name in ("api", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert env["DATA_DIR"] == "/data"
        assert env["ARTIFACT_STORE_URL"].startswith("s3://")
        assert env["ARTIFACT_STORE_ENDPOINT_URL"] == "http://objectstore:8333"
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${S3_SECRET_KEY:?")
    api_volumes = {v.split(":")[0] for v in services["api"].get("volumes", [])}
    for name in ("worker", "worker-gpu"):
        assert not api_volumes & {v.split(":")[0] for v in services[name].get("volumes", [])}
    assert services["migrate"]["depends_on"]["objectstore"]["condition"] == "service_healthy"


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


def _docker_compose(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not on PATH; install it (Debian/Ubuntu: `apt-get install docker-compose`) "
                    "so compose.yaml can be checked with `docker-compose config -q`")
    # Only PATH from our environment: a developer's own POSTGRES_PASSWORD must not make the check pass.
    return subprocess.run([binary, "-f", str(COMPOSE), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ["PATH"], **env})


PASSWORDS = {"POSTGRES_PASSWORD": "pg-" + "a" * 40, "REDIS_PASSWORD": "redis-" + "b" * 40,
             "S3_ACCESS_KEY": "evalboard-key", "S3_SECRET_KEY": "s3-" + "c" * 40}


def test_docker_compose_accepts_the_file(tmp_path):
    result = _docker_compose("--project-directory", str(tmp_path), "config", "-q", env=PASSWORDS)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def resolved() -> dict:
    """compose.yaml as docker-compose resolves it with the operator's .env values."""
    result = _docker_compose("config", env=PASSWORDS, cwd=Path(tempfile.mkdtemp()))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_without_passwords_compose_refuses_and_says_make_env(tmp_path):
    """No default password anywhere: with no .env, compose stops and names the step that writes one."""
    result = _docker_compose("--project-directory", str(tmp_path), "config", "-q", env={})
    assert result.returncode != 0 and "make env" in result.stderr
    assert "postgres:postgres" not in COMPOSE.read_text()


def test_passwords_come_from_the_env_file_and_redis_requires_one(resolved):
    services = resolved["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == PASSWORDS["POSTGRES_PASSWORD"]
    assert services["postgres"]["environment"]["POSTGRES_USER"] != "postgres"
    for name in BUILT - {"leaderboard"}:
        env = services[name]["environment"]
        assert f":{PASSWORDS['POSTGRES_PASSWORD']}@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == f"redis://:{PASSWORDS['REDIS_PASSWORD']}@redis:6379/0"
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert redis["environment"]["REDIS_PASSWORD"] == PASSWORDS["REDIS_PASSWORD"]
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])  # the healthcheck authenticates too


def test_api_and_board_are_published_on_loopback_only(resolved):
    services = resolved["services"]
    published = [port for svc in services.values() for port in svc.get("ports", [])]
    assert published and all(str(port).startswith("127.0.0.1:") for port in published), published
    assert {str(p).split(":")[1] for p in published} == {"8000", "8501"}


def test_make_env_writes_strong_passwords_and_keeps_an_existing_file(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    subprocess.run(["make", "-s", "env"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    env_file = tmp_path / ".env"
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#"))
    assert set(values) == {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"}
    secrets = [values[k] for k in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "S3_SECRET_KEY")]
    assert all(len(v) >= 32 for v in secrets) and len(set(secrets)) == 3
    assert env_file.stat().st_mode & 0o077 == 0  # readable by the operator only
    before = env_file.read_text()
    subprocess.run(["make", "-s", "env"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert env_file.read_text() == before  # never overwritten: the database volume keeps its password
    # Compose, run where that .env is, reads it.
    assert _docker_compose("--project-directory", str(tmp_path), "config", "-q", env={}).returncode == 0
    for ignore in (".gitignore", ".dockerignore"):  # passwords never reach git or the image
        assert ".env" in (ROOT / ignore).read_text().split()


def test_the_image_runs_as_a_non_root_user():
    users = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the Dockerfile's last USER must be unprivileged"


def test_the_object_store_takes_its_keys_from_the_env_file_and_is_not_published(resolved):
    services = resolved["services"]
    store = services["objectstore"]
    assert store["environment"]["S3_SECRET_KEY"] == PASSWORDS["S3_SECRET_KEY"]
    assert "ports" not in store  # reached by the services and remote workers over the compose network only
    for name in ("api", "worker"):
        assert services[name]["environment"]["AWS_SECRET_ACCESS_KEY"] == PASSWORDS["S3_SECRET_KEY"]
    assert "weed server" in " ".join(store["command"]) and "-s3.config" in " ".join(store["command"])


def test_workers_run_as_root_in_their_container_to_drop_each_child_to_another_uid(compose):
    for name in ("worker", "worker-gpu"):
        assert compose["services"][name]["user"] == "0:0"
    for name in ("api", "leaderboard", "migrate"):
        assert "user" not in compose["services"][name]  # the image's unprivileged user
