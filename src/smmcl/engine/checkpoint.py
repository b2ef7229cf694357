"""Training checkpoints: written atomically, found again by `--resume auto`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from smmcl.engine.run_dir import writing
from smmcl.errors import CheckpointError
from smmcl.files import atomic_path
from smmcl.outputs import forget, written
from smmcl.weights.reading import load_pickle_free

_NAME = re.compile(r"^ckpt_(\d+)\.pt$")


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a kill leaves the old file intact."""
    with writing(path), atomic_path(path) as tmp:
        torch.save(obj, tmp)
        _fault_delay()


def _fault_delay() -> None:
    """Fault-injection tests widen the window between a checkpoint's write and its rename, so that a kill
    lands inside it for sure (SMMCL_TEST_SAVE_DELAY seconds; unset in normal use)."""
    delay = os.environ.get("SMMCL_TEST_SAVE_DELAY")
    if delay:
        import time

        time.sleep(float(delay))


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"ckpt_{step:08d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in a folder, oldest first (temporary files never match the name). In a run's folder,
    only those the run wrote (its manifest): a user's file named like one is neither resumed from nor pruned."""
    if not ckpt_dir.is_dir():
        return []
    ours = written(ckpt_dir)
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir()
             if (m := _NAME.match(p.name)) and (ours is None or p.name in ours)]
    return sorted(found)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune_checkpoints(ckpt_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    old = [p for _, p in list_checkpoints(ckpt_dir)[:-keep]]
    for p in old:
        p.unlink(missing_ok=True)
    forget(ckpt_dir, [p.name for p in old])


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a training checkpoint without executing pickled code (`weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    ckpt = load_pickle_free(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not an smmcl checkpoint (expected a dict with a 'model' entry)")
    return ckpt


def ema_weights(ema_state: dict) -> dict:
    """The model state dict inside an `AveragedModel` state dict (its `module.` entries; `n_averaged` dropped)."""
    return {k[len("module."):]: v for k, v in ema_state.items() if k.startswith("module.")}


def evaluation_weights(ckpt: dict) -> dict:
    """The weights a training checkpoint is evaluated, exported and converted with: the average of weights when
    the run kept one (`train.ema`, docs/configuration.md; as its `model.safetensors` holds), else the trained
    weights. The trained weights (`model`) stay what a resume continues from."""
    ema = ckpt.get("ema")
    return ema_weights(ema) if ema else ckpt["model"]
