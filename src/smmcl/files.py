"""Atomic file writes, the one way smmcl writes a checkpoint, a weights file or an export; the one lock on a
folder that a training run or a study writes; and what container a file is, from its first bytes
(`container`, which `smmcl.model_file` builds the model-file kinds on).

A writer fills a temporary file beside the target; only a finished file is synced and renamed over it, so a kill
or a failure never leaves half a file under the target's name (a failed write removes its temporary file). The
temporary file is created private (mode 0600, `tempfile.mkstemp`); before the rename it gets the mode a plain
`open` would give (0666 less the umask), so another user's process (a robot runtime, a container) can read what
it may read of any other file written here.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import hashlib
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from smmcl.errors import CheckpointError, SmmclError

LOCK_NAME = ".smmcl.lock"
EXPECTED_MODEL_FILES = ("smmcl weights (.safetensors written by smmcl train or convert), a training checkpoint, a "
                        "released SMMCL checkpoint or an ONNX export of smmcl export")


class FolderBusyError(SmmclError):
    """Another smmcl process holds the folder this one was to write."""


def make_folder(folder: Path, what: str, error: type = SmmclError) -> None:
    """`folder.mkdir(parents=True, exist_ok=True)`, with a place that cannot take a folder (read-only, /proc, a full
    disk) named as an `error` rather than a bare errno."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{what} {folder}: cannot create it ({exc.strerror or exc})") from None


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive OS lock (`flock`) on `folder` for the block: a second writer, in any process, stops at once
    with an error naming the holder (the process id and host written in the lock file, only for that). The OS
    releases the lock when the holder ends, however it ends, so a killed run never leaves its folder locked (its lock
    file stays, unlocked; a holder that ends normally removes it)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SmmclError(f"{what} {folder} is a file; a folder is expected")
    make_folder(folder, what)
    path = folder / LOCK_NAME
    while True:
        handle = open(path, "a+")
        _lock_or_busy(handle, str(folder), f"choose another {what}")
        # The holder removes the file as it ends: a lock taken on the removed file guards nothing, so take it again.
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    held = folder.resolve()
    _HELD.add(held)
    try:
        _sign(handle)
        yield
    finally:
        _HELD.discard(held)
        # Removed while still held, so that a finished command leaves no lock file among its outputs.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        handle.close()


@contextlib.contextmanager
def file_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive OS lock on a single output file's name for the block: two commands writing one file at once
    (two `eval --out same.json`, two exports to one name) each said they wrote it, and one result was gone (trial 14
    #244, #245c, #247). The lock file lives in this user's folder of the temporary folder, named by the path's
    digest, so nothing is added beside the user's files; the OS releases it when the holder ends, however it ends."""
    key = hashlib.blake2b(str(Path(path).expanduser().resolve()).encode(), digest_size=10).hexdigest()
    folder = Path(tempfile.gettempdir()) / f"smmcl-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    handle = open(folder / f"{key}.lock", "a+")
    _lock_or_busy(handle, f"{what} {path}", "choose another name")
    try:
        _sign(handle)
        yield
    finally:
        handle.close()


def _lock_or_busy(handle, subject: str, remedy: str) -> None:
    """Take `handle`'s exclusive lock without waiting, or close it and raise the busy error naming its holder; one
    way for a folder's lock and a single file's."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise _busy(subject, holder, remedy) from None


def _sign(handle) -> None:
    """Write the holder's id into its lock file, for a second writer's error to name."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()


# Folders this process holds with `folder_lock`: what it checks in them while it holds them (its own claims) is
# not a second writer's.
_HELD: set = set()


def _busy(subject: str, holder: str, remedy: str) -> FolderBusyError:
    return FolderBusyError(f"{subject} is being written by another smmcl process ({holder}){_ended(holder)}; wait for "
                           f"it to end, or {remedy}")


def _ended(holder: str) -> str:
    """Said when the process named as the holder has ended on this host: a child it started (a data-loading worker)
    keeps the lock until it notices, seconds later (trial 14 #97: a run killed with -9, rerun at once)."""
    parts = holder.split()
    if len(parts) == 4 and parts[0] == "pid" and parts[1].isdigit() and parts[3] == socket.gethostname():
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return (f"; process {parts[1]} has ended, and a process it started (a data-loading worker) still holds "
                    f"the lock for the few seconds it takes to notice")
        except OSError:
            pass
    return ""


def check_not_busy(folder: str | Path, what: str) -> None:
    """A `FolderBusyError` naming the holder when another process holds `folder_lock` on `folder`: said before
    anything else is judged of the folder, whose files are then that command's, still being written (trial 12
    #211: a second predict was told the folder held "an earlier output" to --overwrite)."""
    folder = Path(folder)
    if folder.resolve() in _HELD:
        return
    holder = folder_holder(folder)
    if holder is not None:
        raise _busy(str(folder), holder, f"choose another {what}")


def folder_holder(folder: Path) -> str | None:
    """Who holds `folder_lock` on `folder` now (its process id and host), or None when nobody does. Only looks: a
    reader told "not finished" of a folder a live command is writing should hear that instead."""
    try:
        handle = open(Path(folder) / LOCK_NAME)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(handle)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def _holder(handle) -> str:
    """The holder's id from its lock file. The holder writes it just after taking the lock, so a second process that
    arrives in that instant waits up to a second for it rather than naming nobody."""
    for _ in range(40):
        handle.seek(0)
        holder = handle.read().strip()
        if holder:
            return holder
        time.sleep(0.025)
    return "a process that has not written its id yet"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def read_text(path: Path, expected: str) -> str:
    """The text of `path`; a named error for a binary file (an image given as a list, a checkpoint as results),
    rather than the codec's message that names neither the file nor what was wanted."""
    raw = Path(path).read_bytes()
    # Editors on Windows save UTF-8 with a byte-order mark (Notepad) or UTF-16 (PowerShell's `>`); read as
    # plain UTF-8, the mark would become part of the first name (trial 7 #169).
    codec = next((name for mark, name in _BOMS if raw.startswith(mark)), "utf-8")
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise SmmclError(f"{path} is not a text file; expected {expected}") from None


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def as_path(value: object, what: str) -> Path:
    """`value` (a str or os.PathLike) as a Path; a TypeError naming `what` for anything else (None, an array: a
    frame belongs to `smmcl.Predictor`, not to the file-reading calls)."""
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    if isinstance(value, str):  # the right type with no path in it: a value error, as the CLI reports it
        raise ValueError(f"{what} must be a path, got an empty string")
    shown = f"a {type(value).__name__}"
    raise TypeError(f"{what} must be a path (str or pathlib.Path), got {shown}"
                    + ("; for frames in memory use smmcl.Predictor" if type(value).__name__ == "ndarray" else ""))


def distinct(paths, what: str) -> None:
    """Refuse one file or folder given twice among `paths` (however spelled: `run`, `./run/`, a symlink to it):
    compared with itself it shows zero differences that mean nothing."""
    seen: dict = {}
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            raise SmmclError(f"{what}: {seen[key]} and {path} are one and the same; give each once")
        seen[key] = path


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


# The writers' naming rule: what smmcl writes ends in these (readers tell a file by its content, never by its name).
OUTPUT_SUFFIXES = {"weights": (".safetensors", "smmcl weights"), "onnx": (".onnx", "ONNX exports")}


def check_output_name(path: Path, kind: str) -> None:
    """Refuse an output name that hides what the file is: smmcl weights end in .safetensors, ONNX exports in .onnx."""
    wanted, description = OUTPUT_SUFFIXES[kind]
    if path.suffix.lower() != wanted:
        raise CheckpointError(f"{description} are files ending in {wanted}, got {path}")


def container(path: Path) -> str:
    """`safetensors`, `torch` or `onnx`, from the file's first bytes; a named error for anything else."""
    if path.is_dir():
        hint = "; a run folder holds model.safetensors" if (path / "model.safetensors").is_file() else ""
        raise CheckpointError(f"{path} is a folder, not a model file{hint}")
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"cannot read {path}: the file is empty (0 bytes)")
    with path.open("rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return "torch"  # torch.save's zip archive, or its older bare pickle
    header = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if 0 < header <= size - 8 and head[8:9] == b"{":
        return "safetensors"  # an 8-byte header length, then the JSON header
    # ONNX has no magic number: a ModelProto starts with field 1 (ir_version, a varint), tag byte 0x08.
    if head[:1] == b"\x08":
        return "onnx"
    raise CheckpointError(f"{path}: not a model file smmcl reads (its first bytes {head[:8].hex(' ')} are none of "
                          f"safetensors, PyTorch or ONNX); expected {EXPECTED_MODEL_FILES}")


def safetensors_metadata(path: str | Path) -> dict:
    """The metadata strings of a safetensors file, from its header alone: no tensor is read, and no PyTorch."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # SafetensorError for truncated or malformed headers
        raise CheckpointError(f"cannot read {path}: not a valid safetensors file ({exc})") from None
