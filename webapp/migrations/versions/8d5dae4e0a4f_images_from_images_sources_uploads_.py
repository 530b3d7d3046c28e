"""images from images: sources, uploads, timelapse, upscale

SQLite rebuilds ``generations`` here (a new foreign key): ``rebuild_table`` creates its full-text triggers
again and rebuilds the index. Before it did, a fresh install lost them; 5e0c9a7b2d14 repairs those installs.

Revision ID: 8d5dae4e0a4f
Revises: 7a4e2c91b0d5
Create Date: 2026-11-29 11:25:12.657572

"""
from alembic import op
import sqlalchemy as sa

from webapp.migrations.rebuild import rebuild_table


# revision identifiers, used by Alembic.
revision = '8d5dae4e0a4f'
down_revision = '7a4e2c91b0d5'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('uploads',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploads_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_uploads_user_id'), ['user_id'], unique=False)

    with rebuild_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='text', nullable=False))
        batch_op.add_column(sa.Column('parent_image_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('upload_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('resize_mode', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('timelapse', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('upscale_factor', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('upscaler', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_generations_parent_image_id'), ['parent_image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generations_upload_id'), ['upload_id'], unique=False)
        batch_op.create_foreign_key('fk_generations_upload_id_uploads', 'uploads', ['upload_id'], ['id'], ondelete='SET NULL')

    with rebuild_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timelapse_key', sa.String(length=255), nullable=True))




def downgrade():

    with rebuild_table('images', schema=None) as batch_op:
        batch_op.drop_column('timelapse_key')

    with rebuild_table('generations', schema=None) as batch_op:
        batch_op.drop_constraint('fk_generations_upload_id_uploads', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_generations_upload_id'))
        batch_op.drop_index(batch_op.f('ix_generations_parent_image_id'))
        batch_op.drop_column('upscaler')
        batch_op.drop_column('upscale_factor')
        batch_op.drop_column('timelapse')
        batch_op.drop_column('resize_mode')
        batch_op.drop_column('upload_id')
        batch_op.drop_column('parent_image_id')
        batch_op.drop_column('source')

    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_user_id'))
        batch_op.drop_index(batch_op.f('ix_uploads_created_at'))

    op.drop_table('uploads')

