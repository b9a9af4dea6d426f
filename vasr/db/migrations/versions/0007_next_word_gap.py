"""The gap of each aligned transcript's second worst word (`vasr clean` judges how far the worst one
stands out from it).

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alignment_scores', sa.Column('next_word_gap', sa.Float(), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite >= 3.35), as 0005's downgrade
    op.drop_column('alignment_scores', 'next_word_gap')
