"""The preprocessing contract of a trained model: raw camera frames -> the normalised arrays it was trained on.

One object knows it all (mean, std, `aux_max`, channel order), so training-time evaluation, `predict`, the
frame-stream `Predictor` and an exported ONNX file (which carries it as metadata) cannot disagree:

    rgb  H x W x 3 uint8, RGB order (BGR frames are flipped first)  ->  (rgb / 255 - mean) / std
    aux  H x W or H x W x C, integer or float; NaN / inf read as 0 ("no measurement"); single channel
         repeated to 3; / aux_max (None: the dtype's maximum for integers, 1 for floats)  ->  (aux - mean) / std

Both come out as 3 x H x W float32, exactly (bit for bit) as the evaluation dataset prepares them
(`smmcl.data.transforms`, in PyTorch; tests/deploy/test_runtime_without_torch.py compares the two). The
computation is NumPy's (`rgb_array`, `aux_array`, `pair_arrays`), so a runtime without PyTorch (ONNX Runtime,
OpenVINO) uses it as it is; `rgb`, `aux` and `pair` hand the same arrays to PyTorch as tensors, without a copy.
Frames pass the dataset's own rules first (`smmcl.data.modality`): an RGB frame that is not 8-bit colour is refused
(RGBA and 8-bit grey are read as RGB); an auxiliary frame whose values do not fit `aux_max` (metres for a model
trained on millimetres) gives an `AuxUnitsWarning` naming the likely cause. `aux_scale` multiplies the auxiliary
values first: a camera's metres reach a millimetre model with `aux_scale=1000`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from smmcl.data.modality import check_aux, check_rgb
from smmcl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, aux_full_scale
from smmcl.errors import AuxUnitsWarning

if TYPE_CHECKING:
    import torch


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
    # What the auxiliary input is (depth, thermal, hha): named when a frame does not fit it. None: not known.
    aux_kind: Optional[str] = None
    # With aux_max None: the type of the images the model was trained on (uint8, uint16), whose maximum was 1.0.
    aux_dtype: Optional[str] = None
    # With aux_max set: the largest auxiliary value of the training images sampled (None: not recorded). Inputs far
    # beyond it are noted (`smmcl.data.modality.RangeWatch`): other units that still fit aux_max.
    aux_top: Optional[float] = None

    @classmethod
    def from_data_config(cls, data, aux_dtype: Optional[str] = None, aux_top: Optional[float] = None) -> "Preprocessing":
        """The contract of a `DataConfig` (smmcl trains with ImageNet statistics on both modalities); `aux_dtype`
        and `aux_top` as a model file records them (its metadata)."""
        return cls(aux_max=None if data.aux_max is None else float(data.aux_max), aux_kind=data.aux_kind,
                   aux_dtype=aux_dtype or None, aux_top=float(aux_top) if aux_top else None)

    def rgb_array(self, frame: np.ndarray, bgr: bool = False, source: object = "the RGB frame") -> np.ndarray:
        """H x W x 3 uint8 (RGB, or BGR with `bgr`; RGBA and 8-bit grey are read as RGB) -> 3 x H x W normalised
        float32; any other frame is refused (`smmcl.data.modality.check_rgb`)."""
        frame = check_rgb(frame, source)
        unit = (frame[..., ::-1] if bgr else frame).transpose(2, 0, 1).astype(np.float32, order="C")
        unit /= np.float32(255.0)
        return self._normalize(unit)

    def aux_array(self, frame: np.ndarray, source: object = "the auxiliary image", aux_scale: float = 1.0,
                  on_units: Callable[[str], None] = warn_units) -> np.ndarray:
        """H x W [x C] integer or float auxiliary frame -> 3 x H x W normalised float32 (non-finite values read as
        0). Its values times `aux_scale` are checked against `aux_max`; a mismatch goes to `on_units`."""
        frame = check_aux(np.asarray(frame), source, self.aux_max, aux_scale, on_units, for_model=self.aux_kind or True,
                          trained_dtype=self.aux_dtype)
        # aux_scale 1 divides by exactly what the evaluation dataset divides by: the two stay bit for bit equal.
        full = aux_full_scale(frame.dtype, self.aux_max) / aux_scale
        unit = frame.astype(np.float32)  # a copy: the caller's frame is never written
        unit /= np.float32(full)
        unit = unit[None] if unit.ndim == 2 else unit.transpose(2, 0, 1)[:3]
        return self._normalize(np.broadcast_to(unit, (3, *unit.shape[1:])) if unit.shape[0] == 1 else unit)

    def pair_arrays(self, rgb: np.ndarray, aux: np.ndarray, bgr: bool = False, source: object = "the auxiliary image",
                    aux_scale: float = 1.0, on_units: Callable[[str], None] = warn_units,
                    rgb_source: object = "the RGB frame") -> tuple[np.ndarray, np.ndarray]:
        """Both frames of one observation, sizes checked; 3 x H x W float32 each."""
        # Each frame by its own rule first: an empty or wrong-typed frame is named as such, not as a size mismatch.
        rgb_in = self.rgb_array(rgb, bgr, rgb_source)
        if isinstance(aux, np.ndarray) and aux.size == 0:
            check_aux(aux, source, self.aux_max)
        if np.shape(aux)[:2] != np.shape(rgb)[:2]:
            raise ValueError(f"aux is {np.shape(aux)[:2]} but rgb is {np.shape(rgb)[:2]} (H x W); "
                             f"the two frames of an observation must be registered to one size")
        return rgb_in, self.aux_array(aux, source, aux_scale, on_units)

    def _normalize(self, unit: np.ndarray) -> np.ndarray:
        """(x - mean) / std per channel in float32, the operations `transforms.normalize` makes in PyTorch."""
        out = unit - np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        out /= np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        return out

    # The same arrays as PyTorch tensors (sharing their memory), for the PyTorch backend and its callers.
    def rgb(self, frame: np.ndarray, bgr: bool = False, source: object = "the RGB frame") -> "torch.Tensor":
        import torch

        return torch.from_numpy(self.rgb_array(frame, bgr, source))

    def aux(self, frame: np.ndarray, source: object = "the auxiliary image", aux_scale: float = 1.0,
            on_units: Callable[[str], None] = warn_units) -> "torch.Tensor":
        import torch

        return torch.from_numpy(self.aux_array(frame, source, aux_scale, on_units))

    def pair(self, rgb: np.ndarray, aux: np.ndarray, bgr: bool = False, source: object = "the auxiliary image",
             aux_scale: float = 1.0, on_units: Callable[[str], None] = warn_units,
             rgb_source: object = "the RGB frame") -> tuple["torch.Tensor", "torch.Tensor"]:
        """`pair_arrays` as tensors."""
        import torch

        r, a = self.pair_arrays(rgb, aux, bgr, source, aux_scale, on_units, rgb_source)
        return torch.from_numpy(r), torch.from_numpy(a)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "rgb_order": "RGB", "rgb_scale": 255.0, "layout": "NCHW",
                           "aux_channels": "1 channel repeated to 3, or the first 3"}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessing":
        raw = json.loads(text)
        return cls(tuple(raw["mean"]), tuple(raw["std"]), raw.get("aux_max"), raw.get("aux_kind"),  # type: ignore[arg-type]
                   raw.get("aux_dtype"), raw.get("aux_top"))


def stack_into(buffer: Optional[np.ndarray], arrays: Sequence[np.ndarray]) -> np.ndarray:
    """`np.stack(arrays)` (float32), written into `buffer` when it has the right shape (a frame stream reuses it)."""
    shape = (len(arrays), *arrays[0].shape)
    if buffer is None or buffer.shape != shape:
        buffer = np.empty(shape, dtype=np.float32)
    return np.stack(list(arrays), out=buffer)
