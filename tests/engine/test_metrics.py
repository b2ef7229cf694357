import math

import numpy as np
import pytest
import torch

from smmcl.engine.metrics import confusion_matrix, segmentation_scores


def slow_scores(pred, target, k, ignore, exclude):
    """Obviously correct reference: count pixels one by one, IoU = TP / (TP + FP + FN)."""
    iou = []
    for c in range(k):
        tp = fp = fn = 0
        for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
            if t == ignore:
                continue
            tp += p == c and t == c
            fp += p == c and t != c
            fn += p != c and t == c
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else float("nan"))
    kept = [v for c, v in enumerate(iou) if c not in exclude and not math.isnan(v)]
    valid = [(p, t) for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()) if t != ignore]
    # fwIoU: each kept class weighted by its share of the kept classes' ground-truth pixels.
    gt_count = {c: sum(t == c for _, t in valid) for c in range(k) if c not in exclude}
    fwiou = sum(n * iou[c] for c, n in gt_count.items() if n) / sum(gt_count.values())
    return iou, sum(kept) / len(kept), sum(p == t for p, t in valid) / len(valid), fwiou


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_slow_reference(seed):
    g = torch.Generator().manual_seed(seed)
    k = 6
    target = torch.randint(0, k, (3, 17, 13), generator=g)
    target[target == 5] = 4  # class 5 never in ground truth
    target[:, :3] = 255
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.6, target.clamp(max=k - 1), torch.randint(0, k, target.shape, generator=g))
    pred[pred == 3] = 2  # class 3 never predicted
    conf = confusion_matrix(pred, target, k, 255)
    assert int(conf.sum()) == int((target != 255).sum())
    got = segmentation_scores(conf, exclude=[0])
    iou, miou, acc, fwiou = slow_scores(pred.numpy(), target.numpy(), k, 255, {0})
    np.testing.assert_allclose(got["iou"], iou, rtol=1e-12, equal_nan=True)
    assert got["miou"] == pytest.approx(miou, abs=1e-12)
    assert got["pixel_acc"] == pytest.approx(acc, abs=1e-12)
    assert got["fwiou"] == pytest.approx(fwiou, abs=1e-12)
    assert got["iou"][3] == 0.0  # in ground truth, never predicted


def test_class_absent_everywhere_is_nan_and_left_out():
    conf = np.array([[5, 0, 0], [1, 3, 0], [0, 0, 0]])
    s = segmentation_scores(conf)
    assert math.isnan(s["iou"][2])
    assert s["miou"] == pytest.approx((5 / 6 + 3 / 4) / 2)


def test_exclusion_changes_only_the_headline():
    conf = np.array([[1, 9], [0, 10]])
    s = segmentation_scores(conf, exclude=[0])
    assert s["miou"] == pytest.approx(10 / 19)
    assert s["miou_all"] == pytest.approx((0.1 + 10 / 19) / 2)


def test_fwiou_by_hand_with_exclusion_and_absent_class():
    # gt counts 6, 4, 0 (class 2 absent everywhere: IoU NaN); IoU0 = 5 / (6 + 6 - 5), IoU1 = 3 / (4 + 4 - 3).
    conf = np.array([[5, 1, 0], [1, 3, 0], [0, 0, 0]])
    s = segmentation_scores(conf)
    assert math.isnan(s["iou"][2])
    assert s["fwiou"] == pytest.approx(0.6 * 5 / 7 + 0.4 * 3 / 5)
    # Excluding class 0 renormalises the frequencies over class 1 alone.
    assert segmentation_scores(conf, exclude=[0])["fwiou"] == pytest.approx(3 / 5)


def test_fwiou_nan_when_no_kept_ground_truth():
    conf = np.array([[4, 1], [0, 0]])
    assert math.isnan(segmentation_scores(conf, exclude=[0])["fwiou"])
