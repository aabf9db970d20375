"""How the evaluation child is confined: the command that starts it, its environment and limits.

The child loads an author's checkpoint, so it is treated as hostile (DESIGN §6, layer 2).
What it gets, and nothing more:

- an environment built from an allow-list (`child_environment`): no DATABASE_URL, REDIS_URL,
  tokens, webhook secrets or cloud credentials; HOME, TMPDIR and every cache point into a
  private working folder that is deleted when the child ends;
- resource limits (`limits_command`, prlimit): open files, processes, file size, core dumps, and address
  space on CPU workers; `no_new_privs`, so no setuid binary can raise it again;
- with bubblewrap (`bwrap`, Debian's `bubblewrap`), a filesystem made of read-only binds of
  what Python needs (the interpreter, the virtualenv, our `core`/`runners`/`evaluators`
  packages and the bundled datasets), its own checkpoint read-only, its working folder
  writable, a fresh /tmp, and nothing else: no other author's checkpoint, no database or
  Redis socket, no project `.env`; new network, PID, IPC and UTS namespaces (no network at
  all: not even loopback reaches the host's services); it dies with the worker;
- an unprivileged uid/gid (`eval_child_uid`) when the worker runs as root.

Without bubblewrap the child still gets the environment, the limits and (as root) the uid
drop, but shares the host's network and filesystem view; the worker logs that loudly at
start, and `EVAL_ISOLATION=bwrap` makes a missing bubblewrap fatal instead.
"""
import functools
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from core.dataset_mirror import nltk_dir

log = logging.getLogger("evalboard.isolation")

# Our packages the child imports; nothing else of the project tree is visible to it.
CHILD_PACKAGES = ("core", "runners", "evaluators")

# Variables a child may inherit from the worker, by exact name: locale, threading and device
# selection. Everything else (credentials, URLs, tokens) is left behind.
INHERITED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
                 "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTORCH_CUDA_ALLOC_CONF")


@dataclass(frozen=True)
class Isolation:
    """What confinement a child actually gets; `describe()` is the worker's log line."""
    bwrap: str | None
    drop_to_uid: int | None
    drop_to_gid: int | None
    missing: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        have = ["allow-listed environment (no credentials)", "rlimits", "no_new_privs", "private working folder"]
        if self.bwrap:
            have += ["bubblewrap: no network, read-only checkpoint, no other checkpoint or service socket visible"]
        if self.drop_to_uid is not None:
            have.append(f"uid {self.drop_to_uid}")
        text = "evaluation child isolation: " + "; ".join(have)
        if self.missing:
            text += ". MISSING: " + "; ".join(self.missing)
        return text


def _uid_drop(settings: Settings) -> tuple[int | None, int | None]:
    if os.geteuid() != 0:
        return None, None  # already unprivileged: the child keeps the worker's own uid
    return settings.eval_child_uid, settings.eval_child_gid


@functools.lru_cache
def _bwrap_works(bwrap: str, as_root: bool) -> bool:
    """One trial run: bubblewrap may be installed yet refused by the kernel or a container policy."""
    args = [bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent"]
    if not as_root:
        args.append("--unshare-user")
    try:
        return subprocess.run(args + ["true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_isolation(settings: Settings) -> Isolation:
    uid, gid = _uid_drop(settings)
    missing = []
    bwrap = shutil.which("bwrap") if settings.eval_isolation in ("auto", "bwrap") else None
    if bwrap and not _bwrap_works(bwrap, os.geteuid() == 0):
        missing.append(f"{bwrap} is installed but cannot create namespaces here")
        bwrap = None
    elif not bwrap and settings.eval_isolation != "process":
        missing.append("bubblewrap is not installed (apt-get install bubblewrap)")
    if not bwrap:
        missing += ["network namespace: the child can reach the network and local services",
                    "filesystem view: the child can read whatever its uid can read on this host"]
        if settings.eval_isolation == "bwrap":
            raise RuntimeError("EVAL_ISOLATION=bwrap but bubblewrap cannot run here: " + "; ".join(missing))
    if uid is not None and not bwrap and not _reachable_by_others(Path(sys.executable)):
        # Without bwrap's own view of the filesystem the interpreter must be reachable by that uid.
        missing.append(f"uid drop: {sys.executable} is not readable by other users, the child stays root")
        uid = gid = None
    if uid is None and not bwrap:
        missing.append("a separate uid: the child runs as the worker's own uid and can read and write whatever "
                       "the worker can (not the worker's memory or environment: the worker is non-dumpable); "
                       "run the worker as root (it drops the child to EVAL_CHILD_UID) or give it bubblewrap")
    elif uid is None and os.geteuid() == 0:
        missing.append("unprivileged uid")
    return Isolation(bwrap=bwrap, drop_to_uid=uid, drop_to_gid=gid, missing=tuple(missing))


PR_SET_DUMPABLE = 4


def protect_worker() -> None:
    """Make this (the worker's) process non-dumpable: its /proc files (environ with the database and store
    credentials, memory, fds) become root's, and no process of the same uid may ptrace it. Without
    bubblewrap or a uid drop a child runs as the worker's own uid; this is what keeps it out of the
    worker's secrets then."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE, 0) failed (errno %s)", ctypes.get_errno())


def _reachable_by_others(path: Path) -> bool:
    for part in [*reversed(path.resolve().parents)]:
        if not os.stat(part).st_mode & 0o001:
            return False
    return bool(os.stat(path.resolve()).st_mode & 0o005)


def child_environment(workdir: Path, settings: Settings) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    cache = workdir / "cache"
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir), "TMPDIR": str(workdir / "tmp"), "USER": "evalboard-eval", "LOGNAME": "evalboard-eval",
        "XDG_CACHE_HOME": str(cache), "HF_HOME": str(cache / "huggingface"),
        "HF_DATASETS_CACHE": str(cache / "datasets"), "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
        # The parent fetched whatever the hub had to give before the child started.
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        # Where evaluators find bundled data; not secret, and read-only inside the sandbox.
        "DATASETS_DIR": str(settings.datasets_dir), "DATA_DIR": str(settings.data_dir),
        # Named lm-eval tasks read their data here (core/dataset_mirror.py); read-only inside the sandbox.
        "DATASET_MIRROR_DIR": str(settings.mirror_folder), "NLTK_DATA": str(nltk_dir(settings.mirror_folder)),
    })
    return env


def make_workdir(root: Path, isolation: Isolation) -> Path:
    import tempfile
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # others may enter their own folder, never list the rest
    workdir = Path(tempfile.mkdtemp(prefix="child-", dir=root))
    for sub in ("tmp", "cache"):
        (workdir / sub).mkdir()
    if isolation.drop_to_uid is not None:
        for path in (workdir, workdir / "tmp", workdir / "cache"):
            os.chown(path, isolation.drop_to_uid, isolation.drop_to_gid)
    return workdir


def make_request_cache(root: Path, submission: str, run: str, isolation: Isolation) -> tuple[Path, Path]:
    """(the submission's request-cache folder, this run's folder in it), owned by the child's uid.

    A retried run resumes from what its killed predecessor finished (evaluators/language/request_ledger.py),
    so the cache must outlive the child's private folder, which goes with the child. The child sees only
    its own submission's folder (a read-write bind, next to its workdir): never another author's.
    """
    for part in (submission, run):
        if not part or not all(c in "0123456789abcdef-" for c in part) or len(part) > 64:
            raise ValueError(f"not a run key: {part!r}")  # ids from our database; never a path
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # as the children's root: others enter their own folder, never list the rest
    folder = root / submission
    run_folder = folder / run
    # The submission's folder stays the worker's (children cannot rename or replace what is in it); only
    # each run's folder is the child's. A child could still have left a link where a run folder was (the
    # folder it owned is gone only if it could delete it, which it cannot): never follow one, so the
    # chown below can never hand a host folder to the child's uid.
    for path in (folder, run_folder):
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        path.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    if isolation.drop_to_uid is not None:
        os.chown(folder, 0, 0, follow_symlinks=False)
        os.chown(run_folder, isolation.drop_to_uid, isolation.drop_to_gid, follow_symlinks=False)
    return folder, run_folder


def _ro_sources(settings: Settings) -> list[Path]:
    """What Python needs to run our evaluators, as read-only binds (deduplicated, nested ones dropped)."""
    wanted = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent,
              *(PROJECT_ROOT / name for name in CHILD_PACKAGES), settings.datasets_dir,
              settings.data_dir / "clip_benchmark", settings.mirror_folder]
    wanted += [Path(p) for p in sys.path if p and Path(p).is_dir() and "site-packages" in p]
    kept: list[Path] = []
    for path in sorted({p.resolve() for p in wanted if p.exists()}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept) and not path.is_relative_to("/usr"):
            kept.append(path)
    return kept


class _Tree:
    """bwrap creates missing mount points with mode 0700; ours are made 0755 first, so the uid can enter."""

    def __init__(self) -> None:
        self.made: set[Path] = {Path("/")}
        self.args: list[str] = []

    def dirs_for(self, target: Path) -> None:
        for parent in reversed(target.parents):
            if parent not in self.made:
                self.made.add(parent)
                self.args += ["--perms", "0755", "--dir", str(parent)]

    def bind(self, flag: str, source: Path, target: Path | None = None) -> None:
        target = target or source
        self.dirs_for(target)
        self.made.add(target)
        self.args += [flag, str(source), str(target)]


def bwrap_command(isolation: Isolation, *, checkpoint: Path | None, workdir: Path, device: str,
                  settings: Settings, request_cache: Path | None = None, base: Path | None = None) -> list[str]:
    tree = _Tree()
    tree.args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                  "--die-with-parent", "--new-session", "--hostname", "evalboard-eval"]
    if os.geteuid() != 0:
        tree.args.append("--unshare-user")
    tree.args += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            tree.args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            tree.bind("--ro-bind", path)
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates",
                 "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives"):
        if Path(name).exists():
            tree.bind("--ro-bind", Path(name))
    tree.made.update({Path("/dev"), Path("/proc"), Path("/tmp")})
    tree.args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    if device != "cpu":  # GPU nodes and the driver's sysfs view
        for node in sorted(Path("/dev").glob("nvidia*")) + sorted(Path("/dev").glob("dri")):
            tree.args += ["--dev-bind", str(node), str(node)]
        tree.args += ["--ro-bind", "/sys", "/sys"]
    for source in _ro_sources(settings):
        tree.bind("--ro-bind", source)
    if checkpoint is not None:
        tree.bind("--ro-bind", checkpoint.resolve(), checkpoint)
    if base is not None:  # a LoRA adapter's pinned base model, read-only like the checkpoint
        tree.bind("--ro-bind", base.resolve(), base)
    tree.bind("--bind", workdir)
    if request_cache is not None:  # its submission's request cache (make_request_cache): outlives the child
        tree.bind("--bind", request_cache)
    tree.args += ["--chdir", str(workdir)]
    # bwrap runs as root when the worker is root (mounts need it); setpriv drops the uid inside it.
    return [isolation.bwrap, *tree.args]


def limits_command(settings: Settings, device: str) -> list[str]:
    """prlimit's wrapper (not a preexec_fn: the worker has threads, and fork+preexec is not safe with them)."""
    args = [shutil.which("prlimit") or "/usr/bin/prlimit",
            f"--nofile={settings.eval_child_max_open_files}", f"--nproc={settings.eval_child_max_processes}",
            f"--fsize={settings.eval_child_max_file_bytes}", "--core=0"]
    if device == "cpu":
        # Address space: the RSS cap is watched by the parent; this stops a runaway allocation outright.
        # Not on GPUs, whose drivers reserve far more address space than they use.
        args.append(f"--as={settings.eval_memory_cap_bytes + settings.eval_child_address_space_headroom_bytes}")
    return [*args, "--"]


def privileges_command(isolation: Isolation) -> list[str]:
    """setpriv: no_new_privs always (no setuid binary can raise the child again), and the uid drop as root."""
    args = [shutil.which("setpriv") or "/usr/bin/setpriv", "--no-new-privs"]
    if isolation.drop_to_uid is not None:
        args += [f"--reuid={isolation.drop_to_uid}", f"--regid={isolation.drop_to_gid}", "--clear-groups"]
    return [*args, "--"]


def child_command(isolation: Isolation, *, checkpoint: Path | None, workdir: Path, device: str,
                  settings: Settings, fd: int, request_cache: Path | None = None,
                  base: Path | None = None) -> list[str]:
    """The whole command line: limits, then the sandbox (if any), then the uid drop, then Python."""
    command = limits_command(settings, device)
    if isolation.bwrap:
        command += bwrap_command(isolation, checkpoint=checkpoint, workdir=workdir, device=device, settings=settings,
                                 request_cache=request_cache, base=base)
    return command + privileges_command(isolation) + [sys.executable, "-m", "runners.eval_child", str(fd)]
