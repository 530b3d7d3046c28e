"""generations.scheduler: the sampler a generation chose by name ("Euler a", "DPM++ 2M Karras"; models/samplers.py)

Null for the model's own scheduler (its catalog entry's), which is what every earlier generation ran with.

Revision ID: e5a7c3d9f1b2
Revises: c9e4b2a7d1f3
Create Date: 2026-12-07 04:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'e5a7c3d9f1b2'
down_revision = 'c9e4b2a7d1f3'
branch_labels = None
depends_on = None


def upgrade():
    # a plain ADD COLUMN (no batch rebuild): on SQLite a rebuild of generations would drop the prompt-search triggers
    op.add_column('generations', sa.Column('scheduler', sa.String(length=32), nullable=True))


def downgrade():
    with rebuild_table('generations', schema=None) as batch_op:  # keeps the full-text triggers
        batch_op.drop_column('scheduler')
