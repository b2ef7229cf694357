"""RGB-X folder dataset in the layout of the released datasets: RGB/, an auxiliary folder, Label/, name lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from smmcl.config import DataConfig
from smmcl.data.io import read_image
from smmcl.data.transforms import TrainAugment, eval_transform, to_tensor_aux, to_tensor_rgb
from smmcl.errors import DatasetError

SPLIT_LISTS = {"train": "train_list", "test": "test_list"}


def split_list_path(cfg: DataConfig, split: str) -> Path:
    """The name list of a split: the configured train/test lists, or `<split>.txt` for any other name."""
    name = getattr(cfg, SPLIT_LISTS[split]) if split in SPLIT_LISTS else f"{split}.txt"
    return Path(cfg.root) / name


def read_name_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"split list not found: {path} (expected one sample name per line)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"split list {path} is empty")
    return [n.rsplit(".", 1)[0] if "." in Path(n).name else n for n in names]


class RGBXDataset(Dataset):
    """Samples are dicts: `rgb`, `aux` (3 x H x W, ImageNet-normalised), `label` (H x W int64), `name`.

    In training mode an index is a pair `(i, seed)`; the seed drives this sample's augmentation, so the
    same (epoch, position) always gives the same crop however many workers load it.
    """

    def __init__(self, cfg: DataConfig, split: str, num_classes: int, train: bool = False):
        self.cfg = cfg
        self.split = split
        self.num_classes = num_classes
        self.root = Path(cfg.root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        for sub in (cfg.rgb_dir, cfg.aux_dir, cfg.label_dir):
            if not (self.root / sub).is_dir():
                raise DatasetError(f"dataset folder {self.root} has no '{sub}' folder (expected RGB, auxiliary and label folders)")
        self.names = read_name_list(split_list_path(cfg, split))
        self.augment = (
            TrainAugment(tuple(cfg.crop_size), tuple(cfg.scales), cfg.hflip, cfg.ignore_index) if train else None
        )
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def paths(self, i: int) -> tuple[Path, Path, Path]:
        n, c = self.names[i], self.cfg
        return (
            self.root / c.rgb_dir / f"{n}{c.rgb_ext}",
            self.root / c.aux_dir / f"{n}{c.aux_ext}",
            self.root / c.label_dir / f"{n}{c.label_ext}",
        )

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decoded, checked arrays of sample i: RGB H x W x 3 uint8, auxiliary, label H x W."""
        if i in self._cache:
            return self._cache[i]
        rgb_p, aux_p, lbl_p = self.paths(i)
        rgb, aux, label = read_image(rgb_p), read_image(aux_p), read_image(lbl_p)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        rgb = rgb[..., :3]
        if label.ndim != 2:
            raise DatasetError(f"label {lbl_p} has shape {label.shape}; expected a single-channel H x W image")
        for path, arr in ((aux_p, aux), (lbl_p, label)):
            if arr.shape[:2] != rgb.shape[:2]:
                raise DatasetError(f"size mismatch: {path} is {arr.shape[1]}x{arr.shape[0]} but {rgb_p} is {rgb.shape[1]}x{rgb.shape[0]}")
        bad = (label >= self.num_classes) & (label != self.cfg.ignore_index)
        if bad.any():
            raise DatasetError(
                f"label {lbl_p} has value {int(label[bad].max())}; expected 0..{self.num_classes - 1} "
                f"or {self.cfg.ignore_index} (ignore)"
            )
        out = (rgb, aux, label.astype(np.int64))
        if self.cfg.cache:
            self._cache[i] = out
        return out

    def __getitem__(self, index: Any) -> dict[str, Any]:
        i, seed = index if isinstance(index, tuple) else (index, None)
        rgb_np, aux_np, label_np = self.load_raw(int(i))
        rgb = to_tensor_rgb(rgb_np)
        aux = to_tensor_aux(aux_np, self.cfg.aux_max)
        label = torch.from_numpy(label_np)
        if self.augment is not None:
            rng = np.random.default_rng(seed)
            rgb, aux, label = self.augment(rgb, aux, label, rng)
        else:
            rgb, aux, label = eval_transform(rgb, aux, label)
        return {"rgb": rgb, "aux": aux, "label": label, "name": self.names[int(i)]}
