"""Confusion matrix and the segmentation scores derived from it: pure functions."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """K x K int64 counts, rows = ground truth, columns = prediction; ignored pixels are skipped.

    A label or a prediction outside 0..K-1 (other than the ignore label) is an error: counted, it would
    land in another class's cell.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from the label shape {tuple(target.shape)}")
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    for name, values in (("label", t), ("prediction", p)):
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            bad = int(values.max()) if int(values.max()) >= num_classes else int(values.min())
            raise ValueError(f"{name} value {bad} is outside 0..{num_classes - 1}"
                             f"{f' and is not the ignore label {ignore_index}' if name == 'label' else ''}")
    idx = t * num_classes + p
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(conf: np.ndarray | torch.Tensor, exclude: Sequence[int] = ()) -> dict:
    """Per-class IoU and accuracy, mIoU over all classes and without `exclude`, fwIoU, pixel accuracy.

    A class with no ground truth and no prediction has IoU NaN and is left out of the means, as in
    mmsegmentation; a class with predictions but no ground truth scores 0.

    `fwiou` (frequency-weighted IoU) is sum_c f_c * IoU_c over the classes not in `exclude`, with f_c the
    class's share of the ground-truth pixels of those classes only (frequencies renormalised after the
    exclusion). A class with NaN IoU has no ground truth, hence weight 0.
    """
    conf = np.asarray(conf.cpu() if isinstance(conf, torch.Tensor) else conf, dtype=np.float64)
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pr = conf.sum(axis=0)
    union = gt + pr - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    keep = np.ones(len(iou), dtype=bool)
    keep[list(exclude)] = False
    total = conf.sum()

    def mean(x: np.ndarray) -> float:
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    kept_gt = gt[keep].sum()
    # A NaN IoU comes with gt = 0, so weight 0; nan_to_num stops 0 * NaN from turning the sum into NaN.
    fwiou = float((gt[keep] * np.nan_to_num(iou[keep])).sum() / kept_gt) if kept_gt > 0 else float("nan")

    return {
        "miou": mean(iou[keep]),
        "miou_all": mean(iou),
        "fwiou": fwiou,
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_acc": mean(acc[keep]),
        "iou": iou.tolist(),
        "acc": acc.tolist(),
        "excluded": sorted(int(c) for c in exclude),
    }
