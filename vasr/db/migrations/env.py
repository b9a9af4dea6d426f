"""Alembic environment: always run with a live connection handed over by vasr.db.store.migrate.

``$VASR_TEST_MIGRATION_PAUSE`` (tests only, see vasr.db.store.migrate): after each migration step,
before the transaction commits, say so on stderr and sleep that many seconds, so that a test can
kill the process mid-migration.
"""
import os
import sys
import time

from alembic import context

from vasr.db.schema import metadata
from vasr.db.store import PAUSE_ENV_VAR


def _pause_for_tests(ctx, step, heads, run_args) -> None:
    seconds = os.environ.get(PAUSE_ENV_VAR)
    if seconds:
        print(f"vasr: migration step {step.up_revision_id} applied, not committed; pausing {seconds} s "
              f"(${PAUSE_ENV_VAR})", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                  on_version_apply=_pause_for_tests)
with context.begin_transaction():
    context.run_migrations()
