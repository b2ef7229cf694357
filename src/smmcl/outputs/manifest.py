"""A folder's list of what smmcl wrote there (`.smmcl-written.json`): its kind, the names planned, written and
kept, and how a killed command's own files are told from a user's. Read and written here only."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Dict, Iterable, Optional

from smmcl.errors import SmmclError
from smmcl.files import LOCK_NAME, atomic_path


MANIFEST_NAME = ".smmcl-written.json"

# Bookkeeping smmcl keeps in a folder it writes: never the user's, never listed.
OWN_FILES = {MANIFEST_NAME, LOCK_NAME, ".smmcl-write-test"}

# The folders' kinds in words, for messages.
_KIND_TEXT = {"run": "training run", "dataset": "generated dataset", "scenes": "generated dataset",
              "checkpoints": "training run's checkpoints", "study": "study", "demo": "demo"}


class OutputError(SmmclError, ValueError):
    """An output that would land on an input, or in a folder holding files smmcl did not write there."""


def read_manifest(folder: Path) -> Optional[dict]:
    """The folder's manifest (`kind`, `written`), or None when smmcl has written none there."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    ok = isinstance(manifest, dict) and isinstance(manifest.get("written"), list)
    return manifest if ok else None


def _write_manifest(folder: Path, kind: str, names: Iterable[str], kept: Iterable[str] = (),
                    planned: Optional[Dict[str, str]] = None, planned_at: Optional[float] = None) -> None:
    """`names` written, `kept` (another command's file, see `check_output_file`), `planned`: name -> the list it
    joins ("written" or "kept") once its file is written; `planned_at`: when they were planned (default: as the
    folder's list says, else now)."""
    names = set(names)
    record: dict = {"kind": kind, "written": sorted(names)}
    kept = set(kept) - names
    if kept:
        record["kept"] = sorted(kept)
    planned = {n: to for n, to in (planned or {}).items() if n not in names | kept}
    if planned:
        record["planned"] = dict(sorted(planned.items()))
        earlier = (read_manifest(folder) or {}).get("planned_at") if planned_at is None else planned_at
        record["planned_at"] = earlier if isinstance(earlier, (int, float)) else time.time()
    text = json.dumps(record, indent=1) + "\n"
    with contextlib.suppress(OSError):
        if (folder / MANIFEST_NAME).read_text() == text:
            return  # a folder's list as it was: a finished output read again is left untouched
    with atomic_path(folder / MANIFEST_NAME) as tmp:
        Path(tmp).write_text(text)


# A command killed with `kill -9` never settles its list: the files it wrote under planned names since its last
# flush (`Confirmer`, once a second) lie between its claim and a few seconds after the list was last written. Those
# are its own; a file put there later (a user's, trial 8) or copied in with an older time is not.
KILLED_GRACE_S = 5.0


def _written_before_kill(folder: Path, manifest: Optional[dict]) -> Dict[str, str]:
    """The planned names whose files a command that did not finish wrote (see KILLED_GRACE_S), name -> list."""
    planned, since = _planned(manifest), (manifest or {}).get("planned_at")
    if not planned or not isinstance(since, (int, float)):
        return {}
    try:
        until = (folder / MANIFEST_NAME).stat().st_mtime + KILLED_GRACE_S
    except OSError:
        return {}
    found = {}
    for name, to in planned.items():
        try:
            mtime = (folder / name).lstat().st_mtime
        except OSError:
            continue
        if since - 1.0 <= mtime <= until:
            found[name] = to
    return found


def _lists(folder: Path, manifest: Optional[dict]) -> tuple[set, set]:
    """What `folder`'s list says smmcl wrote there, and the other commands' files it keeps, each with what a killed
    command wrote under its planned names (one look at their times for both)."""
    if manifest is None:
        return set(), set()
    killed = _written_before_kill(folder, manifest)
    return (set(manifest["written"]) | {n for n, to in killed.items() if to == "written"},
            _kept(manifest) | {n for n, to in killed.items() if to == "kept"})


def _kept(manifest: Optional[dict]) -> set:
    return set(manifest.get("kept", [])) if manifest else set()


def _planned(manifest: Optional[dict]) -> Dict[str, str]:
    planned = manifest.get("planned") if manifest else None
    return dict(planned) if isinstance(planned, dict) else {}


def _ours(entry: Path, listed: set, planned: Iterable[str] = ()) -> bool:
    if entry.name in OWN_FILES or entry.name in listed or (entry.is_dir() and read_manifest(entry) is not None):
        return True
    # The temporary file of an atomic write of ours that a kill interrupted (`smmcl.files.atomic_path`): of a name
    # planned too, for the write may be the one that was cut short.
    return entry.name.endswith(".tmp") and any(entry.name.startswith(f".{name}.")
                                               for name in listed | set(planned) | OWN_FILES)


def record(folder: str | Path, names: Iterable[str]) -> None:
    """Add `names` (entries directly in `folder`, just written) to the manifest of a folder claimed with
    `claim_folder`: from now on they are smmcl's."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise OutputError(f"{folder} was not claimed for writing (no {MANIFEST_NAME}); this is a bug in smmcl")
    new = set(names) - set(manifest["written"])
    if new:
        _write_manifest(folder, manifest["kind"], [*manifest["written"], *new], _kept(manifest), _planned(manifest))


class Confirmer:
    """Names a long write loop has written, listed in `folder`'s manifest as it goes: at most once a second (a list
    of thousands rewritten per file would cost more than the files) and when `flush`ed. A command killed with
    `kill -9` then leaves at most its last second of files unlisted, which the next claim refuses by name."""

    def __init__(self, folder: str | Path, every: float = 1.0):
        self.folder, self.every = Path(folder), every
        self.pending: list = []
        self.last = time.monotonic()

    def add(self, *names: str) -> None:
        self.pending.extend(names)
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            record(self.folder, self.pending)
            self.pending = []
        self.last = time.monotonic()


def settle(folder: str | Path, names: Optional[Iterable[str]] = None) -> None:
    """End a command's claim on `folder` (and on the folders it claimed inside): each planned name whose file exists
    joins its list, the others are dropped. Called by its writer while it still holds the folder's lock, so what
    exists under those names is what it wrote. `names`: only these (one output file), not the folders inside."""
    folder = Path(folder)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        return
    planned = _planned(manifest)
    mine = planned if names is None else {n: planned[n] for n in names if n in planned}
    written = set(manifest["written"]) | {n for n, to in mine.items() if to == "written" and (folder / n).exists()}
    kept = _kept(manifest) | {n for n, to in mine.items() if to == "kept" and (folder / n).exists()}
    if mine:
        rest = {n: to for n, to in planned.items() if n not in mine}
        _write_manifest(folder, manifest["kind"], written, kept, rest)
    if names is None:
        for name in sorted(written):
            if (folder / name).is_dir() and not (folder / name).is_symlink():
                settle(folder / name)


def forget(folder: str | Path, names: Iterable[str]) -> None:
    """Drop `names` that smmcl itself removed (a pruned checkpoint) from `folder`'s manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is not None and set(names) & set(manifest["written"]):
        _write_manifest(folder, manifest["kind"], set(manifest["written"]) - set(names), _kept(manifest),
                        _planned(manifest))


def written(folder: str | Path) -> Optional[set]:
    """The names `folder`'s manifest lists as written there, or None for a folder without a manifest."""
    manifest = read_manifest(Path(folder))
    return None if manifest is None else set(manifest["written"])
