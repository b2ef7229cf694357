"""Training logs: JSON lines and TensorBoard scalars, written by one process, truncated on resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, Optional

import torch


class RunLog:
    """Accumulates per-step loss tensors without host syncs and writes means every `every` steps.

    On resume, lines and events after the resumed step are dropped, so a killed-and-resumed run's log
    reads exactly like an uninterrupted one.
    """

    def __init__(self, out_dir: Path, start_step: int, every: int, tensorboard: bool, enabled: bool = True):
        self.every = max(1, every)
        self.enabled = enabled
        self.path = out_dir / "log.jsonl"
        self._sums: Dict[str, torch.Tensor] = {}
        self._count = 0
        self._images = 0
        self._t0 = time.perf_counter()
        self.writer = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._truncate(start_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_step + 1 if start_step else None)

    def _truncate(self, step: int) -> None:
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def step(self, step: int, terms: Dict[str, torch.Tensor], lr: float, images: int, force: bool = False) -> Optional[dict]:
        """Record one iteration; returns the logged means (floats) on a logging step (or when `force`)."""
        for k, v in terms.items():
            self._sums[k] = self._sums[k] + v.detach() if k in self._sums else v.detach().clone()
        self._count += 1
        self._images += images
        if step % self.every and not force:
            return None
        # The only host sync of the loop: once per logging window.
        row = {k: float(v) / self._count for k, v in self._sums.items()}
        elapsed = time.perf_counter() - self._t0
        row["lr"] = lr
        row["images_per_s"] = self._images / elapsed if elapsed > 0 else float("nan")
        self._sums, self._count, self._images, self._t0 = {}, 0, 0, time.perf_counter()
        self.write(step, row)
        return row

    def write(self, step: int, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **row}) + "\n")
        if self.writer is not None:
            for k, v in row.items():
                group = "val" if k.startswith("val_") else "train"
                self.writer.add_scalar(f"{group}/{k.removeprefix('val_')}", v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
