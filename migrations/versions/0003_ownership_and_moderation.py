"""checkpoint uploaders, owner withdrawal apart from admin moderation, re-runs counted

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:05:00.000000

Backfill, from what the old schema knew:
- checkpoint_uploader: each checkpoint's `uploaded_by`, and everyone who submitted with it (they
  could use it before; keeping them lets them re-submit what they already have on the board).
- model: an old `hidden` cannot be told apart from an owner's withdrawal, so it is taken as an
  admin's hide: it stays until an admin lifts it, which errs on the side of privacy.
- rerun: none are known; the daily limit counts re-runs from now on.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoint_uploader',
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('first_uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoint.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('checkpoint_id', 'user_id')
    )
    op.create_index(op.f('ix_checkpoint_uploader_user_id'), 'checkpoint_uploader', ['user_id'], unique=False)
    op.create_table('rerun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rerun_submission_id'), 'rerun', ['submission_id'], unique=False)
    op.create_index(op.f('ix_rerun_user_id'), 'rerun', ['user_id'], unique=False)
    op.add_column('model', sa.Column('hidden_by_admin', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('model', sa.Column('hidden_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.add_column('model', sa.Column('withdrawn', sa.Boolean(), nullable=False, server_default=sa.false()))

    op.execute("UPDATE model SET hidden_by_admin = hidden")
    op.execute("""
        INSERT INTO checkpoint_uploader (checkpoint_id, user_id, first_uploaded_at)
        SELECT checkpoint_id, user_id, min(at) FROM (
            SELECT id AS checkpoint_id, uploaded_by AS user_id, created_at AS at FROM checkpoint
            UNION ALL
            SELECT checkpoint_id, submitted_by, submitted_at FROM submission
        ) AS possession
        GROUP BY checkpoint_id, user_id
    """)
    # The ORM sets these on every insert; the defaults were only for the rows already there.
    op.alter_column('model', 'hidden_by_admin', server_default=None)
    op.alter_column('model', 'withdrawn', server_default=None)


def downgrade() -> None:
    op.drop_column('model', 'withdrawn')
    op.drop_column('model', 'hidden_reason')
    op.drop_column('model', 'hidden_by_admin')
    op.drop_index(op.f('ix_rerun_user_id'), table_name='rerun')
    op.drop_index(op.f('ix_rerun_submission_id'), table_name='rerun')
    op.drop_table('rerun')
    op.drop_index(op.f('ix_checkpoint_uploader_user_id'), table_name='checkpoint_uploader')
    op.drop_table('checkpoint_uploader')
