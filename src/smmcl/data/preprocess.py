"""The preprocessing contract of a trained model: raw camera frames -> the normalised tensors it was trained on.

One object knows it all (mean, std, `aux_max`, channel order), so training-time evaluation, `predict`, the
frame-stream `Predictor` and an exported ONNX file (which carries it as metadata) cannot disagree:

    rgb  H x W x 3 uint8, RGB order (BGR frames are flipped first)  ->  (rgb / 255 - mean) / std
    aux  H x W or H x W x C, any dtype; NaN / inf read as 0 ("no measurement"); single channel repeated
         to 3; / aux_max (None: the dtype's maximum for integers, 1 for floats)  ->  (aux - mean) / std

Both come out as 3 x H x W float32, exactly (bit for bit) as the evaluation dataset prepares them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from smmcl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, finite_aux, normalize, to_tensor_aux, to_tensor_rgb


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB and auxiliary frames become model inputs; see the module docstring."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # Raw auxiliary value mapped to 1.0 (e.g. 10000 for depth in mm up to 10 m); None: the dtype maximum.
    aux_max: Optional[float] = None

    @classmethod
    def from_data_config(cls, data) -> "Preprocessing":
        """The contract of a `DataConfig` (smmcl trains with ImageNet statistics on both modalities)."""
        return cls(aux_max=None if data.aux_max is None else float(data.aux_max))

    def rgb(self, frame: np.ndarray, bgr: bool = False) -> torch.Tensor:
        """H x W x 3 uint8 (RGB, or BGR with `bgr`) -> 3 x H x W normalised float32."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"an RGB frame must be an H x W x 3 uint8 array, got {got}")
        return normalize(to_tensor_rgb(frame[..., ::-1] if bgr else frame), self.mean, self.std)

    def aux(self, frame: np.ndarray, source: object = "the auxiliary image") -> torch.Tensor:
        """H x W [x C] auxiliary frame of any dtype -> 3 x H x W normalised float32 (non-finite values read as 0)."""
        frame = np.asarray(frame)
        if frame.ndim not in (2, 3) or frame.size == 0:
            raise ValueError(f"an auxiliary frame must be an H x W or H x W x C array, got shape {frame.shape}")
        return normalize(to_tensor_aux(finite_aux(frame, source), self.aux_max), self.mean, self.std)

    def pair(self, rgb: np.ndarray, aux: np.ndarray, bgr: bool = False,
             source: object = "the auxiliary image") -> tuple[torch.Tensor, torch.Tensor]:
        """Both frames of one observation, sizes checked; 3 x H x W each."""
        if np.shape(aux)[:2] != np.shape(rgb)[:2]:
            raise ValueError(f"aux is {np.shape(aux)[:2]} but rgb is {np.shape(rgb)[:2]} (H x W); "
                             f"the two frames of an observation must be registered to one size")
        return self.rgb(rgb, bgr), self.aux(aux, source)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "rgb_order": "RGB", "rgb_scale": 255.0, "layout": "NCHW",
                           "aux_channels": "1 channel repeated to 3, or the first 3"}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessing":
        raw = json.loads(text)
        return cls(tuple(raw["mean"]), tuple(raw["std"]), raw.get("aux_max"))  # type: ignore[arg-type]


def stack_into(buffer: Optional[torch.Tensor], tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """`torch.stack(tensors)`, written into `buffer` when it has the right shape (a frame stream reuses it)."""
    shape = (len(tensors), *tensors[0].shape)
    if buffer is None or tuple(buffer.shape) != shape:
        buffer = torch.empty(shape, dtype=torch.float32)
    return torch.stack(list(tensors), out=buffer)
