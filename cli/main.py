"""The `evalboard` command: run the service, work the queue, manage tokens, submit models."""
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import typer
from rich import print as rich_print

from cli.datasets import datasets_app
from cli.errors import EXIT_FAILED, EXIT_REJECTED, START_HINT, CliError, explain


class _Evalboard(typer.Typer):
    """The app, with expected failures (services down, a refused request) said in one line, not a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            explained = explain(exc)
            if explained is None:
                raise  # a bug: its traceback is what a report needs
            typer.echo(explained[0], err=True)
            sys.exit(explained[1])


app = _Evalboard(help="Evalboard: evaluation-as-a-service leaderboard.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(datasets_app, name="datasets")

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")  # as POST /admin/users accepts
FORMATS = ("table", "json", "csv", "lm-eval", "model-index")


@app.callback()
def _find_running_services(ctx: typer.Context) -> None:
    # Every command but `up` itself uses the services of the `up` running for this project folder
    # wherever the environment names none (README: `make run`, then commands in a second terminal).
    if ctx.invoked_subcommand != "up":
        from cli.running import adopt
        adopt(_settings().data_dir)


def _settings():
    from core.config import get_settings
    return get_settings()


def _api_url(option: str | None) -> str:
    return option or os.environ.get("EVALBOARD_API_URL") or _settings().api_url


def _require_database() -> None:
    if not _settings().database_url:
        raise CliError(f"no Evalboard is running for {_settings().data_dir} and DATABASE_URL is not set: "
                       f"{START_HINT} in another terminal, then run this again", EXIT_FAILED)


def _require_token(token: str | None) -> str:
    if not token:
        raise CliError("an API token is required: create one with `evalboard token create --user NAME`, then "
                       "`export EVALBOARD_TOKEN=evb_...` (or pass --token)")
    return token


def _submission_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise CliError(f"{value!r} is not a submission id (ids look like 1b4e28ba-2fa1-11d2-883f-0016d3cca427; "
                       f"`evalboard list` shows yours)") from None


@app.command()
def migrate() -> None:
    """Prepare persistent state: the artifact store's bucket (if S3), then database migrations (alembic upgrade head)."""
    from cli.embedded import migrate as run_migrations
    from core.artifact_store import get_store
    _require_database()
    get_store().ensure()  # before migrating: a migration may publish existing checkpoints to it
    run_migrations()


@token_app.command("create")
def token_create(user: str = typer.Option(..., "--user", help="user name; created if new"),
                 admin: bool = typer.Option(False, help="give the user the admin role")) -> None:
    """Create an API token and print it. It is shown this once: only its hash is stored."""
    if not USER_NAME.fullmatch(user):  # fullmatch: `$` would let a trailing newline in
        raise CliError(f"{user!r} is not a valid user name: 1-64 letters, digits, '.', '_' or '-', starting with a "
                       f"letter or digit")
    _require_database()
    from core.crud import create_token, create_user
    from core.db import session_scope
    from core.models import Role
    with session_scope() as s:
        token = create_token(session=s, user=create_user(session=s, name=user, role=Role.admin if admin else Role.author))
    typer.echo(token)


@app.command()
def worker(hardware: str = typer.Option("cpu", "--hardware", help="hardware class whose queue to serve"),
           device: str = typer.Option("cpu", "--device", help="cpu or cuda:N"),
           burst: bool = typer.Option(False, help="exit when the queue is empty"),
           concurrency: int = typer.Option(1, min=1, help="worker processes to run side by side")) -> None:
    """Serve one hardware class's queue."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if concurrency > 1:
        _run_worker_pool(hardware, device, burst, concurrency)
        return
    from runners.worker import run_worker
    run_worker(hardware, device=device, burst=burst)


def _run_worker_pool(hardware: str, device: str, burst: bool, concurrency: int) -> None:
    """N independent workers (each its own process, evaluation child and hardware profile)."""
    from cli.launcher import Launcher
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    launcher = Launcher(_settings().data_dir / "logs")
    command = [sys.executable, "-m", "cli.main", "worker", "--hardware", hardware, "--device", device]
    # Workers sharing CPUs split them: oversubscribed OpenMP threads spin against each other and
    # make N workers slower than one (measured: 0.19x for 2 workers × 2 threads on 2 cores).
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // concurrency))} if device == "cpu" else None
    for i in range(concurrency):
        launcher.start(f"worker-{hardware}-{i}", command + (["--burst"] if burst else []), restart=not burst,
                       env=threads)
    try:
        if burst:
            launcher.wait_all()
        else:
            launcher.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        launcher.stop_all()


@app.command("board-builder")
def board_builder() -> None:
    """Rebuild and publish the shared leaderboard whenever results change (api/board_snapshot.py).

    Run one beside the API (compose and `evalboard up` do) with BOARD_BUILDER=external in the API's
    environment: the API processes then only load the published board and spend their CPU on requests."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _require_database()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from api.board_snapshot import run_builder
    try:
        run_builder()
    except KeyboardInterrupt:
        pass


def api_command(host: str, port: int, workers: int | None = None) -> list[str]:
    """uvicorn with one API process per CPU core (API_WORKERS overrides), sharing the published board.
    h11 bounds the request head (16 KiB); api/limits.py bounds headers, bodies and stalled bodies."""
    count = workers or _settings().api_workers or os.cpu_count() or 1
    return [sys.executable, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port),
            "--workers", str(count), "--http", "h11", "--h11-max-incomplete-event-size", "16384",
            "--timeout-keep-alive", "5"]


@app.command()
def api(host: str = typer.Option("127.0.0.1", help="address to listen on"),
        port: int = typer.Option(8000, help="port to listen on"),
        workers: int = typer.Option(0, min=0, help="API processes (0: API_WORKERS, else one per CPU core)")) -> None:
    """Serve the HTTP API (uvicorn, several processes sharing one published leaderboard)."""
    command = api_command(host, port, workers or None)
    os.execv(command[0], command)


@app.command("demo-models")
def demo_models(out: Path = typer.Option(None, help="folder for the checkpoints"),
                submit: bool = typer.Option(False, help="also upload and submit them to --api-url"),
                api_url: str = typer.Option(None), token: str = typer.Option(None, envvar="EVALBOARD_TOKEN")) -> None:
    """Build the tiny demo checkpoints (and optionally submit them)."""
    from cli.demo import build_demo_models, submit_demo_models
    out = out or _settings().data_dir / "demo-models"
    if submit:
        from cli.client import EvalboardClient
        ids = submit_demo_models(EvalboardClient(_api_url(api_url), _require_token(token)), out)
        typer.echo("\n".join(ids))
    else:
        from evaluators.demo_models.clip import build_demo_clip_models
        for name, folder in (build_demo_models(out) | build_demo_clip_models(out)).items():
            typer.echo(f"{name}: {folder}")


@app.command()
def submit(path: Path = typer.Argument(..., exists=True, file_okay=False, help="model folder"),
           suite: str = typer.Option(..., "--suite"), model_name: str = typer.Option(None, "--name"),
           task: list[str] = typer.Option(None, "--task", help="only these tasks of the suite (repeatable)"),
           family: str = typer.Option("causal-lm", help="causal-lm or clip"),
           hardware: str = typer.Option("cpu", "--hardware"),
           precision: str = typer.Option("float32", help="float32, bfloat16 or float16"),
           license: str = typer.Option(None, "--license", help="the model's licence as an SPDX id (Apache-2.0, MIT, "
                                       "…) or `other`; a folder without a LICENSE file gets one naming it"),
           api_url: str = typer.Option(None), token: str = typer.Option(None, envvar="EVALBOARD_TOKEN"),
           wait: bool = typer.Option(False, help="wait until it finishes, then print its results")) -> None:
    """Upload a model folder and submit it for evaluation (checked by the API before anything is uploaded)."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress

    from cli.client import EvalboardClient
    from core.errors import InvalidRequestError
    from core.license_text import folder_license
    from core.licenses import check_license

    token = _require_token(token)
    if license is not None:
        try:
            license = check_license(license)
        except InvalidRequestError as exc:
            raise CliError(f"--license {license!r}: {exc.message}") from None
    if license is None and folder_license(path) is None:
        raise CliError(f"{path} has no licence: add a LICENSE file or a `license:` line in README.md's front matter, "
                       f"or pass --license SPDX-ID (e.g. --license Apache-2.0)")
    client = EvalboardClient(_api_url(api_url), token)
    request = {"model_name": model_name or path.name, "suite": suite, "hardware_class": hardware,
               "precision": precision, "license": license, "tasks": task or None}
    # Token, suite, tasks, hardware, precision, family and licence are checked before a byte is uploaded.
    checked = client.check(family=family, **request)
    for warning in checked.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    # The bar goes to stderr, so stdout carries only what scripts read (the submission id).
    with Progress(*Progress.get_default_columns(), DownloadColumn(), console=Console(stderr=True)) as bar:
        upload = bar.add_task("uploading", total=None)
        checkpoint = client.upload_checkpoint(path, family, on_progress=lambda n: bar.advance(upload, n),
                                              license=license)
    sub = client.submit(checkpoint_sha256=checkpoint["sha256"], **request)
    typer.echo(f"submission {sub['id']} {sub['status']}")
    if wait:
        sub = client.wait(sub["id"])
        _print_outcome(client, sub)


def _print_outcome(client, sub: dict) -> None:
    """A finished submission's runs and results, as `status` and `results` print them."""
    from cli.render import submission_table
    rich_print(submission_table(sub))
    if any(run["status"] == "finished" for run in sub["runs"]):
        _print_results(client, sub["id"])
    if sub["status"] != "finished":
        raise typer.Exit(EXIT_FAILED)


def _print_results(client, submission_id: str) -> None:
    from cli.render import results_legend, results_summary, results_table
    payload = json.loads(client.results(submission_id, "json"))
    standing = client.standing(payload["submission"])
    rich_print(results_summary(payload, standing))
    rich_print(results_table(payload))
    rich_print(results_legend(payload))


@app.command()
def status(submission_id: str, api_url: str = typer.Option(None),
           watch: bool = typer.Option(False, "--watch", help="follow it live until it ends")) -> None:
    """Show a submission's status and its runs (stage, progress, queue position, errors)."""
    from rich.live import Live

    from cli.client import EvalboardClient
    from cli.render import submission_table
    client = EvalboardClient(_api_url(api_url))
    sub = client.submission(_submission_id(submission_id))
    if not watch:
        rich_print(submission_table(sub))
    else:
        with Live(submission_table(sub), refresh_per_second=4) as live:
            while sub["status"] not in ("finished", "failed", "cancelled"):
                time.sleep(1)
                sub = client.submission(sub["id"])
                live.update(submission_table(sub))
    if sub["status"] in ("failed", "cancelled"):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def results(submission_id: str, api_url: str = typer.Option(None),
            format: str = typer.Option("table", "--format", help=f"{', '.join(FORMATS)} (default: table, a "
                                       "summary with overall, capabilities, rank and band, then every metric)")
            ) -> None:
    """Print a submission's results."""
    from cli.client import EvalboardClient
    if format not in FORMATS:
        raise CliError(f"--format {format!r} is not one of: {', '.join(FORMATS)}")
    client = EvalboardClient(_api_url(api_url))
    if format == "table":
        _print_results(client, _submission_id(submission_id))
    else:
        typer.echo(client.results(_submission_id(submission_id), format), nl=False)


@app.command("list")
def list_submissions(api_url: str = typer.Option(None), token: str = typer.Option(None, envvar="EVALBOARD_TOKEN"),
                     limit: int = typer.Option(20, min=1, max=200, help="how many, newest first")) -> None:
    """List your submissions, newest first (an admin token lists everyone's)."""
    from cli.client import EvalboardClient
    from cli.render import submissions_table
    page = EvalboardClient(_api_url(api_url), _require_token(token)).submissions(limit=limit)
    if not page["items"]:
        typer.echo("no submissions yet: `evalboard submit ./my-model --suite language-core` makes one")
        return
    rich_print(submissions_table(page))


@app.command()
def cancel(submission_id: str, api_url: str = typer.Option(None),
           token: str = typer.Option(None, envvar="EVALBOARD_TOKEN")) -> None:
    """Cancel a submission's remaining runs (a running evaluation stops within seconds)."""
    from cli.client import EvalboardClient
    client = EvalboardClient(_api_url(api_url), _require_token(token))
    submission_id = _submission_id(submission_id)
    before = client.submission(submission_id)
    pending = {run["id"] for run in before["runs"] if run["status"] in ("queued", "running")}
    if not pending:
        raise CliError(f"nothing was cancelled: submission {submission_id} has already ended ({before['status']})",
                       EXIT_FAILED)
    sub = client.cancel(submission_id)
    stopped = sum(1 for run in sub["runs"] if run["id"] in pending and run["status"] == "cancelled")
    finished = sum(1 for run in sub["runs"] if run["status"] == "finished")
    typer.echo(f"submission {sub['id']} {sub['status']}: {stopped} run(s) cancelled, {finished} already finished")


@app.command()
def up(api_port: int = typer.Option(8000), board_port: int = typer.Option(8501),
       workers: int = typer.Option(1, help="CPU workers to start"),
       demo: bool = typer.Option(True, help="on first start, build and submit the demo models")) -> None:
    """Run everything on this machine (embedded Postgres and Redis unless DATABASE_URL/REDIS_URL are set)."""
    from cli.embedded import migrate as run_migrations
    from cli.embedded import start_missing, stop
    from cli.launcher import Launcher

    # Ctrl-C and a SIGTERM (docker, systemd) both stop everything cleanly, even when started
    # from a shell that had SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from cli.running import read_state, remove_state, write_state

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = read_state(settings.data_dir)
    if running is not None:
        raise CliError(f"evalboard up is already running for {settings.data_dir} (pid {running['pid']}): its API is "
                       f"at {running.get('api_url')}; stop it with Ctrl-C first", EXIT_FAILED)
    for name, port in (("--api-port", api_port), ("--board-port", board_port)):
        _check_port_free(name, port)
    services = start_missing(settings.data_dir)
    run_migrations(services.database_url)
    api_url, board_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{board_port}"
    os.environ["EVALBOARD_API_URL"] = os.environ["API_URL"] = api_url
    launcher = Launcher(settings.data_dir / "logs")
    # Every service listens on loopback only: this is one person's machine, not a server.
    # Several API processes share one published board; the board builder is the only one that builds it.
    os.environ["BOARD_BUILDER"] = "external"
    launcher.start("board-builder", [sys.executable, "-m", "cli.main", "board-builder"])
    launcher.start("api", api_command("127.0.0.1", api_port))
    for i in range(workers):
        launcher.start(f"worker-{i}", [sys.executable, "-m", "cli.main", "worker", "--hardware", "cpu"])
    launcher.start("leaderboard", [sys.executable, "-m", "streamlit", "run", "leaderboard/app.py",
                                   "--server.address", "127.0.0.1", "--server.port", str(board_port),
                                   "--server.headless", "true", "--browser.gatherUsageStats", "false"])
    try:
        launcher.wait_http(f"{api_url}/api/v1/health", timeout_s=60)
        # Commands in a second terminal (`evalboard token create`, …) find these services here.
        write_state(settings.data_dir, database_url=services.database_url, redis_url=services.redis_url,
                    api_url=api_url, board_url=board_url)
        typer.echo(f"API          {api_url}/docs\nLeaderboard  {board_url}\n"
                   f"Logs         {settings.data_dir / 'logs'}\n"
                   f"Token        evalboard token create --user NAME   (in another terminal of this folder)\n"
                   f"Press Ctrl-C to stop.")
        marker = settings.data_dir / "demo-submitted"
        if demo and not marker.exists():
            # The token goes through the environment: a command line is readable by every local user (ps).
            launcher.start("demo", [sys.executable, "-m", "cli.main", "demo-models", "--submit",
                                    "--api-url", api_url], restart=False, env={"EVALBOARD_TOKEN": _demo_token()})
            marker.touch()
        launcher.supervise()
    except KeyboardInterrupt:
        typer.echo("stopping …")
    finally:
        remove_state(settings.data_dir)
        launcher.stop_all()
        stop(services.handles)


def _check_port_free(option: str, port: int) -> None:
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise CliError(f"port {port} on 127.0.0.1 is in use (another `evalboard up`?): stop that, or pass "
                           f"{option} with a free port", EXIT_FAILED) from None


def _demo_token() -> str:
    from core.crud import create_token, create_user
    from core.db import session_scope
    with session_scope() as s:
        return create_token(session=s, user=create_user(session=s, name="evalboard-demo"))


if __name__ == "__main__":
    app()
