"""Checkpoints live in the artifact store: machine paths become `store:checkpoints/<sha256>` keys.

Before this, a checkpoint row named the folder the API had unpacked it into, a path only the
API's machine could read. Each such folder that still exists is packed into a deterministic
tar (sorted names, zero times and owners), published to the configured artifact store
(ARTIFACT_STORE_URL) under the tar's own sha256, and the row points at that key. A row whose
folder is gone keeps its path: its runs fail as "not available on this worker" (the service's
error, retried) until the checkpoint is uploaded again. Hub references are left as they are.

Revision ID: 0005
Revises: 0004
"""
import hashlib
import logging
import tarfile
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.0005")


def _deterministic_tar(folder: Path, out: Path) -> str:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False, filter=clean)
    digest = hashlib.sha256()
    with open(out, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def upgrade() -> None:
    from core.artifact_store import checkpoint_key, get_store, store_uri

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, storage_uri FROM checkpoint WHERE storage_uri NOT LIKE 'hf://%' "
                                "AND storage_uri NOT LIKE 'hf-hub:%' AND storage_uri NOT LIKE 'store:%'")).fetchall()
    if not rows:
        return
    store = get_store()
    with tempfile.TemporaryDirectory() as tmp:
        for row_id, path in rows:
            folder = Path(path)
            if not folder.is_dir():
                log.warning("checkpoint %s: %s is gone; it must be uploaded again", row_id, path)
                continue
            archive = Path(tmp) / f"{row_id}.tar"
            key = checkpoint_key(_deterministic_tar(folder, archive))
            store.put_file(key, archive)
            archive.unlink()
            conn.execute(sa.text("UPDATE checkpoint SET storage_uri = :uri WHERE id = :id"),
                         {"uri": store_uri(key), "id": row_id})


def downgrade() -> None:
    # The API keeps its unpacked copy of every upload under <data_dir>/artifacts/checkpoints/<sha256>.
    from core.config import get_settings
    from core.storage import _model_root

    conn = op.get_bind()
    root = get_settings().artifact_dir / "checkpoints"
    for row_id, sha in conn.execute(sa.text("SELECT id, sha256 FROM checkpoint WHERE storage_uri LIKE 'store:%'")):
        folder = root / sha
        if folder.is_dir():
            conn.execute(sa.text("UPDATE checkpoint SET storage_uri = :uri WHERE id = :id"),
                         {"uri": str(_model_root(folder)), "id": row_id})
