"""A model's licence link: with licence `other`, an https link to its text (stored and shown as text).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model", sa.Column("license_link", sa.String(length=512), nullable=True))


def downgrade() -> None:
    op.drop_column("model", "license_link")
