"""Training runs: the process (pid, hostname) and heartbeat of a running run, so that a run whose
process died without finishing it (kill -9, a lost machine) is shown as stale.

Plain ADD/DROP COLUMN (SQLite >= 3.35 drops columns natively): a batch copy of training_runs would
break the run_summary view on it.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('training_runs', sa.Column('pid', sa.Integer(), nullable=True))
    op.add_column('training_runs', sa.Column('hostname', sa.String(length=255), nullable=True))
    op.add_column('training_runs', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('training_runs', 'heartbeat_at')
    op.drop_column('training_runs', 'hostname')
    op.drop_column('training_runs', 'pid')
