"""What the artifact store keeps, and for how long.

The rule: a stored checkpoint stays as long as any submission names it (a submission's results
must stay reproducible from its bytes, withdrawn or not). A checkpoint no submission names is
removed, row, uploaders and bytes, once unused_checkpoint_grace_s (default 7 days) have passed
since its bytes were last uploaded by anyone; uploading them again later stores them afresh.
Resumable upload sessions follow their own rule (core/uploads.py: removed after a day idle).
Both run in the workers' reconciler, so a deployment needs no cron job.
"""
import logging
import shutil
from datetime import timedelta

from sqlalchemy import text

from core.config import Settings, get_settings
from core.db import session_scope
from core.models import utcnow

log = logging.getLogger("evalboard.retention")

# One statement: the rows are chosen and deleted together, so a submission made meanwhile either
# sees its checkpoint (and the delete skips it, or fails on the foreign key and retries next time)
# or finds it gone (404, as for any unknown checkpoint). Hub references are rows too, made for a
# submission, so they are never unused for long.
_UNUSED = """
    WITH unused AS (
        SELECT c.id, c.sha256, c.storage_uri FROM checkpoint c
        WHERE NOT EXISTS (SELECT 1 FROM submission s WHERE s.checkpoint_id = c.id)
          AND greatest(c.created_at, coalesce((SELECT max(u.first_uploaded_at) FROM checkpoint_uploader u
                                                WHERE u.checkpoint_id = c.id), c.created_at)) < :before
        FOR UPDATE OF c SKIP LOCKED
    ), uploaders AS (
        DELETE FROM checkpoint_uploader WHERE checkpoint_id IN (SELECT id FROM unused)
    )
    DELETE FROM checkpoint WHERE id IN (SELECT id FROM unused) RETURNING sha256, storage_uri
"""


def _remove_bytes(sha256: str, storage_uri: str, settings: Settings) -> None:
    """The checkpoint's files: the unpacked copy in the local store and, where the deployment has a
    shared artifact store, its object there."""
    local = settings.artifact_dir / "checkpoints" / sha256
    shutil.rmtree(local, ignore_errors=True)
    if storage_uri.startswith("store:"):
        from core.artifact_store import get_store, key_of  # only deployments with a shared store have these keys
        get_store(settings).delete(key_of(storage_uri))


def _still_referenced(storage_uri: str) -> bool:
    with session_scope() as s:
        return s.execute(text("SELECT 1 FROM checkpoint WHERE storage_uri = :uri LIMIT 1"),
                         {"uri": storage_uri}).first() is not None


def remove_unused_checkpoints(settings: Settings | None = None) -> list[str]:
    """Apply the rule above once; the sha256 of every checkpoint removed."""
    settings = settings or get_settings()
    before = utcnow() - timedelta(seconds=settings.unused_checkpoint_grace_s)
    with session_scope() as s:
        removed = [tuple(row) for row in s.execute(text(_UNUSED), {"before": before}).all()]
    for sha256, storage_uri in removed:  # after the commit: a failed delete leaves bytes, never a dangling row
        if storage_uri.startswith("store:") and _still_referenced(storage_uri):
            # Checkpoints migrated from folders (0005) are keyed by a re-packed tar: two rows with identical
            # folders share one object, which goes only with the last of them.
            storage_uri = ""
        try:
            _remove_bytes(sha256, storage_uri, settings)
        except Exception:
            log.exception("checkpoint %s: row removed, its bytes could not be (remove %s by hand)", sha256,
                          storage_uri)
    if removed:
        log.info("removed %d checkpoints unused for over %g s", len(removed), settings.unused_checkpoint_grace_s)
    return [sha for sha, _ in removed]
