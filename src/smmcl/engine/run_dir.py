"""A run folder's safety rules: no run is overwritten by accident, no resume silently changes the config,
nothing a kill left behind lingers, and a folder that cannot be written is found before training starts."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from smmcl.config import load_config, to_dict
from smmcl.errors import CheckpointError, ConfigError
from smmcl.outputs import check_claim, claim_folder, partial_writes

# What `smmcl train` writes into `train.out_dir`.
RUN_FILES = ("config.yaml", "log.jsonl", "summary.json", "model.safetensors", "tb", "checkpoints")

# Keys that may differ on resume: where things are and how they are shown, not what is trained.
RESUME_FREE = ("name", "train.out_dir", "train.device", "train.progress", "train.tensorboard", "train.log_every",
               "train.keep_checkpoints", "train.checkpoint_every", "train.val_every", "train.val_split",
               "train.test_every", "train.paper_batch", "data.root", "data.num_workers", "data.cache",
               "model.pretrained", "model.pretrained_parts", "eval.")


def run_files(out_dir: Path) -> List[str]:
    """The names of a run's files already in `out_dir` (an empty checkpoints folder does not count)."""
    found = []
    for name in RUN_FILES:
        path = out_dir / name
        if name == "checkpoints":
            if path.is_dir() and any(path.glob("ckpt_*.pt")):
                found.append(name)
        elif path.exists():
            found.append(name)
    return found


def claim_run_dir(out_dir: Path, resumed: bool, same_config: bool, overwrite: bool,
                  inputs: Iterable[Optional[str | Path]] = (), resume_asked: bool = False) -> None:
    """Refuse to start a run in a folder that holds another one, unless it is resumed from there, or it is
    the same config killed before its first checkpoint, or `overwrite` (then the old run's files go, as listed in
    the folder's manifest, and nothing else). The folder is claimed as a run's (`smmcl.outputs`): apart from the
    `inputs` (data, pretrained weights), holding nothing smmcl did not write there."""
    inputs = list(inputs)
    replace = check_run_dir(out_dir, resumed, same_config, overwrite, inputs, resume_asked)
    claim_folder(out_dir, "run", "train.out_dir", inputs, names=RUN_FILES, overwrite=replace,
                 adopt=_legacy(out_dir, resumed))
    # checkpoints/ and tb/ list what the run writes there (`record` before each file), so that --overwrite and
    # pruning remove only those; a run from before these lists is adopted only when resumed from there.
    claim_folder(out_dir / "checkpoints", "checkpoints", "checkpoints folder",
                 adopt=[p.name for p in (out_dir / "checkpoints").glob("ckpt_*.pt")] if resumed else ())


def check_run_dir(out_dir: Path, resumed: bool, same_config: bool, overwrite: bool,
                  inputs: Iterable[Optional[str | Path]] = (), resume_asked: bool = False) -> bool:
    """Everything `claim_run_dir` refuses, writing nothing (a dry run checks the folder the run would claim);
    returns whether the run would replace the one there."""
    found = run_files(out_dir)
    # The same config killed before its first checkpoint starts again; a finished run (its weights there) never does.
    replace = bool(found) and not (resumed or (same_config and "checkpoints" not in found
                                               and "model.safetensors" not in found))
    if replace and not overwrite and resume_asked:  # trial 10 #161: told to give the flag just given
        raise ConfigError(
            f"{out_dir} holds a run ({', '.join(found)}) but no checkpoint to continue from in {out_dir / 'checkpoints'}: "
            f"train into another folder (train.out_dir=...), or replace it with --overwrite (overwrite=True)"
        )
    if replace and not overwrite:
        # --resume auto only where a checkpoint is there to continue from: a run killed before its first one has
        # none, and the advice then failed (trial 12 #223).
        resume = ("continue it with --resume auto (resume=\"auto\"), " if "checkpoints" in found else
                  f"it has no checkpoint to continue from in {out_dir / 'checkpoints'} (killed before its first?): ")
        raise ConfigError(
            f"{out_dir} already holds a run ({', '.join(found)}); {resume}train into another folder "
            f"(train.out_dir=...), or replace it with --overwrite (overwrite=True), starting again"
        )
    check_claim(out_dir, "run", "train.out_dir", inputs, overwrite=replace, adopt=_legacy(out_dir, resumed))
    return replace


def check_run_folder(out_dir: Path, resumed: bool, inputs: Iterable[Optional[str | Path]] = ()) -> None:
    """What `claim_run_dir` refuses for the folder itself (an input, another command's output, files smmcl did not
    write), checked before the run's lock is taken, so that a refused folder is left as it was."""
    check_claim(out_dir, "run", "train.out_dir", inputs, adopt=_legacy(out_dir, resumed))


def _legacy(out_dir: Path, resumed: bool) -> list:
    # A run written before manifests existed is adopted only when resumed: its checkpoint was just read from here.
    return [*RUN_FILES, *(p.name for p in out_dir.glob("config.before_step*.yaml"))] if resumed else []


def remove_partial_saves(ckpt_dir: Path) -> int:
    """Delete the temporary files of checkpoint writes a kill interrupted; returns how many there were."""
    stale = partial_writes(ckpt_dir)
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _reason(exc: BaseException, folder: Path) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(exc):
        return "no space left on device"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "cannot write there (permission denied or read-only)"
    if isinstance(exc, RuntimeError):
        # torch.save reports a short write as "[enforce fail at inline_container.cc...]" or "file write failed".
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = -1
        return f"the write failed ({free // 2**20} MiB free on the device)" if free >= 0 else "the write failed"
    return str(getattr(exc, "strerror", None) or exc)


@contextlib.contextmanager
def writing(path: Path, what: str = "checkpoint") -> Iterator[None]:
    """Turn a failed write of `path` into one `CheckpointError` that names the folder and says why."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not any(s in str(exc) for s in ("enforce fail", "write failed", "No space")):
            raise
        raise CheckpointError(f"cannot write {what} {path}: {_reason(exc, path.parent)} in {path.parent}; "
                              f"the last complete checkpoint there is kept") from None


def check_writable(folder: Path) -> None:
    """Create `folder` and write a probe file in it, so that an unwritable output fails before any training."""
    probe = folder / ".smmcl-write-test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise CheckpointError(f"cannot write to {folder}: {_reason(exc, folder)}") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def flatten(d: dict, prefix: str = "") -> Dict[str, object]:
    """A nested config dict as dotted keys -> values."""
    out: Dict[str, object] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _with_defaults(cfg: dict) -> dict:
    """A checkpoint's config read with today's schema: a key added since it was written (at its default,
    which reproduces the old behaviour) is not a change. One that no longer loads is compared as it is."""
    try:
        return to_dict(load_config(cfg))
    except ConfigError:
        return cfg


def config_changes(old: dict, new: dict) -> Dict[str, Tuple[object, object]]:
    """Keys (dotted) whose values differ between a checkpoint's config and the current one and that change
    what is trained; `RESUME_FREE` keys are left out."""
    a, b = flatten(_with_defaults(old)), flatten(new)
    free = lambda k: any(k == f or (f.endswith(".") and k.startswith(f)) for f in RESUME_FREE)  # noqa: E731
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not free(k)}
