"""Test-time inference protocols: whole image or sliding window, over several scales and with a horizontal flip.

The sliding window follows the released CMX/SMMCL evaluator (`scale_process_rgbX`) with its defects fixed:
the height stride comes from the crop height and the width stride from the crop width (the released code
mixes the two), and overlapping windows are averaged, not summed. Scales and flips average softmax
probabilities, as mmsegmentation does (the released code sums `exp` of the summed flip logits).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smmcl.engine.precision import autocast, check_precision
from smmcl.errors import InputWarning
from smmcl.models.compiled import to_channels_last

MODES = ("whole", "slide")


# Every encoder here (MSCAN, MiT, ResNet) reaches 1/32 of the input at its last stage.
COARSEST_STRIDE = 32


@dataclass(frozen=True)
class InferenceProtocol:
    """How class probabilities are computed at test time; see `predict_probs`."""

    mode: str = "whole"
    crop_size: tuple[int, int] = (480, 640)
    stride_rate: float = 2 / 3
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    # The training switches, reused at test time: autocast precision and NHWC inputs.
    precision: str = "fp32"
    channels_last: bool = False

    @classmethod
    def from_config(cls, cfg) -> "InferenceProtocol":
        """The protocol of a `Config`: `eval.*` (mode, crop, stride, scales, flip) and the training switches."""
        e, t = cfg.eval, cfg.train
        return cls(e.mode, tuple(e.crop_size), e.stride_rate, tuple(e.scales), e.flip, t.precision, t.channels_last)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.mode not in MODES:
            raise ValueError(f"inference mode must be one of {', '.join(MODES)}; got mode={self.mode!r}")
        crop = self.crop_size
        if (
            not isinstance(crop, Sequence)
            or len(crop) != 2
            or not all(isinstance(c, Integral) and not isinstance(c, bool) and c > 0 for c in crop)
        ):
            raise ValueError(f"crop_size must be two positive integers (height, width); got crop_size={crop!r}")
        rate = self.stride_rate
        if not isinstance(rate, Real) or isinstance(rate, bool) or not 0 < rate <= 1:
            raise ValueError(f"stride_rate must be in (0, 1]; got stride_rate={rate!r}")
        scales = self.scales
        if (
            not isinstance(scales, Sequence)
            or isinstance(scales, str)
            or len(scales) == 0
            or not all(isinstance(s, Real) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in scales)
        ):
            raise ValueError(f"scales must be a non-empty list of positive numbers; got scales={scales!r}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be true or false; got flip={self.flip!r}")
        # Configs arrive as lists (YAML); tuples keep the protocol hashable and its fields immutable.
        object.__setattr__(self, "crop_size", (int(crop[0]), int(crop[1])))
        object.__setattr__(self, "stride_rate", float(rate))
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))

    @property
    def batchable(self) -> bool:
        """True when images of one size can be stacked into a batch (whole-image mode)."""
        return self.mode == "whole"

    def apply(self, model: nn.Module, rgb: Tensor, aux: Tensor) -> Tensor:
        """Class probabilities B x K x H x W of `model` on one batch under this protocol."""
        return predict_probs(model, rgb, aux, **asdict(self))

    def describe(self) -> str:
        """The protocol in words: "whole image, single scale" or e.g. "sliding window 480x640, stride
        320x427, scales 0.75/1/1.25, flip" (plus the precision and layout when not fp32 NCHW)."""
        if self.mode == "slide":
            (h, w), rate = self.crop_size, self.stride_rate
            words = [f"sliding window {h}x{w}, stride {window_stride(h, rate)}x{window_stride(w, rate)}"]
        else:
            words = ["whole image"]
        if len(self.scales) > 1:
            words.append("scales " + "/".join(f"{s:g}" for s in self.scales))
        else:
            words.append("single scale" if self.scales[0] == 1 else f"scale {self.scales[0]:g}")
        if self.flip:
            words.append("flip")
        if self.precision != "fp32":
            words.append(f"{self.precision} autocast")
        if self.channels_last:
            words.append("channels-last")
        return ", ".join(words)


def window_stride(crop: int, stride_rate: float) -> int:
    """Step between window starts along a dimension whose crop is `crop`: ceil(crop * stride_rate)."""
    # The tolerance stops float noise (e.g. 0.1 * 3 = 0.30000000000000004) from adding a pixel to the stride.
    return max(1, math.ceil(crop * stride_rate - 1e-9))


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Window starts along one dimension of a (padded) image of `length` >= `crop`, the last one at the border.

    Starts are 0, stride, 2 * stride, ... while a window fits; one more window ends exactly at `length`
    unless the previous one already does, so every pixel is covered and no window repeats.
    """
    if length <= crop:
        return [0]
    count = math.ceil((length - crop) / stride) + 1
    return [min(i * stride, length - crop) for i in range(count)]


def _center_pad(x: Tensor, height: int, width: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad `x` (B x C x h x w) to at least height x width, the extra split as the released code does."""
    pad_h, pad_w = max(height - x.shape[-2], 0), max(width - x.shape[-1], 0)
    top, left = pad_h // 2, pad_w // 2
    if pad_h or pad_w:
        # Zero is the mean colour once images are normalised, i.e. the released cv2.BORDER_CONSTANT value.
        x = F.pad(x, (left, pad_w - left, top, pad_h - top), value=0.0)
    return x, (top, left)


def _softmax(model: nn.Module, rgb: Tensor, aux: Tensor) -> Tensor:
    logits = model(rgb, aux)
    if logits.shape[-2:] != rgb.shape[-2:]:
        got, want = tuple(logits.shape[-2:]), tuple(rgb.shape[-2:])
        raise ValueError(f"model returned logits of size {got} for an input of size {want}")
    # Probabilities are accumulated in float32 whatever precision the model ran in.
    return logits.float().softmax(1)


def _slide(model: nn.Module, rgb: Tensor, aux: Tensor, crop_size: Sequence[int], stride_rate: float) -> Tensor:
    """Sliding-window probabilities: windows one at a time, overlaps averaged, padding cut off."""
    height, width = rgb.shape[-2:]
    crop_h, crop_w = crop_size
    rgb_p, (top, left) = _center_pad(rgb, crop_h, crop_w)
    aux_p, _ = _center_pad(aux, crop_h, crop_w)
    pad_h, pad_w = rgb_p.shape[-2:]
    rows = window_starts(pad_h, crop_h, window_stride(crop_h, stride_rate))
    cols = window_starts(pad_w, crop_w, window_stride(crop_w, stride_rate))
    total: Tensor | None = None
    count = torch.zeros(pad_h, pad_w, dtype=torch.float32, device=rgb.device)
    for y in rows:
        for x in cols:
            window = (..., slice(y, y + crop_h), slice(x, x + crop_w))
            probs = _softmax(model, rgb_p[window], aux_p[window])
            if total is None:
                total = torch.zeros(*probs.shape[:2], pad_h, pad_w, dtype=probs.dtype, device=rgb.device)
            total[window] += probs
            count[window] += 1
    assert total is not None
    return (total / count)[..., top : top + height, left : left + width]


def _single_scale(
    model: nn.Module, rgb: Tensor, aux: Tensor, mode: str, crop_size: Sequence[int], stride_rate: float
) -> Tensor:
    if mode == "whole":
        return _softmax(model, rgb, aux)
    return _slide(model, rgb, aux, crop_size, stride_rate)


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    rgb: Tensor,
    aux: Tensor,
    mode: str = "whole",
    crop_size: Sequence[int] = (480, 640),
    stride_rate: float = 2 / 3,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    precision: str = "fp32",
    channels_last: bool = False,
) -> Tensor:
    """Softmax probabilities B x K x H x W (fp32) of `model` on normalised rgb/aux (B x 3 x H x W).

    `mode` "whole" runs one forward pass per scale and flip; "slide" runs crop_size (h, w) windows with
    strides ceil(h * stride_rate), ceil(w * stride_rate), the last window in each direction at the image
    border, zero padding images smaller than the crop. Each scale s resizes the inputs bilinearly to
    round(H * s) x round(W * s) and its probabilities back to H x W; `flip` adds the mirrored input.
    All passes are averaged. `precision` runs the model under autocast and `channels_last` feeds it NHWC
    inputs. The model's train/eval mode is left as it is: call `model.eval()` first.
    """
    p = InferenceProtocol(mode, crop_size, stride_rate, scales, flip, precision, channels_last)  # type: ignore[arg-type]  # validates
    rgb, aux = to_channels_last(rgb, channels_last), to_channels_last(aux, channels_last)
    with autocast(rgb.device, precision):
        return _multi_scale(model, rgb, aux, p)


def _multi_scale(model: nn.Module, rgb: Tensor, aux: Tensor, p: InferenceProtocol) -> Tensor:
    height, width = rgb.shape[-2:]
    total: Tensor | None = None
    passes = 0
    for s in p.scales:
        size = (max(1, round(height * s)), max(1, round(width * s)))
        if s < 1 and min(size) < COARSEST_STRIDE:
            warnings.warn(f"scale {s:g} shrinks {height}x{width} images to {size[0]}x{size[1]}, less than one cell of "
                          f"the encoder's coarsest stage ({COARSEST_STRIDE} pixels): the model sees almost nothing at "
                          f"that scale (the paper's scales are 0.5-1.75)", InputWarning, stacklevel=3)
        elif min(size) < COARSEST_STRIDE // 2:  # trial 17 P-tiny: 8x8 images predicted as one class, unsaid
            warnings.warn(f"{size[0]}x{size[1]} images are less than half a cell of the encoder's coarsest stage "
                          f"({COARSEST_STRIDE} pixels) a side: the model sees almost nothing of them (images of its "
                          f"training crop's size are what it reads)", InputWarning, stacklevel=3)
        if p.mode == "slide" and (size[0] < p.crop_size[0] or size[1] < p.crop_size[1]):
            # Padded to the window, the image fills a corner of what the model sees (trial 16 #296: mIoU 17.11 for
            # 29.49 whole-image on 60x80 images in the default 480x640 window), unlike any crop it trained on.
            at = f" at scale {s:g}" if s != 1 else ""
            warnings.warn(f"the sliding window {p.crop_size[0]}x{p.crop_size[1]} is larger than the {size[0]}x{size[1]} "
                          f"images{at}: each is zero-padded to the window, so the model sees it in a corner of padding, "
                          f"unlike its training crops: set eval.crop_size to at most the image size (the training "
                          f"crop, data.crop_size, is the usual window), or use --mode whole", InputWarning, stacklevel=3)
        if size == (height, width):
            rgb_s, aux_s = rgb, aux  # no resampling at scale 1, so single-scale equals the plain pass exactly
        else:
            rgb_s = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
            aux_s = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        views = [(rgb_s, aux_s, False)] + ([(rgb_s.flip(-1), aux_s.flip(-1), True)] if p.flip else [])
        for r, a, flipped in views:
            probs = _single_scale(model, r, a, p.mode, p.crop_size, p.stride_rate).float()
            if flipped:
                probs = probs.flip(-1)
            if probs.shape[-2:] != (height, width):
                probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
            total = probs if total is None else total + probs
            passes += 1
    assert total is not None
    return total / passes
