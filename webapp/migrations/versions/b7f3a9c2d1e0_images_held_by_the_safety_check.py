"""images held by the safety check

Revision ID: b7f3a9c2d1e0
Revises: 9272760e5cc5
Create Date: 2026-12-06 23:05:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'b7f3a9c2d1e0'
down_revision = '9272760e5cc5'
branch_labels = None
depends_on = None


def upgrade():
    with rebuild_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_held', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('held_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('safety_labels', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_is_held'), ['is_held'], unique=False)


def downgrade():
    with rebuild_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_is_held'))
        batch_op.drop_column('safety_labels')
        batch_op.drop_column('held_reason')
        batch_op.drop_column('is_held')
