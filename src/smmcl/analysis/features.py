"""Feature-space analysis of the paper's Fig. 8: final encoder features F_vis^4, F_aux^4 on held-out images.

The picture is a t-SNE map per model and modality (scikit-learn's t-SNE, van der Maaten and Hinton 2008);
the measurements, since a picture is not one, are per modality:
- k-NN class accuracy: each point's class predicted from its k nearest neighbours (cosine) among the
  points of *other* images (grouped folds), so neighbouring pixels of one image cannot vouch for each other;
- silhouette score (cosine) of the class clusters, in [-1, 1].
Both run on the features themselves, not on the 2-D map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from smmcl.errors import DatasetError
from smmcl.losses.sampling import downscale_labels
from smmcl.outputs import writing


@dataclass
class FeatureSet:
    """Pixels of held-out images at the feature resolution: per modality an N x C array, their labels and images."""

    vis: np.ndarray
    aux: np.ndarray
    labels: np.ndarray
    images: np.ndarray


def choose_pixels(labels: Sequence[np.ndarray], keep: Sequence[int], per_class: int, seed: int) -> List[np.ndarray]:
    """Up to `per_class` pixels of each kept class over all label maps, drawn uniformly with `seed`;
    returns, per map, the flat indices chosen in it. Depends on the labels alone, so every model
    compared is measured on the same pixels."""
    rng = np.random.default_rng(seed)
    owner = np.concatenate([np.full(lab.size, i) for i, lab in enumerate(labels)])
    flat = np.concatenate([lab.reshape(-1) for lab in labels])
    offset = np.concatenate([np.arange(lab.size) for lab in labels])
    chosen = []
    for k in keep:
        idx = np.flatnonzero(flat == k)
        if idx.size:
            chosen.append(rng.choice(idx, size=min(per_class, idx.size), replace=False))
    picked = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return [offset[picked[owner[picked] == i]] for i in range(len(labels))]


@torch.no_grad()
def collect_features(model: nn.Module, dataset, keep: Sequence[int], stage: int = 4, per_class: int = 200,
                     max_images: Optional[int] = None, seed: int = 0, ignore_index: int = 255) -> FeatureSet:
    """F_vis^stage and F_aux^stage (before that stage's cross-modal module) at class-balanced pixels."""
    model.eval()
    device = next(model.parameters()).device
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    feats, small_labels = [], []
    for i in range(count):
        sample = dataset[i]
        f_vis, f_aux = model.encoder.stage_features(sample["rgb"][None].to(device), sample["aux"][None].to(device), stage)
        label = torch.as_tensor(sample["label"])[None]
        small = downscale_labels(label, tuple(f_vis.shape[-2:]), device)[0].cpu().numpy()
        small_labels.append(np.where(small == ignore_index, -1, small))
        c = f_vis.shape[1]
        feats.append((f_vis[0].reshape(c, -1).T.float().cpu().numpy(), f_aux[0].reshape(c, -1).T.float().cpu().numpy()))
    picks = choose_pixels(small_labels, keep, per_class, seed)
    vis = np.concatenate([f[0][p] for f, p in zip(feats, picks)])
    aux = np.concatenate([f[1][p] for f, p in zip(feats, picks)])
    labels = np.concatenate([lab.reshape(-1)[p] for lab, p in zip(small_labels, picks)])
    images = np.concatenate([np.full(p.size, i) for i, p in enumerate(picks)])
    return FeatureSet(vis, aux, labels, images)


def feature_scores(x: np.ndarray, labels: np.ndarray, images: np.ndarray, k: int = 10, folds: int = 5) -> Dict[str, float]:
    """k-NN accuracy over image-grouped folds and the silhouette score, both with the cosine distance."""
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    if len(np.unique(labels)) < 2:  # trial 15 AF1: small images at stage 4 keep a pixel or two each, said bare
        raise DatasetError(f"feature scores need points of at least two classes, but the pixels sampled hold "
                           f"{'no class' if not len(labels) else 'one class'}: use more images (a larger split with --split, or "
                           f"--images), an earlier stage (--stage 2: 4x the pixels per image of stage 3, 16x of stage "
                           f"4), or classes the images hold (not only excluded ones)")
    splits = min(folds, len(np.unique(images)))
    if splits < 2:
        raise DatasetError(f"k-NN accuracy is measured on images held out from the neighbours: it needs pixels of at "
                           f"least 2 images, got {splits}; use a larger split (or more --images)")
    cv = GroupKFold(n_splits=splits)
    smallest = min(len(train) for train, _ in cv.split(x, labels, groups=images))
    if smallest < k:
        raise DatasetError(f"k-NN with k={k} needs at least {k} neighbour points in every fold, but a fold has "
                           f"{smallest}: the other images hold too few points of the classes kept (--per-class caps them, it adds none); "
                           f"use more images (a larger split with --split, or --images), or an earlier stage (--stage 2: "
                           f"more pixels per image)")
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    acc = cross_val_score(knn, x, labels, groups=images, cv=cv, error_score="raise")
    return {"knn_accuracy": float(acc.mean()), "silhouette": float(silhouette_score(x, labels, metric="cosine")),
            "points": int(len(labels)), "classes": int(len(np.unique(labels)))}


def tsne_map(x: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE embedding of the rows of `x` (cosine distances, PCA initialisation)."""
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=min(perplexity, (len(x) - 1) / 3), metric="cosine", init="pca",
                random_state=seed).fit_transform(x)


def plot_tsne(maps: Mapping[str, Mapping[str, np.ndarray]], labels: np.ndarray, scores: Mapping[str, Mapping[str, dict]],
              class_names: Sequence[str], palette: Sequence[Sequence[int]], path, stage: int = 4) -> None:
    """One row per model, one column per modality, points coloured by class, scores in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = list(maps)
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 4.6 * len(rows)), squeeze=False)
    present = sorted(np.unique(labels).tolist())
    colours = {k: np.asarray(palette[k], float) / 255 for k in present}
    for r, model in enumerate(rows):
        for c, modality in enumerate(("vis", "aux")):
            ax = axes[r][c]
            xy = maps[model][modality]
            ax.scatter(xy[:, 0], xy[:, 1], c=[colours[k] for k in labels], s=7, linewidths=0)
            s = scores[model][modality]
            name = f"$F_{{\\mathrm{{{modality}}}}}^{{{stage}}}$"
            ax.set_title(f"{model}: {name} ({'visible' if modality == 'vis' else 'auxiliary'})\n"
                         f"k-NN accuracy {100 * s['knn_accuracy']:.1f}%, silhouette {s['silhouette']:+.3f}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [Line2D([], [], marker="o", ls="", color=colours[k], label=class_names[k]) for k in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(7, len(handles)), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.06 if len(rows) > 1 else 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyze_models(models: Mapping[str, nn.Module], dataset, class_names: Sequence[str], palette: Sequence[Sequence[int]],
                   keep: Sequence[int], out, stage: int = 4, per_class: int = 200, max_images: Optional[int] = None,
                   seed: int = 0, k: int = 10, inputs: Sequence = (), overwrite: bool = False) -> dict:
    """Features, scores and t-SNE maps of every model on the same pixels; writes `out/tsne.png` and
    `out/features.json` (an earlier analysis there only with `overwrite`); returns what the JSON holds."""
    import json
    from pathlib import Path

    with writing(Path(out), "features", "--out", inputs=inputs, names=("tsne.png", "features.json"),
                 overwrite=overwrite) as out:
        maps: Dict[str, Dict[str, np.ndarray]] = {}
        scores: Dict[str, Dict[str, dict]] = {}
        labels = None
        for name, model in models.items():
            fs = collect_features(model, dataset, keep, stage, per_class, max_images, seed)
            if labels is not None and not np.array_equal(labels, fs.labels):
                raise ValueError(f"{name}: its stage-{stage} feature map has another size than the first model's")
            labels = fs.labels
            scores[name] = {m: feature_scores(getattr(fs, m), fs.labels, fs.images, k=k) for m in ("vis", "aux")}
            maps[name] = {m: tsne_map(getattr(fs, m), seed) for m in ("vis", "aux")}
        plot_tsne(maps, labels, scores, class_names, palette, out / "tsne.png", stage)
        counts = {class_names[c]: int((labels == c).sum()) for c in np.unique(labels)}
        result = {"stage": stage, "images": len(dataset) if max_images is None else min(max_images, len(dataset)),
                  "points_per_class": counts, "k": k, "metric": "cosine", "seed": seed, "scores": scores,
                  "figure": str(out / "tsne.png")}
        (out / "features.json").write_text(json.dumps(result, indent=2) + "\n")
        return result
