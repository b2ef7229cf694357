"""Miniature datasets written in each release's exact on-disk layout (names, bit depths, channels, label coding).

Content is easy to learn on purpose: every image is a 2 x 2 grid of blocks, each block one class with
its own dim colour and auxiliary value, so a tiny model can overfit a miniature and every evaluation
mode should then score it almost perfectly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image

SIZE = (64, 96)  # H x W, multiples of 32 so block edges fall on the coarsest feature grid


def _blocks(rng: np.random.Generator, classes: Sequence[int], size=SIZE) -> np.ndarray:
    h, w = size
    label = np.zeros(size, np.int64)
    chosen = rng.permutation(np.asarray(classes))[:4]
    for k, c in enumerate(chosen):
        r, q = divmod(k, 2)
        label[r * h // 2 : (r + 1) * h // 2, q * w // 2 : (q + 1) * w // 2] = c
    return label


def _class_colour(c: int) -> np.ndarray:
    g = np.random.default_rng(1000 + c)
    return g.integers(10, 70, size=3)  # dark, as captured in low light


def _render(label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dim RGB uint8 and an auxiliary float map in [0, 1] from class ids (plus noise)."""
    rgb = np.stack([_class_colour(int(c)) for c in range(int(label.max()) + 1)])[label].astype(np.float64)
    rgb += rng.normal(0, 2, rgb.shape)
    aux = ((label * 37) % 97) / 97.0 * 0.8 + 0.1 + rng.normal(0, 0.01, label.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), np.clip(aux, 0, 1)


def _save(path: Path, array: np.ndarray, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, **kwargs)


def _write_list(path: Path, lines: List[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def make_llrgbd(root: Path, n_train: int = 6, n_test: int = 4, seed: int = 0) -> Dict[str, List[str]]:
    """train/{rgb,depth,label}/NNNN.png + train/train.txt and the same for test; 8-bit depth; labels 0..13."""
    rng = np.random.default_rng(seed)
    out: Dict[str, List[str]] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        names = [f"{k:04d}" for k in range(n)]
        for name in names:
            label = _blocks(rng, [0, 3, 5, 9, 12, 13])
            rgb, aux = _render(label, rng)
            _save(root / split / "rgb" / f"{name}.png", rgb)
            _save(root / split / "depth" / f"{name}.png", (aux * 255).astype(np.uint8))
            _save(root / split / "label" / f"{name}.png", label.astype(np.uint8))
        _write_list(root / split / f"{split}.txt", names)
        out[split] = names
    return out


def make_mfnet(root: Path, n_day: int = 4, n_night: int = 4, packed: bool = True, seed: int = 1) -> Dict[str, List[str]]:
    """MFNet as released: images/<00001D|00002N>.png 4-channel (R, G, B, thermal), labels/ 0..8, and the
    lists train/val/test/test_day/test_night; `packed=False` writes RGB/, Thermal/, Label/ instead."""
    rng = np.random.default_rng(seed)
    names = [f"{k:05d}{'D' if k <= n_day else 'N'}" for k in range(1, n_day + n_night + 1)]
    thermal = {}
    for name in names:
        label = _blocks(rng, [0, 1, 2, 3, 6])
        rgb, aux = _render(label, rng)
        if name.endswith("N"):
            rgb = (rgb // 3).astype(np.uint8)  # night captures are darker still
        t = (aux * 255).astype(np.uint8)
        thermal[name] = t
        if packed:
            _save(root / "images" / f"{name}.png", np.dstack([rgb, t]))
            _save(root / "labels" / f"{name}.png", label.astype(np.uint8))
        else:
            _save(root / "RGB" / f"{name}.png", rgb)
            _save(root / "Thermal" / f"{name}.png", t)
            _save(root / "Label" / f"{name}.png", label.astype(np.uint8))
    # The miniature trains and tests on the same images (overfitting is the point).
    _write_list(root / "train.txt", names)
    _write_list(root / "val.txt", names[:2])
    _write_list(root / "test.txt", names)
    if packed:
        _write_list(root / "test_day.txt", [n for n in names if n.endswith("D")])
        _write_list(root / "test_night.txt", [n for n in names if n.endswith("N")])
    return {"names": names, "thermal": thermal}


def make_nyudv2(root: Path, n: int = 6, seed: int = 2) -> Dict[str, List[str]]:
    """NYUDv2 as prepared by CMX: RGB/<n>.jpg, HHA/<n>.jpg, Label/<n>.png storing 1..40 with 0 = unlabeled;
    list lines are paths (`RGB/3.jpg Label/3.png`). Class ids 0 and 39 (stored 1 and 40) are used."""
    rng = np.random.default_rng(seed)
    names = [str(k) for k in range(1, n + 1)]
    for name in names:
        label = _blocks(rng, [0, 4, 21, 39])
        rgb, aux = _render(label, rng)
        hha = np.dstack([aux, 1 - aux, (aux * 3) % 1]) * 255
        stored = (label + 1).astype(np.uint8)
        stored[:4, :] = 0  # an unlabeled band: must become the ignore label
        _save(root / "RGB" / f"{name}.jpg", rgb, quality=95)
        _save(root / "HHA" / f"{name}.jpg", hha.astype(np.uint8), quality=95)
        _save(root / "Label" / f"{name}.png", stored)
    _write_list(root / "train.txt", [f"RGB/{n}.jpg Label/{n}.png" for n in names])
    _write_list(root / "test.txt", [f"RGB/{n}.jpg Label/{n}.png" for n in names])
    return {"names": names}


def make_generic(root: Path, n: int = 6, seed: int = 3, num_classes: int = 5) -> Dict[str, List[str]]:
    """The generic layout: RGB/, Depth/ (16-bit millimetres), Label/ PNGs and train.txt / test.txt."""
    rng = np.random.default_rng(seed)
    names = [f"scene_{k}" for k in range(n)]
    for name in names:
        label = _blocks(rng, list(range(num_classes)))
        rgb, aux = _render(label, rng)
        _save(root / "RGB" / f"{name}.png", rgb)
        _save(root / "Depth" / f"{name}.png", (aux * 10000).astype(np.uint16))
        _save(root / "Label" / f"{name}.png", label.astype(np.uint8))
    _write_list(root / "train.txt", names)
    _write_list(root / "test.txt", names)
    return {"names": names}
