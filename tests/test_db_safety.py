"""The database layer never corrupts or adopts a database that is not vasr's, and every database
problem is one line: each case through the real CLI (exit code, key words, no traceback, and the
database or file left byte for byte as it was), on SQLite and on the PostgreSQL server of conftest."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from vasr.db import runs, store

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def vasr(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vasr", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def assert_one_line(result: subprocess.CompletedProcess, *words: str, code: int = 2) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _head() -> str:
    return ScriptDirectory.from_config(store._alembic_config()).get_current_head()


def _pg_engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


# ------------------------------------------------------------------------------------- kill -9 mid-migration

def test_kill_during_first_migration_leaves_a_usable_database(db_url):
    """kill -9 after the first migration step (tables made, not committed): the next command works."""
    proc = subprocess.Popen([sys.executable, "-m", "vasr", "db", "stats", "--db", db_url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, store.PAUSE_ENV_VAR: "60"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"vasr exited before pausing mid-migration (rc {proc.wait()})"
            if "migration step" in line and "pausing" in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    result = vasr("db", "stats", "--db", db_url)
    assert result.returncode == 0, result.stderr
    engine = store.connect(db_url, upgrade=False)
    try:
        with engine.connect() as conn:
            assert store.schema_revision(conn) == _head()
            assert "audio_files" in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()


# ------------------------------------------------------------------------ SQLite paths that are not vasr's

def _sql(path: Path, *statements: str) -> Path:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path


def _foreign_sqlite(path: Path) -> Path:
    return _sql(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)",
                "INSERT INTO invoices (total) VALUES (12.5)")


def _newer_vasr(path: Path) -> Path:
    store.connect(path).dispose()
    return _sql(path, "UPDATE alembic_version SET version_num = '9999_from_the_future'")


def _other_alembic_project(path: Path) -> Path:
    return _sql(path, "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
                "INSERT INTO alembic_version VALUES ('ae1027a6acf')", "CREATE TABLE users (id INTEGER PRIMARY KEY)")


def _truncated_sqlite(path: Path) -> Path:
    _foreign_sqlite(path)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 50)
    return path


def _read_only(path: Path) -> Path:
    _foreign_sqlite(path)
    path.chmod(0o444)
    return path


SQLITE_CASES = {
    "foreign sqlite": (_foreign_sqlite, ["not a vasr database", "invoices", "nothing was written"]),
    "text file": (lambda p: (p.write_text("just some notes\n"), p)[1], ["not an SQLite database"]),
    "png": (lambda p: (p.write_bytes(PNG), p)[1], ["not an SQLite database"]),
    "corrupt sqlite": (_truncated_sqlite, ["not a readable SQLite database"]),
    "newer revision": (_newer_vasr, ["9999_from_the_future", "does not know"]),
    "other alembic project": (_other_alembic_project, ["ae1027a6acf", "does not know"]),
    "read-only": (_read_only, ["read-only"]),
}


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file of ``path``'s folder (the database and any -wal/-journal beside it), with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


@pytest.mark.parametrize("case", SQLITE_CASES)
def test_sqlite_path_that_is_not_vasrs_is_refused_untouched(case, tmp_path):
    make, words = SQLITE_CASES[case]
    folder = tmp_path / "db"
    folder.mkdir()
    path = make(folder / "target.db")
    before = _snapshot(path)
    commands = [["db", "stats"]] + ([["db", "upgrade"], ["import", "csv", str(tmp_path / "m.csv")]]
                                    if case in ("foreign sqlite", "newer revision") else [])
    (tmp_path / "m.csv").write_text("file_path,transcript\n")
    for command in commands:
        assert_one_line(vasr(*command, "--db", str(path)), str(path), *words)
        assert _snapshot(path) == before, command


def test_opening_a_database_keeps_the_locks_of_the_process_s_other_connections(tmp_path):
    """Checking a file before opening it must not close a descriptor of its own on it: POSIX drops every
    lock the process holds on a file when any descriptor of it is closed, and another process could then
    write beside a transaction still in progress."""
    path = tmp_path / "held.db"
    store.connect(path).dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE alembic_version SET version_num = version_num")
    try:
        store._check_sqlite_file(path, "held")
        other = subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], "
                                "timeout=0); c.execute('BEGIN IMMEDIATE')", str(path)],
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 1 and "database is locked" in other.stderr, other.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_directory_as_database(tmp_path):
    before = sorted(os.listdir(tmp_path))
    assert_one_line(vasr("db", "stats", "--db", str(tmp_path)), str(tmp_path), "is a directory")
    assert sorted(os.listdir(tmp_path)) == before


def test_new_and_empty_paths_are_created(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (tmp_path / "new" / "sub" / "vasr.db", empty):
        result = vasr("db", "stats", "--db", str(path))
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(_head(),)]


# ------------------------------------------------------------------------------------------------- URLs

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url, words", [
    ("sqlite://", ["in-memory", "discarded"]),
    ("sqlite:///:memory:", ["in-memory", "discarded"]),
    ("sqlite:///file::memory:?mode=memory&uri=true", ["in-memory"]),
    ("postgresql://u:secret@127.0.0.1:notaport/x", ["not a valid database URL"]),
    ("postgresql://", ["cannot open"]),
    ("mysql://u@127.0.0.1/x", ["SQLite files and postgresql://", "mysql"]),
    ("", ["--db is empty"]),
])
def test_bad_urls(url, words, tmp_path):
    result = vasr("db", "stats", "--db", url, env={"HOME": str(tmp_path)})
    assert_one_line(result, *words)
    assert "secret" not in result.stderr


def test_unreachable_postgresql():
    url = f"postgresql://vasr:secret@127.0.0.1:{_closed_port()}/vasr"
    result = vasr("import", "csv", "/nonexistent.csv", "--db", url)
    assert_one_line(result, "cannot open", "127.0.0.1", "refused")
    assert "secret" not in result.stderr


# --------------------------------------------------------------------- PostgreSQL databases not vasr's

@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_database_not_vasrs_is_refused_untouched(db_url):
    engine = _pg_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id SERIAL PRIMARY KEY, total REAL)"))
    assert_one_line(vasr("db", "stats", "--db", db_url), "not a vasr database", "invoices")
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["invoices"]
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE invoices"))
    store.connect(db_url).dispose()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        tables = sa.inspect(conn).get_table_names()
    assert_one_line(vasr("db", "upgrade", "--db", db_url), "'9999'", "does not know")
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == tables
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "9999"
    engine.dispose()


# ----------------------------------------------------------------------------- two imports at once, limits

def _manifest(tmp_path: Path, tone, n: int, speaker: str = "s1") -> Path:
    lines = ["file_path,transcript,split,speaker_id"]
    for i in range(n):
        tone(tmp_path / "audio" / f"u{i}.wav", 0.3, 16000, freq=200 + 7 * i)
        lines.append(f"audio/u{i}.wav,xin chào số {i},train,{speaker}")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _counts(db_url: str) -> tuple[int, int]:
    engine = store.connect(db_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT sha256) FROM audio_files")).one())
    finally:
        engine.dispose()


def test_two_imports_at_once(db_url, tmp_path, tone):
    manifest = _manifest(tmp_path, tone, 60)
    store.connect(db_url).dispose()
    procs = [subprocess.Popen([sys.executable, "-m", "vasr", "import", "csv", str(manifest), "--db", db_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0 and "Traceback" not in err, err
    outs = sorted(out for _, out, _ in results)
    assert "0 new, 60 already present" in outs[0] and "60 new, 0 already present" in outs[1], outs
    assert _counts(db_url) == (60, 60)


def test_too_long_values_are_refused_alike_on_both_backends(db_url, tmp_path, tone):
    """PostgreSQL refuses a value longer than its VARCHAR(n), SQLite would store it: both refuse it
    before writing, naming the column (the importer may reject the row itself first)."""
    result = vasr("import", "csv", str(_manifest(tmp_path, tone, 2, speaker="x" * 200)), "--db", db_url)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert "speaker" in result.stderr and "128" in result.stderr, result.stderr
    assert _counts(db_url) == (0, 0)


def test_import_writer_checks_lengths_before_writing(engine):
    base = dict(path="/x/a.wav", sha256="f" * 64, start_s=0.0, end_s=1.0, sample_rate=16000, channels=1,
                format="WAV", raw_text="a", normalized_text="a", normalizer_version="1")
    for field, limit in [("speaker", 128), ("dialect", 16), ("format", 16), ("language", 16), ("utt_id", 255)]:
        row = store.ImportRow(**{**base, field: "y" * (limit + 1)})
        with pytest.raises(ValueError, match=rf"audio_files\.{field} .* is {limit + 1} characters; .* at most {limit}"):
            with engine.begin() as conn:
                store.ImportWriter(conn, "csv", "/x/m.csv", "default").write_new([row])
    with pytest.raises(ValueError, match=r"data_splits\.split .* at most 8"):
        with engine.begin() as conn:
            store.ImportWriter(conn, "csv", "/x/m.csv", "default").write_new(
                [store.ImportRow(**{**base, "split": "validation"})])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM imports")).scalar() == 0
    with pytest.raises(ValueError, match=r"data_splits\.version .* at most 64"), engine.begin() as conn:
        store.auto_split(conn, "v" * 65, (0.8, 0.1, 0.1), seed=0)
    with pytest.raises(ValueError, match=r"training_runs\.name .* at most 128"):
        runs.create_run(engine, "n" * 129, {}, {}, "default", {})
