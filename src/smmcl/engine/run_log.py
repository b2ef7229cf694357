"""Training logs: JSON lines and TensorBoard scalars, written by one process, truncated on resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from smmcl.engine import distributed
from smmcl.outputs import claim_folder, record


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
        # Per key: a term that only some steps have (a probe, a contrast switched on later) is averaged
        # over the steps that have it.
        self._counts: Dict[str, int] = {}
        self._images = 0
        self._t0 = time.perf_counter()
        self.writer = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._truncate(start_step)
        self.path.touch()  # there from the start, so that its folder's manifest can list it (smmcl.outputs.record)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # A resumed run from before these lists adopts its own event files (its checkpoint was read from here).
            legacy = [p.name for p in (out_dir / "tb").glob("events.out.tfevents.*")] if start_step else []
            tb = claim_folder(out_dir / "tb", "tensorboard", "tensorboard folder", adopt=legacy)
            before = set(p.name for p in tb.iterdir())
            self.writer = SummaryWriter(str(tb), purge_step=start_step + 1 if start_step else None)
            # The writer names its event file itself (time, host, pid): listed once it exists.
            record(tb, [p.name for p in tb.iterdir() if p.name not in before])

    def _truncate(self, step: int) -> None:
        if not self.path.is_file():
            return
        kept = "".join(json.dumps(row) + "\n" for row in read_log(self.path) if row.get("step", 0) <= step)
        if kept != self.path.read_text():  # a finished run resumed keeps its log untouched (trial 15 DM5)
            self.path.write_text(kept)

    def step(self, step: int, terms: Dict[str, torch.Tensor], lr: float, images: int, force: bool = False) -> Optional[dict]:
        """Record one iteration; returns the logged means (floats) on a logging step (or when `force`)."""
        accumulate(self._sums, self._counts, terms)
        self._images += images
        if step % self.every and not force:
            return None
        # The only host sync of the loop: once per logging window.
        row = {k: float(v) / self._counts[k] for k, v in self._sums.items()}
        elapsed = time.perf_counter() - self._t0
        row["lr"] = lr
        row["images_per_s"] = self._images / elapsed if elapsed > 0 else float("nan")
        self._sums, self._counts, self._images, self._t0 = {}, {}, 0, time.perf_counter()
        self.write(step, row)
        return row

    def write(self, step: int, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **row}) + "\n")
        if self.writer is not None:
            for k, v in row.items():
                if not isinstance(v, (int, float)):
                    continue  # e.g. a recorded config change: in the JSON log only
                group = next((g for g in ("val", "test") if k.startswith(g + "_")), "train")
                self.writer.add_scalar(f"{group}/{k.removeprefix(group + '_')}", v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def accumulate(sums: Dict[str, torch.Tensor], counts: Dict[str, int], terms: Dict[str, torch.Tensor]) -> None:
    """Add one step's detached 0-dim tensors to running sums on their device (no host sync)."""
    for k, v in terms.items():
        v = v.detach()
        sums[k] = sums[k] + v if k in sums else v.clone()
        counts[k] = counts.get(k, 0) + 1


def read_log(path: Path) -> list[dict]:
    """The rows of a `log.jsonl`; a last line cut short by a kill is dropped."""
    rows = []
    lines = Path(path).read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
    return rows


# What the summary says about a contrast that is switched off by its batches more often than not.
ZERO_WARNING = 0.5


def run_summary(path: Path) -> dict:
    """Whole-run figures from a `log.jsonl`: window means weighted by window length (in steps).

    `contrast_zero_fraction`: the share of contrastive steps whose weighted terms were exactly 0;
    `rows`, `pairs`, `classes`: mean sampled rows, qualifying (image, class) pairs and classes per step;
    `retrieval_top1` (cross_modal_pixel): the mean share of anchors whose same-position positive outscores
    all their negatives;
    the probe's mean gradient figures; `test_miou`: [step, mIoU] of every `train.test_every` score (when
    logged); `warnings` in words.
    """
    path = Path(path)
    rows = read_log(path) if path.is_file() else []
    weighted: Dict[str, float] = {}
    steps: Dict[str, int] = {}
    previous = 0
    for row in rows:
        if "loss" not in row:  # a validation row
            continue
        span = row["step"] - previous
        previous = row["step"]
        for key in ("contrast_zero", "rows", "pairs", "classes", "retrieval_top1", "grad_ce", "grad_contrast",
                    "grad_cos", "grad_ratio"):
            if key in row:
                weighted[key] = weighted.get(key, 0.0) + row[key] * span
                steps[key] = steps.get(key, 0) + span
    summary = {("contrast_zero_fraction" if k == "contrast_zero" else k): v / steps[k] for k, v in weighted.items()}
    warnings = []
    zero = summary.get("contrast_zero_fraction")
    if zero is not None and zero > ZERO_WARNING:
        warnings.append(f"the contrastive terms were exactly 0 on {100 * zero:.0f}% of steps "
                        f"(batches with fewer than two qualifying classes have no negatives): "
                        f"a larger projector map (model.projector.stage, bigger crops) or batch admits more classes")
    summary["warnings"] = warnings
    trajectory = [[row["step"], row["test_miou"]] for row in rows if "test_miou" in row]
    if trajectory:
        summary["test_miou"] = trajectory
    return summary


class RankMeanLog:
    """A RunLog whose rows are means over the ranks of the per-rank window means.

    Loss tensors are summed on the device every step; only on a logging step are the window sums
    reduced across the ranks (one collective, one host sync per window, as in a single process) and
    handed to the RunLog as a single step. In one process the rows equal the RunLog's own.
    """

    def __init__(self, log: RunLog):
        self.log = log
        self._sums: Dict[str, torch.Tensor] = {}
        self._counts: Dict[str, int] = {}
        self._images = 0

    def step(self, step: int, terms: Dict[str, torch.Tensor], lr: float, images: int, force: bool = False) -> Optional[dict]:
        accumulate(self._sums, self._counts, terms)
        self._images += images
        if step % self.log.every and not force:
            return None
        # float64 so that sum / count rounds exactly as RunLog's float(sum) / count would.
        # Every rank has the same keys on the same steps, so the collective sees the same dict everywhere.
        means = {k: v.to(torch.float64) / self._counts[k] for k, v in distributed.all_reduce_mean(self._sums).items()}
        images, self._sums, self._counts, self._images = self._images, {}, {}, 0
        return self.log.step(step, means, lr, images, force=True)

    def write(self, step: int, row: dict) -> None:
        self.log.write(step, row)

    def close(self) -> None:
        self.log.close()
