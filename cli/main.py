"""The `evalboard` command: run the service, work the queue, manage tokens, submit models."""
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import typer
from rich import print as rich_print

app = typer.Typer(help="Evalboard: evaluation-as-a-service leaderboard.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

EXIT_FAILED, EXIT_REJECTED = 1, 2


def _settings():
    from core.config import get_settings
    return get_settings()


@app.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from cli.embedded import migrate as run_migrations
    run_migrations()


@token_app.command("create")
def token_create(user: str = typer.Option(..., "--user", help="user name; created if new"),
                 admin: bool = typer.Option(False, help="give the user the admin role")) -> None:
    """Create an API token and print it. It is shown this once: only its hash is stored."""
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


@app.command("demo-models")
def demo_models(out: Path = typer.Option(None, help="folder for the checkpoints"),
                submit: bool = typer.Option(False, help="also upload and submit them to --api-url"),
                api_url: str = typer.Option(None), token: str = typer.Option(None, envvar="EVALBOARD_TOKEN")) -> None:
    """Build the tiny demo checkpoints (and optionally submit them)."""
    from cli.demo import build_demo_models, submit_demo_models
    out = out or _settings().data_dir / "demo-models"
    if submit:
        from cli.client import EvalboardClient
        ids = submit_demo_models(EvalboardClient(api_url or _settings().api_url, token), out)
        typer.echo("\n".join(ids))
    else:
        from evaluators.multimodal.demo import build_demo_clip_models
        for name, folder in (build_demo_models(out) | build_demo_clip_models(out)).items():
            typer.echo(f"{name}: {folder}")


@app.command()
def submit(path: Path = typer.Argument(..., exists=True, file_okay=False, help="model folder"),
           suite: str = typer.Option(..., "--suite"), model_name: str = typer.Option(None, "--name"),
           task: list[str] = typer.Option(None, "--task", help="only these tasks of the suite (repeatable)"),
           family: str = typer.Option("causal-lm"), hardware: str = typer.Option("cpu", "--hardware"),
           precision: str = typer.Option("float32"), license: str = typer.Option(None),
           api_url: str = typer.Option(None), token: str = typer.Option(..., envvar="EVALBOARD_TOKEN"),
           wait: bool = typer.Option(False, help="wait until it finishes")) -> None:
    """Upload a model folder and submit it for evaluation."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress

    from cli.client import ApiError, EvalboardClient
    client = EvalboardClient(api_url or _settings().api_url, token)
    try:
        # The bar goes to stderr, so stdout carries only what scripts read (the submission id).
        with Progress(*Progress.get_default_columns(), DownloadColumn(), console=Console(stderr=True)) as bar:
            upload = bar.add_task("uploading", total=None)
            checkpoint = client.upload_checkpoint(path, family, on_progress=lambda n: bar.advance(upload, n))
        sub = client.submit(model_name=model_name or path.name, checkpoint_sha256=checkpoint["sha256"], suite=suite,
                            hardware_class=hardware, precision=precision, license=license, tasks=task or None)
    except ApiError as exc:
        typer.echo(f"rejected: {exc.detail}", err=True)
        raise typer.Exit(EXIT_REJECTED if 400 <= exc.status < 500 else EXIT_FAILED)
    typer.echo(f"submission {sub['id']} {sub['status']}")
    if wait:
        sub = client.wait(sub["id"])
        typer.echo(f"submission {sub['id']} {sub['status']}")
        for run in sub["runs"]:
            typer.echo(f"  {run['task']}: {run['status']} {run['scores'] or run['error'] or ''}")
        if sub["status"] != "finished":
            raise typer.Exit(EXIT_FAILED)


@app.command()
def status(submission_id: str, api_url: str = typer.Option(None),
           watch: bool = typer.Option(False, "--watch", help="follow it live until it ends")) -> None:
    """Show a submission's status and its runs (stage, progress, queue position, errors)."""
    from rich.live import Live

    from cli.client import ApiError, EvalboardClient
    from cli.render import submission_table
    client = EvalboardClient(api_url or _settings().api_url)
    try:
        sub = client.submission(submission_id)
    except ApiError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(EXIT_REJECTED)
    if not watch:
        rich_print(submission_table(sub))
    else:
        with Live(submission_table(sub), refresh_per_second=4) as live:
            while sub["status"] not in ("finished", "failed", "cancelled"):
                time.sleep(1)
                sub = client.submission(submission_id)
                live.update(submission_table(sub))
    if sub["status"] in ("failed", "cancelled"):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def results(submission_id: str, api_url: str = typer.Option(None),
            format: str = typer.Option("table", "--format", help="table, json, csv, lm-eval or model-index")) -> None:
    """Print a submission's results."""
    from cli.client import ApiError, EvalboardClient
    from cli.render import results_table
    client = EvalboardClient(api_url or _settings().api_url)
    try:
        if format == "table":
            rich_print(results_table(json.loads(client.results(submission_id, "json"))))
        else:
            typer.echo(client.results(submission_id, format), nl=False)
    except ApiError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(EXIT_REJECTED if 400 <= exc.status < 500 else EXIT_FAILED)


@app.command()
def cancel(submission_id: str, api_url: str = typer.Option(None),
           token: str = typer.Option(..., envvar="EVALBOARD_TOKEN")) -> None:
    """Cancel a submission's remaining runs (a running evaluation stops within seconds)."""
    from cli.client import ApiError, EvalboardClient
    try:
        sub = EvalboardClient(api_url or _settings().api_url, token).cancel(submission_id)
    except ApiError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(EXIT_REJECTED)
    typer.echo(f"submission {sub['id']} {sub['status']}")


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
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = start_missing(settings.data_dir)
    run_migrations(services.database_url)
    api_url = f"http://127.0.0.1:{api_port}"
    os.environ["EVALBOARD_API_URL"] = os.environ["API_URL"] = api_url
    launcher = Launcher(settings.data_dir / "logs")
    launcher.start("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                           "--port", str(api_port)])
    for i in range(workers):
        launcher.start(f"worker-{i}", [sys.executable, "-m", "cli.main", "worker", "--hardware", "cpu"])
    launcher.start("leaderboard", [sys.executable, "-m", "streamlit", "run", "leaderboard/app.py",
                                   "--server.port", str(board_port), "--server.headless", "true",
                                   "--browser.gatherUsageStats", "false"])
    try:
        launcher.wait_http(f"{api_url}/api/v1/health", timeout_s=60)
        typer.echo(f"API          {api_url}/docs\nLeaderboard  http://127.0.0.1:{board_port}\n"
                   f"Logs         {settings.data_dir / 'logs'}\nPress Ctrl-C to stop.")
        marker = settings.data_dir / "demo-submitted"
        if demo and not marker.exists():
            launcher.start("demo", [sys.executable, "-m", "cli.main", "demo-models", "--submit",
                                    "--api-url", api_url, "--token", _demo_token()], restart=False)
            marker.touch()
        launcher.supervise()
    except KeyboardInterrupt:
        typer.echo("stopping …")
    finally:
        launcher.stop_all()
        stop(services.handles)


def _demo_token() -> str:
    from core.crud import create_token, create_user
    from core.db import session_scope
    with session_scope() as s:
        return create_token(session=s, user=create_user(session=s, name="evalboard-demo"))


if __name__ == "__main__":
    app()
