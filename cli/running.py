"""The `evalboard up` running for a project folder, as the other commands find it.

`up` writes `<data_dir>/running.json` (the database and Redis URLs it serves, the API's URL, its
pid) readable by its user only, since a URL may carry a password, and removes it when it stops.
A command run in a second terminal (`evalboard token create`, `submit`, …) adopts those URLs for
whatever DATABASE_URL / REDIS_URL / API_URL the environment leaves unset: the README's steps work
after `make run` with nothing exported.
"""
import json
import os
from pathlib import Path

STATE_FILE = "running.json"
# The variables a running `up` can supply, and the key of each in the state file.
ADOPTED = {"DATABASE_URL": "database_url", "REDIS_URL": "redis_url", "API_URL": "api_url"}


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def write_state(data_dir: Path, *, database_url: str, redis_url: str, api_url: str, board_url: str) -> Path:
    """Write the state atomically with mode 0600 (created so: never world-readable, not even briefly)."""
    path = state_path(data_dir)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    body = json.dumps({"pid": os.getpid(), "database_url": database_url, "redis_url": redis_url,
                       "api_url": api_url, "board_url": board_url})
    tmp.unlink(missing_ok=True)  # a leftover of a killed `up` with this pid
    # O_EXCL | O_NOFOLLOW: a planted file or link at the temporary name is refused, not written through.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.replace(tmp, path)
    return path


def remove_state(data_dir: Path) -> None:
    """Remove the state if it is this process's (a second `up` must not erase the first one's)."""
    state = read_state(data_dir)
    if state is not None and state.get("pid") == os.getpid():
        state_path(data_dir).unlink(missing_ok=True)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def read_state(data_dir: Path) -> dict | None:
    """The running `up`'s state, or None when none runs (no file, an unreadable one, or a dead pid)."""
    try:
        state = json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(state.get("pid")):
        return None  # left behind by an `up` that was killed: its servers are gone too
    return {k: v for k, v in state.items() if k == "pid" or isinstance(v, str)}


def adopt(data_dir: Path) -> dict | None:
    """Fill the unset service variables from the running `up`; return its state (None if none runs)."""
    state = read_state(data_dir)
    if state is None:
        return None
    changed = False
    for variable, key in ADOPTED.items():
        if not os.environ.get(variable) and state.get(key):
            os.environ[variable] = state[key]
            changed = True
    if changed:
        from core.config import get_settings
        get_settings.cache_clear()  # settings read before this point lacked the URLs
    return state
