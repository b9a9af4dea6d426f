"""Staging folders: output of several files is written into one beside (or inside) its target and
moved into place when complete, so a failed or killed writer never leaves a mix of old and new.

A staging folder is named ``.{target}.{kind}-{host}-{pid}-{random}``. A process killed while
writing (kill -9, a lost machine) leaves its folder behind; the next ``stage`` for the same target
removes the ones of this host whose process is gone. Folders of other hosts (a shared filesystem)
and of live processes are left alone.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

__all__ = ["stage", "publish"]


def stage(parent: Path, target: str, kind: str) -> Path:
    """A new empty folder in ``parent`` for ``kind`` output bound for ``parent/target``, after the
    folders that dead writers of the same target left there are removed."""
    parent = Path(parent)
    host = socket.gethostname().replace("-", "_")
    prefix = f".{target}.{kind}-"
    for old in parent.glob(prefix + "*"):
        owner_host, _, rest = old.name[len(prefix):].partition("-")
        pid = rest.partition("-")[0]
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{host}-{os.getpid()}-", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)     # mkdtemp's 0700 would follow the folder when it is renamed into place
    return folder


def publish(folder: Path, target: Path) -> None:
    """Move the complete staging ``folder`` to ``target``, replacing a ``target`` folder that exists:
    the old one is renamed aside, the new one renamed in, the old one removed."""
    if target.is_dir():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(old)
        folder.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        folder.rename(target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # another user's live process
        return True
    return True
