"""Alignment scores (`vasr align`): one run per invocation, per utterance its CTC scores, per word its
span and confidence; `vasr clean` reads them to flag wrong transcripts.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alignment_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('split_version', sa.String(length=64), nullable=False),
    sa.Column('utterances', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_alignment_runs_model_id_models'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alignment_runs'))
    )
    op.create_index(op.f('ix_alignment_runs_model_id'), 'alignment_runs', ['model_id'], unique=False)
    op.create_table('alignment_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('audio_id', sa.Integer(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=True),
    sa.Column('log_likelihood', sa.Float(), nullable=True),
    sa.Column('best_path', sa.Float(), nullable=True),
    sa.Column('mean_confidence', sa.Float(), nullable=True),
    sa.Column('min_confidence', sa.Float(), nullable=True),
    sa.Column('word_gap', sa.Float(), nullable=True),
    sa.Column('worst_word', sa.Text(), nullable=True),
    sa.Column('worst_heard', sa.Text(), nullable=True),
    sa.Column('word_mismatch', sa.Float(), nullable=True),
    sa.Column('outside_letters', sa.Integer(), nullable=True),
    sa.Column('greedy_cer', sa.Float(), nullable=True),
    sa.Column('chars_per_s', sa.Float(), nullable=True),
    sa.Column('hypothesis', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['audio_id'], ['audio_files.id'], name=op.f('fk_alignment_scores_audio_id_audio_files'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['alignment_runs.id'], name=op.f('fk_alignment_scores_run_id_alignment_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alignment_scores')),
    sa.UniqueConstraint('run_id', 'audio_id', name=op.f('uq_alignment_scores_run_id_audio_id'))
    )
    op.create_index(op.f('ix_alignment_scores_audio_id'), 'alignment_scores', ['audio_id'], unique=False)
    op.create_table('alignment_words',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('score_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('word', sa.Text(), nullable=False),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['score_id'], ['alignment_scores.id'], name=op.f('fk_alignment_words_score_id_alignment_scores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alignment_words'))
    )
    op.create_index(op.f('ix_alignment_words_score_id'), 'alignment_words', ['score_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alignment_words_score_id'), table_name='alignment_words')
    op.drop_table('alignment_words')
    op.drop_index(op.f('ix_alignment_scores_audio_id'), table_name='alignment_scores')
    op.drop_table('alignment_scores')
    op.drop_index(op.f('ix_alignment_runs_model_id'), table_name='alignment_runs')
    op.drop_table('alignment_runs')
