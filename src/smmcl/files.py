"""Atomic file writes, the one way smmcl writes a checkpoint, a weights file or an export; and the one lock on a
folder that a training run or a study writes.

A writer fills a temporary file beside the target; only a finished file is synced and renamed over it, so a kill
or a failure never leaves half a file under the target's name (a failed write removes its temporary file). The
temporary file is created private (mode 0600, `tempfile.mkstemp`); before the rename it gets the mode a plain
`open` would give (0666 less the umask), so another user's process (a robot runtime, a container) can read what
it may read of any other file written here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from smmcl.errors import SmmclError

LOCK_NAME = ".smmcl.lock"


class FolderBusyError(SmmclError):
    """Another smmcl process holds the folder this one was to write."""


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive OS lock (`flock`) on `folder` for the block: a second writer, in any process, stops at once
    with an error naming the holder (the process id and host written in the lock file, only for that). The OS
    releases the lock when the holder ends, however it ends, so a killed run never leaves its folder locked."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "a process that has not written its id yet"
        handle.close()
        raise FolderBusyError(f"{folder} is being written by another smmcl process ({holder}); wait for it to end, "
                              f"or choose another {what}") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends without an error the file is synced, given
    the umask's mode and renamed over `path`; when it raises, the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
