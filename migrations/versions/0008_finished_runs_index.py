"""Finished runs by finish time: the board builder's change check (count and latest finish of finished
runs, once a second) reads this small partial index instead of scanning every run.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_run_finished_at_finished ON run (finished_at) WHERE status = 'finished'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_run_finished_at_finished")
