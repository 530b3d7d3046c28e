"""wildcard lists, each image's prompt, X/Y/Z grids, saved styles

Revision ID: 6761c746dcf6
Revises: 5b4894d155a1
Create Date: 2026-12-07 00:49:00.311320

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6761c746dcf6'
down_revision = '5b4894d155a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('wildcards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_wildcards_user_id', 'wildcards', ['user_id'], unique=False)
    op.create_index('uq_wildcards_owner_name', 'wildcards', ['user_id', 'name'], unique=True)

    op.create_table('generation_prompts',
    sa.Column('generation_id', sa.String(length=36), nullable=False),
    sa.Column('prompts', sa.JSON(), nullable=False),
    sa.Column('variants', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('generation_id')
    )
    op.create_table('grids',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('generation_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('generation_id')
    )
    op.create_index('ix_grids_user_id', 'grids', ['user_id'], unique=False)
    op.create_table('grid_cells',
    sa.Column('generation_id', sa.String(length=36), nullable=False),
    sa.Column('grid_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('generation_id')
    )
    op.create_index('ix_grid_cells_grid_id', 'grid_cells', ['grid_id'], unique=False)
    op.create_table('saved_styles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('negative_prompt', sa.Text(), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=True),
    sa.Column('steps', sa.Integer(), nullable=True),
    sa.Column('guidance', sa.Float(), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_saved_styles_user_id', 'saved_styles', ['user_id'], unique=False)
    op.create_index('uq_saved_styles_owner_name', 'saved_styles', ['user_id', 'name'], unique=True)


def downgrade():
    op.drop_index('uq_saved_styles_owner_name', table_name='saved_styles')
    op.drop_index('ix_saved_styles_user_id', table_name='saved_styles')
    op.drop_table('saved_styles')
    op.drop_index('ix_grid_cells_grid_id', table_name='grid_cells')
    op.drop_table('grid_cells')
    op.drop_index('ix_grids_user_id', table_name='grids')
    op.drop_table('grids')
    op.drop_table('generation_prompts')
    op.drop_index('uq_wildcards_owner_name', table_name='wildcards')
    op.drop_index('ix_wildcards_user_id', table_name='wildcards')
    op.drop_table('wildcards')
