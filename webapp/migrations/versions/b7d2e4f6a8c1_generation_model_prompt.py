"""generations.model_prompt: the text the model saw (trigger words and style added)

Revision ID: b7d2e4f6a8c1
Revises: 1d49fd47d259
Create Date: 2026-12-06 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d2e4f6a8c1'
down_revision = '1d49fd47d259'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN, not a batch rebuild: on SQLite a rebuild of ``generations`` would drop the full-text
    # triggers that hang on it (see ea18d76a94d7).
    op.add_column('generations', sa.Column('model_prompt', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('model_prompt')
