"""Bias phrases: each biasing-test utterance's list of spoken names plus distractors.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bias_phrases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audio_id', sa.Integer(), nullable=False),
    sa.Column('phrase', sa.Text(), nullable=False),
    sa.Column('is_entity', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['audio_id'], ['audio_files.id'], name=op.f('fk_bias_phrases_audio_id_audio_files'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bias_phrases')),
    sa.UniqueConstraint('audio_id', 'phrase', name=op.f('uq_bias_phrases_audio_id_phrase'))
    )
    with op.batch_alter_table('bias_phrases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bias_phrases_audio_id'), ['audio_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bias_phrases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bias_phrases_audio_id'))
    op.drop_table('bias_phrases')
