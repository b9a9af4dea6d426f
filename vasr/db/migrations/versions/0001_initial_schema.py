"""Initial schema: corpus tables, experiment tables and the two summary views.

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# Plain, portable SQL (SQLite and PostgreSQL both accept it).
VIEWS = {
    "dataset_stats": """
        SELECT s.version AS split_version, s.split AS split,
               COUNT(*) AS utterances,
               SUM(a.duration_s) / 3600.0 AS hours,
               COUNT(DISTINCT a.speaker) AS speakers,
               SUM(t.word_count) AS words
        FROM data_splits s
        JOIN audio_files a ON a.id = s.audio_id
        LEFT JOIN transcripts t ON t.audio_id = a.id
        GROUP BY s.version, s.split
    """,
    "run_summary": """
        SELECT r.id AS run_id, r.name AS name, r.status AS status, m.name AS model_name,
               m.architecture AS architecture, m.num_parameters AS num_parameters,
               COUNT(e.id) AS epochs, r.best_val_loss AS best_val_loss,
               r.best_cer AS best_cer, r.best_wer AS best_wer, r.duration_s AS duration_s,
               r.started_at AS started_at
        FROM training_runs r
        LEFT JOIN models m ON m.id = r.model_id
        LEFT JOIN epoch_metrics e ON e.run_id = r.id
        GROUP BY r.id, r.name, r.status, m.name, m.architecture, m.num_parameters,
                 r.best_val_loss, r.best_cer, r.best_wer, r.duration_s, r.started_at
    """,
}


def upgrade() -> None:
    op.create_table('imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('location', sa.Text(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('already_present', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imports'))
    )
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('model_type', sa.String(length=32), nullable=False),
    sa.Column('architecture', sa.String(length=32), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('checkpoint_path', sa.Text(), nullable=True),
    sa.Column('onnx_path', sa.Text(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('num_parameters', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_models_name_version'))
    )
    op.create_table('audio_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('start_s', sa.Float(), server_default='0', nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), server_default='vi', nullable=False),
    sa.Column('dialect', sa.String(length=16), nullable=True),
    sa.Column('speaker', sa.String(length=128), nullable=True),
    sa.Column('quality', sa.Float(), nullable=True),
    sa.Column('utt_id', sa.String(length=255), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('duration_s > 0', name=op.f('ck_audio_files_positive_duration')),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_audio_files_import_id_imports'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audio_files')),
    sa.UniqueConstraint('sha256', 'start_s', 'end_s', name=op.f('uq_audio_files_sha256_start_s_end_s'))
    )
    with op.batch_alter_table('audio_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audio_files_import_id'), ['import_id'], unique=False)
        batch_op.create_index('ix_audio_files_speaker', ['speaker'], unique=False)

    op.create_table('import_rejects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('row_ref', sa.Text(), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name=op.f('fk_import_rejects_import_id_imports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_rejects'))
    )
    with op.batch_alter_table('import_rejects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_rejects_import_id'), ['import_id'], unique=False)

    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('hyperparameters', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('split_version', sa.String(length=64), server_default='default', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('best_val_loss', sa.Float(), nullable=True),
    sa.Column('final_train_loss', sa.Float(), nullable=True),
    sa.Column('final_val_loss', sa.Float(), nullable=True),
    sa.Column('best_wer', sa.Float(), nullable=True),
    sa.Column('best_cer', sa.Float(), nullable=True),
    sa.Column('hardware', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'running', 'completed', 'failed', 'stopped')", name=op.f('ck_training_runs_status_name')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_training_runs_model_id_models'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_runs_model_id'), ['model_id'], unique=False)

    op.create_table('data_augmentations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_runs.id'], name=op.f('fk_data_augmentations_run_id_training_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_augmentations'))
    )
    with op.batch_alter_table('data_augmentations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_augmentations_run_id'), ['run_id'], unique=False)

    op.create_table('data_splits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audio_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('version', sa.String(length=64), server_default='default', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("split IN ('train', 'val', 'test')", name=op.f('ck_data_splits_split_name')),
    sa.ForeignKeyConstraint(['audio_id'], ['audio_files.id'], name=op.f('fk_data_splits_audio_id_audio_files'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_splits')),
    sa.UniqueConstraint('audio_id', 'version', name=op.f('uq_data_splits_audio_id_version'))
    )
    with op.batch_alter_table('data_splits', schema=None) as batch_op:
        batch_op.create_index('ix_data_splits_version_split', ['version', 'split'], unique=False)

    op.create_table('epoch_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('train_loss', sa.Float(), nullable=True),
    sa.Column('val_loss', sa.Float(), nullable=True),
    sa.Column('cer', sa.Float(), nullable=True),
    sa.Column('wer', sa.Float(), nullable=True),
    sa.Column('learning_rate', sa.Float(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_runs.id'], name=op.f('fk_epoch_metrics_run_id_training_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epoch_metrics')),
    sa.UniqueConstraint('run_id', 'epoch', name=op.f('uq_epoch_metrics_run_id_epoch'))
    )
    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('audio_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('decoder', sa.String(length=32), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('inference_time_s', sa.Float(), nullable=True),
    sa.Column('wer', sa.Float(), nullable=True),
    sa.Column('cer', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['audio_id'], ['audio_files.id'], name=op.f('fk_predictions_audio_id_audio_files'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_predictions_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['training_runs.id'], name=op.f('fk_predictions_run_id_training_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions'))
    )
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictions_audio_id'), ['audio_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictions_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictions_run_id'), ['run_id'], unique=False)

    op.create_table('transcripts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audio_id', sa.Integer(), nullable=False),
    sa.Column('raw_text', sa.Text(), nullable=False),
    sa.Column('normalized_text', sa.Text(), nullable=False),
    sa.Column('normalizer_version', sa.String(length=16), nullable=False),
    sa.Column('word_count', sa.Integer(), nullable=False),
    sa.Column('char_count', sa.Integer(), nullable=False),
    sa.Column('annotation_type', sa.String(length=16), server_default='human', nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['audio_id'], ['audio_files.id'], name=op.f('fk_transcripts_audio_id_audio_files'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcripts')),
    sa.UniqueConstraint('audio_id', name=op.f('uq_transcripts_audio_id'))
    )
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
    op.drop_table('transcripts')
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictions_run_id'))
        batch_op.drop_index(batch_op.f('ix_predictions_model_id'))
        batch_op.drop_index(batch_op.f('ix_predictions_audio_id'))

    op.drop_table('predictions')
    op.drop_table('epoch_metrics')
    with op.batch_alter_table('data_splits', schema=None) as batch_op:
        batch_op.drop_index('ix_data_splits_version_split')

    op.drop_table('data_splits')
    with op.batch_alter_table('data_augmentations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_augmentations_run_id'))

    op.drop_table('data_augmentations')
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_runs_model_id'))

    op.drop_table('training_runs')
    with op.batch_alter_table('import_rejects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_rejects_import_id'))

    op.drop_table('import_rejects')
    with op.batch_alter_table('audio_files', schema=None) as batch_op:
        batch_op.drop_index('ix_audio_files_speaker')
        batch_op.drop_index(batch_op.f('ix_audio_files_import_id'))

    op.drop_table('audio_files')
    op.drop_table('models')
    op.drop_table('imports')
