"""Audio levels measured at import (peak, clipped share) and the count of rows an import updated.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audio_files', sa.Column('peak', sa.Float(), nullable=True))
    op.add_column('audio_files', sa.Column('clipped_fraction', sa.Float(), nullable=True))
    op.add_column('imports', sa.Column('updated', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite >= 3.35): a batch copy of audio_files would break the views on it
    op.drop_column('imports', 'updated')
    op.drop_column('audio_files', 'clipped_fraction')
    op.drop_column('audio_files', 'peak')
