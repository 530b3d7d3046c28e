"""one open report per person per image, kept by a partial unique index

Revision ID: 3c1f0a2b9d44
Revises: df9e166e7c48
Create Date: 2026-11-23 08:20:00

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = '3c1f0a2b9d44'
down_revision = 'df9e166e7c48'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade():
    # Older duplicates (possible before this index) are closed, keeping each person's first open report.
    op.execute("UPDATE reports SET status = 'resolved', resolution = 'dismiss' WHERE status = 'open' AND id NOT IN "
               "(SELECT MIN(id) FROM reports WHERE status = 'open' GROUP BY image_id, reporter_id)")
    with rebuild_table('reports', schema=None) as batch_op:
        batch_op.create_index('uq_reports_open_per_reporter', ['image_id', 'reporter_id'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade():
    with rebuild_table('reports', schema=None) as batch_op:
        batch_op.drop_index('uq_reports_open_per_reporter', sqlite_where=OPEN, postgresql_where=OPEN)
