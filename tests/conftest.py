"""Fixtures shared by the suite: databases (SQLite and a real PostgreSQL server) and audio files."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PG_USER = "vasr"


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the 'postgres' system user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server on 127.0.0.1 (or $VASR_TEST_POSTGRES_URL); yields its admin URL."""
    if os.environ.get("VASR_TEST_POSTGRES_URL"):
        yield os.environ["VASR_TEST_POSTGRES_URL"]
        return
    bindir = _pg_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (pg_ctl, initdb) not found; apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="vasr-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                                    "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                    str(root / "server.log"), "-w", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "vasr.db")
    return new_database(request.getfixturevalue("postgres_server"))


def new_database(admin_url: str, prefix: str = "vasr_test") -> str:
    """The URL of a new, empty database on the server of ``admin_url`` (its name made here, never
    from input)."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def engine(db_url):
    from vasr.db import store

    engine = store.connect(db_url)
    yield engine
    engine.dispose()


def write_tone(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1, freq: float = 440.0,
               fmt: str | None = None, subtype: str | None = None) -> Path:
    """A sine tone file; ``freq`` makes the content (and so the hash) distinct."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


@pytest.fixture
def tone():
    return write_tone
