"""generations.model_prompt: the text the model saw (trigger words and style added)

Revision ID: b7d2e4f6a8c1
Revises: 5e0c9a7b2d14
Create Date: 2026-12-06 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = 'b7d2e4f6a8c1'
down_revision = '5e0c9a7b2d14'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN, not a batch rebuild: on SQLite a rebuild of ``generations`` would drop the full-text
    # triggers that hang on it (see ea18d76a94d7).
    op.add_column('generations', sa.Column('model_prompt', sa.Text(), nullable=True))


def downgrade():
    with rebuild_table('generations', schema=None) as batch_op:  # keeps the full-text triggers
        batch_op.drop_column('model_prompt')
