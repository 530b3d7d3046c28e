"""group storage quotas, prompt classifier, upload safety

Revision ID: b9ad07e84ae7
Revises: b7f3a9c2d1e0
Create Date: 2026-12-07 00:46:08.530141

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'b9ad07e84ae7'
down_revision = 'b7f3a9c2d1e0'
branch_labels = None
depends_on = None


def upgrade():
    with rebuild_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage_quota', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prompt_classifier', sa.Boolean(), nullable=True))

    with rebuild_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_bytes', sa.BigInteger(), nullable=True))

    with rebuild_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_bytes', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('is_held', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('held_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('safety_labels', sa.JSON(), nullable=True))


def downgrade():
    with rebuild_table('uploads', schema=None) as batch_op:
        batch_op.drop_column('safety_labels')
        batch_op.drop_column('held_reason')
        batch_op.drop_column('is_held')
        batch_op.drop_column('file_bytes')

    with rebuild_table('images', schema=None) as batch_op:
        batch_op.drop_column('file_bytes')

    with rebuild_table('groups', schema=None) as batch_op:
        batch_op.drop_column('prompt_classifier')
        batch_op.drop_column('storage_quota')
