"""Claiming an output before anything is written: apart from every input, holding only what the same kind of
command wrote (its list, `smmcl.outputs.manifest`), `--overwrite` removing only that; single output files; unique
output names per input."""

from __future__ import annotations

import contextlib
import glob
import shutil
import time
import warnings
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional

from smmcl.errors import StaleOutputWarning
from smmcl.files import LOCK_NAME, check_not_busy, file_lock, folder_lock, make_folder
from smmcl.outputs.manifest import (OWN_FILES, _KIND_TEXT, OutputError, _kept, _lists, _ours, _planned, _write_manifest,
                                    read_manifest, record, settle)


def resolved(path: str | Path) -> Path:
    """`path` absolute, with `~`, `..` and symlinks resolved (also for a path that does not exist yet)."""
    return Path(path).expanduser().resolve(strict=False)


def _sources(inputs: Iterable[Optional[str | Path]]) -> Iterator[tuple[str | Path, Path]]:
    """Each input, resolved, and for an input folder the targets of the links directly in it (resolved): a dataset
    whose RGB/ is a link to another folder is read there, so an output inside that folder lands among its images
    (trial 13 #286: a run written into the linked RGB folder)."""
    for given in inputs:
        if given is None:
            continue
        source = resolved(given)
        yield given, source
        if Path(given).is_symlink() and source.is_file():
            yield given, source.parent  # a linked file is read where it lives, among its folder's files (trial 14 #277)
        if source.is_dir():
            with contextlib.suppress(OSError):
                for entry in source.iterdir():
                    if entry.is_symlink():
                        target = resolved(entry)
                        yield Path(given) / entry.name, target.parent if target.is_file() else target


def check_apart(out: str | Path, inputs: Iterable[Optional[str | Path]], what: str) -> None:
    """Refuse an output (file or folder) that is an input, lies inside an input folder, or holds an input."""
    target = resolved(out)
    for given, source in _sources(inputs):
        if Path(given).absolute() != source:  # a link (or `..`) led there: the real place first (trial 15 SL2)
            given = f"{source} (where {given} leads)" if Path(given).is_symlink() else source
        if target == source:
            raise OutputError(f"{what} {out} is the input {given}: writing there would replace it")
        if source.is_dir() and target.is_relative_to(source):
            raise OutputError(f"{what} {out} lies inside the input folder {given}: choose a folder outside it")
        if source.is_relative_to(target):
            raise OutputError(f"{what} {out} holds the input {given}: choose a folder apart from the inputs")


def check_path(path: str | Path, what: str) -> None:
    """Refuse a path that runs through an existing file (`notes.txt/out`): no folder can be made there."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {path}: {parent} is a file, so no folder can be made below it")
            return


def check_claim(folder: str | Path, kind: str, what: str, inputs: Iterable[Optional[str | Path]] = (),
                overwrite: bool = False, adopt: Iterable[str] = (), names: Iterable[str] = ()) -> set:
    """Everything `claim_folder` checks, writing nothing; returns the names smmcl wrote there before.

    With `overwrite`, a listed folder must hold only what its own manifest lists (or nothing), for what it lists
    would be removed; anything else in it is refused. A folder another process holds the lock of is refused first,
    naming it: what it holds is that command's, still being written."""
    folder = Path(folder)
    check_path(folder, what)
    check_apart(folder, inputs, what)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file; a folder is expected")
    if folder.is_dir():
        check_not_busy(folder, what)
    manifest = read_manifest(folder) if folder.is_dir() else None
    listed, kept = _lists(folder, manifest)
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if manifest is None:
        listed = {e.name for e in entries if e.name in set(adopt)}
    elif manifest.get("kind") != kind and any(e.name in listed for e in entries):
        raise OutputError(f"{what} {folder} holds the output of another smmcl command ({manifest.get('kind')}), "
                          f"not of this one ({kind}): choose another folder")
    planned = _planned(manifest)
    foreign = [e.name for e in entries if not _ours(e, listed | kept, planned)]
    if overwrite:
        foreign += [str(p.relative_to(folder)) for name in sorted(listed) for p in _foreign_inside(folder / name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        unfinished = [name for name in foreign if Path(name).name in _planned(read_manifest((folder / name).parent))]
        why = (f" ({', '.join(unfinished[:3])}{' ...' if len(unfinished) > 3 else ''}: names that a smmcl command "
               f"which did not finish (killed?) planned to write but never listed as written, so smmcl cannot tell them "
               f"from yours; if they are its, remove them)" if unfinished else "")
        raise OutputError(f"{what} {folder} holds files smmcl did not write there ({shown}){why}; smmcl writes only "
                          f"into a new or empty folder, or one it wrote: move them out of it, or choose another folder; "
                          f"nothing was changed")
    clash = sorted(_kept(manifest) & set(names))
    if clash:
        raise OutputError(f"{what} {folder}: {', '.join(clash)} there was written by another smmcl command (an export "
                          f"or scores) and would be replaced; move it, or choose another folder")
    return listed


def _foreign_inside(path: Path) -> list:
    """Files inside a listed folder that smmcl did not write there: all of them in a folder without a manifest of its
    own, else those its manifest does not list (looked into again for a listed folder inside)."""
    if path.is_symlink() or not path.is_dir():
        return []
    manifest = read_manifest(path)
    if manifest is None:
        return [p for p in path.rglob("*") if not p.is_dir() and p.name not in OWN_FILES]
    (listed, kept), found = _lists(path, manifest), []
    for entry in sorted(path.iterdir()):
        if entry.name in listed:
            found += _foreign_inside(entry)
        elif not _ours(entry, listed | kept, _planned(manifest)):
            found.append(entry)
    return found


def _remove_written(path: Path) -> None:
    """Remove what smmcl wrote at `path` (checked by `_foreign_inside` to hold nothing else): a file, or a folder's
    listed names, the folder itself when nothing is left (kept files and other commands' folders stay)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    manifest = read_manifest(path)
    if manifest is None:
        if not any(p.is_file() for p in path.rglob("*")):
            shutil.rmtree(path)
        return
    for name in _lists(path, manifest)[0]:
        _remove_written(path / name)
    for stale in partial_writes(path):
        stale.unlink(missing_ok=True)
    if _keep_list_of_what_stays(path, manifest):
        return
    for name in OWN_FILES:
        (path / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.rmdir()


def _keep_list_of_what_stays(folder: Path, manifest: dict) -> bool:
    """After a folder's own files went: when another command's output stays in it (an export or scores kept there, a
    folder with a list of its own), its list stays too, naming only those, so that the folder remains smmcl's and
    the next claim takes it (trial 9 #200-#207: a run's `checkpoints/` lost its list beside an export, and the new
    run's claim then refused the export as foreign after the old run was gone). Returns whether anything stays."""
    stays = [e for e in folder.iterdir() if e.name not in OWN_FILES]
    if not stays:
        return False
    _write_manifest(folder, manifest["kind"], [], {e.name for e in stays if e.name in _lists(folder, manifest)[1]})
    return True


def remove_written(folder: str | Path) -> None:
    """Undo a command that stopped before it finished anything worth keeping, while it still holds the folder's lock:
    remove what its manifest lists in `folder` (its own folders inside too) and the manifest; the lock file stays
    for the lock's holder to remove, and with it the folder when that leaves it empty. The names it planned are
    its own too: it has held the lock since it planned them."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return
    for name in [*manifest["written"], *(n for n, to in _planned(manifest).items() if to == "written")]:
        _remove_written(folder / name)
    for stale in partial_writes(folder):
        stale.unlink(missing_ok=True)
    if _keep_list_of_what_stays(folder, manifest):
        return
    for name in OWN_FILES - {LOCK_NAME}:
        (folder / name).unlink(missing_ok=True)


def partial_writes(folder: str | Path) -> list:
    """Temporary files of atomic writes (`smmcl.files.atomic_path`) of names listed in `folder`'s manifest that a
    kill cut short: safe to delete, for they are smmcl's own."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return []
    listed = set(manifest["written"]) | _kept(manifest)
    return [e for e in folder.glob(".*.tmp") if e.name not in listed and _ours(e, listed, _planned(manifest))]


def claim_folder(folder: str | Path, kind: str, what: str, inputs: Iterable[Optional[str | Path]] = (),
                 names: Iterable[str] = (), overwrite: bool = False, adopt: Iterable[str] = ()) -> Path:
    """Make `folder` one that the `kind` of command may write (see the module docstring and `check_claim`),
    creating it; `names` are planned there (written once their files are: `record`, `settle`). `adopt`: names a
    folder written before manifests existed may
    hold (only a caller that has checked the folder is its own, e.g. by resuming its checkpoint, passes them).
    Returns the folder."""
    folder = Path(folder)
    names = list(names)
    listed = check_claim(folder, kind, what, inputs, overwrite, adopt, names)
    kept = _lists(folder, read_manifest(folder))[1] if folder.is_dir() else set()
    if overwrite:
        if listed:
            warn_other_outputs(folder, what, "replacing what smmcl wrote there")
        for name in sorted(listed):
            _remove_written(folder / name)
        listed = set()
    make_folder(folder, what, OutputError)
    planned = {**_planned(read_manifest(folder) if folder.is_dir() else None), **{n: "written" for n in names}}
    _write_manifest(folder, kind, listed, kept, planned, planned_at=time.time())
    parent = read_manifest(folder.parent)
    if parent is not None and _planned(parent).get(folder.name) == "written":
        record(folder.parent, [folder.name])  # a folder its parent's command planned (a run's checkpoints/) is made
    return folder


def warn_other_outputs(folder: str | Path, what: str, change: str) -> None:
    """A `StaleOutputWarning` naming the other commands' outputs in `folder` (its manifest's kept files, folders
    with manifests of their own), made from the folder's own files before `change` to them (an HHA folder from a
    dataset's depth, a report or export from a run's weights): they would silently no longer match them."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed, kept = (set(manifest["written"]) if manifest else set()), _kept(manifest)
    others = sorted(e.name for e in folder.iterdir() if e.name not in listed and e.name not in OWN_FILES
                    and (e.name in kept or (e.is_dir() and read_manifest(e) is not None)))
    # And those kept in the folder's own subfolders: scores of a run's checkpoint, made from the weights that the
    # folder's command replaces (trial 14 #302: a checkpoint's scores stayed beside the retrained checkpoint).
    for sub in sorted(e for e in folder.iterdir() if e.name in listed and e.is_dir()):
        others += [f"{sub.name}/{name}" for name in sorted(_kept(read_manifest(sub))) if (sub / name).exists()]
    if others:
        shown = ", ".join(str(folder / name) for name in others)
        warnings.warn(f"{what} {folder}: {change}, but keeping {shown}, written there by another smmcl command; "
                      f"if it was made from what is replaced, write it again or remove it", StaleOutputWarning,
                      stacklevel=3)


def check_no_earlier(folder: str | Path, kind: str, what: str) -> None:
    """Refuse a folder holding an earlier output of this `kind` of command: it is replaced (whole, and only smmcl's
    files) with `--overwrite` alone, never by a plain second run, whose inputs or model may be others."""
    folder = Path(folder)
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None or manifest.get("kind") != kind:
        return
    earlier = sorted(name for name in _lists(folder, manifest)[0] if (folder / name).exists())
    if earlier:
        shown = ", ".join(earlier[:3]) + (f" and {len(earlier) - 3} more" if len(earlier) > 3 else "")
        # A command that never settled its list (killed) left names planned: its output is part of one (trial 17 KQ2).
        unfinished = [n for n in _planned(manifest) if not (folder / n).exists()]
        part = (f", part of one that did not finish (killed?): {len(unfinished)} of its {len(unfinished) + len(earlier)} "
                f"files were never written" if unfinished else "")
        raise OutputError(f"{what} {folder} holds an earlier output of this command ({shown}){part}; nothing was "
                          f"changed: --overwrite (overwrite=True) replaces it whole, or choose another folder")


@contextlib.contextmanager
def writing(folder: str | Path, kind: str, what: str, inputs: Iterable[Optional[str | Path]] = (),
            names: Iterable[str] = (), overwrite: bool = False, again: bool = False) -> Iterator[Path]:
    """`claim_folder` for a command that writes `folder` in the block, holding the folder's lock
    (`smmcl.files.folder_lock`) until the block ends. Checked before the lock is taken, so a refused folder is left
    as it was (no lock file), and again under it, so two commands started together cannot both claim it.
    An earlier output of the same kind there is refused (`check_no_earlier`) unless `overwrite` (then removed
    first) or `again` (a caller that has checked it writes the same thing again in place: the demo's rerun)."""
    inputs, folder, names = list(inputs), Path(folder), list(names)
    check_claim(folder, kind, what, inputs, overwrite, names=names)
    if not (overwrite or again):
        check_no_earlier(folder, kind, what)
    created, made = not folder.exists(), []
    try:
        with folder_lock(folder, what):
            if not (overwrite or again):
                check_no_earlier(folder, kind, what)
            claimed = claim_folder(folder, kind, what, inputs, names, overwrite)
            before = set(read_manifest(folder)["written"])  # type: ignore[index]
            failed = False
            try:
                yield claimed
            except Exception:
                failed = True
                raise
            finally:  # still under the lock: what exists under a planned name now, this command wrote
                settle(folder)
                made = sorted(set(read_manifest(folder)["written"]) - before) if failed else []  # type: ignore[index]
    except BaseException:
        # A command refused before it wrote anything (a bad input file) leaves no folder it made for nothing (nor the
        # empty folders it claimed inside: a dataset's RGB/ when the first scene did not fit in memory).
        if created and folder.is_dir() and all(p.is_dir() or p.name in OWN_FILES for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)
        # Said, for a refused command otherwise leaves nothing behind (trial 8 #299, #302, #324); of the outputs
        # still there once the folder is settled, for a name listed before its file appeared, or a folder removed
        # just now, keeps nothing (trial 12 #87: "the 1 outputs ... (e.g. overlay.mp4) are kept" of no folder).
        kept = [name for name in made if _holds_output(folder / name)]
        if kept:
            warnings.warn(f"{what} {folder}: stopped part way; the {len(kept)} outputs it wrote before (e.g. "
                          f"{kept[0]}) are kept there, as smmcl's (--overwrite replaces them)",
                          StaleOutputWarning, stacklevel=3)
        raise


def _holds_output(path: Path) -> bool:
    """Whether `path` is an output file, or a folder holding one (an empty claimed folder is none)."""
    if path.is_dir() and not path.is_symlink():
        return any(p.is_file() and p.name not in OWN_FILES for p in path.rglob("*"))
    return path.is_file()


def check_output_file(path: str | Path, what: str, inputs: Iterable[Optional[str | Path]] = (),
                      ours: bool = False, overwrite: bool = False) -> Path:
    """A single output file (an export, converted weights, scores): not an input, not a folder, not a file another
    smmcl command wrote as its own (a run's weights), and an existing file only with `overwrite` and when the caller
    has found it is smmcl's own output of this kind (`ours`). Only checks: the writer claims it with `output_file`."""
    path = Path(path)
    check_path(path, what)
    check_apart(path, inputs, what)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; a file name is expected")
    manifest = read_manifest(path.parent) if path.parent.is_dir() else None
    if manifest is not None and path.name in manifest["written"]:
        # A run's model.safetensors, a dataset's list: the folder's own command wrote it, and only that one may
        # replace it (an average of weights kept nowhere else would be gone).
        raise OutputError(f"{what} {path} is part of the {_KIND_TEXT.get(manifest.get('kind'), manifest.get('kind'))} "
                          f"in {path.parent}, which only that command writes; nothing was changed: choose another name")
    if path.exists() and not ours:
        raise OutputError(f"{what} {path} exists and is not a file smmcl wrote as this output; nothing was "
                          f"changed: choose another name")
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} holds an earlier output of this command; nothing was changed: --overwrite "
                          f"(overwrite=True) replaces it, or choose another name")
    if not path.parent.is_dir():
        raise OutputError(f"{what} {path}: its folder {path.parent} does not exist")
    return path


@contextlib.contextmanager
def output_file(path: str | Path, what: str, inputs: Iterable[Optional[str | Path]] = (), ours: bool = False,
                overwrite: bool = False) -> Iterator[Path]:
    """`check_output_file` for a command that writes `path` in the block. In a folder smmcl wrote, the name is
    planned there, and smmcl's once the file exists (`settle`: a command refused or failed before leaves no claim):
    scores beside a run's model, an export into a dataset, not foreign to the folder's own command, which still
    never removes them (its --overwrite, a new synth or report keeps them)."""
    with file_lock(Path(path), what):  # held first, so that a second writer of the name is refused, not raced
        path = check_output_file(path, what, inputs, ours, overwrite)
        manifest = read_manifest(path.parent)
        if manifest is not None and path.name not in _kept(manifest):
            _write_manifest(path.parent, manifest["kind"], manifest["written"], _kept(manifest),
                            {**_planned(manifest), path.name: "kept"})
        for stale in path.parent.glob(f".{path.name}.*.tmp*"):
            stale.unlink(missing_ok=True)  # an earlier write of this file that a kill cut short (`files.atomic_path`)
        scores = sorted(path.parent.glob(f"{glob.escape(path.stem)}.*.json")) if path.exists() else []
        if scores and path.suffix != ".json":  # eval's scores of the file replaced (`<stem>.<split>.json`, trial 14 #303)
            warnings.warn(f"{what} {path}: replacing it, but keeping {', '.join(map(str, scores))}, the scores of the "
                          f"file it replaces; evaluate it again or remove them", StaleOutputWarning, stacklevel=3)
        try:
            yield path
        finally:
            settle(path.parent, [path.name])


def unique_outputs(planned: Iterable[tuple[str, str | Path]], what: str = "outputs") -> Dict[str, Path]:
    """`output name -> input` for (output name, input) pairs; two inputs with one output name are refused,
    naming both (e.g. `a/x.png` and `b/x.jpg` would both become `x.png`)."""
    seen: Dict[str, Path] = {}
    for name, source in planned:
        if name in seen and resolved(seen[name]) != resolved(source):
            raise OutputError(f"{seen[name]} and {source} would both be written as {name} in the {what}; rename "
                              f"one, or write them into separate folders")
        seen[name] = Path(source)
    return seen
