"""generations.controls: the control images a generation was steered by (model, scale, preprocessor, stored copy)

A JSON list of {"name", "scale", "preprocessor", "image_key"}; null for generations without control images.

Revision ID: c4d1e8f2a7b3
Revises: 6761c746dcf6
Create Date: 2026-12-07 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'c4d1e8f2a7b3'
down_revision = '6761c746dcf6'
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN (no batch rebuild): on SQLite a rebuild of generations would drop the prompt-search triggers
    op.add_column('generations', sa.Column('controls', sa.JSON(), nullable=True))


def downgrade():
    with rebuild_table('generations', schema=None) as batch_op:  # keeps the full-text triggers
        batch_op.drop_column('controls')
