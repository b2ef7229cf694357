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
    return iou, sum(kept) / len(kept), sum(p == t for p, t in valid) / len(valid)


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
    iou, miou, acc = slow_scores(pred.numpy(), target.numpy(), k, 255, {0})
    np.testing.assert_allclose(got["iou"], iou, rtol=1e-12, equal_nan=True)
    assert got["miou"] == pytest.approx(miou, abs=1e-12)
    assert got["pixel_acc"] == pytest.approx(acc, abs=1e-12)
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
