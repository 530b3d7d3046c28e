"""generations.precision: the number format the worker computed the pictures in (fp32, bf16, fp16)

Null for generations made before it was recorded, and for upscales (the upscaler runs in fp32).

Revision ID: b7e3f2a9c150
Revises: b7d2e4f6a8c1
Create Date: 2026-12-06 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'b7e3f2a9c150'
down_revision = 'b7d2e4f6a8c1'
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN (no batch rebuild): on SQLite a rebuild of generations would drop the prompt-search triggers
    op.add_column('generations', sa.Column('precision', sa.String(length=8), nullable=True))


def downgrade():
    with rebuild_table('generations', schema=None) as batch_op:  # keeps the full-text triggers
        batch_op.drop_column('precision')
