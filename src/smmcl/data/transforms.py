"""Normalisation and the paper's augmentation (Sec. 4.1), applied identically to RGB, auxiliary and label.

Every geometric operation takes the three tensors together, so they can never drift apart. The random
choices come from a NumPy generator handed in by the caller, seeded per (run seed, epoch, sample):
augmentation is then independent of worker count and of resuming.

PyTorch is imported where a tensor is made, not at import: `smmcl.data.modality` and `smmcl.data.preprocess` take
the NumPy rules of this module (`finite_aux`, `aux_full_scale`, the statistics), and they serve the runtime that
has no PyTorch (`smmcl.Predictor` on an ONNX file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import warnings

import numpy as np

from smmcl.errors import NonFiniteWarning

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor_rgb(rgb: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]."""
    import torch

    # A frame decoded from a buffer (a ROS message) is read-only: copied then, as torch needs a writable array.
    return torch.from_numpy(np.require(rgb, requirements=("C", "W"))).permute(2, 0, 1).float().div_(255.0)


def finite_aux(aux: np.ndarray, source: object) -> np.ndarray:
    """`aux` with NaN and infinite values set to 0, the value a depth sensor writes for "no return".

    Float depth (TIFF, EXR, .npy from stereo or ToF pipelines) marks invalid pixels as NaN or inf; left
    in, one of them spreads through every convolution and the whole prediction becomes one class.
    A `NonFiniteWarning` names `source` and counts them.
    """
    if not np.issubdtype(aux.dtype, np.floating):
        return aux
    bad = ~np.isfinite(aux)
    if not bad.any():
        return aux
    warnings.warn(f"{source}: {int(bad.sum())} non-finite auxiliary values (NaN / inf) read as no measurement (0)",
                  NonFiniteWarning, stacklevel=2)
    return np.where(bad, 0, aux).astype(aux.dtype, copy=False)


def aux_full_scale(dtype: np.dtype, aux_max: float | None) -> float:
    """The raw auxiliary value mapped to 1.0: `aux_max`, else the integer type's maximum, else 1.0 (float files)."""
    if aux_max is None:
        return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
    return float(aux_max)


def to_tensor_aux(aux: np.ndarray, aux_max: float | None) -> torch.Tensor:
    """Auxiliary image -> 3 x H x W float, single-channel inputs repeated to 3 channels.

    `aux_max` is the raw value mapped to 1.0 (e.g. 10000 for depth in millimetres up to 10 m);
    None takes the maximum of the file's integer type, so 8-bit thermal or HHA maps to [0, 1].
    """
    import torch

    t = torch.from_numpy(np.require(aux.astype(np.float32, copy=False), requirements="W")) / aux_full_scale(aux.dtype, aux_max)
    if t.ndim == 2:
        t = t.unsqueeze(0).expand(3, -1, -1)
    else:
        t = t.permute(2, 0, 1)[:3]
        if t.shape[0] == 1:
            t = t.expand(3, -1, -1)
    return t.contiguous()


def normalize(img: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    import torch

    m = torch.tensor(mean, dtype=img.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=img.dtype).view(-1, 1, 1)
    return (img - m) / s


def resize_triplet(rgb: torch.Tensor, aux: torch.Tensor, label: torch.Tensor, size: tuple[int, int]):
    """Bilinear for the images, nearest for the label (labels must never be interpolated)."""
    import torch.nn.functional as F

    rgb = F.interpolate(rgb[None], size=size, mode="bilinear", align_corners=False)[0]
    aux = F.interpolate(aux[None], size=size, mode="bilinear", align_corners=False)[0]
    label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
    return rgb, aux, label


def hflip_triplet(rgb: torch.Tensor, aux: torch.Tensor, label: torch.Tensor):
    return rgb.flip(-1), aux.flip(-1), label.flip(-1)


def crop_triplet(rgb, aux, label, crop: tuple[int, int], rng: np.random.Generator, ignore_index: int):
    """Random crop to `crop`, padding images with 0 and the label with `ignore_index` where smaller."""
    import torch.nn.functional as F

    ch, cw = crop
    h, w = label.shape
    pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
    if pad_h or pad_w:
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h), value=0.0)
        aux = F.pad(aux, (0, pad_w, 0, pad_h), value=0.0)
        label = F.pad(label, (0, pad_w, 0, pad_h), value=ignore_index)
        h, w = label.shape
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    sl = (slice(top, top + ch), slice(left, left + cw))
    return rgb[(slice(None), *sl)], aux[(slice(None), *sl)], label[sl]


@dataclass
class TrainAugment:
    """Random horizontal flip, random scale from a fixed set, random crop (paper Sec. 4.1)."""

    crop_size: tuple[int, int]
    scales: Sequence[float]
    hflip: bool = True
    ignore_index: int = 255

    def __call__(self, rgb, aux, label, rng: np.random.Generator):
        if self.hflip and rng.random() < 0.5:
            rgb, aux, label = hflip_triplet(rgb, aux, label)
        scale = float(self.scales[int(rng.integers(len(self.scales)))]) if self.scales else 1.0
        if scale != 1.0:
            h, w = label.shape
            rgb, aux, label = resize_triplet(rgb, aux, label, (max(1, round(h * scale)), max(1, round(w * scale))))
        rgb, aux = normalize(rgb), normalize(aux)
        return crop_triplet(rgb, aux, label, self.crop_size, rng, self.ignore_index)


def eval_transform(rgb, aux, label):
    return normalize(rgb), normalize(aux), label
