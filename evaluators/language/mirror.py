"""lm-eval's dataset loads, served from the dataset mirror (workers, offline) or fetched into it (pull).

lm-eval builds every task, and every subtask of a group, from its own YAML config and loads the
data with one call: `datasets.load_dataset(path=dataset_path, name=dataset_name, **dataset_kwargs)`
(lm_eval/api/task.py, ConfigurableTask.download). That call is the one place a dataset is chosen,
so both directions hook it for the duration of one evaluation or one pull, and the task configs
stay exactly as lm-eval defines them (prompts, splits, few-shot, process_docs, metrics):

- `serving(task)` (the evaluation child): the named dataset is read from the mirror's Parquet
  files after every sha256 is checked against its manifest; a dataset missing from the mirror or
  not matching it raises DatasetMirrorError (an infrastructure fault) naming the dataset and the pull
  command, before any inference. Each served manifest's sha256 goes into the score's provenance.
- `pull_tasks(tasks, mirror)` (a connected machine): lm-eval builds the tasks; each load fetches the
  dataset at its pinned hub commit, writes it to the mirror and its manifest, and hands lm-eval the
  mirror's copy, so a pull also proves the mirror serves every task it was made for.

Local builders (json/csv/parquet with data_files: the bundled tasks) pass through untouched.
"""
import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.dataset_mirror import (
    DatasetMirrorError,
    dataset_folder,
    dataset_key,
    nltk_dir,
    pull_hint,
    split_file,
    verify_dataset,
    verify_tree,
    write_manifest,
    write_tree_manifest,
)

PACKAGED_BUILDERS = frozenset({"json", "csv", "parquet", "arrow", "text", "pandas"})
# Loader settings that do not change which rows are read.
NEUTRAL_KWARGS = frozenset({"trust_remote_code", "download_mode", "verification_mode", "cache_dir", "token",
                            "num_proc"})

Loader = Callable[..., Any]


def nltk_resources(task: str) -> tuple[str, ...]:
    """NLTK data a task needs besides its dataset: IFEval's checks count sentences with Punkt (and its
    module calls nltk.download at import when the data is absent, which offline cannot)."""
    return ("punkt_tab",) if "ifeval" in task else ()


def _use_nltk_data(folder: Path) -> None:
    import nltk
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))


def _plain(kwargs: dict) -> dict:
    """Load kwargs as the manifest stores them (JSON), so a request compares equal to its record."""
    return json.loads(json.dumps({k: v for k, v in kwargs.items() if k not in NEUTRAL_KWARGS},
                                 sort_keys=True, default=str))


@contextlib.contextmanager
def _load_dataset_through(handler: Callable[[Loader, str, str | None, dict], Any]) -> Iterator[Loader]:
    """Route `datasets.load_dataset` through `handler(real_load, path, name, kwargs)` while inside."""
    import datasets

    real = datasets.load_dataset

    def load_dataset(path: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if args or path in PACKAGED_BUILDERS:
            return real(path, name, *args, **kwargs)
        return handler(real, path, name, dict(kwargs))

    datasets.load_dataset = load_dataset
    try:
        yield real
    finally:
        datasets.load_dataset = real


def _from_mirror(real: Loader, verified) -> Any:
    return real("parquet", data_files=verified.data_files())


@dataclass
class Serving:
    """What one evaluation read from the mirror: {dataset key: {revision, manifest_sha256}}."""
    mirror: Path | None
    task: str | None
    served: dict[str, dict] = field(default_factory=dict)

    def load(self, real: Loader, path: str, name: str | None, kwargs: dict) -> Any:
        revision = kwargs.pop("revision", None)
        verified = verify_dataset(self.mirror, path, name, task=self.task)
        if not verified.answers(revision):
            raise DatasetMirrorError(f"dataset {verified.key}: the task asks for revision {revision} but the mirror "
                                     f"holds {verified.revision}; {pull_hint(self.task)}")
        if _plain(kwargs) != verified.manifest.get("load_kwargs", {}):
            raise DatasetMirrorError(f"dataset {verified.key}: the task loads it with {_plain(kwargs)} but the mirror "
                                     f"was pulled with {verified.manifest.get('load_kwargs')}; {pull_hint(self.task)}")
        self.served[verified.key] = verified.provenance()
        return _from_mirror(real, verified)

    def provenance(self) -> dict | None:
        return dict(sorted(self.served.items())) or None


@contextlib.contextmanager
def serving(args: dict, mirror: Path | None) -> Iterator[Serving]:
    """Serve a named lm-eval task's datasets from the mirror (the worker's, EvalSpec.dataset_mirror_dir);
    bundled tasks (task_yaml) are left alone."""
    task = args.get("lm_eval_task")
    state = Serving(mirror, task)
    if task is None:
        yield state
        return
    if mirror is None:
        raise DatasetMirrorError(f"task {task} reads its data from the dataset mirror, but this evaluation was given "
                                 f"none; {pull_hint(task)}")
    resources = nltk_resources(task)
    if resources:
        verified = verify_tree(state.mirror, resources, task=task)
        state.served[verified.key] = verified.provenance()
        _use_nltk_data(verified.folder)
    with _load_dataset_through(state.load):
        yield state


# --- pull (connected machines) ---------------------------------------------------------------------------

Fetch = Callable[[Loader, str, str | None, str | None, dict], tuple[str, Any]]
"""(real load_dataset, dataset_path, dataset_name, revision or None, load kwargs) -> (commit, DatasetDict)"""


def fetch_from_hub(real: Loader, path: str, name: str | None, revision: str | None, kwargs: dict) -> tuple[str, Any]:
    """The dataset at one hub commit: the one the task pins, else the current one, recorded by its sha."""
    from huggingface_hub import HfApi

    key = dataset_key(path, name)
    try:
        commit = HfApi().dataset_info(path, revision=revision).sha  # the network call
        return commit, real(path, name, revision=commit, **kwargs)
    except Exception as exc:  # offline, gated without a token, gone: all said the same way
        raise DatasetMirrorError(
            f"could not fetch dataset {key} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pull on a machine that reaches the hub, with HF_TOKEN "
            f"set for gated sets (GPQA) after accepting their terms") from exc


@dataclass
class Pulled:
    key: str
    status: str  # "fetched" or "kept" (already in the mirror, verified)
    revision: str
    manifest_sha256: str


@dataclass
class Puller:
    mirror: Path
    fetch: Fetch
    force: bool = False
    pulled: dict[str, Pulled] = field(default_factory=dict)

    def load(self, real: Loader, path: str, name: str | None, kwargs: dict) -> Any:
        revision = kwargs.pop("revision", None)
        kwargs = {k: v for k, v in kwargs.items() if k not in NEUTRAL_KWARGS}
        key = dataset_key(path, name)
        folder = dataset_folder(self.mirror, path, name)
        if key not in self.pulled:
            kept = None if self.force else self._kept(path, name, revision, kwargs)
            if kept is None:
                commit, data = self.fetch(real, path, name, revision, kwargs)
                self._write(folder, path, name, commit, revision, kwargs, data)
            verified = kept or verify_dataset(self.mirror, path, name)
            self.pulled[key] = Pulled(key, "kept" if kept else "fetched", verified.revision, verified.manifest_sha256)
        return _from_mirror(real, verify_dataset(self.mirror, path, name))

    def _kept(self, path: str, name: str | None, revision: str | None, kwargs: dict):
        try:
            verified = verify_dataset(self.mirror, path, name)
        except DatasetMirrorError:
            return None
        same = verified.manifest.get("load_kwargs") == _plain(kwargs)
        return verified if same and verified.answers(revision) else None

    def _write(self, folder: Path, path: str, name: str | None, commit: str, requested: str | None, kwargs: dict,
               data: Any) -> None:
        """Written beside the final folder and renamed into place: a failed pull leaves no half dataset."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.pulling-", dir=folder.parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide it from the evaluation child's uid
        try:
            rows = {}
            for split, dataset in data.items():
                target = staging / split_file(split)
                target.parent.mkdir(parents=True)
                dataset.to_parquet(str(target))
                rows[split] = dataset.num_rows
            write_manifest(staging, dataset_path=path, dataset_name=name, revision=commit,
                           requested_revision=requested, load_kwargs=_plain(kwargs), splits=rows)
            if folder.exists():
                old = folder.with_name(f".{folder.name}.replaced")
                shutil.rmtree(old, ignore_errors=True)
                folder.rename(old)
                staging.rename(folder)
                shutil.rmtree(old)
            else:
                staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def suite_tasks(suite) -> list[str]:
    """The named lm-eval tasks of a suite (bundled tasks carry their data and need no pull)."""
    return [t.args["lm_eval_task"] for t in suite.tasks if "lm_eval_task" in t.args]


def fetch_nltk_from_index(resources: list[str], target: Path) -> str:
    """NLTK's own downloader, into the mirror's staging folder; returns what to record as the revision."""
    import nltk
    for resource in resources:
        try:
            ok = nltk.download(resource, download_dir=str(target), quiet=True, raise_on_error=True)
        except Exception as exc:  # offline, index unreachable
            raise DatasetMirrorError(f"could not fetch NLTK data {resource} ({type(exc).__name__}: {exc}); pull on "
                                     f"a machine that reaches NLTK's index") from exc
        if not ok:
            raise DatasetMirrorError(f"could not fetch NLTK data {resource}; pull on a machine that reaches NLTK's "
                                     f"index")
    return f"nltk {nltk.__version__}"


def _pull_nltk(mirror: Path, resources: list[str], fetch_nltk: Callable[[list[str], Path], str]) -> None:
    """The NLTK data, kept where the mirror already holds it, else fetched whole and renamed into place."""
    try:
        verify_tree(mirror, tuple(resources))
        return
    except DatasetMirrorError:
        pass
    folder = nltk_dir(mirror)
    mirror.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.pulling-", dir=mirror))
    staging.chmod(0o755)
    try:
        revision = fetch_nltk(resources, staging)
        write_tree_manifest(staging, resources=resources, revision=revision)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pull_tasks(tasks: list[str], mirror: Path, *, fetch: Fetch = fetch_from_hub, force: bool = False,
               task_manager: Any = None,
               fetch_nltk: Callable[[list[str], Path], str] = fetch_nltk_from_index) -> list[Pulled]:
    """Every dataset the named lm-eval tasks load, fetched into the mirror (kept where already there)."""
    from lm_eval.tasks import TaskManager

    manager = task_manager or TaskManager()
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise DatasetMirrorError(f"lm-eval {_lm_eval_version()} has no task {', '.join(unknown)}")
    resources = sorted({r for t in tasks for r in nltk_resources(t)})
    if resources:
        _pull_nltk(mirror, resources, fetch_nltk)
        _use_nltk_data(nltk_dir(mirror))
    puller = Puller(mirror, fetch, force)
    with _load_dataset_through(puller.load):
        for task in tasks:
            try:
                manager.load([task])
            except ImportError as exc:  # IFEval and MATH need lm-eval's extras to build at all
                raise DatasetMirrorError(f"lm-eval cannot build task {task} here: {exc}") from exc
    return list(puller.pulled.values())


def _lm_eval_version() -> str:
    from importlib.metadata import version
    return version("lm_eval")


def served_tasks(tasks: list[str], mirror: Path, *, task_manager: Any = None) -> list[tuple[str, str | None]]:
    """(task, problem or None) for each task: lm-eval builds it with its data read from the mirror only,
    as a worker's evaluation child would (nothing here can reach the hub)."""
    from lm_eval.tasks import TaskManager

    manager = task_manager or TaskManager()
    report = []
    for task in tasks:
        if task not in manager.all_tasks:
            report.append((task, f"lm-eval {_lm_eval_version()} has no such task"))
            continue
        try:
            with serving({"lm_eval_task": task}, mirror):
                manager.load([task])
            report.append((task, None))
        except (DatasetMirrorError, ImportError) as exc:
            report.append((task, str(exc)))
    return report
