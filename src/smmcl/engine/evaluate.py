"""Whole-image evaluation over a split: one confusion matrix for the whole split, then the scores."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from smmcl.engine.metrics import confusion_matrix, segmentation_scores


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: Dataset,
    num_classes: int,
    batch_size: int = 4,
    ignore_index: int = 255,
    exclude: Sequence[int] = (),
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Scores of `model` on every image of `dataset` (see `segmentation_scores`), plus the confusion matrix."""
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    model.eval()
    for batch in tqdm(loader, desc="eval", unit="batch", disable=not progress, leave=False):
        logits = model(batch["rgb"].to(device), batch["aux"].to(device))
        conf += confusion_matrix(logits.argmax(1), batch["label"].to(device), num_classes, ignore_index)
    scores = segmentation_scores(conf, exclude)
    scores["confusion"] = conf.cpu().tolist()
    scores["num_images"] = len(dataset)  # type: ignore[arg-type]
    return scores


def _pct(x: float) -> str:
    return "   -  " if x is None or math.isnan(x) else f"{100 * x:6.2f}"


def format_scores(class_names: Sequence[str], runs: Mapping[str, dict]) -> str:
    """A terminal table: per-class IoU (%) with one column per run, then the summary rows."""
    cols = list(runs)
    width = max([len(n) for n in class_names] + [12])
    head = f"{'class':<{width}} " + " ".join(f"{c:>10}" for c in cols)
    lines = [head, "-" * len(head)]
    excluded = set(next(iter(runs.values()))["excluded"]) if runs else set()
    for k, name in enumerate(class_names):
        mark = " (excluded)" if k in excluded else ""
        lines.append(f"{name:<{width}} " + " ".join(f"{_pct(runs[c]['iou'][k]):>10}" for c in cols) + mark)
    lines.append("-" * len(head))
    for key, label in (("miou", "mIoU"), ("miou_all", "mIoU (all)"), ("mean_acc", "mean acc"), ("pixel_acc", "pixel acc")):
        if key == "miou_all" and not excluded:
            continue
        lines.append(f"{label:<{width}} " + " ".join(f"{_pct(runs[c][key]):>10}" for c in cols))
    return "\n".join(lines)
