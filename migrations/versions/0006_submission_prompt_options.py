"""submission: model type, chat-template use, adapter base and declared merge bases (issue 21)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 07:30:00.000000

A submission says what kind of model it is and whether its prompts go through the chat template
(core/submission_options.py); both are part of what was evaluated, so of the duplicate key and the
provenance. Every submission before this revision ran plain prompts on a full checkpoint: they are
backfilled as `pretrained` with the chat template off, which is exactly what they ran.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PLAIN_PROMPTS = '{"apply_chat_template": false, "fewshot_as_multiturn": false, "system_instruction": null}'


def upgrade() -> None:
    op.add_column('submission', sa.Column('model_type', sa.String(length=24), nullable=False,
                                          server_default='pretrained'))
    op.add_column('submission', sa.Column('chat_options', postgresql.JSONB(), nullable=False,
                                          server_default=sa.text(f"'{PLAIN_PROMPTS}'::jsonb")))
    op.add_column('submission', sa.Column('base_model', sa.String(length=300), nullable=True))
    op.add_column('submission', sa.Column('base_models', postgresql.JSONB(), nullable=False,
                                          server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    for column in ('base_models', 'base_model', 'chat_options', 'model_type'):
        op.drop_column('submission', column)
