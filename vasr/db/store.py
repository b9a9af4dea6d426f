"""Opening the database and the queries the rest of vasr runs on it.

Every statement is built with SQLAlchemy Core and bound parameters; the only names that reach SQL
from outside (sort keys, metric names) are checked against whitelists first.
"""
from __future__ import annotations

import math
import os
from contextlib import closing
from operator import attrgetter
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, text, tuple_, update
from sqlalchemy import exc as exc_mod
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vasr.data.manifests import Reject, excerpt
from vasr.db.schema import (SPLITS, audio_files, bias_phrases, check_lengths, data_splits, import_rejects, imports,
                            transcripts)

DEFAULT_DB = Path("data") / "vasr.db"
ENV_VAR = "VASR_DB"
_IN_CHUNK = 500  # keys per IN (...) query; stays far below SQLite's bound-parameter limit


class DatabaseError(RuntimeError):
    """A database that vasr cannot or must not use: one line naming it and what is wrong."""


_PG_MIGRATION_LOCK = 0x76617372_0001   # pg_advisory_xact_lock keys: 'vasr' + 1 (migrations), + 2 (imports)
_PG_IMPORT_LOCK = 0x76617372_0002
PAUSE_ENV_VAR = "VASR_TEST_MIGRATION_PAUSE"  # tests only: seconds to sleep after each migration step


def resolve_url(db: str | os.PathLike | None = None) -> str:
    """An SQLAlchemy URL from ``--db``, else ``$VASR_DB``, else ``data/vasr.db``.

    A plain path means an SQLite file; ``postgresql://`` URLs use the psycopg 3 driver. A malformed
    URL, another kind of database or an in-memory SQLite database (whose contents every command
    would lose at exit) is a ValueError naming it.
    """
    raw = str(db) if db is not None else os.environ.get(ENV_VAR) or str(DEFAULT_DB)
    if not raw.strip():
        raise ValueError("--db is empty: give an SQLite file path or a postgresql:// URL")
    if "://" not in raw:
        path = Path(raw).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"database {path}: cannot create its folder {path.parent}: "
                                f"{exc.strerror or exc}") from None
        return f"sqlite:///{path}"
    try:
        url = make_url(raw)
        url.port  # noqa: B018 -- parsed lazily; a bad port raises here
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"--db {_hide_password(raw)!r} is not a valid database URL ({exc}); expected an SQLite "
                         "file path or postgresql://USER@HOST:PORT/DATABASE") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ValueError(f"--db {raw!r} is an in-memory SQLite database, which is discarded when the command "
                             "ends (an import would be lost); give a file path such as data/vasr.db")
    elif backend != "postgresql":
        raise ValueError(f"--db {_hide_password(raw)!r}: vasr supports SQLite files and postgresql:// URLs, "
                         f"not {url.drivername!r}")
    return url.render_as_string(hide_password=False)


def _hide_password(raw: str) -> str:
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 -- unparseable: show it without anything between ':' and '@'
        head, sep, tail = raw.partition("://")
        if "@" in tail and ":" in tail.split("@", 1)[0]:
            tail = tail.split(":", 1)[0] + ":***@" + tail.split("@", 1)[1]
        return head + sep + tail


def describe(url: str) -> str:
    """How messages name the database of ``url``: the SQLite file, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"database {parsed.database}"
    return f"database {parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)}"


def connect(db: str | os.PathLike | None = None, upgrade: bool = True) -> Engine:
    """An engine for ``db`` (see resolve_url), migrated to the newest schema unless ``upgrade=False``.

    Nothing is written to a database that is not vasr's: a file that is not SQLite, a directory, a
    read-only file, an SQLite file or PostgreSQL database holding other tables, or one at a schema
    revision this vasr does not know are each a DatabaseError (a RuntimeError: one line naming the
    database and what is wrong); so is a server that cannot be reached. A new or empty database is
    given the schema in one transaction (see ``migrate``).
    """
    url = resolve_url(db)
    name = describe(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    if sqlite:
        _check_sqlite_file(Path(make_url(url).database), name)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, connect_args={"connect_timeout": 10})
    event.listen(engine, "handle_error", _one_line_errors(name))
    try:
        # the engine's own connection reads what the database holds (a second sqlite3 connection
        # opened and closed beside the engine's broke its WAL view in this process); WAL mode, which
        # SQLite writes into the file, is set only once the file is known to be vasr's
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            check_owned(tables, schema_revision(conn) if "alembic_version" in tables else None, name)
            if sqlite:
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        if upgrade:
            migrate(engine)
    except DatabaseError:
        engine.dispose()
        raise
    except exc_mod.DBAPIError as exc:
        engine.dispose()
        if sqlite:
            raise DatabaseError(f"{name} is not a readable SQLite database ({_first_line(exc)}); nothing was "
                                "written to it") from None
        raise DatabaseError(f"{name}: cannot open it: {_first_line(exc)}") from None
    return engine


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def _check_sqlite_file(path: Path, name: str) -> None:
    """Refuse, before anything opens it for writing, an SQLite path that is not a vasr database."""
    if path.is_dir():
        raise DatabaseError(f"{name} is a directory, not a database file")
    if not path.exists():
        if not path.parent.is_dir():
            raise DatabaseError(f"{name} cannot be created: its folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise DatabaseError(f"{name} cannot be created: its folder {path.parent} is not writable")
        return
    if not path.is_file():
        raise DatabaseError(f"{name} is not a regular file")
    mode = path.stat().st_mode
    if not mode & 0o222 or not os.access(path, os.W_OK):
        raise DatabaseError(f"{name} is read-only; vasr needs to write to its database (chmod u+w it, "
                            "or give another --db)")
    if path.stat().st_size == 0:
        return  # an empty file: a new database
    # read through SQLite itself: closing a plain file descriptor on the database would drop every POSIX
    # lock this process's other connections hold on it (a concurrent writer could then corrupt it);
    # SQLite keeps such a descriptor open until those connections are done
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=rw", uri=True, timeout=30)) as probe:
            probe.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorname == "SQLITE_NOTADB":
            raise DatabaseError(f"{name} is not an SQLite database (SQLite does not read it as one); nothing was "
                                "written to it") from None
        if exc.sqlite_errorname == "SQLITE_BUSY":
            raise DatabaseError(f"{name} stayed locked by another connection for 30 s; try again when it is "
                                "done") from None
        raise DatabaseError(f"{name} is not a readable SQLite database ({exc}); nothing was written to it") from None


def check_owned(tables: set[str], revision: str | None, name: str) -> None:
    """A DatabaseError unless ``tables`` (at Alembic ``revision``) is empty or a vasr schema."""
    tables = {t for t in tables if not t.startswith("sqlite_")}
    if not tables - {"alembic_version"}:
        return  # new or empty
    if revision is None:
        shown = ", ".join(sorted(tables - {"alembic_version"})[:5])
        raise DatabaseError(f"{name} is not a vasr database: it holds other tables ({shown}"
                            f"{', ...' if len(tables) > 6 else ''}) and no vasr schema version; nothing was "
                            "written to it (give a new file or an empty database)")
    known = {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if revision not in known:
        raise DatabaseError(f"{name} is at schema revision {revision!r}, which this version of vasr does not "
                            "know (written by a newer vasr, or not a vasr database); nothing was written to it")
    if "audio_files" not in tables:
        raise DatabaseError(f"{name} is not a vasr database: it has an Alembic revision {revision!r} but none of "
                            "vasr's tables; nothing was written to it")


def _one_line_errors(name: str):
    """A handle_error listener: the database errors a user can meet become one-line messages."""
    def handle(context) -> None:
        orig = context.original_exception
        text_ = str(orig)
        if isinstance(orig, sqlite3.OperationalError) and "database is locked" in text_:
            raise DatabaseError(f"{name} is busy: another process kept it locked for more than 30 s; "
                                "try again when it is done") from None
        if type(orig).__name__ == "StringDataRightTruncation":  # PostgreSQL: value too long for VARCHAR(n)
            raise ValueError(f"{name}: {_first_line(orig)}") from None
    return handle


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL is still crash-safe for committed data
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "vasr.db:migrations")
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (no-op when already there), all steps in one transaction.

    SQLite runs DDL transactionally when asked (``BEGIN IMMEDIATE``, which also makes a second
    process wait for the first), PostgreSQL always does (plus an advisory lock for the same
    reason): a process killed mid-migration leaves the database as it was before, never half
    made. ``$VASR_TEST_MIGRATION_PAUSE`` (tests only) sleeps that many seconds after each step.
    """
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        if revision == "head" and schema_revision(conn) == head:
            conn.rollback()
            return
        conn.rollback()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        if revision == "head" and schema_revision(conn) == head:  # another process just did it
            conn.rollback()
            return
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()


def schema_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


# ---------------------------------------------------------------------------------------------- imports

class ImportRow(NamedTuple):   # a tuple: an import makes one per row, ~6x faster than a frozen dataclass
    """One row ready to be written: the audio (or a segment of it) and its reference transcript."""
    path: str
    sha256: str
    start_s: float
    end_s: float
    sample_rate: int
    channels: int
    format: str
    raw_text: str
    normalized_text: str
    normalizer_version: str
    annotation_type: str = "human"
    split: str | None = None
    speaker: str | None = None
    dialect: str | None = None
    utt_id: str | None = None
    language: str = "vi"
    peak: float | None = None              # max |sample| of the segment, full scale = 1
    clipped_fraction: float | None = None  # share of its samples at full scale


def lock_for_import(conn: Connection) -> None:
    """Take the database's import lock for the rest of the caller's transaction (re-entrant).

    Two imports at once would otherwise both find an utterance absent and both insert it. With the
    lock the second waits (SQLite: up to its 30 s busy timeout, then a one-line DatabaseError) and
    then sees the first one's rows as already present. SQLite: a write statement that changes
    nothing takes the database's write lock before anything of the transaction is read;
    PostgreSQL: a transaction-level advisory lock.
    """
    if conn.dialect.name == "sqlite":
        conn.execute(imports.delete().where(text("0")))
    else:
        conn.execute(select(func.pg_advisory_xact_lock(_PG_IMPORT_LOCK)))


def audio_ids(conn: Connection, keys: Iterable[tuple[str, float, float]]) -> dict[tuple[str, float, float], int]:
    """(sha256, start_s, end_s) -> audio id, for the keys among ``keys`` that the database holds.

    Called at the start of an import's transaction, so it first takes the import lock
    (``lock_for_import``): what it reports absent stays absent until that transaction ends.
    """
    lock_for_import(conn)
    keys = set(keys)
    hashes = sorted({k[0] for k in keys})
    found = {}
    for i in range(0, len(hashes), _IN_CHUNK):
        rows = conn.execute(select(audio_files.c.sha256, audio_files.c.start_s, audio_files.c.end_s, audio_files.c.id)
                            .where(audio_files.c.sha256.in_(hashes[i:i + _IN_CHUNK])))
        found.update(((r.sha256, r.start_s, r.end_s), r.id) for r in rows)
    return {k: v for k, v in found.items() if k in keys}


PAGE_ROWS = 10_000   # rows an import checks, plans and writes per step: bounds its memory, amortises round trips


class ImportWriter:
    """Writes one import inside the caller's transaction, a page of rows at a time.

    Creating it takes the import lock (``lock_for_import``) and writes the ``imports`` row (its
    counts are filled in by ``finish``). ``prepare`` reads, once, what the database holds for the
    import's files: which hashes are present at all, and the rows of older audio at their paths.
    ``plan`` then classifies a page of rows, and ``write_new`` /
    ``write_updates`` write them: new rows with their ids computed under the lock (SQLite: after
    the largest id; PostgreSQL: drawn from the id sequence), inserted in bulk (SQLite: executemany;
    PostgreSQL: COPY). Values longer than their column are refused before a page is written
    (``check_import_lengths``); every statement is built from the schema, values are bound or copied.
    """

    def __init__(self, conn: Connection, source: str, location: str, split_version: str):
        check_lengths(imports, {"source": source}, f"import of {location}")
        lock_for_import(conn)
        self.conn, self.source, self.location, self.split_version = conn, source, location, split_version
        self.postgres = conn.dialect.name == "postgresql"
        self.import_id = conn.execute(insert(imports).values(
            source=source, location=location, imported=0, already_present=0, updated=0,
            rejected=0)).inserted_primary_key[0]
        self._next_id = None if self.postgres else (conn.execute(select(func.max(audio_files.c.id))).scalar() or 0) + 1
        self._cache_size = None
        if not self.postgres:   # a larger page cache for the import's index updates; finish() restores it
            self._cache_size = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA cache_size = {-_SQLITE_IMPORT_CACHE_KIB:d}")
        self._present_hashes: set[str] | None = None       # None: not prepared, look every hash up
        self._stale: dict[str, list] = defaultdict(list)   # path -> rows of other audio there, by id
        self._claimed: set[int] = set()

    def prepare(self, files: Mapping[str, str]) -> None:
        """Read what the database holds for ``files`` (path -> sha256 of the file there now)."""
        hashes, pairs = sorted(set(files.values())), sorted(files.items())
        present: set[str] = set()
        for i in range(0, len(hashes), _IN_CHUNK):
            present.update(self.conn.execute(select(audio_files.c.sha256).distinct()
                                             .where(audio_files.c.sha256.in_(hashes[i:i + _IN_CHUNK]))).scalars())
        self._present_hashes = present
        columns = (audio_files.c.id, audio_files.c.path, audio_files.c.sha256, audio_files.c.start_s,
                   audio_files.c.end_s)
        for i in range(0, len(pairs), _IN_CHUNK // 2):
            chunk = pairs[i:i + _IN_CHUNK // 2]
            query = select(*columns).where(audio_files.c.path.in_([p for p, _ in chunk]),
                                           ~tuple_(audio_files.c.path, audio_files.c.sha256).in_(chunk))
            for r in self.conn.execute(query.order_by(audio_files.c.id)):
                self._stale[r.path].append(r)

    def plan(self, rows: Sequence[ImportRow]) -> list[tuple[str, int | str | None]]:
        """What writing each of ``rows`` means, given what the database holds: ("new", None),
        ("present", None) when its audio and transcript are there already, ("text", audio id) when
        its audio is there under the same path with another transcript, ("audio", audio id) when the
        row at its path and segment holds other audio (the file was replaced), or ("conflict", why).
        The pages of one import are planned in order, each (sha256, start_s, end_s) at most once."""
        by_key = {}
        wanted: dict[str, set[float]] = defaultdict(set)
        for row in rows:
            if self._present_hashes is None or row.sha256 in self._present_hashes:
                wanted[row.sha256].add(row.start_s)
        columns = (audio_files.c.id, audio_files.c.path, audio_files.c.sha256, audio_files.c.start_s,
                   audio_files.c.end_s, transcripts.c.raw_text, transcripts.c.normalized_text)
        base = select(*columns).outerjoin(transcripts, transcripts.c.audio_id == audio_files.c.id)
        for sha256, starts in wanted.items():
            starts = sorted(starts)
            for i in range(0, len(starts), _IN_CHUNK):
                for r in self.conn.execute(base.where(audio_files.c.sha256 == sha256,
                                                      audio_files.c.start_s.in_(starts[i:i + _IN_CHUNK]))):
                    by_key[(r.sha256, r.start_s, r.end_s)] = r
        if self._present_hashes is None:
            self.prepare({row.path: row.sha256 for row in rows})   # no prepare(): the rows' own files
        if not by_key and not self._stale:   # a first import: nothing of it is there
            return [("new", None)] * len(rows)
        plan: list[tuple[str, int | str | None]] = []
        for row in rows:
            held = by_key.get((row.sha256, row.start_s, row.end_s))
            if held is not None:
                same_text = (held.raw_text, held.normalized_text) == (row.raw_text, row.normalized_text)
                if same_text:
                    plan.append(("present", None))
                elif held.path == row.path:
                    plan.append(("text", held.id))
                else:
                    plan.append(("conflict", f"the same audio is already imported from {held.path} (audio id "
                                             f"{held.id}) with another transcript ({excerpt(held.raw_text)})"))
                continue
            stale = [r for r in self._stale.get(row.path, ()) if r.start_s == row.start_s
                     and r.sha256 != row.sha256 and r.id not in self._claimed]
            same_end = [r for r in stale if r.end_s == row.end_s]
            if same_end or len(stale) == 1:
                self._claimed.add((same_end or stale)[0].id)
                plan.append(("audio", (same_end or stale)[0].id))
            elif stale:
                plan.append(("conflict", f"the audio at this path changed and {len(stale)} rows of the old audio "
                                         f"start at {row.start_s:.3f} s (audio ids {', '.join(str(r.id) for r in stale)})"))
            else:
                plan.append(("new", None))
        return plan

    def write_new(self, rows: Sequence[ImportRow]) -> list[int]:
        """Insert ``rows`` (audio, transcript, split); returns their audio ids in order."""
        if not rows:
            return []
        check_import_lengths(self.source, self.location, rows, self.split_version)
        if self.postgres:
            ids = sorted(self.conn.execute(select(func.nextval(func.pg_get_serial_sequence("audio_files", "id")))
                                           .select_from(func.generate_series(1, len(rows)))).scalars())
        else:
            ids = list(range(self._next_id, self._next_id + len(rows)))
            self._next_id += len(rows)
        source, import_id, version = self.source, self.import_id, self.split_version
        self._insert(audio_files, _AUDIO_COLUMNS, [
            (i, u.path, u.sha256, u.start_s, u.end_s, u.end_s - u.start_s, u.sample_rate, u.channels, u.format,
             u.language, u.dialect, u.speaker, u.utt_id, source, u.peak, u.clipped_fraction, import_id)
            for i, u in zip(ids, rows)])
        self._insert(transcripts, _TRANSCRIPT_COLUMNS, [(i, *_transcript_tuple(u)) for i, u in zip(ids, rows)])
        self._insert(data_splits, _SPLIT_COLUMNS, [(i, u.split, version) for i, u in zip(ids, rows)
                                                   if u.split is not None])
        return ids

    def write_updates(self, updates: Sequence[tuple[str, int, ImportRow]]) -> None:
        """(what, audio id, row) from ``plan``: "text" rewrites that row's transcript, "audio" also
        its audio (hash, segment end, rate, format, levels)."""
        if not updates:
            return
        check_import_lengths(self.source, self.location, [u for _, _, u in updates], self.split_version)
        conn = self.conn
        for what, audio_id, u in updates:
            if what == "audio":
                conn.execute(update(audio_files).where(audio_files.c.id == audio_id).values(
                    sha256=u.sha256, end_s=u.end_s, duration_s=u.end_s - u.start_s, sample_rate=u.sample_rate,
                    channels=u.channels, format=u.format, peak=u.peak, clipped_fraction=u.clipped_fraction,
                    import_id=self.import_id))
            values = dict(zip(_TRANSCRIPT_COLUMNS[1:], _transcript_tuple(u)))
            if conn.execute(update(transcripts).where(transcripts.c.audio_id == audio_id)
                            .values(**values)).rowcount == 0:
                conn.execute(insert(transcripts).values(audio_id=audio_id, **values))

    def finish(self, imported: int, already_present: int, updated: int, rejects: Sequence[Reject]) -> int:
        """Fill in the import's counts and record its rejects; returns the import id."""
        self.conn.execute(update(imports).where(imports.c.id == self.import_id).values(
            imported=imported, already_present=already_present, updated=updated, rejected=len(rejects)))
        if rejects:
            self._insert(import_rejects, ("import_id", "row_ref", "path", "reason"),
                         [(self.import_id, r.row_ref, r.path, r.reason) for r in rejects])
        if self._cache_size is not None:
            self.conn.exec_driver_sql(f"PRAGMA cache_size = {int(self._cache_size):d}")
        if self.postgres and imported >= _ANALYZE_AFTER_ROWS:
            # fresh statistics at commit: a re-import started before autovacuum's analyze would
            # otherwise plan (and psycopg cache, as prepared statements) its lookups on empty-table estimates
            for table in (audio_files, transcripts, data_splits):
                self.conn.exec_driver_sql(f"ANALYZE {self.conn.dialect.identifier_preparer.quote(table.name)}")
        return self.import_id

    def _insert(self, table, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.postgres:
            from psycopg import sql

            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)))
            cursor = self.conn.connection.driver_connection.cursor()
            try:
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
        else:
            # many rows per statement: an executemany of one-row statements costs SQLite ~3x more per
            # row (each execution re-runs the statement's setup, e.g. the ephemeral table of a CHECK's IN list)
            per = _SQLITE_ROWS_PER_INSERT
            full = _insert_sql(table, columns, self.conn.dialect, per)
            cursor = self.conn.connection.driver_connection.cursor()
            try:
                for i in range(0, len(rows) - per + 1, per):
                    cursor.execute(full, [value for row in rows[i:i + per] for value in row])
                rest = rows[len(rows) - len(rows) % per:]
                if rest:
                    cursor.execute(_insert_sql(table, columns, self.conn.dialect, len(rest)),
                                   [value for row in rest for value in row])
            finally:
                cursor.close()


_AUDIO_COLUMNS = ("id", "path", "sha256", "start_s", "end_s", "duration_s", "sample_rate", "channels", "format",
                  "language", "dialect", "speaker", "utt_id", "source", "peak", "clipped_fraction", "import_id")
_TRANSCRIPT_COLUMNS = ("audio_id", "raw_text", "normalized_text", "normalizer_version", "word_count", "char_count",
                       "annotation_type")
_SPLIT_COLUMNS = ("audio_id", "split", "version")
_INSERT_SQL: dict[tuple, str] = {}


_ANALYZE_AFTER_ROWS = 10_000   # PostgreSQL: an import that writes this many rows refreshes the tables' statistics
_SQLITE_IMPORT_CACHE_KIB = 128 * 1024   # SQLite page cache while an import writes (default 2 MiB)
_SQLITE_ROWS_PER_INSERT = 500   # x at most 17 columns: far below SQLite's 32,766 bound parameters


def _insert_sql(table, columns: Sequence[str], dialect, rows: int) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...), ...`` for ``rows`` rows (SQLite's paramstyle),
    the columns in the given order, every name taken from the schema (no input in it)."""
    key = (table.name, tuple(columns), dialect.name, rows)
    if key not in _INSERT_SQL:
        quote = dialect.identifier_preparer.quote
        names = [quote(table.c[name].name) for name in columns]   # KeyError for a name not in the schema
        one = f"({', '.join('?' * len(names))})"
        _INSERT_SQL[key] = f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES {', '.join([one] * rows)}"
    return _INSERT_SQL[key]


def _transcript_tuple(u: ImportRow) -> tuple:
    """raw_text .. annotation_type of ``_TRANSCRIPT_COLUMNS``."""
    text_ = u.normalized_text
    return (u.raw_text, text_, u.normalizer_version, len(text_.split()), len(text_) - text_.count(" "),
            u.annotation_type)


_LENGTH_CHECKS = tuple((table, name, table.c[name].type.length) for table, names in (
    (audio_files, ("format", "language", "dialect", "speaker", "utt_id", "sha256")),
    (transcripts, ("normalizer_version", "annotation_type")), (data_splits, ("split",))) for name in names)
_VERSION_LIMIT = data_splits.c.version.type.length


def check_import_lengths(source: str, location: str, rows: Iterable[ImportRow], split_version: str) -> None:
    """ValueError naming the column and the row for a value of ``rows`` longer than its VARCHAR(n)
    column: PostgreSQL would refuse it mid-import, SQLite would store it; both must refuse it alike."""
    check_lengths(imports, {"source": source}, f"import of {location}")
    check_lengths(audio_files, {"source": source}, f"import of {location}")
    rows = rows if isinstance(rows, Sequence) else list(rows)
    too_long = set()   # (column index, value): each distinct value looked at once (a page repeats most)
    for k, (table, name, limit) in enumerate(_LENGTH_CHECKS):
        getter = attrgetter(name)
        too_long.update((k, value) for value in set(map(getter, rows)) if value is not None and len(value) > limit)
    if len(split_version) > _VERSION_LIMIT:
        too_long.update((len(_LENGTH_CHECKS), split_version) for u in rows if u.split is not None)
    if too_long:
        for u in rows:   # the first row, in order, that holds one of them, named
            for k, (table, name, limit) in enumerate(_LENGTH_CHECKS):
                if (k, getattr(u, name)) in too_long:
                    check_lengths(table, {name: getattr(u, name)}, u.path + (f" ({u.utt_id})" if u.utt_id else ""))
            if u.split is not None and (len(_LENGTH_CHECKS), split_version) in too_long:
                check_lengths(data_splits, {"version": split_version}, u.path + (f" ({u.utt_id})" if u.utt_id else ""))


# ----------------------------------------------------------------------------------------------- splits

def auto_split(conn: Connection, version: str, ratios: tuple[float, float, float], seed: int) -> dict[str, int]:
    """Give every utterance without a split in ``version`` one, keeping speakers disjoint.

    Speakers that already have utterances in a split of ``version`` stay there; the others are
    placed by ``assign_speakers`` (an utterance without a speaker counts as its own speaker).
    Returns the number of utterances assigned per split.
    """
    check_ratios(ratios)
    check_lengths(data_splits, {"version": version}, "split version")
    rows = conn.execute(
        select(audio_files.c.id, audio_files.c.speaker, audio_files.c.duration_s, data_splits.c.split)
        .outerjoin(data_splits, (data_splits.c.audio_id == audio_files.c.id) & (data_splits.c.version == version))
        .order_by(audio_files.c.id)).all()
    split_of_speaker: dict[str, str] = {}
    duration = dict.fromkeys(SPLITS, 0.0)
    pending: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        speaker = row.speaker if row.speaker is not None else f"\0utt{row.id}"
        if row.split is not None:
            split_of_speaker.setdefault(speaker, row.split)
            duration[row.split] += row.duration_s
        else:
            pending[speaker].append((row.id, row.duration_s))
    placed = assign_speakers({s: [d for _, d in utts] for s, utts in pending.items()}, ratios, seed,
                             split_of_speaker, duration)
    assigned = dict.fromkeys(SPLITS, 0)
    values = []
    for speaker, split in placed.items():
        for audio_id, _ in pending[speaker]:
            values.append({"audio_id": audio_id, "split": split, "version": version})
            assigned[split] += 1
    if values:
        conn.execute(insert(data_splits), values)
    return assigned


def check_ratios(ratios: Sequence[float]) -> None:
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"split ratios must be three finite non-negative numbers (train, val, test), not all 0; "
                         f"got {tuple(ratios)}")


def assign_speakers(seconds: Mapping[str, Sequence[float]], ratios: tuple[float, float, float], seed: int,
                    split_of_speaker: Mapping[str, str] | None = None,
                    duration: Mapping[str, float] | None = None) -> dict[str, str]:
    """A split for each speaker of ``seconds`` (speaker -> durations of its utterances, s).

    Speakers in ``split_of_speaker`` keep their split. The others are shuffled with ``seed`` and each
    goes to the split furthest below its share (``ratios``, train/val/test) of all the audio:
    ``duration`` (split -> seconds already there) plus ``seconds``. Splits with a zero share get
    nobody. Returns speaker -> split in the order the speakers were placed.
    """
    check_ratios(ratios)
    split_of_speaker = split_of_speaker or {}
    duration = {name: (duration or {}).get(name, 0.0) for name in SPLITS}
    total = sum(duration.values()) + sum(d for utts in seconds.values() for d in utts)
    shares = [r / sum(ratios) for r in ratios]
    speakers = sorted(seconds)
    random.Random(seed).shuffle(speakers)
    placed = {}
    for speaker in speakers:
        split = split_of_speaker.get(speaker)
        if split is None:
            deficits = [share * total - duration[name] for name, share in zip(SPLITS, shares)]
            split = SPLITS[max(range(3), key=lambda i: (deficits[i] if shares[i] > 0 else float("-inf"), -i))]
        placed[speaker] = split
        for d in seconds[speaker]:
            duration[split] += d
    return placed


# ----------------------------------------------------------------------------------------- bias lists

def write_bias_lists(conn: Connection, rows: Mapping[int, Sequence[tuple[str, bool]]]) -> int:
    """Store each audio id's bias list (phrase, is_entity) in list order, inside the caller's
    transaction. Phrases already stored for that audio id are skipped; returns the rows written."""
    ids = sorted(rows)
    stored: set[tuple[int, str]] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        stored.update(tuple(r) for r in conn.execute(select(bias_phrases.c.audio_id, bias_phrases.c.phrase)
                                                     .where(bias_phrases.c.audio_id.in_(ids[i:i + _IN_CHUNK]))))
    values = [{"audio_id": audio_id, "phrase": phrase, "is_entity": is_entity, "position": position}
              for audio_id in ids for position, (phrase, is_entity) in enumerate(rows[audio_id])
              if (audio_id, phrase) not in stored]
    if values:
        conn.execute(insert(bias_phrases), values)
    return len(values)


def bias_lists(conn: Connection, split: str, version: str = "bias") -> dict[int, list[tuple[str, bool]]]:
    """audio id -> [(phrase, is_entity)] in list order, for the utterances of ``split`` in ``version``."""
    rows = conn.execute(
        select(bias_phrases.c.audio_id, bias_phrases.c.phrase, bias_phrases.c.is_entity)
        .join(data_splits, data_splits.c.audio_id == bias_phrases.c.audio_id)
        .where(data_splits.c.split == split, data_splits.c.version == version)
        .order_by(bias_phrases.c.audio_id, bias_phrases.c.position))
    lists: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for audio_id, phrase, is_entity in rows:
        lists[audio_id].append((phrase, bool(is_entity)))
    return dict(lists)


# ------------------------------------------------------------------------------------------------ stats

@dataclass(frozen=True)
class SplitStats:
    split: str
    utterances: int
    hours: float
    speakers: int
    words: int


def dataset_stats(conn: Connection, version: str = "default") -> list[SplitStats]:
    """Per-split totals of ``version`` from the dataset_stats view, in train/val/test order."""
    rows = conn.execute(text("SELECT split, utterances, hours, speakers, words FROM dataset_stats "
                             "WHERE split_version = :version"), {"version": version}).all()
    by_split = {r.split: SplitStats(r.split, int(r.utterances), float(r.hours or 0.0), int(r.speakers),
                                    int(r.words or 0)) for r in rows}
    return [by_split[s] for s in SPLITS if s in by_split]


def corpus_totals(conn: Connection) -> SplitStats:
    """Totals over every utterance in the database, split or not (split field = "all")."""
    row = conn.execute(select(func.count(audio_files.c.id), func.coalesce(func.sum(audio_files.c.duration_s), 0.0),
                              func.count(func.distinct(audio_files.c.speaker)),
                              func.coalesce(func.sum(transcripts.c.word_count), 0))
                       .select_from(audio_files.outerjoin(transcripts))).one()
    return SplitStats("all", int(row[0]), float(row[1]) / 3600.0, int(row[2]), int(row[3]))


def split_versions(conn: Connection) -> list[str]:
    return list(conn.execute(select(data_splits.c.version).distinct().order_by(data_splits.c.version)).scalars())
