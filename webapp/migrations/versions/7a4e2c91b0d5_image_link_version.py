"""images.link_version: emailed result links carry it, so hiding or revoking ends them for good

Revision ID: 7a4e2c91b0d5
Revises: ea18d76a94d7
Create Date: 2026-11-29 11:45:00

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = '7a4e2c91b0d5'
down_revision = 'ea18d76a94d7'
branch_labels = None
depends_on = None


def upgrade():
    with rebuild_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_version', sa.Integer(), server_default=sa.text('0'), nullable=False))


def downgrade():
    with rebuild_table('images', schema=None) as batch_op:
        batch_op.drop_column('link_version')
