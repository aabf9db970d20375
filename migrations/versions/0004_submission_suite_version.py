"""submission.suite_version: the version of the suite a submission ran, so its scores belong to one track

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 07:10:00.000000

A track is one suite at one version (DESIGN §5). Submissions made before this revision did not
record the version; they ran the suites as they stood when this revision was written, so they are
backfilled with those versions. A suite unknown here stays NULL, which the board reads as the
suite's current version (core.tracks.track_of).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# datasets/suites/*.yaml as of this revision: the versions every earlier submission ran.
VERSIONS_AT_THIS_REVISION = {
    "language-core": "1.2", "language-open": "1.0", "clip-core": "1.0", "clip-open": "1.0",
    "efficiency-cpu": "1.0", "efficiency-gpu": "1.0", "efficiency-clip-cpu": "1.0", "efficiency-clip-gpu": "1.0",
}


def upgrade() -> None:
    op.add_column('submission', sa.Column('suite_version', sqlmodel.sql.sqltypes.AutoString(length=32),
                                          nullable=True))
    submission = sa.table('submission', sa.column('suite', sa.String), sa.column('suite_version', sa.String))
    for suite, version in VERSIONS_AT_THIS_REVISION.items():
        op.execute(submission.update().where(submission.c.suite == suite).values(suite_version=version))
    op.create_index('ix_submission_suite_version', 'submission', ['suite', 'suite_version'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_submission_suite_version', table_name='submission')
    op.drop_column('submission', 'suite_version')
