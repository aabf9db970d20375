"""One way to download a hub repository's files: a pinned (or, connected, the current) revision, only
the files a loader reads, through huggingface_hub.

The worker fetches submissions pinned to a commit into its own cache as real files for the offline
child (runners/hub_fetch.py, `local_dir`); a connected in-process load by name reads through
huggingface_hub's cache (links into its blobs, which the loaders' folder check accepts).
"""
from pathlib import Path


def hub_snapshot(repo: str, revision: str | None, patterns: list[str], *, local_dir: Path | None = None,
                 cache_dir: str | None = None) -> tuple[Path, Path | None]:
    """(the folder holding the files, the blobs folder its links point into, or None for a `local_dir` of
    real files). Only files matching `patterns` are fetched: never code, never pickles."""
    from huggingface_hub import snapshot_download

    if local_dir is not None:
        snapshot_download(repo, revision=revision or None, local_dir=local_dir, allow_patterns=patterns)
        return Path(local_dir), None
    folder = Path(snapshot_download(repo, revision=revision or None, cache_dir=cache_dir, allow_patterns=patterns))
    return folder, folder.parent.parent / "blobs"
