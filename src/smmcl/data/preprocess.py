"""The preprocessing contract of a trained model: raw camera frames -> the normalised tensors it was trained on.

One object knows it all (mean, std, `aux_max`, channel order), so training-time evaluation, `predict`, the
frame-stream `Predictor` and an exported ONNX file (which carries it as metadata) cannot disagree:

    rgb  H x W x 3 uint8, RGB order (BGR frames are flipped first)  ->  (rgb / 255 - mean) / std
    aux  H x W or H x W x C, integer or float; NaN / inf read as 0 ("no measurement"); single channel
         repeated to 3; / aux_max (None: the dtype's maximum for integers, 1 for floats)  ->  (aux - mean) / std

Both come out as 3 x H x W float32, exactly (bit for bit) as the evaluation dataset prepares them. Frames pass
the dataset's own rules first (`smmcl.data.modality`): an RGB frame that is not 8-bit colour is refused (RGBA and
8-bit grey are read as RGB); an auxiliary frame whose values do not fit `aux_max` (metres for a model trained on
millimetres) gives an `AuxUnitsWarning` naming the likely cause. `aux_scale` multiplies the auxiliary values
first: a camera's metres reach a millimetre model with `aux_scale=1000`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from smmcl.data.modality import check_aux, check_rgb
from smmcl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, aux_full_scale, normalize, to_tensor_aux, to_tensor_rgb
from smmcl.errors import AuxUnitsWarning


def warn_units(message: str) -> None:
    """How a live frame's units mismatch is told by default: an `AuxUnitsWarning`."""
    warnings.warn(message, AuxUnitsWarning, stacklevel=2)


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

    def rgb(self, frame: np.ndarray, bgr: bool = False, source: object = "the RGB frame") -> torch.Tensor:
        """H x W x 3 uint8 (RGB, or BGR with `bgr`; RGBA and 8-bit grey are read as RGB) -> 3 x H x W normalised
        float32; any other frame is refused (`smmcl.data.modality.check_rgb`)."""
        frame = check_rgb(frame, source)
        return normalize(to_tensor_rgb(frame[..., ::-1] if bgr else frame), self.mean, self.std)

    def aux(self, frame: np.ndarray, source: object = "the auxiliary image", aux_scale: float = 1.0,
            on_units: Callable[[str], None] = warn_units) -> torch.Tensor:
        """H x W [x C] integer or float auxiliary frame -> 3 x H x W normalised float32 (non-finite values read as
        0). Its values times `aux_scale` are checked against `aux_max`; a mismatch goes to `on_units`."""
        frame = check_aux(np.asarray(frame), source, self.aux_max, aux_scale, on_units, for_model=True)
        # aux_scale 1 divides by exactly what the evaluation dataset divides by: the two stay bit for bit equal.
        full = self.aux_max if aux_scale == 1 else aux_full_scale(frame.dtype, self.aux_max) / aux_scale
        return normalize(to_tensor_aux(frame, full), self.mean, self.std)

    def pair(self, rgb: np.ndarray, aux: np.ndarray, bgr: bool = False, source: object = "the auxiliary image",
             aux_scale: float = 1.0, on_units: Callable[[str], None] = warn_units,
             rgb_source: object = "the RGB frame") -> tuple[torch.Tensor, torch.Tensor]:
        """Both frames of one observation, sizes checked; 3 x H x W each."""
        if np.shape(aux)[:2] != np.shape(rgb)[:2]:
            raise ValueError(f"aux is {np.shape(aux)[:2]} but rgb is {np.shape(rgb)[:2]} (H x W); "
                             f"the two frames of an observation must be registered to one size")
        return self.rgb(rgb, bgr, rgb_source), self.aux(aux, source, aux_scale, on_units)

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
