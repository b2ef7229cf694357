"""Atomic file writes, the one way smmcl writes a checkpoint, a weights file or an export.

A writer fills a temporary file beside the target; only a finished file is synced and renamed over it, so a kill
or a failure never leaves half a file under the target's name (a failed write removes its temporary file). The
temporary file is created private (mode 0600, `tempfile.mkstemp`); before the rename it gets the mode a plain
`open` would give (0666 less the umask), so another user's process (a robot runtime, a container) can read what
it may read of any other file written here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


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
