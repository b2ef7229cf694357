"""Evaluation over a split under an inference protocol: one confusion matrix for the whole split, then the scores.

`evaluate(model, cfg, split)` is what every caller uses (training's monitoring, `smmcl eval`, studies, the
report, the demo): the protocol, batch, exclusions and split come from the config. `score_dataset` is the loop
under it, for a dataset and a protocol given directly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from typing import Iterator, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from smmcl.config import Config, as_config
from smmcl.data.dataset import RGBXDataset, shared_with_train
from smmcl.engine.inference import InferenceProtocol
from smmcl.engine.metrics import confusion_matrix, segmentation_scores
from smmcl.engine.predict import model_device
from smmcl.errors import DatasetError, HeldOutWarning
from smmcl.progress import track


def _as_list(samples: list) -> list:
    """Collate that keeps samples apart, so images of different sizes can share a loader batch."""
    return samples


def _stacks(samples: list, max_batch: int) -> Iterator[list]:
    """Consecutive runs of same-size samples, at most `max_batch` long, in dataset order."""
    run: list = []
    for sample in samples:
        if run and (len(run) == max_batch or sample["rgb"].shape != run[0]["rgb"].shape):
            yield run
            run = []
        run.append(sample)
    if run:
        yield run


@torch.no_grad()
def score_dataset(
    model: torch.nn.Module,
    dataset: Dataset,
    num_classes: int,
    batch_size: int = 4,
    ignore_index: int = 255,
    exclude: Sequence[int] = (),
    num_workers: int = 0,
    progress: bool = True,
    protocol: InferenceProtocol | None = None,
) -> dict:
    """Scores of `model` on every image of `dataset` (see `segmentation_scores`), plus the confusion matrix.

    `protocol` decides how class probabilities are computed (None: whole image, single scale, no flip);
    their argmax feeds the confusion matrix. Whole-image passes stack up to `batch_size` same-size images;
    sliding windows take one image at a time, which bounds memory by the crop size.
    """
    protocol = protocol or InferenceProtocol()
    device = model_device(model)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_as_list)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    model.eval()
    for samples in track(loader, desc="eval", unit="batch", enabled=progress):
        for run in _stacks(samples, batch_size if protocol.batchable else 1):
            rgb = torch.stack([s["rgb"] for s in run]).to(device)
            aux = torch.stack([s["aux"] for s in run]).to(device)
            label = torch.stack([torch.as_tensor(s["label"]) for s in run]).to(device)
            pred = protocol.apply(model, rgb, aux).argmax(1)
            conf += confusion_matrix(pred, label, num_classes, ignore_index)
    if int(conf.sum()) == 0:
        # Every score would be NaN (0/0): say so rather than print "mIoU nan%" as if it were a result.
        where = f"split {dataset.split!r} of {dataset.root}" if isinstance(dataset, RGBXDataset) else "the dataset"
        raise DatasetError(f"{where}: no pixel of its {len(dataset)} label images holds a class id; every one is the "  # type: ignore[arg-type]
                           f"ignore index {ignore_index}, so there is nothing to score (unlabelled images, or "
                           f"data.label_shift / data.ignore_index set wrongly?)")
    scores = segmentation_scores(conf, exclude)
    if scores["miou"] != scores["miou"]:  # NaN: no class scored is in the labels or the predictions (trial 18 D027:
        # "mIoU -" printed and NaN written into the scores file, which strict JSON readers refuse)
        kept = [k for k in range(num_classes) if k not in set(exclude)]
        raise DatasetError(f"none of the classes scored ({', '.join(map(str, kept))}; eval.exclude_classes="
                           f"{list(exclude)}) has a labelled or predicted pixel in the {len(dataset)} images, so there "  # type: ignore[arg-type]
                           f"is no mIoU: score classes the split holds (fewer in eval.exclude_classes)")
    scores["confusion"] = conf.cpu().tolist()
    scores["num_images"] = len(dataset)  # type: ignore[arg-type]
    scores["protocol"] = asdict(protocol)
    return scores


def evaluate(model: torch.nn.Module, config: Config, split: str | None = None, subset: str | None = None, *,
             dataset: Dataset | None = None, progress: bool = False) -> dict:
    """Scores of `model` on `split` of `config.data` (default `eval.split`, with `eval.subset` unless `subset` is
    given) under the config's eval protocol (`eval.mode`, `scales`, `flip`), batch and excluded classes; the
    scores also name the split, subset and protocol. `dataset`: score this one instead (e.g. another run's
    split, as the report compares runs on the reference's), still under `config`'s protocol."""
    config = as_config(config)
    if split is None:
        split = config.eval.split
        subset = config.eval.subset if subset is None else subset
    if dataset is None:
        dataset = RGBXDataset(config.data, split, config.model.num_classes, train=False, subset=subset)
        shared = shared_with_train(config.data, split, dataset.names)
        if shared:
            warnings.warn(f"{len(shared)} of the {len(dataset.names)} {split} images scored are in the train list too "
                          f"(e.g. {shared[0]!r}): their scores are not of held-out images", HeldOutWarning, stacklevel=2)
    protocol = InferenceProtocol.from_config(config)
    ignore_index = getattr(getattr(dataset, "cfg", None), "ignore_index", config.data.ignore_index)
    scores = score_dataset(model, dataset, config.model.num_classes, batch_size=config.eval.batch_size,
                           ignore_index=ignore_index, exclude=config.eval.exclude_classes, progress=progress,
                           protocol=protocol)
    scores["split"], scores["subset"] = split, subset
    scores["protocol_text"] = protocol.describe()
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
    summary = (("miou", "mIoU"), ("miou_all", "mIoU (all)"), ("fwiou", "fwIoU"), ("mean_acc", "mean acc"),
               ("pixel_acc", "pixel acc"))
    for key, label in summary:
        if key == "miou_all" and not excluded:
            continue  # without exclusions it equals mIoU
        # .get: scores saved before a key existed (e.g. fwIoU) still print, with a dash.
        lines.append(f"{label:<{width}} " + " ".join(f"{_pct(runs[c].get(key)):>10}" for c in cols))
    return "\n".join(lines)
