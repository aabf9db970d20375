"""`evalboard datasets pull|verify`: the dataset mirror offline workers score standard lm-eval tasks on.

`pull` runs on a machine that reaches the Hugging Face hub (HF_TOKEN set for gated sets); the mirror
folder it writes is then copied to the workers (or a shared read-only mount), whose DATASET_MIRROR_DIR
points at it. `verify` checks every file against its manifest, and with a suite, that the mirror
serves each of the suite's tasks to lm-eval as a worker would (offline).
"""
from pathlib import Path

import typer

from cli.errors import EXIT_FAILED, CliError

datasets_app = typer.Typer(help="The dataset mirror for named lm-eval tasks (offline workers).", no_args_is_help=True)


def _mirror(option: Path | None) -> Path:
    from core.config import get_settings
    return option or get_settings().mirror_folder


def _tasks(suite: str | None, tasks: list[str] | None) -> list[str]:
    from core.catalog import get_suite
    from evaluators.language.mirror import suite_tasks

    names = list(tasks or [])
    if suite:
        names += [t for t in suite_tasks(get_suite(suite)) if t not in names]
    if not names:
        raise CliError(f"suite {suite!r} names no lm-eval task (its tasks carry their own data)" if suite
                       else "name a SUITE or at least one --task")
    return names


@datasets_app.command("pull")
def pull(suite: str | None = typer.Argument(None, help="Suite whose lm-eval tasks to fetch (e.g. language-open-v2)."),
         task: list[str] | None = typer.Option(None, "--task", help="An lm-eval task name (repeatable)."),
         mirror: Path | None = typer.Option(None, "--mirror", help="Mirror folder (default: DATASET_MIRROR_DIR)."),
         force: bool = typer.Option(False, "--force", help="Fetch again what the mirror already holds.")) -> None:
    """Fetch every dataset the tasks load, at a pinned hub commit, into the mirror with its manifest."""
    from core.dataset_mirror import DatasetMirrorError
    from evaluators.language.mirror import pull_tasks

    names, root = _tasks(suite, task), _mirror(mirror)
    try:
        pulled = pull_tasks(names, root, force=force)
    except DatasetMirrorError as exc:
        raise CliError(f"error: {exc}", EXIT_FAILED) from exc
    for p in sorted(pulled, key=lambda p: p.key):
        typer.echo(f"{p.status:8} {p.key}  revision {p.revision}  manifest {p.manifest_sha256[:16]}")
    typer.echo(f"{len(pulled)} datasets for {len(names)} tasks in {root}")


@datasets_app.command("verify")
def verify(suite: str | None = typer.Argument(None, help="Also check that each of this suite's tasks is served."),
           task: list[str] | None = typer.Option(None, "--task", help="An lm-eval task name (repeatable)."),
           mirror: Path | None = typer.Option(None, "--mirror", help="Mirror folder (default: DATASET_MIRROR_DIR).")
           ) -> None:
    """Check each mirrored file against its manifest; with a suite or --task, build each task from the mirror."""
    from core.dataset_mirror import verify_mirror

    root = _mirror(mirror)
    problems = []
    found = verify_mirror(root)
    for key, problem in found:
        typer.echo(f"{'ok' if problem is None else 'BAD':8} {key}" + (f": {problem}" if problem else ""))
        if problem:
            problems.append(key)
    if suite or task:
        from evaluators.language.mirror import served_tasks
        for name, problem in served_tasks(_tasks(suite, task), root):
            status = "served" if problem is None else "MISSING"
            typer.echo(f"{status:8} task {name}" + (f": {problem}" if problem else ""))
            if problem:
                problems.append(name)
    elif not found:
        problems.append(str(root))
        typer.echo(f"no datasets in {root}")
    if problems:
        raise CliError(f"error: the mirror at {root} fails for {', '.join(problems)}", EXIT_FAILED)
    typer.echo(f"mirror {root}: {len(found)} datasets verified")


@datasets_app.command("publish")
def publish(mirror: Path | None = typer.Option(None, "--mirror", help="Mirror folder (default: DATASET_MIRROR_DIR).")
            ) -> None:
    """Put a verified mirror in the artifact store (ARTIFACT_STORE_URL); prints the index workers fetch."""
    from core.artifact_store import get_store
    from core.dataset_mirror import DatasetMirrorError
    from core.mirror_store import publish as publish_mirror

    root = _mirror(mirror)
    try:
        index = publish_mirror(root, get_store())
    except DatasetMirrorError as exc:
        raise CliError(f"error: {exc}", EXIT_FAILED) from exc
    typer.echo(f"published {root} as mirror index {index}")
    typer.echo(f"on each worker host: evalboard datasets fetch {index}")


@datasets_app.command("fetch")
def fetch(index: str = typer.Argument(..., help="The mirror index sha256 `publish` printed."),
          mirror: Path | None = typer.Option(None, "--mirror", help="Mirror folder (default: DATASET_MIRROR_DIR).")
          ) -> None:
    """Rebuild the mirror from the artifact store (each object checked against its sha256), then verify it."""
    from core.artifact_store import get_store
    from core.dataset_mirror import DatasetMirrorError, verify_mirror
    from core.mirror_store import fetch as fetch_mirror

    root = _mirror(mirror)
    try:
        done = fetch_mirror(index.strip().lower(), root, get_store())
    except DatasetMirrorError as exc:
        raise CliError(f"error: {exc}", EXIT_FAILED) from exc
    for folder, status in done:
        typer.echo(f"{status:8} {folder}")
    problems = [key for key, problem in verify_mirror(root) if problem]
    if problems:
        raise CliError(f"error: the fetched mirror at {root} fails for {', '.join(problems)}", EXIT_FAILED)
    typer.echo(f"mirror {root}: {len(done)} folders from index {index.strip().lower()[:16]}")
